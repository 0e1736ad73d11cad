import * as pulumi from "@pulumi/pulumi";

/**
 * A bad argument, found by a pure validator before any resource exists. The message always names the
 * argument, the value given and the fix, so a user can act on it without reading hadb's source.
 */
export class InvalidArgumentError extends Error {
    constructor(
        readonly component: string,
        readonly argument: string,
        readonly value: unknown,
        readonly problem: string,
        readonly fix: string,
    ) {
        super(`${component}: argument \`${argument}\` is ${describe(value)}: ${problem}. Fix: ${fix}.`);
        this.name = "InvalidArgumentError";
    }
}

function describe(value: unknown): string {
    if (value === undefined) return "missing";
    return JSON.stringify(value);
}

/** Runs a pure planning step and reports its argument errors under the component in the Pulumi CLI. */
export function planOrFail<T>(resource: pulumi.Resource, plan: () => T): T {
    try {
        return plan();
    } catch (err) {
        if (err instanceof InvalidArgumentError) throw new pulumi.ResourceError(err.message, resource);
        throw err;
    }
}

/** A small checker bound to one component, so validators read as a list of rules. */
export class ArgumentChecker {
    constructor(readonly component: string) {}

    fail(argument: string, value: unknown, problem: string, fix: string): never {
        throw new InvalidArgumentError(this.component, argument, value, problem, fix);
    }

    integer(argument: string, value: number, min: number, max: number, fix?: string): void {
        if (!Number.isInteger(value) || value < min || value > max) {
            this.fail(argument, value, `it must be a whole number from ${min} to ${max}`, fix ?? `give a whole number from ${min} to ${max}`);
        }
    }

    port(argument: string, value: number): void {
        this.integer(argument, value, 1, 65535, "give a TCP port from 1 to 65535");
    }

    /** Names become container names, DNS labels and Kubernetes object names, so they follow RFC 1123. */
    dnsLabel(argument: string, value: string, maxLength = 40): void {
        if (typeof value !== "string" || !/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(value) || value.length > maxLength) {
            this.fail(
                argument,
                value,
                `it must be a DNS label: lowercase letters, digits and '-', starting with a letter, not ending with '-', at most ${maxLength} characters`,
                `rename it, for example "${suggestDnsLabel(value, maxLength)}"`,
            );
        }
    }

    oneOf<T extends string>(argument: string, value: T, allowed: readonly T[]): void {
        if (!allowed.includes(value)) {
            this.fail(argument, value, `it must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`, `use one of those values`);
        }
    }
}

function suggestDnsLabel(value: unknown, maxLength: number): string {
    const cleaned = String(value ?? "")
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, "-")
        .replace(/^[^a-z]+/, "")
        .slice(0, maxLength)
        .replace(/-+$/, "");
    return cleaned || "db";
}
