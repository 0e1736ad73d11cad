/**
 * What the harness knows of each provider's schema, as far as planning a change needs it: which inputs force a
 * replacement, whether the provider asks for delete-before-replace, how it normalises what it reads back into
 * state, and which outputs it computes. Sources: /work/research/pulumi-day2.md (Q4–Q6) — terraform-provider-docker
 * v4.5.0 bridged by pulumi-docker, pulumi-docker's native Image, and pulumi-random.
 */

export const CONTAINER = "docker:index/container:Container";
export const VOLUME = "docker:index/volume:Volume";
export const NETWORK = "docker:index/network:Network";
export const IMAGE = "docker:index/image:Image";
export const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";
const RANDOM_TYPES = new Set([RANDOM_PASSWORD, "random:index/randomString:RandomString", "random:index/randomId:RandomId"]);

/** docker_container inputs that are NOT ForceNew (schema lines in the research, Q4). Every other input replaces. */
const CONTAINER_UPDATABLE = new Set([
    "rm",
    "start",
    "wait",
    "waitTimeout",
    "attach",
    "logs",
    "mustRun",
    "restart",
    "maxRetryCount",
    "removeVolumes",
    "tmpfs",
    "deviceReadBps",
    "deviceReadIops",
    "deviceWriteBps",
    "deviceWriteIops",
    "destroyGraceSeconds",
    "memory",
    "memoryReservation",
    "memorySwap",
    "cpuShares",
    "cpuSet",
    "healthcheck",
    "containerReadRefreshTimeoutMilliseconds",
    "init",
    "cpuPeriod",
    "cpuQuota",
]);

/** What resourceDockerContainerUpdate sends to Docker (one ContainerUpdate call); every other updatable input is state only. */
export const CONTAINER_UPDATE_APPLIES = new Set(["restart", "maxRetryCount", "cpuShares", "memory", "memoryReservation", "cpuSet", "memorySwap", "deviceReadBps", "deviceReadIops", "deviceWriteBps", "deviceWriteIops"]);

/** How a provider diffs, replaces and stores one resource type. */
export interface TypeSchema {
    /**
     * `state`: the bridged Terraform providers diff the program's inputs against the state they read back (so a
     * read-back normalisation shows as a change); `inputs`: native providers compare old and new inputs.
     */
    readonly diffAgainst: "state" | "inputs";
    /** Whether a change at this path (top-level key first) forces a replacement. */
    forceNew(path: string[]): boolean;
    /** The provider's own answer to "delete before replace?", before the program's option overrides it. */
    deleteBeforeReplace(inputs: Record<string, any>, oldInputs: Record<string, any>): boolean;
    /** Top-level inputs whose changes the provider's Diff ignores. */
    readonly ignoredInputs?: readonly string[];
    /** Outputs the provider computes (unknown in a preview until the operation runs). */
    readonly computedOutputs: readonly string[];
    /** True when the harness models this type; others are diffed generically and say so. */
    readonly modelled: boolean;
}

const ALWAYS = () => true;
const NEVER = () => false;

/**
 * docker_volume and docker_network have an explicitly set, auto-namable `name`: the bridge then answers
 * delete-before-replace (nameRequiresDeleteBeforeReplace), since two objects cannot share the name.
 */
const namedDbr = (inputs: Record<string, any>) => inputs.name !== undefined;

export const SCHEMAS: Record<string, TypeSchema> = {
    [CONTAINER]: {
        diffAgainst: "state",
        forceNew: (path) => !CONTAINER_UPDATABLE.has(path[0]),
        // pulumi-docker provider/resources.go: DeleteBeforeReplace: true on docker_container.
        deleteBeforeReplace: () => true,
        computedOutputs: ["id", "exitCode", "networkDatas", "bridge", "containerLogs"],
        modelled: true,
    },
    [VOLUME]: {
        diffAgainst: "state",
        forceNew: (path) => !(path[0] === "cluster" && path[1] === "availability"),
        deleteBeforeReplace: namedDbr,
        computedOutputs: ["id", "mountpoint"],
        modelled: true,
    },
    [NETWORK]: {
        diffAgainst: "state",
        // No Update at all: every input is ForceNew.
        forceNew: ALWAYS,
        deleteBeforeReplace: namedDbr,
        computedOutputs: ["id", "scope"],
        modelled: true,
    },
    [IMAGE]: {
        diffAgainst: "inputs",
        // Diff reports every change as an update (a rebuild), never a replace.
        forceNew: NEVER,
        deleteBeforeReplace: () => false,
        ignoredInputs: [],
        computedOutputs: ["repoDigest", "platform"],
        modelled: true,
    },
};
for (const t of RANDOM_TYPES) {
    // Every pulumi-random input is ForceNew: new inputs (length, special, keepers, …) are a new value.
    SCHEMAS[t] = { diffAgainst: "inputs", forceNew: ALWAYS, deleteBeforeReplace: () => false, computedOutputs: ["result", "bcryptHash", "hex", "b64Std", "b64Url", "dec"], modelled: true };
}

/**
 * pulumi-kubernetes v4 (provider/pkg/provider/diff.go forceNewProperties; provider.go Diff): a change at or under
 * these paths replaces, and so does a new metadata.name or metadata.namespace. ConfigMap and Secret data count
 * because the provider's enableConfigMapMutable / enableSecretMutable options are off by default (hadb leaves
 * them off: an auto-named replacement is what rolls the pods that mount it). Kinds not listed here (Namespace,
 * ServiceAccount, policy/v1 PodDisruptionBudget, NetworkPolicy) update in place.
 */
const KUBERNETES_FORCE_NEW: Record<string, string[][]> = {
    "kubernetes:core/v1:Namespace": [],
    "kubernetes:core/v1:ServiceAccount": [],
    "kubernetes:core/v1:Service": [["spec", "clusterIP"]],
    "kubernetes:core/v1:Secret": [["type"], ["stringData"], ["data"]],
    "kubernetes:core/v1:ConfigMap": [["data"], ["binaryData"]],
    "kubernetes:apps/v1:StatefulSet": [["spec", "podManagementPolicy"], ["spec", "revisionHistoryLimit"], ["spec", "selector"], ["spec", "serviceName"], ["spec", "volumeClaimTemplates"]],
    "kubernetes:apps/v1:Deployment": [["spec", "selector"]],
    "kubernetes:policy/v1:PodDisruptionBudget": [],
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": [],
};
const startsWith = (path: string[], prefix: string[]) => prefix.every((seg, i) => path[i] === seg);
for (const [type, paths] of Object.entries(KUBERNETES_FORCE_NEW)) {
    const forcing = [["metadata", "name"], ["metadata", "namespace"], ...paths];
    SCHEMAS[type] = {
        diffAgainst: "inputs",
        forceNew: (path) => (path.length === 1 && path[0] === "metadata") || forcing.some((p) => startsWith(path, p)),
        // Delete first only when the object keeps its explicit name and namespace (provider.go Diff): two objects
        // cannot share them.
        // Auto-named objects get a fresh name, so their replacement is created before the old one is deleted.
        deleteBeforeReplace: (inputs, oldInputs) => typeof inputs.metadata?.name === "string" && inputs.metadata.name === oldInputs.metadata?.name && inputs.metadata?.namespace === oldInputs.metadata?.namespace,
        computedOutputs: ["status"],
        modelled: true,
    };
}

const GENERIC: TypeSchema = { diffAgainst: "inputs", forceNew: NEVER, deleteBeforeReplace: () => false, computedOutputs: [], modelled: false };

export function schemaFor(type: string): TypeSchema {
    return SCHEMAS[type] ?? GENERIC;
}

/** Seconds as Go's time.Duration.String() prints them ("2s", "2m0s", "1h0m0s", "500ms"). */
export function goDurationString(ns: number): string {
    if (ns === 0) return "0s";
    if (ns < 1e9) {
        if (ns % 1e6 === 0) return `${ns / 1e6}ms`;
        if (ns % 1e3 === 0) return `${ns / 1e3}µs`;
        return `${ns}ns`;
    }
    const totalSeconds = ns / 1e9;
    const h = Math.floor(totalSeconds / 3600);
    const m = Math.floor((totalSeconds - h * 3600) / 60);
    const s = +(totalSeconds - h * 3600 - m * 60).toFixed(9);
    if (h) return `${h}h${m}m${s}s`;
    if (m) return `${m}m${s}s`;
    return `${s}s`;
}

/** Go-style durations as the provider takes them ("2s", "500ms", "1m30s"), in nanoseconds. */
export function parseGoDuration(value: string): number {
    const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
    if (value === "0") return 0;
    const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
    let total = 0;
    let consumed = 0;
    for (let m = re.exec(value); m; m = re.exec(value)) {
        total += Number(m[1]) * units[m[2]];
        consumed += m[0].length;
    }
    if (consumed !== value.length || consumed === 0) throw new Error(`harness: duration ${JSON.stringify(value)} is not of the form 2s, 500ms, 1m30s`);
    return Math.round(total);
}

const HEALTHCHECK_DURATIONS = ["interval", "timeout", "startPeriod", "startInterval"] as const;

/**
 * The provider's Check: the inputs as the engine stores them. docker_container's healthcheck sub-fields get their
 * schema defaults ("0s", retries 0); docker.Image gets `build.dockerfile` and `build.contextDigest` (the digest is
 * computed by the caller, which may read files).
 */
export function checkInputs(type: string, inputs: Record<string, any>, extra: { contextDigest?: string } = {}): Record<string, any> {
    if (type === CONTAINER && inputs.healthcheck) {
        const h = { ...inputs.healthcheck };
        for (const k of HEALTHCHECK_DURATIONS) if (h[k] === undefined) h[k] = "0s";
        if (h.retries === undefined) h.retries = 0;
        return { ...inputs, healthcheck: h };
    }
    if (type === IMAGE && inputs.build) {
        const build = { ...inputs.build };
        if (build.context !== undefined && build.dockerfile === undefined) build.dockerfile = `${build.context.replace(/\/+$/, "")}/Dockerfile`;
        if (extra.contextDigest !== undefined) build.contextDigest = extra.contextDigest;
        return { ...inputs, build };
    }
    return inputs;
}

/**
 * What the provider's Read writes back into state for the given inputs (Create returns the Read result):
 * healthcheck durations in Go's canonical form, so "120s" is stored as "2m0s".
 */
export function readBack(type: string, inputs: Record<string, any>): Record<string, any> {
    if (type === CONTAINER && inputs.healthcheck) {
        const h = { ...inputs.healthcheck };
        for (const k of HEALTHCHECK_DURATIONS) {
            if (typeof h[k] === "string") h[k] = goDurationString(parseGoDuration(h[k]));
        }
        return { ...inputs, healthcheck: h };
    }
    return inputs;
}
