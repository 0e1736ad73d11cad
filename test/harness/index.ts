import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { checkDeployable, destroyStackObjects, dockerProvider, InitError, ProviderContext, ProviderOperations, VALUE_ONLY_TYPES } from "./dockerApply";
import { contextDigest } from "./imageContext";
import { awsOutputs, generatedPassword, mockId, RecordedResource, runStack } from "./mockRun";
import { formatPlan, Goal, Plan, Planner, previewOutputs, StateResource, Step, stepLine } from "./plan";
import { checkInputs, CONTAINER, IMAGE, readBack, VOLUME } from "./schema";
import { ConfigValues, PROJECT_ROOT } from "./stackConfig";

/**
 * The stack harness: stands in for `pulumi preview`, `pulumi up` and `pulumi destroy` on machines without the Pulumi
 * CLI. It runs the stack program under Pulumi mocks and answers each registration the way the engine does: it
 * plans the resource's step against the previous state (plan.ts), performs it on the local Docker engine
 * (dockerApply.ts), records the result in `.hadb-harness/<stack>.json`, and only then lets the program go on —
 * so a resource's dependents see its real outputs (a rebuilt image's ID) and wait for it, as under the engine.
 *
 * One difference on purpose: the harness performs one step at a time, in the order the program registers
 * resources, where the engine runs independent chains in parallel. hadb chains each cluster's members with
 * dependsOn, so a member is touched only after the previous one is done (and, with `wait`, healthy) either way.
 */

/** Config every harness run gets: the locally imported base images, since nothing can be pulled here. */
export const LOCAL_IMAGE_CONFIG: ConfigValues = { "hadb:baseImageTrixie": "hadb-base:trixie", "hadb:baseImageSid": "hadb-base:sid" };

const STATE_DIR = path.join(PROJECT_ROOT, ".hadb-harness");

/** An object `pulumi destroy` or a replacement left in Docker because of retainOnDelete. */
export interface RetainedObject {
    readonly type: string;
    readonly name: string;
    readonly urn: string;
}

/** The harness's state file, like a Pulumi checkpoint: the resources, what they returned, and the stack outputs. Holds secrets: 0600, gitignored. */
export interface HarnessState {
    readonly version: 2;
    readonly config: ConfigValues;
    readonly outputs: Record<string, unknown>;
    /** In the order their steps completed, which respects dependencies. */
    readonly resources: StateResource[];
    /** Old instances of create-before-delete replacements an interrupted `up` did not get to delete. */
    readonly pendingDeletes: StateResource[];
    readonly retained: RetainedObject[];
}

export const EMPTY_STATE: HarnessState = { version: 2, config: {}, outputs: {}, resources: [], pendingDeletes: [], retained: [] };

function statePath(stack: string): string {
    return path.join(STATE_DIR, `${stack}.json`);
}

/** The stack's state; a file from the harness before it kept resources is refused, naming what to do. */
export function readState(stack: string): HarnessState {
    const file = statePath(stack);
    if (!fs.existsSync(file)) return EMPTY_STATE;
    const state = JSON.parse(fs.readFileSync(file, "utf8"));
    if (state.version !== 2) {
        throw new Error(
            `harness: ${path.relative(PROJECT_ROOT, file)} was written by an older harness that kept no resource records, so no plan can be made against it. Run: npm run harness -- down ${stack} --destroy-data`,
        );
    }
    return state;
}

function writeState(stack: string, state: HarnessState): void {
    fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
    fs.writeFileSync(statePath(stack), JSON.stringify(state, null, 2), { mode: 0o600 });
}

export interface Deployment {
    readonly stack: string;
    readonly resources: RecordedResource[];
    readonly outputs: Record<string, any>;
    readonly plan: Plan;
}

export interface UpOptions {
    readonly config?: ConfigValues;
    readonly log?: (line: string) => void;
}

export interface PreviewOptions {
    readonly config?: ConfigValues;
    /** Plan against this state instead of the stack's state file (tests). */
    readonly state?: HarnessState;
    /** Run another checkout's program and stack files (a plan diff against another commit). */
    readonly root?: string;
    /** The stack's own base images instead of the locally built hadb-base ones (what `pulumi up` would use). */
    readonly stackImages?: boolean;
}

/**
 * The registration as the engine holds it once the provider's Check has run: retainOnDelete inherited from the
 * parent where unset (source_eval.go), an image's context digest and default Dockerfile, a container's
 * healthcheck defaults.
 */
export function toGoal(r: RecordedResource, goals: ReadonlyMap<string, Goal>): Goal {
    const parentOptions = r.parent ? goals.get(r.parent)?.options : undefined;
    const options = r.options ?? { replaceOnChanges: [], ignoreChanges: [] };
    const digest = r.type === IMAGE && r.inputs.build?.context ? contextDigest(r.inputs.build.context, r.inputs.build.dockerfile) : undefined;
    return {
        urn: r.urn,
        type: r.type,
        name: r.name,
        custom: r.custom,
        parent: r.parent,
        provider: r.provider,
        inputs: checkInputs(r.type, r.inputs, { contextDigest: digest }),
        // pulumi-kubernetes marks a Secret's data and stringData secret whether or not the program did.
        secretPaths: r.type === "kubernetes:core/v1:Secret" ? [...new Set([...(r.secretPaths ?? []), ...["data", "stringData"].filter((k) => k in r.inputs)])] : (r.secretPaths ?? []),
        dependencies: r.dependencies,
        propertyDependencies: r.propertyDependencies ?? {},
        options: { ...options, retainOnDelete: options.retainOnDelete ?? parentOptions?.retainOnDelete },
    };
}

interface EngineRun {
    readonly plan: Plan;
    readonly resources: RecordedResource[];
    readonly outputs: Record<string, any>;
    readonly state: HarnessState;
}

/**
 * The engine: runs the program; for each registration plans the step and, unless previewing, performs it with the
 * provider operations before answering; then the deletes. The state is written after every step, as the engine
 * saves its snapshot, so an interrupted `up` leaves an accurate record.
 */
async function runEngine(
    stack: string,
    config: ConfigValues,
    previous: HarnessState,
    mode:
        | { preview: true }
        | { preview: false; provider: ProviderOperations; log: (line: string) => void; persist: (s: HarnessState) => void; retained: Set<string>; simulated?: boolean },
    root?: string,
): Promise<EngineRun> {
    const planner = new Planner(previous.resources, previous.pendingDeletes);
    const goals = new Map<string, Goal>();
    // The snapshot: new states in completion order, then the old ones not yet touched.
    const done = new Map<string, StateResource>();
    const untouched = new Map(previous.resources.map((r) => [r.urn, r]));
    let pendingDeletes = [...previous.pendingDeletes];
    const retained = [...previous.retained];
    let outputs: Record<string, unknown> = previous.outputs;
    const snapshot = (): HarnessState => ({ version: 2, config, outputs, resources: [...done.values(), ...untouched.values()], pendingDeletes, retained });
    const started = Date.now();
    const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    let failure: Error | undefined;
    let queue: Promise<unknown> = Promise.resolve();

    const dropped = (old: StateResource) => {
        if (old.options.retainOnDelete && old.custom && old.inputs.name !== undefined) {
            retained.push({ type: old.type, name: old.inputs.name, urn: old.urn });
            if (!mode.preview && old.type === VOLUME) mode.retained.add(old.inputs.name);
        }
    };
    /** The provider's delete, skipped for a resource retained in its OLD state. */
    const deleteOld = async (old: StateResource) => {
        if (mode.preview) return;
        if (old.options.retainOnDelete) mode.log(`${old.type} ${old.name}: retainOnDelete — dropped from state, the object stays`);
        else if (old.custom && !VALUE_ONLY_TYPES.has(old.type) && !old.type.startsWith("pulumi:providers:")) await mode.provider.delete(old);
        dropped(old);
    };

    const perform = async (step: Step): Promise<{ id?: string; outputs: Record<string, any> }> => {
        const goal = step.goal!;
        const inputs = step.inputs ?? goal.inputs;
        if (mode.preview) return { id: step.old?.id, outputs: previewOutputs(step) };
        const record = (id: string | undefined, out: Record<string, any>, initErrors?: string[]) => {
            untouched.delete(goal.urn);
            done.set(goal.urn, { ...goal, inputs, id, outputs: out, ...(initErrors ? { initErrors } : {}) });
            mode.persist(snapshot());
        };
        const create = async (): Promise<{ id?: string; outputs: Record<string, any> }> => {
            if (!goal.custom || goal.type.startsWith("pulumi:providers:")) return { id: undefined, outputs: inputs };
            if (VALUE_ONLY_TYPES.has(goal.type)) return { id: `${goal.name}-id`, outputs: { ...inputs, result: generatedPassword(inputs) } };
            try {
                return await mode.provider.create(goal, inputs);
            } catch (err) {
                if (err instanceof InitError) record(err.id, err.outputs, [err.message]);
                throw err;
            }
        };
        let result: { id?: string; outputs: Record<string, any> };
        switch (step.op) {
            case "same":
                result = { id: step.old!.id, outputs: step.old!.outputs };
                break;
            case "create":
                result = await create();
                break;
            case "update":
                result =
                    goal.custom && !VALUE_ONLY_TYPES.has(goal.type) && !goal.type.startsWith("pulumi:providers:")
                        ? { id: step.old!.id, ...(await mode.provider.update(step.old!, goal, inputs, step.changes)) }
                        : { id: step.old!.id, outputs: { ...step.old!.outputs, ...readBack(goal.type, inputs) } };
                break;
            case "replace":
                if (step.mode === "delete-before-replace") {
                    for (const d of step.dependentDeletes) {
                        mode.log(`- ${d.type} ${d.name}: deleted first, in ${goal.name}'s delete-before-replace chain (${elapsed()})`);
                        await deleteOld(d);
                        untouched.delete(d.urn);
                        done.delete(d.urn);
                        mode.persist(snapshot());
                    }
                    if (!step.alreadyDeleted) {
                        await deleteOld(step.old!);
                        untouched.delete(goal.urn);
                        mode.persist(snapshot());
                    }
                    result = await create();
                } else {
                    result = await create();
                    pendingDeletes = [...pendingDeletes, step.old!];
                }
                break;
            default:
                throw new Error(`harness: unexpected step ${step.op} for a registration`);
        }
        record(result.id, result.outputs);
        return result;
    };

    // After a failure the engine cancels the deployment: nothing more is performed. The program is still answered
    // (with its own inputs) so it runs to its end without rejected outputs, and the failure is thrown afterwards.
    const onRegister = (rec: RecordedResource) => {
        const next = queue.then(async () => {
            if (failure) return { state: rec.inputs };
            const stepStart = Date.now();
            try {
                const goal = toGoal(rec, goals);
                goals.set(goal.urn, goal);
                // The harness's own limit (fields it does not implement), not the engine's: a preview still plans.
                // A simulated up deploys nothing, so it plans every type (Kubernetes objects too).
                if (!mode.preview && !mode.simulated) checkDeployable(goal);
                const step = planner.register(goal);
                // Long operations (builds, containers with `wait`) say when they start; every change says when it is done.
                const long = step.type === CONTAINER || step.type === IMAGE;
                if (!mode.preview && step.op !== "same" && long) mode.log(`${stepLine(step)}: started (${elapsed()})`);
                const result = await perform(step);
                if (!mode.preview && step.op !== "same") mode.log(`${stepLine(step)}: done in ${((Date.now() - stepStart) / 1000).toFixed(1)} s (${elapsed()})`);
                return { id: result.id, state: result.outputs };
            } catch (err) {
                failure = err as Error;
                return { state: rec.inputs };
            }
        });
        queue = next;
        return next;
    };

    let programError: unknown;
    let run: Awaited<ReturnType<typeof runStack>> | undefined;
    try {
        run = await runStack(stack, { config, preview: mode.preview, onRegister, root });
    } catch (err) {
        programError = err;
    }
    await queue;
    if (failure) throw failure;
    if (programError) throw programError;

    const deletes = planner.finish();
    if (!mode.preview) {
        for (const step of deletes) {
            const stepStart = Date.now();
            mode.log(`${stepLine(step)}: started (${elapsed()})`);
            await deleteOld(step.old!);
            const replaced = pendingDeletes.indexOf(step.old!);
            if (replaced >= 0) pendingDeletes = pendingDeletes.filter((_, i) => i !== replaced);
            else untouched.delete(step.urn);
            mode.persist(snapshot());
            mode.log(`${stepLine(step)}: done in ${((Date.now() - stepStart) / 1000).toFixed(1)} s (${elapsed()})`);
        }
        outputs = run!.outputs;
        mode.persist(snapshot());
    }
    return { plan: { steps: planner.steps }, resources: run!.resources, outputs: run!.outputs as Record<string, any>, state: snapshot() };
}

/** What `pulumi preview` would show for the stack with this config: the structured plan. Touches nothing. */
export async function preview(stack: string, options: PreviewOptions = {}): Promise<Plan & { text: string; warnings: string[] }> {
    const state = options.state ?? readState(stack);
    const config = { ...(options.stackImages ? {} : LOCAL_IMAGE_CONFIG), ...options.config };
    const { plan } = await runEngine(stack, config, state, { preview: true }, options.root);
    // A retained volume of this stack that the plan creates again: Docker will hand it back with its old data.
    const warnings = plan.steps
        .filter((s) => s.op === "create" && s.type === VOLUME && state.retained.some((r) => r.type === VOLUME && r.name === s.goal?.inputs.name))
        .map((s) => `volume ${s.goal!.inputs.name} was retained by an earlier down or replacement of stack ${stack}: Docker hands it back, so its data (and the users and passwords in it) will be reused`);
    return { ...plan, warnings, text: [formatPlan(plan), ...warnings.map((w) => `warning: ${w}`)].join("\n") };
}

/**
 * `pulumi up` for the stack. Each resource is planned against the state of the last `up` (plan.ts) and changed
 * only as the engine would change it; stopped or removed containers are not noticed, as without --refresh.
 */
export async function up(stack: string, options: UpOptions = {}): Promise<Deployment> {
    const log = options.log ?? ((line: string) => console.error(`[harness] ${line}`));
    const previous = readState(stack);
    const config = { ...LOCAL_IMAGE_CONFIG, ...options.config };
    const retained = new Set(previous.retained.filter((r) => r.type === VOLUME).map((r) => r.name));
    const ctx: ProviderContext = { stack, log, retainedVolumes: retained };
    const persist = (s: HarnessState) => writeState(stack, s);
    const run = await runEngine(stack, config, previous, { preview: false, provider: dockerProvider(ctx), log, persist, retained });
    // Volumes adopted again are no longer retained leftovers: they are in state.
    const inState = new Set(run.state.resources.filter((r) => r.type === VOLUME).map((r) => r.inputs.name));
    writeState(stack, { ...run.state, retained: run.state.retained.filter((r) => !inState.has(r.name)) });
    const count = (op: string) => run.plan.steps.filter((s) => s.op === op).length;
    log(`Resources: ${count("create")} created, ${count("update")} updated, ${count("replace")} replaced, ${count("delete")} deleted, ${count("same")} unchanged`);
    return { stack, resources: run.resources, outputs: run.outputs, plan: run.plan };
}

/**
 * Stand-in provider for tests: creates and updates nothing, answering with what the provider would store — a
 * built image's ID derived from its inputs (so a changed context or build argument is a new ID), a new container ID.
 */
export function simulatedProvider(): ProviderOperations {
    const idOf = (v: unknown) => crypto.createHash("sha256").update(JSON.stringify(v)).digest("hex");
    const answer = (goal: Goal, inputs: Record<string, any>) => {
        if (goal.type === IMAGE) return { id: inputs.imageName, outputs: { ...inputs, repoDigest: `sha256:${idOf(inputs)}` } };
        // pulumi-kubernetes names an object without metadata.name `<resource name>-<random suffix>` at create.
        if (goal.type.startsWith("kubernetes:") && !inputs.metadata?.name) {
            const metadata = { ...inputs.metadata, name: `${goal.name}-${idOf([goal.urn, inputs]).slice(0, 8)}` };
            return { id: metadata.name, outputs: { ...inputs, metadata } };
        }
        // The mocks' IDs (AWS-shaped for instances and volumes): a ready parameter names the instance by it.
        return { id: inputs.name ?? mockId(goal.type, goal.name), outputs: { ...readBack(goal.type, inputs), ...awsOutputs(goal.type, inputs), id: `${idOf([goal.urn, inputs])}` } };
    };
    return {
        create: async (goal, inputs) => answer(goal, inputs),
        update: async (old, goal, inputs) => ({ outputs: goal.type === IMAGE ? answer(goal, inputs).outputs : { ...old.outputs, ...readBack(goal.type, inputs) } }),
        delete: async () => undefined,
    };
}

/**
 * `up` against an in-memory state with the simulated provider: the plan the engine would carry out and the state it
 * would leave, without Docker. For tests that need a deployed state to plan the next change against.
 */
export async function simulateUp(
    stack: string,
    options: PreviewOptions & { provider?: ProviderOperations; persist?: (state: HarnessState) => void; log?: (line: string) => void } = {},
): Promise<{ plan: Plan; state: HarnessState; outputs: Record<string, any> }> {
    const config = { ...(options.stackImages ? {} : LOCAL_IMAGE_CONFIG), ...options.config };
    const previous = options.state ?? EMPTY_STATE;
    const run = await runEngine(
        stack,
        config,
        previous,
        {
            preview: false,
            provider: options.provider ?? simulatedProvider(),
            log: options.log ?? (() => undefined),
            persist: options.persist ?? (() => undefined),
            retained: new Set(),
            simulated: !options.provider,
        },
        options.root,
    );
    return { plan: run.plan, state: run.state, outputs: run.outputs };
}

/** The outputs of the last `up` of the stack, secrets revealed. */
export function outputs(stack: string): Record<string, any> {
    const state = readState(stack);
    if (state.resources.length === 0) throw new Error(`stack ${stack} has not been deployed by the harness (run: npm run harness -- up ${stack})`);
    return state.outputs;
}

export interface DownOptions {
    readonly log?: (line: string) => void;
    /**
     * Also remove the volumes `pulumi destroy` keeps (retainOnDelete): what a user would do by hand with
     * `docker volume rm` after destroy. Tests use it to leave no trace.
     */
    readonly destroyData?: boolean;
}

/**
 * `pulumi destroy`: `down(stack)`, `down(stack, log)`, `down(stack, log, { destroyData: true })` or
 * `down(stack, { log, destroyData })`. Removes every container, volume and network carrying the stack's harness label, except the
 * volumes retained (retainOnDelete), which stay — and which a later `up` of the stack adopts, data and all —
 * unless `destroyData` is set. Unlike the provider, it removes containers at once instead of stopping each with
 * its destroyGraceSeconds.
 */
export async function down(stack: string, logOrOptions: DownOptions | ((line: string) => void) = {}, options: DownOptions = {}): Promise<number> {
    const opts: DownOptions = typeof logOrOptions === "function" ? { ...options, log: logOrOptions } : { ...logOrOptions, ...options };
    const log = opts.log ?? ((l: string) => console.error(`[harness] ${l}`));
    let state: HarnessState;
    try {
        state = readState(stack);
    } catch {
        // An older state file: it knows of no retained volume.
        state = EMPTY_STATE;
    }
    const keep = new Map<string, RetainedObject>();
    if (!opts.destroyData) {
        for (const r of state.retained) if (r.type === VOLUME) keep.set(r.name, r);
        for (const r of [...state.resources, ...state.pendingDeletes]) {
            if (r.type === VOLUME && r.options.retainOnDelete) keep.set(r.inputs.name, { type: r.type, name: r.inputs.name, urn: r.urn });
        }
    }
    const removed = await destroyStackObjects(stack, log, new Set(keep.keys()));
    if (keep.size) {
        log(`kept ${keep.size} retained volume${keep.size === 1 ? "" : "s"} (retainOnDelete), as pulumi destroy does; the next up of ${stack} reuses their data. Remove them too with: npm run harness -- down ${stack} --destroy-data`);
        writeState(stack, { ...EMPTY_STATE, retained: [...keep.values()] });
    } else {
        fs.rmSync(statePath(stack), { force: true });
    }
    return removed;
}
