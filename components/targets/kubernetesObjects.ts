import * as pulumi from "@pulumi/pulumi";
import { ArgumentChecker } from "../core/errors";
import { IMAGES } from "../core/images";
import { CheckPlan, CONFIG_DIR, ComponentKind, FilePlan, PortAccess, RESOLVER_OPTIONS, ServicePlan } from "../core/plan";

/**
 * Pure functions from a ServicePlan to Kubernetes object specs: a StatefulSet with its headless Service, the
 * plan's files as a ConfigMap and a Secret, a PodDisruptionBudget, a NetworkPolicy and a Service per endpoint.
 * kubernetes.ts declares them as resources; tests validate them against the Kubernetes schemas.
 */

/** What the target decided that every object of a plan shares. */
export interface KubernetesPlacement {
    readonly namespace: string;
    readonly clusterDomain: string;
    /** Prefix of every object name (empty by default: the namespace keeps stacks apart). */
    readonly namePrefix: string;
    readonly image: pulumi.Input<string>;
    readonly imagePullSecrets: string[];
    readonly storageClass?: string;
    /** Labels of the Pods allowed to reach client ports (`allow: "clients"`). */
    readonly clientSelector: Record<string, string>;
    /** Relax "never two members on one node" to a preference (small clusters). */
    readonly requireHostSpread: boolean;
    readonly endpointServiceType: "ClusterIP" | "LoadBalancer";
    /** Ranges outside the cluster a LoadBalancer endpoint admits. */
    readonly clientCidrs: string[];
}

export const LABELS = {
    component: "hadb.io/component",
    cluster: "hadb.io/cluster",
    /** On a read-replica fleet's objects: the cluster it replicates from, whose `replicas` ports admit it. */
    replicaOf: "hadb.io/replica-of",
} as const;

/** Longest StatefulSet name whose Pods still get created (the controller-revision label adds 11 characters). */
export const MAX_STATEFULSET_NAME = 52;
/** Files every Pod copies into CONFIG_DIR before its server starts. */
const FILES_MOUNT = "/hadb/files";
const SHARED_DIR = "shared";

export function serviceName(p: KubernetesPlacement, service: string): string {
    return `${p.namePrefix}${service}`;
}

export function podName(p: KubernetesPlacement, member: string): string {
    return `${p.namePrefix}${member}`;
}

/** A member's DNS name through the headless Service: resolvable from the Pod's first second (not-ready addresses are published). */
export function memberDnsName(p: KubernetesPlacement, service: string, member: string): string {
    return `${podName(p, member)}.${serviceName(p, service)}.${p.namespace}.svc.${p.clusterDomain}`;
}

export function endpointServiceName(p: KubernetesPlacement, service: string, endpoint: string): string {
    return `${serviceName(p, service)}-${endpoint}`;
}

/** Names Kubernetes would refuse, or accept and then never create Pods for, refused before anything exists. */
export function validatePlacement(p: KubernetesPlacement, plan: ServicePlan, owner: string): void {
    const check = new ArgumentChecker(owner);
    const name = serviceName(p, plan.name);
    if (name.length > MAX_STATEFULSET_NAME) {
        check.fail("name", name, `a StatefulSet name longer than ${MAX_STATEFULSET_NAME} characters gets no Pods (kubernetes#64023)`, `shorten the component name or the target's namePrefix to at most ${MAX_STATEFULSET_NAME} characters together`);
    }
    for (const e of plan.endpoints) check.dnsLabel(`endpoint ${e.name}`, endpointServiceName(p, plan.name, e.name), 63);
    for (const port of plan.template.ports) {
        if (!/^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(port.name) || port.name.includes("--")) {
            check.fail(`port ${port.port}`, port.name, "Kubernetes port names are IANA service names: at most 15 lowercase letters, digits and single '-'", "rename the port");
        }
    }
    const perMember = plan.members.map((m) => m.files.map((f) => f.name).sort().join(","));
    if (new Set(perMember).size > 1) {
        check.fail("members", perMember, "every member must have files of the same names (one Pod template serves all)", "give each member the same per-member files");
    }
}

export function selectorLabels(p: KubernetesPlacement, plan: ServicePlan): Record<string, string> {
    return { [LABELS.component]: plan.component, [LABELS.cluster]: serviceName(p, plan.name) };
}

export function objectLabels(p: KubernetesPlacement, plan: ServicePlan): Record<string, string> {
    return {
        "app.kubernetes.io/name": plan.component,
        "app.kubernetes.io/instance": serviceName(p, plan.name),
        "app.kubernetes.io/part-of": "hadb",
        "app.kubernetes.io/managed-by": "pulumi",
        ...selectorLabels(p, plan),
        ...(plan.replicaOf ? { [LABELS.replicaOf]: serviceName(p, plan.replicaOf) } : {}),
    };
}

/** ConfigMap/Secret key of a file: `shared.<file>` or `<pod>.<file>`. Keys cannot hold '/'. */
function fileKey(owner: string, file: FilePlan): string {
    return `${owner}.${file.name}`;
}

/**
 * The four objects a plan's files go into: ConfigMap or Secret by secrecy; and, for files the servers take
 * online, separate objects with fixed names, so a change updates them without changing the Pod template
 * (the others are auto-named: new content gets a new name, the template changes and the Pods roll).
 */
export interface FileGroup {
    readonly secret: boolean;
    readonly online: boolean;
}
export const FILE_GROUPS: readonly FileGroup[] = [
    { secret: false, online: false },
    { secret: true, online: false },
    { secret: false, online: true },
    { secret: true, online: true },
];

const inGroup = (g: FileGroup) => (f: FilePlan) => f.secret === g.secret && (f.appliedOnline ?? false) === g.online;

/** The fixed name of an online group's object; undefined for the auto-named ones. */
export function fileObjectName(p: KubernetesPlacement, plan: ServicePlan, g: FileGroup): string | undefined {
    return g.online ? `${serviceName(p, plan.name)}-online${g.secret ? "-secret" : ""}` : undefined;
}

/** One group's files, keyed for the projected volume. */
export function fileData(p: KubernetesPlacement, plan: ServicePlan, g: FileGroup): Record<string, pulumi.Input<string>> {
    const data: Record<string, pulumi.Input<string>> = {};
    for (const f of plan.template.files.filter(inGroup(g))) data[fileKey(SHARED_DIR, f)] = f.content;
    for (const m of plan.members) for (const f of m.files.filter(inGroup(g))) data[fileKey(podName(p, m.name), f)] = f.content;
    return data;
}

/** Items of the projected volume: each key at `<owner>/<file>`, readable by the Pod's group (fsGroup). */
function projectedItems(p: KubernetesPlacement, plan: ServicePlan, g: FileGroup) {
    const items = (owner: string, files: readonly FilePlan[]) => files.filter(inGroup(g)).map((f) => ({ key: fileKey(owner, f), path: `${owner}/${f.name}`, mode: 0o440 }));
    return [...items(SHARED_DIR, plan.template.files), ...plan.members.flatMap((m) => items(podName(p, m.name), m.files))];
}

/**
 * The init container's script: copy the shared files and the Pod's own into CONFIG_DIR with their modes. The
 * Pod finds its own files by its name (POD_NAME, from the downward API).
 */
export function placeFilesScript(plan: ServicePlan): string {
    const install = (from: string, f: FilePlan) => `install -m ${f.mode} "${FILES_MOUNT}/${from}/${f.name}" "${CONFIG_DIR}/${f.name}"`;
    const own = plan.members[0]?.files ?? [];
    return ["set -eu", ...plan.template.files.map((f) => install(SHARED_DIR, f)), ...own.map((f) => install("$POD_NAME", f))].join("\n");
}

function probe(check: CheckPlan | undefined) {
    if (!check) return undefined;
    const action = check.http ? { httpGet: { port: check.http.port, path: check.http.path } } : { exec: { command: [...check.command!] } };
    return { ...action, periodSeconds: check.periodSeconds, timeoutSeconds: check.timeoutSeconds, failureThreshold: check.failureThreshold };
}

const RESTRICTED_CONTAINER = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    runAsNonRoot: true,
    seccompProfile: { type: "RuntimeDefault" },
};

/** The names of the objects holding each file group, in FILE_GROUPS order (undefined: the group is empty). */
export type FileObjectNames = readonly (pulumi.Input<string> | undefined)[];

/** The StatefulSet of a plan, given the names of the objects its files are in. */
export function statefulSetSpec(p: KubernetesPlacement, plan: ServicePlan, files: FileObjectNames) {
    const t = plan.template;
    const uid = IMAGES[plan.image].uid;
    const selector = selectorLabels(p, plan);
    const name = serviceName(p, plan.name);
    const sources = FILE_GROUPS.flatMap((g, i) => {
        const items = projectedItems(p, plan, g);
        const name = files[i];
        if (!name || !items.length) return [];
        return [g.secret ? { secret: { name, items } } : { configMap: { name, items } }];
    });
    const hasFiles = sources.length > 0;
    const hostTerm = { labelSelector: { matchLabels: selector }, topologyKey: "kubernetes.io/hostname" };
    const spread = plan.spread.hosts === "required" && p.requireHostSpread;
    return {
        serviceName: name,
        replicas: plan.members.length,
        // Members wait for each other at start (etcd's quorum, Group Replication's founding rule): never one by one.
        podManagementPolicy: "Parallel",
        updateStrategy: { type: "RollingUpdate" },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
        selector: { matchLabels: selector },
        template: {
            metadata: { labels: objectLabels(p, plan) },
            spec: {
                automountServiceAccountToken: false,
                enableServiceLinks: false,
                terminationGracePeriodSeconds: t.stopGraceSeconds,
                // Merged by the kubelet into the Pod's generated resolv.conf (ndots and search path stay).
                dnsConfig: { options: Object.entries(RESOLVER_OPTIONS).map(([name, value]) => ({ name, value })) },
                // OnRootMismatch: the kubelet gives a volume to the Pod's group once, not on every new Pod; a recursive
                // group-write pass would leave PostgreSQL's data directory with permissions it refuses to start on.
                securityContext: {
                    runAsNonRoot: true,
                    runAsUser: uid,
                    runAsGroup: uid,
                    fsGroup: uid,
                    fsGroupChangePolicy: "OnRootMismatch",
                    seccompProfile: { type: "RuntimeDefault" },
                },
                imagePullSecrets: p.imagePullSecrets.length ? p.imagePullSecrets.map((n) => ({ name: n })) : undefined,
                affinity: {
                    podAntiAffinity: spread
                        ? { requiredDuringSchedulingIgnoredDuringExecution: [hostTerm] }
                        : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: hostTerm }] },
                },
                topologySpreadConstraints: [
                    {
                        maxSkew: 1,
                        topologyKey: "topology.kubernetes.io/zone",
                        whenUnsatisfiable: plan.spread.zones === "required" ? "DoNotSchedule" : "ScheduleAnyway",
                        labelSelector: { matchLabels: selector },
                    },
                ],
                initContainers: hasFiles
                    ? [
                          {
                              name: "place-files",
                              image: p.image,
                              command: ["sh", "-c", placeFilesScript(plan)],
                              env: [{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
                              volumeMounts: [
                                  { name: "files", mountPath: FILES_MOUNT, readOnly: true },
                                  { name: "config", mountPath: CONFIG_DIR },
                              ],
                              resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
                              securityContext: RESTRICTED_CONTAINER,
                          },
                      ]
                    : undefined,
                containers: [
                    {
                        name: plan.component,
                        image: p.image,
                        command: t.entrypoint ? [...t.entrypoint] : undefined,
                        args: t.args ? [...t.args] : undefined,
                        env: Object.entries(t.env).map(([k, v]) => ({ name: k, value: v })),
                        ports: t.ports.map((port) => ({ name: port.name, containerPort: port.port, protocol: "TCP" })),
                        volumeMounts: [
                            ...(hasFiles ? [{ name: "config", mountPath: CONFIG_DIR }] : []),
                            ...t.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath })),
                        ],
                        startupProbe: probe(t.checks.startup),
                        readinessProbe: probe(t.checks.readiness),
                        livenessProbe: probe(t.checks.liveness),
                        resources: {
                            requests: { cpu: `${t.compute.cpuMillis.request}m`, memory: `${t.compute.memoryMiB.request}Mi` },
                            limits: { ...(t.compute.cpuMillis.limit ? { cpu: `${t.compute.cpuMillis.limit}m` } : {}), memory: `${t.compute.memoryMiB.limit}Mi` },
                        },
                        securityContext: RESTRICTED_CONTAINER,
                    },
                ],
                volumes: hasFiles
                    ? [
                          { name: "files", projected: { sources } },
                          { name: "config", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
                      ]
                    : undefined,
            },
        },
        volumeClaimTemplates: t.volumes.map((v) => ({
            metadata: { name: v.name, labels: selectorLabels(p, plan) },
            spec: {
                accessModes: ["ReadWriteOnce"],
                storageClassName: p.storageClass,
                resources: { requests: { storage: `${v.sizeGiB}Gi` } },
            },
        })),
    };
}

/** The headless Service that gives every Pod its DNS name, published before the Pod is ready. */
export function headlessServiceSpec(p: KubernetesPlacement, plan: ServicePlan) {
    return {
        clusterIP: "None",
        publishNotReadyAddresses: true,
        selector: selectorLabels(p, plan),
        ports: plan.template.ports.map((port) => ({ name: port.name, port: port.port, targetPort: port.port, protocol: "TCP" })),
    };
}

/** A Service per endpoint, over the ready Pods only. */
export function endpointServiceSpec(p: KubernetesPlacement, plan: ServicePlan, endpoint: string, port: number) {
    return {
        type: p.endpointServiceType,
        loadBalancerSourceRanges: p.endpointServiceType === "LoadBalancer" ? p.clientCidrs : undefined,
        selector: selectorLabels(p, plan),
        ports: [{ name: endpoint, port, targetPort: endpoint, protocol: "TCP" }],
    };
}

export function podDisruptionBudgetSpec(p: KubernetesPlacement, plan: ServicePlan) {
    return { maxUnavailable: plan.maxUnavailable, selector: { matchLabels: selectorLabels(p, plan) } };
}

/**
 * Where a port's allowed sources are: the service's own members, a component's members, or clients — Pods in any
 * namespace carrying the client labels and, for a LoadBalancer endpoint, the ranges outside the cluster.
 */
interface NetworkPeer {
    readonly podSelector?: { matchLabels: Record<string, string> };
    readonly namespaceSelector?: Record<string, never>;
    readonly ipBlock?: { cidr: string };
}

function peersFor(p: KubernetesPlacement, plan: ServicePlan, source: PortAccess, endpoint: boolean): NetworkPeer[] {
    if (source === "members") return [{ podSelector: { matchLabels: selectorLabels(p, plan) } }];
    if (source === "replicas") return [{ podSelector: { matchLabels: { [LABELS.replicaOf]: serviceName(p, plan.name) } } }];
    if (source === "source") return plan.replicaOf ? [{ podSelector: { matchLabels: { [LABELS.component]: plan.component, [LABELS.cluster]: serviceName(p, plan.replicaOf) } } }] : [];
    if (source === "clients") {
        const external = endpoint && p.endpointServiceType === "LoadBalancer" ? p.clientCidrs.map((cidr) => ({ ipBlock: { cidr } })) : [];
        return [{ namespaceSelector: {}, podSelector: { matchLabels: p.clientSelector } }, ...external];
    }
    return [{ podSelector: { matchLabels: { [LABELS.component]: source as ComponentKind } } }];
}

/** Ingress to the service's Pods: each port only from the sources the plan allows; everything else is refused. */
export function networkPolicySpec(p: KubernetesPlacement, plan: ServicePlan) {
    const bySources = new Map<string, { sources: readonly PortAccess[]; ports: number[] }>();
    // A port nobody may reach gets no rule (an empty `from` would admit everyone); the kubelet's probes still pass.
    for (const port of plan.template.ports.filter((p) => p.allow.length > 0)) {
        const key = [...port.allow].sort().join(",");
        const rule = bySources.get(key) ?? { sources: port.allow, ports: [] };
        rule.ports.push(port.port);
        bySources.set(key, rule);
    }
    return {
        podSelector: { matchLabels: selectorLabels(p, plan) },
        policyTypes: ["Ingress"],
        ingress: [...bySources.values()]
            .map((rule) => ({
                from: rule.sources.flatMap((s) => peersFor(p, plan, s, rule.ports.some((port) => plan.endpoints.some((e) => e.port === port)))),
                ports: rule.ports.map((port) => ({ protocol: "TCP", port })),
            }))
            // A rule whose sources name nobody here must not exist: an empty `from` admits every Pod.
            .filter((rule) => rule.from.length > 0),
    };
}
