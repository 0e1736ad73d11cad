import * as pulumi from "@pulumi/pulumi";
import { expect } from "vitest";
import { recordMocks, RecordedResource } from "../harness/mockRun";

/** Declares resources under mocks (dev stack config) and returns what was registered and what was thrown. */
export async function declare(build: () => unknown, options: { preview?: boolean } = {}): Promise<{ resources: RecordedResource[]; error?: unknown }> {
    const recorder = await recordMocks("dev", { preview: options.preview });
    let error: unknown;
    try {
        build();
    } catch (err) {
        error = err;
    }
    return { resources: await recorder.settled(), error };
}

/**
 * Asserts a bad argument was refused the way users need: a ResourceError under the component, naming the
 * argument, the value and a fix, with no child of the component registered.
 */
export async function expectRefused(build: () => unknown, componentType: string, argument: string, value: unknown): Promise<string> {
    const { resources, error } = await declare(build);
    expect(error, `expected ${argument}=${JSON.stringify(value)} to be refused`).toBeInstanceOf(pulumi.ResourceError);
    const message = (error as Error).message;
    expect(message).toContain(`\`${argument}\``);
    expect(message).toContain(JSON.stringify(value));
    expect(message).toMatch(/Fix: .+/);
    const component = resources.find((r) => r.type === componentType);
    expect(component, `${componentType} itself is registered`).toBeDefined();
    expect(resources.filter((r) => r.parent === component!.urn)).toEqual([]);
    return message;
}

export function byType(resources: RecordedResource[], type: string): RecordedResource[] {
    return resources.filter((r) => r.type === type);
}
