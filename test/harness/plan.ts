import { joinPath, RecordedOptions, UNKNOWN } from "./mockRun";
import { CONTAINER, NETWORK, readBack, schemaFor, VOLUME } from "./schema";

/**
 * The engine's step generation, as a pure function of the previous state and the program's registrations
 * (pulumi/pulumi v3.248.0 pkg/resource/deploy/step_generator.go; see /work/research/pulumi-day2.md Q1–Q3, Q7).
 * Each registration gets one step, decided when it registers — exactly when the engine decides it — and the
 * deletes of resources the program no longer declares come at the end, in reverse dependency order.
 */

/** A registration as the engine receives it, after the provider's Check: the goal state. */
export interface Goal {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly custom: boolean;
    readonly parent?: string;
    /** `<provider urn>::<id>` */
    readonly provider?: string;
    readonly inputs: Record<string, any>;
    readonly secretPaths: readonly string[];
    readonly dependencies: readonly string[];
    readonly propertyDependencies: Readonly<Record<string, readonly string[]>>;
    /** The options, with retainOnDelete already inherited from the parent where the resource left it unset. */
    readonly options: RecordedOptions;
}

/** A resource in state: its goal as of the `up` that last touched it, and what the provider returned. */
export interface StateResource extends Goal {
    readonly id?: string;
    /** Inputs plus computed outputs, as the provider's Read returned them (healthcheck durations in Go form). */
    readonly outputs: Record<string, any>;
    /** Set when the create failed after the object existed (a `wait` that timed out): the next up updates it. */
    readonly initErrors?: readonly string[];
}

export type StepOp = "create" | "same" | "update" | "replace" | "delete";
export type ReplaceMode = "delete-before-replace" | "create-before-delete";

/** One changed input path, as `pulumi preview --diff` lists it. */
export interface Change {
    readonly path: string;
    readonly kind: "add" | "delete" | "update";
    readonly old?: unknown;
    readonly new?: unknown;
    /** The old or new value at (or above) this path is a secret: shown as [secret]. */
    readonly secret: boolean;
    readonly forcesReplace: boolean;
}

export interface Step {
    readonly op: StepOp;
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly custom: boolean;
    readonly mode?: ReplaceMode;
    readonly changes: readonly Change[];
    /** Changes the program made that ignoreChanges kept out of the diff (pulumi preview does not show these). */
    readonly ignored?: readonly string[];
    /** Why a step is what it is, beyond its changes ("deleted in pg-network's replacement", "init errors"). */
    readonly reasons: readonly string[];
    /** DBR: resources deleted first, inside this chain, because they would be replaced too (reverse dependency order). */
    readonly dependentDeletes: readonly StateResource[];
    /** The old object was already deleted earlier in this run, in another resource's delete-before-replace chain. */
    readonly alreadyDeleted?: boolean;
    /** A delete (or the delete half of a replace) that only drops the resource from state: retainOnDelete in the OLD state. */
    readonly retained?: boolean;
    readonly old?: StateResource;
    readonly goal?: Goal;
    /** The inputs the operation uses and state keeps: the goal's, with ignoreChanges paths reset to the old values. */
    readonly inputs?: Record<string, any>;
    /** Where the real `pulumi up` fails at this step (a Docker conflict, a protected resource, a volume in use). */
    readonly error?: string;
    readonly warnings: readonly string[];
}

export interface Plan {
    /** One step per registration, in registration order, then the deletes. */
    readonly steps: readonly Step[];
}

/** Path segments of a property path: `uploads[0].content` → ["uploads", "0", "content"]. */
export function pathSegments(path: string): string[] {
    const segments: string[] = [];
    for (const m of path.matchAll(/\["((?:[^"\\]|\\.)*)"\]|\[([^\]]*)\]|([^.[\]]+)/g)) {
        segments.push(m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : (m[2] ?? m[3]));
    }
    return segments;
}

/** Whether a listed path (replaceOnChanges, ignoreChanges; `*` matches any one segment) covers a changed path. */
export function pathCovers(pattern: string, path: string): boolean {
    if (pattern === "*") return true;
    const p = pathSegments(pattern);
    const s = pathSegments(path);
    if (p.length > s.length) return false;
    return p.every((seg, i) => seg === "*" || seg === s[i]);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
    return !!v && typeof v === "object" && !Array.isArray(v);
}

function containsUnknown(v: unknown): boolean {
    if (v === UNKNOWN) return true;
    if (Array.isArray(v)) return v.some(containsUnknown);
    if (isPlainObject(v)) return Object.values(v).some(containsUnknown);
    return false;
}

function deepEqual(a: unknown, b: unknown): boolean {
    if (a === b) return true;
    if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
    if (isPlainObject(a) && isPlainObject(b)) {
        const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => a[k] !== undefined || b[k] !== undefined));
        return [...keys].every((k) => deepEqual(a[k], b[k]));
    }
    return false;
}

/** The changed leaves between two values (arrays of one length element by element), like a detailed diff. */
export function diffValues(oldV: unknown, newV: unknown, path = ""): { path: string; kind: Change["kind"]; old?: unknown; new?: unknown }[] {
    if (newV === UNKNOWN) return [{ path, kind: oldV === undefined ? "add" : "update", old: oldV, new: UNKNOWN }];
    if (deepEqual(oldV, newV) && !containsUnknown(newV)) return [];
    if (oldV === undefined) return [{ path, kind: "add", new: newV }];
    if (newV === undefined) return [{ path, kind: "delete", old: oldV }];
    if (isPlainObject(oldV) && isPlainObject(newV)) {
        const keys = [...new Set([...Object.keys(oldV), ...Object.keys(newV)])];
        return keys.flatMap((k) => diffValues(oldV[k], newV[k], joinPath(path, k)));
    }
    if (Array.isArray(oldV) && Array.isArray(newV) && oldV.length === newV.length) {
        return oldV.flatMap((v, i) => diffValues(v, newV[i], joinPath(path, i)));
    }
    return [{ path, kind: "update", old: oldV, new: newV }];
}

export function getPath(obj: any, segs: string[]): unknown {
    return segs.reduce((o, s) => (o === undefined || o === null ? undefined : o[s]), obj);
}

export function setPath(obj: any, segs: string[], value: unknown): any {
    if (segs.length === 0) return value;
    const [head, ...rest] = segs;
    const copy = Array.isArray(obj) ? [...obj] : { ...obj };
    copy[head] = setPath(obj?.[head], rest, value);
    return copy;
}

/**
 * ignoreChanges: each listed path takes its old input value before the diff (step_generator.go
 * processIgnoreChanges). A path present on only one side cannot be ignored and is reported.
 */
export function applyIgnoreChanges(oldInputs: Record<string, any>, newInputs: Record<string, any>, ignore: readonly string[]): { inputs: Record<string, any>; notes: string[] } {
    let inputs = newInputs;
    const notes: string[] = [];
    for (const pattern of ignore) {
        const segs = pathSegments(pattern);
        if (segs.includes("*")) {
            // Wildcards: expand against the old inputs' top level only where both sides have the key.
            const top = segs[0] === "*" ? Object.keys(oldInputs) : [segs[0]];
            for (const k of top) if (k in oldInputs && k in inputs) inputs = { ...inputs, [k]: oldInputs[k] };
            continue;
        }
        const oldV = getPath(oldInputs, segs);
        const newV = getPath(inputs, segs);
        if (oldV === undefined && newV === undefined) continue;
        if (oldV === undefined || newV === undefined) {
            notes.push(`ignoreChanges path ${pattern} was ${oldV === undefined ? "added" : "removed"}; a path present on one side only cannot be ignored`);
            continue;
        }
        inputs = setPath(inputs, segs, oldV);
    }
    return { inputs, notes };
}

function isSecretPath(secretPaths: readonly string[], path: string): boolean {
    return secretPaths.some((s) => pathCovers(s, path) || pathCovers(path, s));
}

/** The provider's Diff: what changed, and which changes force a replacement (schema ForceNew, then replaceOnChanges). */
export function diffResource(old: StateResource, goalInputs: Record<string, any>, goal: Pick<Goal, "type" | "secretPaths" | "options">): Change[] {
    const schema = schemaFor(goal.type);
    const ignored = new Set(schema.ignoredInputs ?? []);
    const keys = [...new Set([...Object.keys(old.inputs), ...Object.keys(goalInputs)])].filter((k) => !ignored.has(k));
    const changes: Change[] = [];
    for (const key of keys) {
        // Bridged providers compare with what they read back into state, natives with the old inputs.
        const oldV = key in old.inputs ? (schema.diffAgainst === "state" ? (old.outputs[key] ?? old.inputs[key]) : old.inputs[key]) : undefined;
        for (const d of diffValues(oldV, goalInputs[key], key)) {
            const segs = pathSegments(d.path);
            const forcedBySchema = schema.forceNew(segs);
            const forcedByOption = goal.options.replaceOnChanges.some((p) => pathCovers(p, d.path));
            changes.push({ ...d, secret: isSecretPath(goal.secretPaths, d.path) || isSecretPath(old.secretPaths, d.path), forcesReplace: forcedBySchema || forcedByOption });
        }
    }
    return changes;
}

/** Where the provider's Create refuses inputs that Check let through (so `pulumi preview` passes and `up` fails). */
export function createError(goal: Pick<Goal, "type" | "inputs" | "name">): string | undefined {
    if (goal.type !== CONTAINER) return undefined;
    for (const [i, u] of ((goal.inputs.uploads ?? []) as any[]).entries()) {
        const set = [u.content, u.contentBase64, u.source].filter((v) => v !== undefined && v !== "").length;
        if (set === 0) return `container ${goal.inputs.name ?? goal.name}: uploads[${i}] (${u.file}): ${UPLOAD_CONTENT_ERROR}`;
    }
    return undefined;
}

/** terraform-provider-docker resource_docker_container_funcs.go: an empty string counts as unset. */
export const UPLOAD_CONTENT_ERROR = "error with upload content: one of 'content', 'content_base64', or 'source' must be set";

/** The fixed Docker object name a resource claims (container, volume, network), if any. */
function dockerName(r: { type: string; inputs: Record<string, any> }): string | undefined {
    return [CONTAINER, VOLUME, NETWORK].includes(r.type) ? r.inputs.name : undefined;
}

function hostPorts(r: { type: string; inputs: Record<string, any> }): string[] {
    if (r.type !== CONTAINER) return [];
    return (r.inputs.ports ?? []).filter((p: any) => p.external !== undefined).map((p: any) => `${p.ip ?? "0.0.0.0"}:${p.external}/${p.protocol ?? "tcp"}`);
}

const shortName = (urn: string) => urn.split("::").pop() ?? urn;

function providerUrn(ref: string | undefined): string | undefined {
    if (!ref) return undefined;
    const at = ref.lastIndexOf("::");
    return at < 0 ? ref : ref.slice(0, at);
}

/**
 * The step generator. `register` is called once per registration in the order the program sends them (the
 * engine sees them in that order too) and returns that registration's step; `finish` returns the deletes.
 * Pure: it reads only the previous state and the goals it is given.
 */
export class Planner {
    private readonly oldByUrn = new Map<string, StateResource>();
    private readonly registered = new Map<string, Goal>();
    /** Old resources deleted in a delete-before-replace chain before their own registration (PendingReplacement). */
    private readonly deletedEarly = new Set<string>();
    /** Old instances of create-before-delete replacements: deleted at the end. */
    private readonly replacedLater: StateResource[] = [];
    readonly steps: Step[] = [];

    constructor(
        private readonly old: readonly StateResource[],
        /** Old instances a failed earlier `up` left to delete (create-before-delete replacements). */
        private readonly pendingDeletes: readonly StateResource[] = [],
    ) {
        for (const r of old) this.oldByUrn.set(r.urn, r);
    }

    register(goal: Goal): Step {
        if (this.registered.has(goal.urn)) throw new Error(`harness: duplicate registration of ${goal.urn}`);
        this.registered.set(goal.urn, goal);
        const step = this.stepFor(goal);
        this.steps.push(step);
        return step;
    }

    private stepFor(goal: Goal): Step {
        const old = this.oldByUrn.get(goal.urn);
        const { inputs, notes } = old ? applyIgnoreChanges(old.inputs, goal.inputs, goal.options.ignoreChanges) : { inputs: goal.inputs, notes: [] };
        const ignored = old && goal.options.ignoreChanges.length ? diffResource(old, goal.inputs, goal).map((c) => c.path).filter((p) => goal.options.ignoreChanges.some((i) => pathCovers(i, p))) : [];
        const base = { urn: goal.urn, type: goal.type, name: goal.name, custom: goal.custom, goal, inputs, ignored, dependentDeletes: [] as StateResource[], reasons: [] as string[], warnings: [] as string[] };
        if (!old) return { ...base, op: "create", changes: [], error: createError(goal) ?? this.createCollision(goal) };
        if (this.deletedEarly.has(goal.urn)) {
            const mode: ReplaceMode = "delete-before-replace";
            const changes = diffResource(old, inputs, goal);
            const reasons = ["already deleted earlier in this run, in the delete-before-replace chain of a resource it takes a property from"];
            return { ...base, inputs: goal.inputs, op: "replace", mode, old, changes, alreadyDeleted: true, reasons, error: createError(goal) };
        }
        if (!goal.custom) return { ...base, op: "same", old, changes: [] };

        const schema = schemaFor(goal.type);
        const changes = diffResource(old, inputs, goal);
        const reasons = [...notes];
        if (!schema.modelled && changes.length) reasons.push(`the harness does not model ${goal.type}'s schema: diffed as in-place updates`);
        if (old.initErrors?.length) reasons.push(`init errors from the last up (${old.initErrors.join("; ")}): the engine updates it`);
        const replace = changes.some((c) => c.forcesReplace);
        if (!replace) {
            if (changes.length || old.initErrors?.length) return { ...base, op: "update", old, changes, reasons };
            return { ...base, op: "same", old, changes: [], reasons };
        }

        const providerDbr = schema.deleteBeforeReplace(inputs, old.inputs);
        const dbr = goal.options.deleteBeforeReplace ?? providerDbr;
        const mode: ReplaceMode = dbr ? "delete-before-replace" : "create-before-delete";
        if (goal.options.deleteBeforeReplace === undefined && providerDbr) {
            reasons.push(goal.type === CONTAINER ? "the provider replaces containers delete-before-replace" : "the provider replaces an explicitly named object delete-before-replace");
        }
        let error: string | undefined;
        if (old.options.protect && goal.options.protect) {
            error = `unable to replace resource "${goal.urn}" as it is currently marked for protection`;
        }
        const warnings: string[] = [];
        let dependentDeletes: StateResource[] = [];
        if (dbr) {
            dependentDeletes = this.dependentReplacements(old);
            for (const d of dependentDeletes) {
                this.deletedEarly.add(d.urn);
                if (d.options.protect && !error) error = `unable to delete resource "${d.urn}" (a dependent of ${goal.name}'s replacement) as it is currently marked for protection`;
            }
            if (old.options.retainOnDelete) {
                const name = dockerName(old);
                if (old.type === CONTAINER && name && name === dockerName(goal)) {
                    error ??= `the old container ${name} is retained (retainOnDelete in the old state), so it keeps its name and the create of its replacement fails: Conflict. The container name "/${name}" is already in use`;
                } else if (old.type === NETWORK && name && name === dockerName(goal)) {
                    error ??= `the old network ${name} is retained (retainOnDelete in the old state) and the create of its replacement fails: network with name ${name} already exists`;
                } else if (old.type === VOLUME && name && name === dockerName(goal)) {
                    warnings.push(`the old volume ${name} is retained (retainOnDelete in the old state); Docker hands the existing volume back to the replacement's create, so its data is reused`);
                }
            }
        } else {
            error ??= this.cbdCollision(old, goal);
            this.replacedLater.push(old);
        }
        error ??= createError(goal);
        // The replacement is created from the program's values, ignoreChanges or not (Check re-runs on goal.Properties).
        return { ...base, inputs: goal.inputs, op: "replace", mode, old, changes, reasons, dependentDeletes, retained: old.options.retainOnDelete === true, error, warnings };
    }

    /**
     * The engine creates before it deletes what the program no longer declares (deletes come last), so a new
     * resource that takes an old one's Docker name or host port (a renamed component) fails at create.
     */
    private createCollision(goal: Goal): string | undefined {
        const existing = [...this.old.filter((o) => !this.deletedEarly.has(o.urn) && !this.registered.has(o.urn)), ...this.replacedLater, ...this.pendingDeletes];
        const name = dockerName(goal);
        const ports = new Set(hostPorts(goal));
        for (const o of existing) {
            // A volume create with a taken name is not refused: Docker hands back the existing volume (and the
            // delete at the end then targets it); only containers and networks collide on names.
            if (name && goal.type !== VOLUME && o.type === goal.type && dockerName(o) === name) {
                return `the create of ${goal.name} needs the name ${name}, still held by ${o.name} (deleted only at the end of the up): Docker refuses the create`;
            }
            const clash = hostPorts(o).filter((p) => ports.has(p));
            if (clash.length) return `the create of ${goal.name} binds ${clash.join(", ")}, still bound by ${o.name} (deleted only at the end of the up): port is already allocated`;
        }
        return undefined;
    }

    /** A create-before-delete replace creates while the old object still exists: a fixed name or host port collides. */
    private cbdCollision(old: StateResource, goal: Goal): string | undefined {
        const name = dockerName(goal);
        if (name && name === dockerName(old)) {
            if (goal.type === CONTAINER) return `create-before-delete replace of container ${name}: the old container still holds the name, so Docker refuses the create (Conflict. The container name "/${name}" is already in use; pulumi-docker#1356)`;
            if (goal.type === NETWORK) return `create-before-delete replace of network ${name}: the old network still holds the name, so Docker refuses the create (network with name ${name} already exists)`;
            if (goal.type === VOLUME) {
                return `create-before-delete replace of volume ${name}: Docker hands back the old volume for the create, and the deferred delete of the old one then targets that same volume (in use by its container: fails after 30 s; unused: its data is gone)`;
            }
        }
        const oldPorts = new Set(hostPorts(old));
        const clash = hostPorts(goal).filter((p) => oldPorts.has(p));
        if (clash.length) return `create-before-delete replace of ${goal.name}: the old container still binds ${clash.join(", ")}, so the new one cannot start (port is already allocated)`;
        return undefined;
    }

    /**
     * calculateDependentReplacements: the old resources depending on `root` (dependencies, property dependencies,
     * deletedWith, provider; not parents) that would be replaced too, in dependency order. Only a property
     * dependency on something in the replace set whose property forces a replacement (or is under
     * replaceOnChanges) counts; a pure dependsOn dependent is left alone (step_generator.go requiresReplacement).
     */
    private dependentReplacements(root: StateResource): StateResource[] {
        const replaceSet = new Set([root.urn]);
        const candidates = this.transitiveDependents(root.urn);
        const out: StateResource[] = [];
        for (const r of candidates) {
            if (this.requiresReplacement(r, replaceSet)) {
                replaceSet.add(r.urn);
                out.push(r);
            }
        }
        // Deleted in reverse dependency order: the last dependent first.
        return out.reverse();
    }

    private transitiveDependents(rootUrn: string): StateResource[] {
        const dependsOnAny = (r: StateResource, set: Set<string>) =>
            r.dependencies.some((d) => set.has(d)) ||
            Object.values(r.propertyDependencies).some((ds) => ds.some((d) => set.has(d))) ||
            (r.options.deletedWith !== undefined && set.has(r.options.deletedWith)) ||
            set.has(providerUrn(r.provider) ?? "");
        const reached = new Set([rootUrn]);
        const out: StateResource[] = [];
        for (const r of this.old) {
            if (r.urn === rootUrn || this.registered.has(r.urn) || this.deletedEarly.has(r.urn)) continue;
            if (dependsOnAny(r, reached)) {
                reached.add(r.urn);
                out.push(r);
            }
        }
        return out;
    }

    private requiresReplacement(r: StateResource, replaceSet: Set<string>): boolean {
        if (!r.custom) return false;
        if (replaceSet.has(providerUrn(r.provider) ?? "")) return true;
        const props = Object.entries(r.propertyDependencies)
            .filter(([, deps]) => deps.some((d) => replaceSet.has(d)))
            .map(([k]) => k);
        if (props.length === 0) return false;
        const schema = schemaFor(r.type);
        return props.some((k) => schema.forceNew([k]) || r.options.replaceOnChanges.some((p) => pathCovers(p, k)));
    }

    /**
     * The deletes after the program finished: resources no longer declared and the old halves of create-before-delete
     * replacements, in reverse dependency order. A delete of a volume a remaining container still mounts fails
     * after the provider's 30 s retry.
     */
    finish(): Step[] {
        const toDelete = new Map<string, StateResource>();
        for (const r of this.pendingDeletes) toDelete.set(`pending:${r.urn}`, r);
        for (const r of this.replacedLater) toDelete.set(`replaced:${r.urn}`, r);
        for (const r of this.old) if (!this.registered.has(r.urn) && !this.deletedEarly.has(r.urn)) toDelete.set(r.urn, r);
        const order = new Map(this.old.map((r, i) => [r.urn, i]));
        const ordered = [...toDelete.values()].sort((a, b) => (order.get(b.urn) ?? -1) - (order.get(a.urn) ?? -1));
        // What still mounts each volume and sits on each network once the run is over.
        const remaining = [...this.registered.values()].filter((g) => g.type === CONTAINER);
        const steps: Step[] = ordered.map((old) => {
            const retained = old.options.retainOnDelete === true;
            const replaced = this.registered.has(old.urn);
            let error: string | undefined;
            if (old.options.protect && !replaced) error = `unable to delete resource "${old.urn}" as it is currently marked for protection`;
            if (!retained && !error && old.type === VOLUME) {
                const users = remaining.filter((c) => (c.inputs.volumes ?? []).some((v: any) => v.volumeName === old.inputs.name)).map((c) => c.inputs.name);
                if (users.length) error = `volume ${old.inputs.name} is still in use by ${users.join(", ")}: the provider retries the delete for 30 s and then fails`;
            }
            if (!retained && !error && old.type === NETWORK) {
                const users = remaining.filter((c) => (c.inputs.networksAdvanced ?? []).some((n: any) => n.name === old.inputs.name)).map((c) => c.inputs.name);
                if (users.length) error = `network ${old.inputs.name} still has active endpoints (${users.join(", ")}): the provider retries the delete for 30 s and then fails`;
            }
            return {
                op: "delete",
                urn: old.urn,
                type: old.type,
                name: old.name,
                custom: old.custom,
                old,
                changes: [],
                reasons: replaced ? ["the old instance of a create-before-delete replacement"] : [],
                dependentDeletes: [],
                retained,
                error,
                warnings: retained && old.custom ? [`retainOnDelete: ${shortName(old.urn)} is only dropped from state; the object stays`] : [],
            };
        });
        this.steps.push(...steps);
        return steps;
    }
}

/** The whole plan for a program's registrations against a previous state (tests and previews of recorded goals). */
export function plan(old: readonly StateResource[], goals: readonly Goal[]): Plan {
    const planner = new Planner(old);
    for (const g of goals) planner.register(g);
    planner.finish();
    return { steps: planner.steps };
}

/**
 * The outputs a step gives its dependents in a preview: the old ones where nothing changes, the new inputs as the
 * provider would read them back, and UNKNOWN for what only the operation computes (a rebuilt image's ID, a new
 * password, a new container's ID).
 */
export function previewOutputs(step: Step): Record<string, any> {
    const goal = step.goal!;
    const schema = schemaFor(goal.type);
    if (step.op === "same") return step.old!.outputs;
    if (goal.type.startsWith("kubernetes:") && !goal.inputs.metadata?.name) {
        // An auto-named object keeps its name through an update; a new one's name is only known once created.
        const name = step.op === "update" ? step.old!.outputs.metadata?.name : UNKNOWN;
        return { ...goal.inputs, metadata: { ...goal.inputs.metadata, name }, status: UNKNOWN };
    }
    const unknowns = Object.fromEntries(schema.computedOutputs.map((k) => [k, UNKNOWN]));
    if (step.op === "update") {
        // A rebuilt image gets a new ID; other updates keep their computed outputs.
        const kept = goal.type === "docker:index/image:Image" ? unknowns : Object.fromEntries(schema.computedOutputs.filter((k) => k in step.old!.outputs).map((k) => [k, step.old!.outputs[k]]));
        return { ...readBack(goal.type, goal.inputs), ...kept };
    }
    return { ...readBack(goal.type, goal.inputs), ...unknowns };
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering, as `pulumi preview --diff` would.

const SYMBOL: Record<StepOp, string> = { create: "+ ", same: "= ", update: "~ ", replace: "+-", delete: "- " };

export function render(value: unknown): string {
    if (value === UNKNOWN) return "output<string>";
    const text = JSON.stringify(value) ?? "undefined";
    return text.length > 70 ? `${text.slice(0, 67)}...` : text;
}

/** Two versions of a text (a rendered config file): the first differing line, and how many lines differ. */
export function textChange(oldText: string, newText: string): string {
    const a = oldText.split("\n");
    const b = newText.split("\n");
    const first = a.findIndex((l, i) => l !== b[i]);
    const at = first < 0 ? a.length : first;
    const removed = a.filter((l) => !b.includes(l)).length;
    const added = b.filter((l) => !a.includes(l)).length;
    return `text, ${added} line${added === 1 ? "" : "s"} added and ${removed} removed; first difference at line ${at + 1}: ${render(a[at] ?? "")} => ${render(b[at] ?? "")}`;
}

function changeLine(c: Change): string {
    const sym = c.kind === "add" ? "+" : c.kind === "delete" ? "-" : "~";
    const show = (v: unknown) => (v === UNKNOWN ? "output<string>" : c.secret ? "[secret]" : render(v));
    const long = (v: unknown) => typeof v === "string" && (v.includes("\n") || v.length > 70);
    let value: string;
    if (c.kind === "add") value = show(c.new);
    else if (c.kind === "delete") value = show(c.old);
    else if (!c.secret && long(c.old) && long(c.new) && c.new !== UNKNOWN) value = textChange(c.old as string, c.new as string);
    else value = `${show(c.old)} => ${show(c.new)}`;
    return `${sym} ${c.path}: ${value}${c.forcesReplace ? "  (forces replacement)" : ""}`;
}

/** Changes shown per step: leaves under one array element grouped when there are many. */
function summariseChanges(changes: readonly Change[], limit = 12): string[] {
    const lines = changes.slice(0, limit).map(changeLine);
    if (changes.length > limit) lines.push(`… and ${changes.length - limit} more changed paths`);
    return lines;
}

export interface RenderOptions {
    /** List unchanged resources too (= lines). */
    readonly showSames?: boolean;
}

export function stepLine(step: Step): string {
    const what = `${step.type} ${step.name}`;
    const detail: string[] = [];
    if (step.op === "replace") detail.push(step.mode === "delete-before-replace" ? "delete-before-replace" : "create-before-delete");
    if (step.op === "delete" && step.reasons.length) detail.push("replaced");
    if (step.retained) detail.push("retained: dropped from state only");
    return `${SYMBOL[step.op]} ${what}${detail.length ? ` (${detail.join("; ")})` : ""}`;
}

/** The plan as text: one line per resource with its symbol, its changed inputs, warnings and predicted errors, and a summary. */
export function formatPlan(p: Plan, options: RenderOptions = {}): string {
    const lines: string[] = [];
    for (const step of p.steps) {
        if (step.op === "same" && !options.showSames && !step.ignored?.length) continue;
        for (const d of step.dependentDeletes) lines.push(`  -  ${d.type} ${d.name} (deleted first, in ${step.name}'s delete-before-replace chain${d.options.retainOnDelete ? "; retained: dropped from state only" : ""})`);
        lines.push(`  ${stepLine(step)}`);
        for (const c of summariseChanges(step.changes)) lines.push(`        ${c}`);
        for (const r of step.reasons) lines.push(`        note: ${r}`);
        if (step.ignored?.length) lines.push(`        note: ignoreChanges keeps the old value of ${step.ignored.join(", ")} (changed by the program; not shown by pulumi preview)`);
        for (const w of step.warnings) lines.push(`        warning: ${w}`);
        if (step.error) lines.push(`        error (at up): ${step.error}`);
    }
    const count = (op: StepOp) => p.steps.filter((s) => s.op === op).length;
    const summary = [
        count("create") && `    + ${count("create")} to create`,
        count("update") && `    ~ ${count("update")} to update`,
        count("replace") && `    +-${count("replace")} to replace`,
        count("delete") && `    - ${count("delete")} to delete`,
    ].filter(Boolean) as string[];
    const changes = count("create") + count("update") + count("replace") + count("delete");
    lines.push("Resources:", ...summary, `    ${changes} change${changes === 1 ? "" : "s"}. ${count("same")} unchanged`);
    const errors = p.steps.filter((s) => s.error).length;
    if (errors) lines.push(`${errors} step${errors === 1 ? "" : "s"} would fail at up (see "error (at up)" above); pulumi preview itself does not detect these.`);
    return lines.join("\n");
}
