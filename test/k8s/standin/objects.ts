import { checkShape } from "../../harness/dockerApply";
import { RecordedResource } from "../../harness/mockRun";
import { Manifest } from "../manifests";

/**
 * What the stand-in accepts from a stack: every field it implements, per kind, and the values it refuses.
 * A field missing here is an error naming its path (the harness's rule for Docker inputs), never ignored.
 */

type Shape = { [field: string]: true | Shape };

const META: Shape = { name: true, namespace: true, labels: true, annotations: true };
const SELECTOR: Shape = { matchLabels: true };
/** Selectors of the recorded-only kinds, whose fields are accepted because none is enforced. */
const FULL_SELECTOR: Shape = { matchLabels: true, matchExpressions: { key: true, operator: true, values: true } };
const PEER: Shape = { podSelector: FULL_SELECTOR, namespaceSelector: FULL_SELECTOR, ipBlock: { cidr: true, except: true } };
const POLICY_PORT: Shape = { protocol: true, port: true, endPort: true };
const TERM: Shape = { labelSelector: SELECTOR, topologyKey: true };
const PROBE: Shape = {
    httpGet: { path: true, port: true },
    exec: { command: true },
    periodSeconds: true,
    timeoutSeconds: true,
    failureThreshold: true,
    successThreshold: true,
};
const CONTAINER: Shape = {
    name: true,
    image: true,
    command: true,
    args: true,
    env: { name: true, value: true, valueFrom: { fieldRef: { fieldPath: true } } },
    ports: { name: true, containerPort: true, protocol: true },
    volumeMounts: { name: true, mountPath: true, readOnly: true },
    startupProbe: PROBE,
    readinessProbe: PROBE,
    livenessProbe: PROBE,
    resources: { requests: { cpu: true, memory: true }, limits: { cpu: true, memory: true } },
    securityContext: {
        allowPrivilegeEscalation: true,
        capabilities: { drop: true, add: true },
        runAsNonRoot: true,
        runAsUser: true,
        runAsGroup: true,
        seccompProfile: { type: true },
    },
};
const PROJECTED_SOURCE: Shape = { name: true, items: { key: true, path: true, mode: true } };
const POD_SPEC: Shape = {
    affinity: {
        podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: TERM,
            preferredDuringSchedulingIgnoredDuringExecution: { weight: true, podAffinityTerm: TERM },
        },
    },
    automountServiceAccountToken: true,
    enableServiceLinks: true,
    terminationGracePeriodSeconds: true,
    dnsConfig: { options: { name: true, value: true } },
    securityContext: { runAsNonRoot: true, runAsUser: true, runAsGroup: true, fsGroup: true, fsGroupChangePolicy: true, seccompProfile: { type: true } },
    topologySpreadConstraints: { maxSkew: true, topologyKey: true, whenUnsatisfiable: true, labelSelector: SELECTOR },
    initContainers: CONTAINER,
    containers: CONTAINER,
    volumes: {
        name: true,
        emptyDir: { medium: true, sizeLimit: true },
        projected: { sources: { configMap: PROJECTED_SOURCE, secret: PROJECTED_SOURCE }, defaultMode: true },
    },
};

export const SHAPES: Record<string, Shape> = {
    Namespace: { apiVersion: true, kind: true, metadata: { name: true, labels: true, annotations: true } },
    ConfigMap: { apiVersion: true, kind: true, metadata: META, data: true, binaryData: true },
    Secret: { apiVersion: true, kind: true, metadata: META, type: true, data: true, stringData: true },
    Service: {
        apiVersion: true,
        kind: true,
        metadata: META,
        spec: { type: true, clusterIP: true, publishNotReadyAddresses: true, selector: true, ports: { name: true, port: true, targetPort: true, protocol: true } },
    },
    StatefulSet: {
        apiVersion: true,
        kind: true,
        metadata: META,
        spec: {
            serviceName: true,
            replicas: true,
            podManagementPolicy: true,
            updateStrategy: { type: true, rollingUpdate: { partition: true } },
            persistentVolumeClaimRetentionPolicy: { whenDeleted: true, whenScaled: true },
            selector: SELECTOR,
            template: { metadata: { labels: true, annotations: true }, spec: POD_SPEC },
            volumeClaimTemplates: {
                metadata: { name: true, labels: true, annotations: true },
                spec: { accessModes: true, storageClassName: true, resources: { requests: { storage: true } } },
            },
        },
    },
    // Recorded, not enforced: there are no evictions here (deletes and rollouts never consult a PDB in Kubernetes either).
    PodDisruptionBudget: { apiVersion: true, kind: true, metadata: META, spec: { maxUnavailable: true, minAvailable: true, selector: FULL_SELECTOR, unhealthyPodEvictionPolicy: true } },
    // Recorded, not enforced: Docker's bridge has no NetworkPolicy; every pod can reach every port of every other.
    // Since nothing of it is enforced, every field of networking.k8s.io/v1 is accepted alike.
    NetworkPolicy: {
        apiVersion: true,
        kind: true,
        metadata: META,
        spec: { podSelector: FULL_SELECTOR, policyTypes: true, ingress: { from: PEER, ports: POLICY_PORT }, egress: { to: PEER, ports: POLICY_PORT } },
    },
};

/** The provider is the stand-in itself; a context names which cluster it is, and there is only this one. */
export const PROVIDER_SHAPE: Shape = { context: true };
/** Their values come from the mock run (and the stand-in's state file); nothing to deploy. */
export const VALUE_ONLY_TYPES = new Set(["random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString", "random:index/randomId:RandomId"]);

export const API_VERSIONS: Record<string, string> = {
    Namespace: "v1",
    ConfigMap: "v1",
    Secret: "v1",
    Service: "v1",
    StatefulSet: "apps/v1",
    PodDisruptionBudget: "policy/v1",
    NetworkPolicy: "networking.k8s.io/v1",
};

export class StandInRefusal extends Error {}

function refuse(where: string, message: string): never {
    throw new StandInRefusal(`stand-in: ${where}: ${message}`);
}

/** checkShape's error, reworded for the stand-in: the field path is what matters. */
export function checkFields(where: string, value: unknown, shape: Shape): void {
    try {
        checkShape(where, value, shape);
    } catch (err) {
        const field = /input `([^`]+)`/.exec(err instanceof Error ? err.message : String(err))?.[1] ?? String(err);
        refuse(where, `sets \`${field}\`, which the Kubernetes stand-in does not implement (test/k8s/standin/objects.ts); implement it there or do not use it`);
    }
}

export function describe(m: Pick<Manifest, "kind" | "metadata">): string {
    return `${m.kind} ${m.metadata.namespace ? `${m.metadata.namespace}/` : ""}${m.metadata.name}`;
}

/** Every Pulumi resource of a stack the stand-in cannot deploy, refused before anything is created. */
export function checkResource(r: RecordedResource): void {
    if (!r.custom || VALUE_ONLY_TYPES.has(r.type)) return;
    if (r.type === "pulumi:providers:kubernetes") return checkFields(`provider "${r.name}"`, r.inputs, PROVIDER_SHAPE);
    if (r.type === "docker:index/image:Image") {
        if (r.inputs.skipPush !== true) {
            refuse(`docker.Image "${r.name}"`, `would build and push ${r.inputs.imageName} to a registry; there is no registry here. Leave hadb:kubernetesRegistry empty so Pods run hadb/<image>:local`);
        }
        refuse(`docker.Image "${r.name}"`, "builds an image for a cluster's nodes; the stand-in builds only hadb/<image>:local itself");
    }
    if (!r.type.startsWith("kubernetes:")) refuse(`${r.type} "${r.name}"`, "is not a resource type the Kubernetes stand-in deploys");
}

const LABEL_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Label keys (`prefix/name`) and values as the API server validates them. */
export function checkLabels(where: string, labels: Record<string, unknown> | undefined): void {
    for (const [key, value] of Object.entries(labels ?? {})) {
        const slash = key.lastIndexOf("/");
        const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
        const name = key.slice(slash + 1);
        if (!LABEL_NAME.test(name) || (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))) refuse(where, `label key ${JSON.stringify(key)} is not a valid label key`);
        if (typeof value !== "string" || (value !== "" && !LABEL_NAME.test(value))) refuse(where, `label ${key}=${JSON.stringify(value)}: values are at most 63 letters, digits, '-', '_', '.'`);
    }
}

export function matchesSelector(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
    const entries = Object.entries(selector ?? {});
    return entries.length > 0 && entries.every(([k, v]) => labels?.[k] === v);
}

/** Bytes of a memory/storage quantity ("2048Mi", "1Gi", "500M", "1e3"). */
export function parseBytes(quantity: string | number): number {
    if (typeof quantity === "number") return quantity;
    const m = /^(\d+(?:\.\d+)?(?:e\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
    if (!m) throw new StandInRefusal(`stand-in: ${JSON.stringify(quantity)} is not a quantity the stand-in reads`);
    const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
    return Math.ceil(Number(m[1]) * unit);
}

/** Millicores of a CPU quantity ("500m", "2", "0.5"). */
export function parseMillicores(quantity: string | number): number {
    if (typeof quantity === "number") return Math.round(quantity * 1000);
    const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(quantity);
    if (!m) throw new StandInRefusal(`stand-in: ${JSON.stringify(quantity)} is not a CPU quantity the stand-in reads`);
    return m[2] ? Math.ceil(Number(m[1])) : Math.round(Number(m[1]) * 1000);
}

/** Downward API fields the stand-in fills; others are refused. */
export const FIELD_REFS = new Set(["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "status.podIP"]);

/**
 * The values the stand-in refuses although the field itself is implemented: they name behaviour it does not
 * have (a cloud load balancer, an API server to mount a token from, a registry, a provisioner it lacks).
 */
export function checkValues(m: Manifest, storageClasses: readonly string[]): void {
    const where = describe(m);
    if (API_VERSIONS[m.kind] !== m.apiVersion) refuse(where, `apiVersion ${m.apiVersion} of kind ${m.kind} is not one the stand-in serves`);
    checkLabels(where, m.metadata.labels);
    const nameRule = m.kind === "Service" || m.kind === "Namespace" ? DNS_LABEL : DNS_SUBDOMAIN;
    if (!nameRule.test(m.metadata.name) || m.metadata.name.length > 253) refuse(where, `name ${JSON.stringify(m.metadata.name)} is not a valid ${m.kind} name`);
    if (m.kind !== "Namespace" && !m.metadata.namespace) refuse(where, "has no namespace");
    switch (m.kind) {
        case "Namespace":
            for (const [key, value] of Object.entries(m.metadata.labels ?? {})) {
                if (!key.startsWith("pod-security.kubernetes.io/")) continue;
                if (key !== "pod-security.kubernetes.io/enforce") refuse(where, `label ${key}: only the enforce mode of Pod Security admission is implemented`);
                if (value !== "restricted" && value !== "privileged") refuse(where, `Pod Security level ${JSON.stringify(value)}: the stand-in enforces "restricted" (or nothing, "privileged")`);
            }
            break;
        case "Secret":
            if ((m.type ?? "Opaque") !== "Opaque") refuse(where, `type ${m.type}: only Opaque Secrets are implemented`);
            break;
        case "Service": {
            const spec = m.spec ?? {};
            if ((spec.type ?? "ClusterIP") !== "ClusterIP") refuse(where, `spec.type ${spec.type}: no cloud load balancer here; the stand-in serves ClusterIP Services (set hadb:kubernetesFrontendServiceType ClusterIP)`);
            if (spec.clusterIP !== undefined && spec.clusterIP !== "None") refuse(where, `spec.clusterIP ${spec.clusterIP}: only "None" (headless) or unset is implemented`);
            if (spec.clusterIP === "None" && spec.publishNotReadyAddresses !== true) {
                refuse(where, "a headless Service without publishNotReadyAddresses: true; the stand-in's DNS names exist for a Pod's whole life, so only that is implemented");
            }
            if (!spec.selector || !Object.keys(spec.selector).length) refuse(where, "a Service without a selector (manual Endpoints) is not implemented");
            for (const p of spec.ports ?? []) if ((p.protocol ?? "TCP") !== "TCP") refuse(where, `port ${p.port}: protocol ${p.protocol}; only TCP is implemented`);
            break;
        }
        case "StatefulSet":
            checkStatefulSet(where, m, storageClasses);
            break;
    }
}

function checkStatefulSet(where: string, m: Manifest, storageClasses: readonly string[]): void {
    const spec = m.spec ?? {};
    if (!["Parallel", "OrderedReady", undefined].includes(spec.podManagementPolicy)) refuse(where, `spec.podManagementPolicy ${spec.podManagementPolicy} is not one Kubernetes knows`);
    if (!["RollingUpdate", "OnDelete", undefined].includes(spec.updateStrategy?.type)) refuse(where, `spec.updateStrategy.type ${spec.updateStrategy?.type} is not one Kubernetes knows`);
    for (const k of ["whenDeleted", "whenScaled"]) {
        const v = spec.persistentVolumeClaimRetentionPolicy?.[k];
        if (v !== undefined && v !== "Retain") refuse(where, `spec.persistentVolumeClaimRetentionPolicy.${k} ${v}: only Retain is implemented`);
    }
    const labels = spec.template?.metadata?.labels;
    checkLabels(`${where} pod template`, labels);
    if (!matchesSelector(spec.selector?.matchLabels, labels)) refuse(where, "spec.selector does not match the Pod template's labels (the API server refuses this)");
    for (const c of spec.volumeClaimTemplates ?? []) {
        const modes: string[] = c.spec?.accessModes ?? [];
        if (modes.length !== 1 || modes[0] !== "ReadWriteOnce") refuse(where, `volume claim ${c.metadata?.name}: accessModes ${JSON.stringify(modes)}; only ReadWriteOnce is implemented`);
        const cls = c.spec?.storageClassName;
        if (cls !== undefined && !storageClasses.includes(cls)) refuse(where, `volume claim ${c.metadata?.name}: storageClassName ${cls} does not exist here (classes: ${storageClasses.join(", ")}); the claim would stay Pending`);
        parseBytes(c.spec?.resources?.requests?.storage ?? "0");
    }
    checkPodSpec(where, spec.template?.spec ?? {}, (spec.volumeClaimTemplates ?? []).map((c: any) => c.metadata?.name));
}

function checkPodSpec(where: string, pod: any, claims: readonly string[]): void {
    if (pod.automountServiceAccountToken !== false) refuse(where, "automountServiceAccountToken must be false: there is no API server to issue a token");
    if (pod.enableServiceLinks !== false) refuse(where, "enableServiceLinks must be false: Service environment variables are not implemented");
    const policy = pod.securityContext?.fsGroupChangePolicy;
    if (policy !== undefined && policy !== "Always" && policy !== "OnRootMismatch") refuse(where, `fsGroupChangePolicy ${policy} is not one Kubernetes knows`);
    if (pod.securityContext?.seccompProfile && pod.securityContext.seccompProfile.type !== "RuntimeDefault") refuse(where, "only the RuntimeDefault seccomp profile (Docker's default) is implemented");
    const volumes = new Map<string, any>((pod.volumes ?? []).map((v: any) => [v.name, v]));
    for (const v of pod.volumes ?? []) {
        if (!v.emptyDir && !v.projected) refuse(where, `volume ${v.name} has no source the stand-in implements (emptyDir, projected)`);
        if (v.emptyDir?.medium !== undefined && !["", "Memory"].includes(v.emptyDir.medium)) refuse(where, `volume ${v.name}: emptyDir medium ${v.emptyDir.medium} is not one Kubernetes knows`);
        if (v.emptyDir?.sizeLimit !== undefined) parseBytes(v.emptyDir.sizeLimit);
    }
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
        const at = `${where} container ${c.name}`;
        for (const e of c.env ?? []) {
            const path = e.valueFrom?.fieldRef?.fieldPath;
            if (path !== undefined && !FIELD_REFS.has(path)) refuse(at, `env ${e.name}: fieldRef ${path}; the stand-in fills ${[...FIELD_REFS].join(", ")}`);
        }
        for (const p of c.ports ?? []) if ((p.protocol ?? "TCP") !== "TCP") refuse(at, `port ${p.containerPort}: only TCP is implemented`);
        for (const [kind, probe] of [["startupProbe", c.startupProbe], ["readinessProbe", c.readinessProbe], ["livenessProbe", c.livenessProbe]] as const) {
            if (!probe) continue;
            if (!!probe.httpGet === !!probe.exec) refuse(at, `${kind} must have exactly one of httpGet and exec`);
            if ((probe.successThreshold ?? 1) !== 1) refuse(at, `${kind}.successThreshold ${probe.successThreshold}: only 1 is implemented`);
        }
        if (c.securityContext?.seccompProfile && c.securityContext.seccompProfile.type !== "RuntimeDefault") refuse(at, "only the RuntimeDefault seccomp profile is implemented");
        for (const mount of c.volumeMounts ?? []) {
            if (!volumes.has(mount.name) && !claims.includes(mount.name)) refuse(at, `volume mount ${mount.name} names neither a volume nor a volume claim template`);
        }
    }
}

/** Pod Security "restricted" (v1.33) for the fields the stand-in implements; a violating Pod is never created. */
export function restrictedViolations(pod: any): string[] {
    const out: string[] = [];
    const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
    const podSc = pod.securityContext ?? {};
    for (const c of containers) {
        const sc = c.securityContext ?? {};
        if (sc.allowPrivilegeEscalation !== false) out.push(`container ${c.name} must set securityContext.allowPrivilegeEscalation=false`);
        if (!(sc.capabilities?.drop ?? []).includes("ALL")) out.push(`container ${c.name} must set securityContext.capabilities.drop=["ALL"]`);
        const added = (sc.capabilities?.add ?? []).filter((cap: string) => cap !== "NET_BIND_SERVICE");
        if (added.length) out.push(`container ${c.name} must not add capabilities ${added.join(", ")}`);
        if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) out.push(`container ${c.name} must set runAsNonRoot=true (pod or container)`);
        if ((sc.runAsUser ?? podSc.runAsUser) === 0) out.push(`container ${c.name} must not set runAsUser=0`);
        const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type;
        if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") out.push(`container ${c.name} must set seccompProfile.type RuntimeDefault or Localhost (pod or container)`);
    }
    return out;
}
