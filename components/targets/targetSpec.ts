import * as pulumi from "@pulumi/pulumi";
import { ArgumentChecker, InvalidArgumentError, planOrFail } from "../core/errors";
import { Target } from "../core/plan";
import { AwsTarget } from "./aws";
import { AwsTargetArgs, validateAwsTargetArgs } from "./awsPlan";
import { DockerTarget, DockerTargetArgs, validateDockerTargetArgs } from "./docker";
import { KubernetesTarget, KubernetesTargetArgs, validateKubernetesTargetArgs } from "./kubernetes";

/**
 * Where a component's members run, given as plain data: how programs in Python, Go, .NET, Java and YAML place
 * hadb's components, because a target object cannot be passed from one language to another. Every component
 * of a deployment given the same spec shares one target (one Docker network, one Kubernetes namespace),
 * declared beside the first component that names it. Give exactly one of `docker`, `kubernetes` and `aws`.
 */
export interface TargetSpec {
    /** Run on the Docker engine: a DockerTarget with these arguments (`{}` for the defaults). */
    readonly docker?: DockerTargetArgs;
    /** Run in a Kubernetes namespace: a KubernetesTarget with these arguments (`{}` for the defaults). */
    readonly kubernetes?: KubernetesTargetArgs;
    /** Run on EC2 in a VPC: an AwsTarget with these arguments (`vpcId` and `subnets` are required). */
    readonly aws?: AwsTargetArgs;
    /**
     * Resource name of the shared target. Components that belong together (a cluster and its proxy) give the
     * same spec; two different specs in one deployment need two names.
     * @default "docker", "kubernetes" or "aws"
     */
    readonly name?: string;
}

/** How a component is placed: a target object (TypeScript), or a spec the component turns into a shared one. */
export interface Placement {
    readonly target?: Target;
    readonly targetSpec?: TargetSpec;
}

interface SharedTarget {
    /** The spec that declared it, as canonical JSON: a second spec under the same name must equal it. */
    readonly spec: string;
    readonly target: Target;
}

/** Shared targets by name, per deployment scope (see deploymentScope). */
const SHARED = new WeakMap<object, Map<string, SharedTarget>>();
const PROCESS_SCOPE = {};

/**
 * What "one deployment" is for sharing targets. A component provider process serves one engine operation
 * (a preview, or an update), so targets are shared per process, per project, stack and mode (preview or update). Under
 * `pulumi.runtime.setMocks` every run has its own mock monitor, so tests that run several programs in one
 * process never see each other's targets.
 */
function deploymentScope(): Map<string, SharedTarget> {
    const monitor = pulumi.runtime.getMonitor() as object | undefined;
    const scope = monitor?.constructor?.name === "MockMonitor" ? monitor : PROCESS_SCOPE;
    let byScope = SHARED.get(scope);
    if (!byScope) {
        byScope = new Map();
        SHARED.set(scope, byScope);
    }
    return byScope;
}

function deploymentKey(name: string): string {
    return JSON.stringify([pulumi.getProject(), pulumi.getStack(), pulumi.runtime.isDryRun(), name]);
}

/** JSON with sorted keys, so two equal specs compare equal whatever order their fields came in. */
function canonical(value: unknown): string {
    return JSON.stringify(value, (_key, v) =>
        v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v,
    );
}

/** A value an error message can show: JSON-able as given, or summarised. */
function shown(value: unknown): unknown {
    try {
        JSON.stringify(value);
        return value;
    } catch {
        return String(value);
    }
}

function isTarget(value: unknown): value is Target {
    const t = value as Partial<Target> | undefined;
    return !!t && typeof t.deploy === "function" && typeof t.checkPlan === "function" && typeof t.memberHost === "function";
}

/** Re-labels a target's own argument error as an argument of the component's `targetSpec`. */
type TargetKind = "docker" | "kubernetes" | "aws";

function asSpecArgument(component: string, kind: TargetKind, err: unknown): never {
    if (err instanceof InvalidArgumentError) {
        const argument = err.argument === "name" ? "targetSpec.name" : `targetSpec.${kind}.${err.argument}`;
        throw new InvalidArgumentError(component, argument, err.value, err.problem, err.fix);
    }
    throw err;
}

/**
 * The target a component runs on: `target` as given, or the shared target `targetSpec` describes, declared on
 * first use with the component's parent and providers. Throws an InvalidArgumentError (naming the component)
 * unless exactly one of the two is given and it is valid; nothing is declared before that is settled.
 */
export function resolveTarget(component: string, args: Placement, opts?: pulumi.ComponentResourceOptions): Target {
    const { target, targetSpec } = args;
    const check = new ArgumentChecker(component);
    if (target !== undefined && targetSpec !== undefined) {
        check.fail(
            "targetSpec",
            shown(targetSpec),
            "`target` is given too, and a component runs on exactly one target",
            "give either `target` (a DockerTarget or KubernetesTarget object, TypeScript) or `targetSpec` (plain data, any language), not both",
        );
    }
    if (target === undefined && targetSpec === undefined) {
        check.fail(
            "target",
            undefined,
            "a component needs exactly one of `target` and `targetSpec` to know where its members run",
            "pass `target: new DockerTarget(\"local\")` (TypeScript), or `targetSpec: { docker: {} }` (any language)",
        );
    }
    if (target !== undefined) {
        if (!isTarget(target)) {
            check.fail(
                "target",
                shown(target),
                "it is not a target object (a DockerTarget or KubernetesTarget); plain data, such as a value passed from Python, Go or YAML, cannot be one",
                "pass a DockerTarget or KubernetesTarget object, or give `targetSpec` instead",
            );
        }
        return target;
    }
    return sharedTarget(component, check, targetSpec!, opts);
}

function sharedTarget(component: string, check: ArgumentChecker, spec: TargetSpec, opts?: pulumi.ComponentResourceOptions): Target {
    if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
        check.fail("targetSpec", shown(spec), "it must be an object", "give `targetSpec: { docker: {} }` or `targetSpec: { kubernetes: { namespace: \"hadb\" } }`");
    }
    const kinds = (["docker", "kubernetes", "aws"] as const).filter((k) => spec[k] !== undefined && spec[k] !== null);
    if (kinds.length !== 1) {
        check.fail(
            "targetSpec",
            shown(spec),
            kinds.length ? `it names ${kinds.map((k) => `\`${k}\``).join(" and ")}, and a component runs on one target` : "it names none of `docker`, `kubernetes` and `aws`",
            "give exactly one: `{ docker: {} }` for the local Docker engine, `{ kubernetes: { namespace: \"hadb\" } }`, or `{ aws: { vpcId, subnets } }`",
        );
    }
    const kind = kinds[0];
    const name = spec.name ?? kind;
    check.dnsLabel("targetSpec.name", name);
    const args = spec[kind]!;
    if (typeof args !== "object" || Array.isArray(args)) {
        check.fail(`targetSpec.${kind}`, shown(args), "it must be an object of the target's arguments", `give \`${kind}: {}\` for the defaults`);
    }
    try {
        if (kind === "docker") validateDockerTargetArgs(name, args as DockerTargetArgs);
        else if (kind === "kubernetes") validateKubernetesTargetArgs(name, args as KubernetesTargetArgs);
        else validateAwsTargetArgs(name, args as AwsTargetArgs);
    } catch (err) {
        asSpecArgument(component, kind, err);
    }
    const key = canonical({ [kind]: args, name });
    const shared = deploymentScope();
    const slot = deploymentKey(name);
    const existing = shared.get(slot);
    if (existing) {
        if (existing.spec !== key) {
            check.fail(
                "targetSpec.name",
                name,
                `another component of this deployment declared the target "${name}" from a different spec (${existing.spec}), and one name is one target`,
                "give every component that shares a target the same targetSpec, or give this spec another `name`",
            );
        }
        return existing.target;
    }
    // Beside the component (same parent), not under it: the target outlives any one component that uses it.
    const options: pulumi.ComponentResourceOptions = { parent: opts?.parent, providers: opts?.providers };
    const target =
        kind === "docker"
            ? new DockerTarget(name, args as DockerTargetArgs, options)
            : kind === "kubernetes"
              ? new KubernetesTarget(name, args as KubernetesTargetArgs, options)
              : new AwsTarget(name, args as AwsTargetArgs, options);
    shared.set(slot, { spec: key, target });
    return target;
}

/**
 * `resolveTarget` for a component's constructor: an argument error becomes a ResourceError under the component,
 * before it declares any child.
 */
export function placeComponent(owner: pulumi.ComponentResource, component: string, args: Placement, opts?: pulumi.ComponentResourceOptions): Target {
    return planOrFail(owner, () => resolveTarget(component, args, opts));
}

/** The target object of args that must already hold one (the pure `plan` helpers cannot declare a shared target). */
export function givenTarget(component: string, args: Placement): Target {
    if (isTarget(args.target)) return args.target;
    throw new InvalidArgumentError(
        component,
        "target",
        shown(args.target),
        "planning without declaring anything needs a target object; a `targetSpec` is turned into one only when the component is constructed",
        "pass a DockerTarget or KubernetesTarget as `target`",
    );
}
