import * as crypto from "crypto";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigValues, loadStackConfig } from "./stackConfig";

// Internal Pulumi runtime modules: the mock monitor sees each registration's parent and dependencies,
// which the public mocks API does not pass on.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const settings = require("@pulumi/pulumi/runtime/settings");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtimeConfig = require("@pulumi/pulumi/runtime/config");

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_VALUE = "5cf8f73096256a8f31e491e813e4eb8e";
/** How an unknown value (an output not known until the deployment runs) travels over the wire; kept as-is in `inputs`. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The resource options the engine acts on when it plans a change, as the registration request carries them. */
export interface RecordedOptions {
    /** Set on the resource or inherited from its parent (the SDK does that). */
    readonly protect?: boolean;
    /** Only when the program set it; otherwise the provider decides. */
    readonly deleteBeforeReplace?: boolean;
    /** Only when the program set it on this resource; the engine inherits it from the parent when unset. */
    readonly retainOnDelete?: boolean;
    readonly replaceOnChanges: string[];
    readonly ignoreChanges: string[];
    readonly deletedWith?: string;
}

/** One resource the program registered, as the engine would have received it. */
export interface RecordedResource {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly custom: boolean;
    /** Inputs with secrets unwrapped; `secretInputs` says which top-level inputs held a secret. */
    readonly inputs: Record<string, any>;
    readonly secretInputs: string[];
    /** Every input path that held a secret, finest first level it was marked at (`envs[2]`, `uploads[0].content`). */
    readonly secretPaths?: string[];
    readonly parent?: string;
    /** Every direct dependency: `dependsOn` and the resources behind property values. */
    readonly dependencies: string[];
    /** Per top-level input, the resources its value came from (the request's propertyDependencies). */
    readonly propertyDependencies?: Record<string, string[]>;
    readonly options?: RecordedOptions;
    /** The explicit provider reference (`<provider urn>::<id>`), when the resource was given one. */
    readonly provider?: string;
    /** What the mock returned as the resource's state (inputs plus computed outputs). */
    state: Record<string, any>;
}

export interface StackRun {
    readonly resources: RecordedResource[];
    readonly outputs: Record<string, unknown>;
}

export interface RunOptions {
    readonly config?: ConfigValues;
    readonly preview?: boolean;
    /** Values of random resources from an earlier run, by URN, so generated secrets stay stable. */
    readonly randomState?: Record<string, Record<string, unknown>>;
    /**
     * Generated passwords derived from this seed and the resource's URN and inputs instead of fresh random ones,
     * so two runs of a program agree on every unchanged secret (as a deployed stack's state does).
     */
    readonly randomSeed?: string;
    /** The checkout whose Pulumi.yaml, stack files and stacks/program.ts run (another commit's, for a diff). */
    readonly root?: string;
    /**
     * Stands in for the engine: called once per registration, in the order the program sends them, and its answer
     * (the resource's ID and output state) is what the program sees. Without it, the mock computes the outputs.
     */
    readonly onRegister?: (resource: RecordedResource) => Promise<{ id?: string; state: Record<string, any> }>;
}

/**
 * The ID the mock gives a resource: EC2 instances and EBS volumes get IDs shaped like AWS's (`i-` and `vol-` and
 * 17 hex digits, derived from the name) because hosts derive device paths from them; others `<name>-id`.
 */
export function mockId(type: string, name: string): string {
    const hex = () => crypto.createHash("sha256").update(`${type}\0${name}`).digest("hex").slice(0, 17);
    if (type === "aws:ec2/instance:Instance") return `i-${hex()}`;
    if (type === "aws:ebs/volume:Volume") return `vol-${hex()}`;
    return `${name}-id`;
}

/** The region AWS mocks report (the prod stack's). */
const AWS_MOCK_REGION = "eu-west-1";

/** Computed outputs the real providers return, for the resource types hadb uses. */
function computedState(type: string, urn: string, inputs: Record<string, any>, options: RunOptions): Record<string, any> {
    switch (type) {
        case "docker:index/image:Image":
            // Built later by the harness under this name; the real provider reports the local image ID.
            return { repoDigest: inputs.imageName };
        case "kubernetes:core/v1:ConfigMap":
        case "kubernetes:core/v1:Secret": {
            // Auto-named by the provider: `<resource name>-<random suffix>`, a new suffix on every replacement. A
            // suffix from the content stands in for that: new content (a replacement) gets a new name.
            if (inputs.metadata?.name) return {};
            const suffix = crypto.createHash("sha256").update(JSON.stringify([inputs.data, inputs.stringData])).digest("hex").slice(0, 8);
            return { metadata: { ...inputs.metadata, name: `${urn.split("::").pop()}-${suffix}` } };
        }
        case "random:index/randomPassword:RandomPassword": {
            const previous = options.randomState?.[urn]?.result;
            if (typeof previous === "string") return { result: previous };
            return { result: generatedPassword(inputs, options.randomSeed === undefined ? undefined : `${options.randomSeed}\0${urn}`) };
        }
        default:
            return awsOutputs(type, inputs);
    }
}

/** The AWS outputs hadb reads, as the provider computes them: repository URL and ARNs, parameter versions, a load balancer's DNS name. */
export function awsOutputs(type: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "aws:ecr/repository:Repository":
            return { repositoryUrl: `123456789012.dkr.ecr.${AWS_MOCK_REGION}.amazonaws.com/${inputs.name}`, arn: `arn:aws:ecr:${AWS_MOCK_REGION}:123456789012:repository/${inputs.name}`, registryId: "123456789012" };
        case "aws:ssm/parameter:Parameter":
            return { arn: `arn:aws:ssm:${AWS_MOCK_REGION}:123456789012:parameter${inputs.name}`, version: 1 };
        case "aws:lb/loadBalancer:LoadBalancer":
            return { arn: `arn:aws:elasticloadbalancing:${AWS_MOCK_REGION}:123456789012:loadbalancer/net/${inputs.name}/0123456789abcdef`, dnsName: `internal-${inputs.name}-0123456789.elb.${AWS_MOCK_REGION}.amazonaws.com` };
        case "aws:lb/targetGroup:TargetGroup":
            return { arn: `arn:aws:elasticloadbalancing:${AWS_MOCK_REGION}:123456789012:targetgroup/${inputs.name}/0123456789abcdef` };
        case "aws:iam/role:Role":
        case "aws:iam/instanceProfile:InstanceProfile":
            return { arn: `arn:aws:iam::123456789012:${type.endsWith("Role") ? "role" : "instance-profile"}/${inputs.name}` };
        default:
            return {};
    }
}

/**
 * What the AWS provider's data sources answer, for the ones hadb invokes; other invokes echo their inputs.
 * A member's ready parameter holds the instance id its host wrote: the mock answers with the id of the
 * instance tagged with that parameter, as a host that became ready would have.
 */
function invokeResult(token: string, inputs: Record<string, any>, provider: string | undefined, resources: Map<string, RecordedResource>): Record<string, any> {
    const providerRegion = () => (provider ? resources.get(provider.split("::").slice(0, -1).join("::"))?.inputs.region : undefined) ?? AWS_MOCK_REGION;
    switch (token) {
        case "aws:ec2/getAmi:getAmi":
            return { ...inputs, id: "ami-0d1e5a7b9c3f20001", name: "debian-13-amd64-20261101-2280", architecture: "x86_64", ownerId: "136693071363" };
        case "aws:index/getRegion:getRegion":
            return { id: providerRegion(), name: providerRegion(), region: providerRegion(), endpoint: `ec2.${providerRegion()}.amazonaws.com` };
        case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return { ...inputs, userName: "AWS", password: "mock-ecr-token", authorizationToken: "QVdTOm1vY2stZWNyLXRva2Vu", proxyEndpoint: `https://123456789012.dkr.ecr.${AWS_MOCK_REGION}.amazonaws.com` };
        case "aws:ssm/getParameter:getParameter": {
            const instance = [...resources.values()].find((r) => r.type === "aws:ec2/instance:Instance" && r.inputs.tags?.["hadb:ready-parameter"] === inputs.name);
            return { ...inputs, type: "String", value: instance ? mockId(instance.type, instance.name) : "pending", version: 1 };
        }
        default:
            return inputs;
    }
}

/**
 * A RandomPassword's value as pulumi-random makes it (letters and digits, special characters unless `special` is
 * false, `length` long): random, or derived from `seed` (the same seed and inputs, the same password).
 */
export function generatedPassword(inputs: Record<string, any>, seed?: string): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + (inputs.special === false ? "" : "!@#$%&*()-_=+[]{}<>:?");
    const length = Number(inputs.length ?? 32);
    const bytes = seed === undefined ? undefined : crypto.createHmac("sha256", seed).update(JSON.stringify(inputs)).digest();
    return Array.from({ length }, (_, i) => alphabet[bytes ? bytes[i % bytes.length] % alphabet.length : crypto.randomInt(alphabet.length)]).join("");
}

/** Replaces the mock's secret envelopes by their values, noting that a secret was there. */
export function unwrapSecrets(value: any, found: { secret: boolean }): any {
    if (Array.isArray(value)) return value.map((v) => unwrapSecrets(v, found));
    if (value && typeof value === "object") {
        if (value[SECRET_SIG] === SECRET_VALUE) {
            found.secret = true;
            return unwrapSecrets(value.value, found);
        }
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v, found)]));
    }
    return value;
}

/** A property path as `pulumi preview --diff` writes it; keys with dots or brackets quoted (`stringData["a.yml"]`). */
export function joinPath(base: string, key: string | number): string {
    if (typeof key === "number") return `${base}[${key}]`;
    if (/[.[\]"]/.test(key)) return `${base}[${JSON.stringify(key)}]`;
    return base ? `${base}.${key}` : key;
}

/**
 * An input object as the engine receives it (the request's raw struct): secret envelopes replaced by their
 * values, each secret's path noted, unknowns kept as UNKNOWN, resource references as their URN.
 */
export function parseWireInputs(raw: Record<string, any>): { inputs: Record<string, any>; secretPaths: string[] } {
    const secretPaths: string[] = [];
    const walk = (value: any, path: string): any => {
        if (Array.isArray(value)) return value.map((v, i) => walk(v, joinPath(path, i)));
        if (value && typeof value === "object") {
            if (value[SECRET_SIG] === SECRET_VALUE) {
                secretPaths.push(path);
                return walk(value.value, path);
            }
            if (value[SECRET_SIG] === RESOURCE_VALUE) return value.urn;
            return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, joinPath(path, k))]));
        }
        return value;
    };
    return { inputs: walk(raw, ""), secretPaths };
}

/** Resolves every Output in a value, secrets included: the harness is the stack's owner. */
export async function reveal(value: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(value)) return reveal(await (value as any).promise());
    if (value instanceof Promise) return reveal(await value);
    if (Array.isArray(value)) return Promise.all(value.map(reveal));
    if (value && typeof value === "object" && !pulumi.Resource.isInstance(value)) {
        const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await reveal(v)] as const));
        return Object.fromEntries(entries);
    }
    return value;
}

/**
 * Installs Pulumi mocks for a stack and records every registration. Call before constructing resources;
 * `settled()` waits for outstanding registrations and returns what was recorded.
 */
export async function recordMocks(stack: string, options: RunOptions = {}): Promise<{ settled(): Promise<RecordedResource[]> }> {
    const { config, secretKeys } = loadStackConfig(stack, options.config, options.root);
    runtimeConfig.setAllConfig(config, secretKeys);
    const resources = new Map<string, RecordedResource>();
    // The mock monitor calls newResource synchronously inside registerResource, so the wrapper below
    // can tell it which URN it is answering for.
    const current = { urn: "" };
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                const urn = current.urn;
                const recorded = resources.get(urn);
                if (recorded && options.onRegister) {
                    return options.onRegister(recorded).then((answer) => {
                        recorded.state = answer.state;
                        return { id: args.custom ? (answer.id ?? mockId(args.type, args.name)) : undefined, state: answer.state };
                    });
                }
                const inputs = recorded?.inputs ?? unwrapSecrets(args.inputs, { secret: false });
                const state = { ...inputs, ...computedState(args.type, urn, inputs, options) };
                if (recorded) recorded.state = state;
                return { id: args.custom ? mockId(args.type, args.name) : undefined, state };
            },
            call: (args) => invokeResult(args.token, args.inputs, args.provider, resources),
        },
        "hadb",
        stack,
        options.preview ?? false,
    );
    recordRegistrations(resources, current);
    return {
        async settled() {
            await settings.waitForRPCs();
            return [...resources.values()];
        },
    };
}

/**
 * Runs the stack program under Pulumi mocks with the stack's config and records every registration.
 * No Pulumi CLI or engine is involved; nothing is deployed.
 */
export async function runStack(stack: string, options: RunOptions = {}): Promise<StackRun> {
    const recorder = await recordMocks(stack, options);
    const { program } = (options.root ? await import(path.join(options.root, "stacks", "program")) : await import("../../stacks/program")) as typeof import("../../stacks/program");
    const outputs = (await reveal(program())) as Record<string, unknown>;
    return { resources: await recorder.settled(), outputs };
}

/** Wraps the mock monitor so each registration's parent and dependencies are kept, keyed by URN. */
function recordRegistrations(resources: Map<string, RecordedResource>, current: { urn: string }): void {
    const monitor = settings.getMonitor();
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
        const urn: string = monitor.newUrn(req.getParent(), req.getType(), req.getName());
        if (resources.has(urn)) {
            callback(new Error(`duplicate resource URN ${urn}: two resources of one type share a name`), undefined);
            return;
        }
        const { inputs, secretPaths } = parseWireInputs(req.getObject()?.toJavaScript() ?? {});
        const propertyDependencies: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((deps: any, key: string) => {
            propertyDependencies[key] = deps.getUrnsList();
        });
        resources.set(urn, {
            urn,
            type: req.getType(),
            name: req.getName(),
            custom: req.getCustom(),
            inputs,
            secretInputs: [...new Set(secretPaths.map((p) => p.split(/[.[]/)[0]))],
            secretPaths,
            parent: req.getParent() || undefined,
            dependencies: req.getDependenciesList(),
            propertyDependencies,
            options: {
                protect: req.hasProtect() ? req.getProtect() : undefined,
                deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
                retainOnDelete: req.hasRetainondelete() ? req.getRetainondelete() : undefined,
                replaceOnChanges: req.getReplaceonchangesList(),
                ignoreChanges: req.getIgnorechangesList(),
                deletedWith: req.getDeletedwith() || undefined,
            },
            provider: req.getProvider() || undefined,
            state: {},
        });
        current.urn = urn;
        return register(req, callback);
    };
}
