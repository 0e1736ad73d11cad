import * as fs from "fs";
import * as path from "path";
import { applyResources, destroyStackObjects } from "./dockerApply";
import { RecordedResource, runStack } from "./mockRun";
import { ConfigValues, PROJECT_ROOT } from "./stackConfig";

/**
 * The stack harness: runs a stack program under Pulumi mocks, then applies its Docker resources to the
 * local engine. It stands in for `pulumi up` on machines without the Pulumi CLI.
 */

/** Config every harness run gets: the locally imported base images, since nothing can be pulled here. */
export const LOCAL_IMAGE_CONFIG: ConfigValues = { "hadb:baseImageTrixie": "hadb-base:trixie", "hadb:baseImageSid": "hadb-base:sid" };

const STATE_DIR = path.join(PROJECT_ROOT, ".hadb-harness");

/** What `up` keeps between runs, like a Pulumi state file: generated values and the outputs. Holds secrets: 0600, gitignored. */
interface HarnessState {
    readonly outputs: Record<string, unknown>;
    readonly random: Record<string, Record<string, unknown>>;
    readonly config: ConfigValues;
}

function statePath(stack: string): string {
    return path.join(STATE_DIR, `${stack}.json`);
}

function readState(stack: string): HarnessState | undefined {
    const file = statePath(stack);
    return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : undefined;
}

function writeState(stack: string, state: HarnessState): void {
    fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
    fs.writeFileSync(statePath(stack), JSON.stringify(state, null, 2), { mode: 0o600 });
}

export interface Deployment {
    readonly stack: string;
    readonly resources: RecordedResource[];
    readonly outputs: Record<string, any>;
}

export interface UpOptions {
    readonly config?: ConfigValues;
    readonly log?: (line: string) => void;
}

/** `pulumi up` for the stack's Docker resources. Generated secrets are kept from the previous `up`. */
export async function up(stack: string, options: UpOptions = {}): Promise<Deployment> {
    const log = options.log ?? ((line: string) => console.error(`[harness] ${line}`));
    const previous = readState(stack);
    const config = { ...LOCAL_IMAGE_CONFIG, ...options.config };
    const run = await runStack(stack, { config, randomState: previous?.random });
    const random = Object.fromEntries(run.resources.filter((r) => r.type.startsWith("random:")).map((r) => [r.urn, r.state]));
    // Keep the state first, so a failed apply can still be torn down and re-run with the same secrets.
    writeState(stack, { outputs: run.outputs, random, config });
    await applyResources(run.resources, { stack, log });
    return { stack, resources: run.resources, outputs: run.outputs };
}

/** The outputs of the last `up` of the stack, secrets revealed. */
export function outputs(stack: string): Record<string, any> {
    const state = readState(stack);
    if (!state) throw new Error(`stack ${stack} has not been deployed by the harness (run: npm run harness -- up ${stack})`);
    return state.outputs;
}

/** `pulumi destroy`: removes every container, volume and network carrying the stack's harness label. */
export async function down(stack: string, log: (line: string) => void = (l) => console.error(`[harness] ${l}`)): Promise<number> {
    const removed = await destroyStackObjects(stack, log);
    fs.rmSync(statePath(stack), { force: true });
    return removed;
}
