import * as crypto from "crypto";
import { StandInRefusal } from "./objects";

/**
 * Pure parts of the StatefulSet controller, the scheduler and the kubelet: Pod identity and DNS, revisions,
 * the rolling-update step, placement on the stand-in's nodes, probes as commands, restart back-off.
 */

export const LABEL = "hadb.k8s-standin";
export const CLUSTER_DOMAIN = "cluster.local";
export const RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";

/** A node of the stand-in: a name and a zone to schedule against. All of them are the one Docker engine. */
export interface StandInNode {
    readonly name: string;
    readonly zone: string;
}

export const DEFAULT_NODES: readonly StandInNode[] = ["a", "b", "c"].map((z, i) => ({ name: `standin-node-${i}`, zone: `standin-zone-${z}` }));

/** A Pod of a StatefulSet, as the controller creates it (the API object, not its containers). */
export interface PodObject {
    readonly namespace: string;
    readonly name: string;
    readonly uid: string;
    readonly statefulSet: string;
    readonly ordinal: number;
    /** The controller revision (`<sts>-<hash>`) of the template it was created from. */
    readonly revision: string;
    readonly labels: Record<string, string>;
    readonly annotations: Record<string, string>;
    /** `spec.hostname` and `spec.subdomain`: the Pod name and the StatefulSet's serviceName. */
    readonly hostname: string;
    readonly subdomain: string;
    readonly node: string;
    /** The Pod spec (the StatefulSet's template spec at `revision`). */
    readonly spec: any;
    /** Claim volume name (`<claim>-<pod>`) by claim template name. */
    readonly claims: Readonly<Record<string, string>>;
    readonly createdAt: number;
}

/** The controller revision name of a template: what `controller-revision-hash` carries. */
export function templateRevision(statefulSet: string, template: unknown): string {
    return `${statefulSet}-${crypto.createHash("sha256").update(JSON.stringify(template)).digest("hex").slice(0, 10)}`;
}

export function podName(statefulSet: string, ordinal: number): string {
    return `${statefulSet}-${ordinal}`;
}

/** A new Pod for an ordinal: labels from the template plus the StatefulSet controller's own. */
export function newPod(sts: any, ordinal: number, template: any, revision: string, node: string, now: number): PodObject {
    const name = podName(sts.metadata.name, ordinal);
    const claims = Object.fromEntries((sts.spec.volumeClaimTemplates ?? []).map((c: any) => [c.metadata.name, `${c.metadata.name}-${name}`]));
    return {
        namespace: sts.metadata.namespace,
        name,
        uid: crypto.randomUUID(),
        statefulSet: sts.metadata.name,
        ordinal,
        revision,
        labels: {
            ...(template.metadata?.labels ?? {}),
            "controller-revision-hash": revision,
            "statefulset.kubernetes.io/pod-name": name,
            "apps.kubernetes.io/pod-index": String(ordinal),
        },
        annotations: { ...(template.metadata?.annotations ?? {}) },
        hostname: name,
        subdomain: sts.spec.serviceName,
        node,
        spec: template.spec,
        claims,
        createdAt: now,
    };
}

/** A headless Service as far as DNS is concerned. */
export interface HeadlessService {
    readonly namespace: string;
    readonly name: string;
    readonly selector: Record<string, string>;
}

/**
 * The names cluster DNS answers with this Pod's address (research §6): `<svc>.<ns>.svc.<domain>` for every
 * headless Service selecting it (not-ready addresses published), and `<pod>.<svc>.<ns>.svc.<domain>` when that
 * Service is the Pod's subdomain.
 */
export function podDnsNames(pod: Pick<PodObject, "namespace" | "hostname" | "subdomain" | "labels">, services: readonly HeadlessService[], domain = CLUSTER_DOMAIN): string[] {
    const names: string[] = [];
    for (const s of services) {
        if (s.namespace !== pod.namespace || !selects(s.selector, pod.labels)) continue;
        if (s.name === pod.subdomain) names.push(`${pod.hostname}.${s.name}.${s.namespace}.svc.${domain}`);
        names.push(`${s.name}.${s.namespace}.svc.${domain}`);
    }
    return names;
}

/** A ClusterIP Service's name, which the stand-in's proxy for it answers to. */
export function serviceDnsName(namespace: string, service: string, domain = CLUSTER_DOMAIN): string {
    return `${service}.${namespace}.svc.${domain}`;
}

/**
 * resolv.conf of a ClusterFirst Pod: the namespace's search path and ndots 5, then the Pod's `dnsConfig.options`
 * merged in, an option the Pod names replacing the generated one (the kubelet's mergeDNSOptions).
 */
export function podDnsConfig(namespace: string, domain = CLUSTER_DOMAIN, dnsConfig?: { options?: { name: string; value?: string }[] }): { search: string[]; options: string[] } {
    const options = new Map<string, string | undefined>([["ndots", "5"]]);
    for (const o of dnsConfig?.options ?? []) options.set(o.name, o.value);
    return { search: [`${namespace}.svc.${domain}`, `svc.${domain}`, domain], options: [...options].map(([k, v]) => (v === undefined ? k : `${k}:${v}`)) };
}

/** A label selector's matchLabels; an empty selector selects everything (affinity and spread terms). */
function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
    return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

/** What the rolling-update loop knows of one ordinal's Pod. */
export interface ReplicaState {
    readonly revision: string;
    readonly terminating: boolean;
    /** Running and Ready, and not terminating. */
    readonly healthy: boolean;
}

export type RollingStep = { kind: "delete"; ordinal: number } | { kind: "wait"; ordinal: number } | { kind: "done" };

/**
 * One pass of the StatefulSet controller's RollingUpdate loop (research §3, 1.33 without MaxUnavailableStatefulSet):
 * from the highest ordinal down to the partition, delete the first Pod not at the update revision; stop at
 * the first Pod that is missing or not healthy. Parallel management does not change this loop.
 */
export function rollingUpdateStep(replicas: readonly (ReplicaState | undefined)[], updateRevision: string, partition = 0): RollingStep {
    for (let target = replicas.length - 1; target >= partition; target--) {
        const r = replicas[target];
        if (!r) return { kind: "wait", ordinal: target };
        if (r.revision !== updateRevision && !r.terminating) return { kind: "delete", ordinal: target };
        if (!r.healthy) return { kind: "wait", ordinal: target };
    }
    return { kind: "done" };
}

/** A Pod placed somewhere, as the scheduler sees it. */
export interface PlacedPod {
    readonly namespace: string;
    readonly labels: Record<string, string>;
    readonly spec: any;
    readonly node: string;
}

function domainOf(node: StandInNode, key: string): string {
    if (key === "kubernetes.io/hostname") return node.name;
    if (key === "topology.kubernetes.io/zone") return node.zone;
    throw new StandInRefusal(`stand-in: topologyKey ${key}: the stand-in's nodes carry only kubernetes.io/hostname and topology.kubernetes.io/zone`);
}

/**
 * Where the scheduler puts a Pod among the stand-in's nodes: required pod anti-affinity (both ways) and
 * DoNotSchedule spread constraints filter; preferred anti-affinity and ScheduleAnyway spreads score. Resource
 * requests are not checked (the nodes have no capacity here). Undefined with the reason when nothing fits.
 */
export function schedule(pod: Omit<PlacedPod, "node">, placed: readonly PlacedPod[], nodes: readonly StandInNode[]): { node?: string; reason?: string } {
    const peers = placed.filter((p) => p.namespace === pod.namespace);
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const anti = pod.spec.affinity?.podAntiAffinity ?? {};
    const required: any[] = anti.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    const preferred: any[] = anti.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    const spreads: any[] = pod.spec.topologySpreadConstraints ?? [];
    const sameDomain = (a: StandInNode, nodeName: string, key: string) => {
        const b = byName.get(nodeName);
        return !!b && domainOf(a, key) === domainOf(b, key);
    };
    const reasons: string[] = [];
    const fits = nodes.filter((n) => {
        for (const t of required) {
            if (peers.some((p) => sameDomain(n, p.node, t.topologyKey) && selects(t.labelSelector?.matchLabels, p.labels))) {
                reasons.push(`${n.name}: pod anti-affinity`);
                return false;
            }
        }
        for (const p of peers) {
            for (const t of p.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []) {
                if (sameDomain(n, p.node, t.topologyKey) && selects(t.labelSelector?.matchLabels, pod.labels)) {
                    reasons.push(`${n.name}: existing pods' anti-affinity`);
                    return false;
                }
            }
        }
        for (const c of spreads.filter((c) => c.whenUnsatisfiable === "DoNotSchedule")) {
            if (spreadSkew(n, c, peers, nodes, byName) > c.maxSkew) {
                reasons.push(`${n.name}: topology spread ${c.topologyKey}`);
                return false;
            }
        }
        return true;
    });
    if (!fits.length) return { reason: `0/${nodes.length} nodes are available: ${reasons.join("; ")}` };
    const score = (n: StandInNode) => {
        let s = 0;
        for (const t of preferred) {
            const term = t.podAffinityTerm;
            if (peers.some((p) => sameDomain(n, p.node, term.topologyKey) && selects(term.labelSelector?.matchLabels, p.labels))) s -= t.weight;
        }
        for (const c of spreads.filter((c) => c.whenUnsatisfiable !== "DoNotSchedule")) s -= spreadSkew(n, c, peers, nodes, byName);
        return s;
    };
    const load = (n: StandInNode) => placed.filter((p) => p.node === n.name).length;
    const best = [...fits].sort((a, b) => score(b) - score(a) || load(a) - load(b) || a.name.localeCompare(b.name))[0];
    return { node: best.name };
}

/** The skew a spread constraint would have with the Pod on `node`: its domain's matching Pods + 1 minus the emptiest domain's. */
function spreadSkew(node: StandInNode, c: any, peers: readonly PlacedPod[], nodes: readonly StandInNode[], byName: Map<string, StandInNode>): number {
    const counts = new Map<string, number>();
    for (const n of nodes) counts.set(domainOf(n, c.topologyKey), 0);
    for (const p of peers) {
        const n = byName.get(p.node);
        if (n && selects(c.labelSelector?.matchLabels, p.labels)) counts.set(domainOf(n, c.topologyKey), (counts.get(domainOf(n, c.topologyKey)) ?? 0) + 1);
    }
    const min = Math.min(...counts.values());
    return (counts.get(domainOf(node, c.topologyKey)) ?? 0) + 1 - min;
}

/** A container port given by number or by its name (IntOrString). */
export function resolvePort(port: number | string, container: any, where: string): number {
    if (typeof port === "number") return port;
    if (/^\d+$/.test(port)) return Number(port);
    const found = (container.ports ?? []).find((p: any) => p.name === port);
    if (!found) throw new StandInRefusal(`stand-in: ${where}: no container port is named ${JSON.stringify(port)}`);
    return found.containerPort;
}

/**
 * A probe as a command run inside the container. httpGet: the kubelet GETs the Pod IP (not localhost) and
 * counts 200–399 as success; curl -f fails on ≥ 400 and does not follow redirects, so it agrees.
 */
export function probeCommand(probe: any, container: any, podIp: string, where: string): string[] {
    if (probe.httpGet) {
        const port = resolvePort(probe.httpGet.port, container, where);
        const path = probe.httpGet.path ?? "/";
        return ["curl", "-fsS", "-o", "/dev/null", "--max-time", String(probe.timeoutSeconds ?? 1), `http://${podIp}:${port}${path.startsWith("/") ? path : `/${path}`}`];
    }
    return [...probe.exec.command];
}

/** Seconds, as the Engine API's nanoseconds. */
export const ns = (seconds: number) => Math.round(seconds * 1e9);

/** The readiness probe as a Docker health check: healthy after one success, unhealthy after failureThreshold failures. */
export function readinessHealthcheck(probe: any | undefined, container: any, podIp: string, where: string) {
    if (!probe) return { Test: ["NONE"] };
    return {
        Test: ["CMD", ...probeCommand(probe, container, podIp, where)],
        Interval: ns(probe.periodSeconds ?? 10),
        Timeout: ns(probe.timeoutSeconds ?? 1),
        Retries: probe.failureThreshold ?? 3,
        StartPeriod: 0,
    };
}

/** Environment as the kubelet builds it: values, and downward-API fields from the Pod. */
export function containerEnv(container: any, pod: Pick<PodObject, "name" | "namespace" | "uid" | "node">, podIp: string): string[] {
    const field: Record<string, string> = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "metadata.uid": pod.uid,
        "spec.nodeName": pod.node,
        "status.podIP": podIp,
    };
    return (container.env ?? []).map((e: any) => `${e.name}=${e.valueFrom ? field[e.valueFrom.fieldRef.fieldPath] : (e.value ?? "")}`);
}

/**
 * The user a container runs as: container securityContext over the Pod's over the image's. runAsNonRoot is
 * checked as the kubelet does: a numeric uid other than 0 (a named image user cannot be verified).
 */
export function containerUser(container: any, podSpec: any, imageUser: string, where: string): string | undefined {
    const sc = container.securityContext ?? {};
    const psc = podSpec.securityContext ?? {};
    const uid = sc.runAsUser ?? psc.runAsUser;
    const gid = sc.runAsGroup ?? psc.runAsGroup;
    if (sc.runAsNonRoot ?? psc.runAsNonRoot) {
        const effective = uid ?? imageUser.split(":")[0];
        if (effective === "" || effective === undefined) throw new StandInRefusal(`stand-in: ${where}: runAsNonRoot and the image runs as root`);
        if (!/^\d+$/.test(String(effective))) throw new StandInRefusal(`stand-in: ${where}: image has non-numeric user (${effective}), cannot verify user is non-root`);
        if (Number(effective) === 0) throw new StandInRefusal(`stand-in: ${where}: runAsNonRoot and the container would run as uid 0`);
    }
    if (uid === undefined) return gid === undefined ? undefined : `${imageUser.split(":")[0] || 0}:${gid}`;
    return gid === undefined ? String(uid) : `${uid}:${gid}`;
}

/**
 * CrashLoopBackOff: a container that exits is restarted at once the first time; each later restart waits the
 * back-off since it exited, 10 s doubling to 5 min; the back-off resets after 10 min without an exit.
 */
export function nextBackoffSeconds(previous: number | undefined): number {
    return previous === undefined ? 10 : Math.min(300, previous * 2);
}
export const BACKOFF_RESET_MS = 600_000;

/** kubectl's STATUS column, from what the kubelet knows. */
export function podStatusText(s: { terminating: boolean; initDone: boolean; initIndex: number; initCount: number; initFailed: boolean; waiting?: string; running: boolean }): string {
    if (s.terminating) return "Terminating";
    if (!s.initDone) return s.initFailed ? (s.waiting === "CrashLoopBackOff" ? "Init:CrashLoopBackOff" : "Init:Error") : s.initCount ? `Init:${s.initIndex}/${s.initCount}` : "PodInitializing";
    if (s.waiting) return s.waiting;
    return s.running ? "Running" : "ContainerCreating";
}
