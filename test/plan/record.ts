import * as crypto from "crypto";
import * as path from "path";
import { toGoal } from "../harness";
import { ConfigValues, PROJECT_ROOT } from "../harness/stackConfig";
import { runStack, UNKNOWN } from "../harness/mockRun";
import { Goal, getPath, pathSegments, setPath } from "../harness/plan";

/**
 * A stack's plan: every registration as the engine would receive it after the provider's Check (the harness's
 * Goal), with each secret value replaced by a keyed digest and paths into the checkout made relative, so plans of
 * two checkouts compare field by field and no secret value ever leaves the process that ran the program.
 */
export interface StackPlan {
    readonly stack: string;
    readonly goals: Goal[];
    /** Milliseconds the program took under mocks. */
    readonly millis: number;
}

export interface RecordOptions {
    readonly root?: string;
    readonly config?: ConfigValues;
    /**
     * Keys the secret digests and seeds the generated passwords, so that two runs with one key agree on every
     * unchanged secret and on what derives from it (an auto-named Secret's name).
     */
    readonly key?: string;
}

/** The mocks' passwords are never a real stack's, so one fixed key keeps the committed snapshots stable. */
const DEFAULT_KEY = "hadb-plan";

/** What stands for a secret value in a plan: equal digests mean equal values under one key. */
export const SECRET_PREFIX = "[secret:";
export const isSecretMarker = (v: unknown): boolean => typeof v === "string" && v.startsWith(SECRET_PREFIX);

export async function recordPlan(stack: string, options: RecordOptions = {}): Promise<StackPlan> {
    const key = options.key ?? DEFAULT_KEY;
    const root = options.root ?? PROJECT_ROOT;
    const started = Date.now();
    const run = await runStack(stack, { preview: true, config: options.config, root: options.root, randomSeed: key });
    const millis = Date.now() - started;
    const goals = new Map<string, Goal>();
    for (const r of run.resources) goals.set(r.urn, toGoal(r, goals));
    const masked = [...goals.values()].map((g) => ({ ...g, inputs: relativePaths(maskSecrets(g.inputs, g.secretPaths, key), root) }));
    return { stack, goals: masked, millis };
}

/** Replaces the value at every secret path by a digest keyed with `key`. */
export function maskSecrets(inputs: Record<string, any>, secretPaths: readonly string[], key: string): Record<string, any> {
    let masked = inputs;
    for (const p of secretPaths) {
        // Fail closed: a path that does not resolve masks the deepest part of it that does.
        let segs = pathSegments(p);
        while (segs.length > 1 && getPath(masked, segs) === undefined) segs = segs.slice(0, -1);
        const value = getPath(masked, segs);
        if (value === undefined || value === UNKNOWN || isSecretMarker(value)) continue;
        const digest = crypto.createHmac("sha256", key).update(JSON.stringify(value)).digest("hex").slice(0, 16);
        masked = setPath(masked, segs, `${SECRET_PREFIX}${digest}]`);
    }
    return masked;
}

/** Absolute paths into the checkout (an image's build context) as paths relative to it. */
function relativePaths(value: any, root: string): any {
    if (typeof value === "string") return value === root ? "." : value.startsWith(root + "/") ? value.slice(root.length + 1) : value;
    if (Array.isArray(value)) return value.map((v) => relativePaths(v, root));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, relativePaths(v, root)]));
    return value;
}

/** The committed, reviewed tree of a stack's plan (`npm run plan -- --update-snapshots` rewrites them). */
export function snapshotPath(stack: string): string {
    return path.join(PROJECT_ROOT, "test", "plan", "snapshots", `${stack}.txt`);
}
