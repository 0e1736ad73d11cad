import { Manifest } from "../manifests";
import { dockerRequest, inspect } from "./engine";
import { claimVolumeName, PodContext, PodRuntime, PodStatus } from "./kubelet";
import { describe, matchesSelector, restrictedViolations, StandInRefusal } from "./objects";
import {
    CLUSTER_DOMAIN,
    DEFAULT_NODES,
    HeadlessService,
    LABEL,
    newPod,
    podName,
    RESTARTED_AT,
    ReplicaState,
    rollingUpdateStep,
    schedule,
    StandInNode,
    templateRevision,
} from "./pods";
import { Endpoint, ServiceProxy } from "./proxy";

/**
 * The stand-in's control plane for one stack: the objects applied so far (the API server's store), the
 * StatefulSet controller, the kubelets of its Pods, the endpoints controller feeding the Service proxies, and
 * the loop that drives them once a second (the kubelet relists its containers that often too).
 */

export interface ClusterOptions {
    readonly stack: string;
    /** The Pod network's subnet: inside the stack's podCidrs, so pg_hba and Group Replication admit it. */
    readonly subnet?: string;
    readonly nodes?: readonly StandInNode[];
    readonly log?: (line: string) => void;
}

/** The one storage class, the default: a block volume with an ext4 filesystem whose ownership the kubelet manages (like EBS's). */
export const STORAGE_CLASSES = ["standard"];

interface SetState {
    object: Manifest;
    updateRevision: string;
    currentRevision: string;
    /** Controller revisions: the template of each revision, for Pods recreated below the partition. */
    readonly templates: Map<string, any>;
    pendingReason?: string;
    /** What the controller did, in order: Pod deletions for updates, and when each replacement became Ready. */
    readonly events: { kind: "update-delete" | "ready"; pod: string; at: number }[];
}

export interface StatefulSetStatus {
    readonly replicas: number;
    readonly readyReplicas: number;
    readonly currentReplicas: number;
    readonly updatedReplicas: number;
    readonly currentRevision: string;
    readonly updateRevision: string;
    readonly pendingReason?: string;
}

const key = (namespace: string | undefined, name: string) => `${namespace ?? ""}/${name}`;

export class StandInCluster {
    readonly stack: string;
    readonly network: string;
    readonly subnet: string;
    readonly nodes: readonly StandInNode[];
    readonly domain = CLUSTER_DOMAIN;
    readonly log: (line: string) => void;
    readonly objects = new Map<string, Manifest>();
    readonly pods = new Map<string, PodRuntime>();
    readonly sets = new Map<string, SetState>();
    readonly proxies = new Map<string, ServiceProxy>();
    /** Which Pod each address was given to (Docker hands out addresses in sequence, so one is not reused soon). */
    readonly addresses = new Map<string, string>();
    private timer?: NodeJS.Timeout;
    private ticking = false;
    private endpointsDirty = false;
    private endpointsRunning?: Promise<void>;
    private readonly ctx: PodContext;
    private fatal?: Error;

    constructor(options: ClusterOptions) {
        this.stack = options.stack;
        this.network = `hadb-standin-${options.stack}`;
        this.subnet = options.subnet ?? "172.30.0.0/16";
        this.nodes = options.nodes ?? DEFAULT_NODES;
        this.log = options.log ?? (() => {});
        this.ctx = {
            stack: this.stack,
            network: this.network,
            domain: this.domain,
            log: this.log,
            objectData: (kind, namespace, name) => this.objectData(kind, namespace, name),
            headlessServices: () => this.headlessServices(),
            changed: () => this.endpointsChanged(),
            addressed: (pod, ip) => this.addresses.set(ip, pod),
        };
    }

    /** The cluster's network (its own subnet), labelled so `down` finds it; one this stand-in did not make is refused. */
    async ensureNetwork(): Promise<void> {
        const existing = await inspect(`/networks/${this.network}`);
        if (existing) {
            if (existing.Labels?.[LABEL] !== this.stack) throw new Error(`stand-in: a network named ${this.network} exists that the stand-in did not create; remove it`);
            return;
        }
        await dockerRequest("POST", "/networks/create", {
            Name: this.network,
            CheckDuplicate: true,
            Driver: "bridge",
            IPAM: { Driver: "default", Config: [{ Subnet: this.subnet }] },
            Labels: { [LABEL]: this.stack },
        });
    }

    start(): void {
        if (this.timer) return;
        this.timer = setInterval(() => void this.tick(), 1000);
    }

    stop(): void {
        if (this.timer) clearInterval(this.timer);
        this.timer = undefined;
    }

    /** Throws what stopped the control loop (a refusal found while starting a Pod). */
    checkFatal(): void {
        if (this.fatal) throw this.fatal;
    }

    private async tick(): Promise<void> {
        if (this.ticking) return;
        this.ticking = true;
        try {
            for (const set of this.sets.values()) this.syncStatefulSet(set);
            await Promise.all(
                [...this.pods.values()].map((p) =>
                    p.sync().catch((err) => {
                        if (err instanceof StandInRefusal) this.fatal = err;
                        this.log(`pod ${p.pod.name}: sync: ${err instanceof Error ? err.message : err}`);
                    }),
                ),
            );
            for (const set of this.sets.values()) this.noteReady(set);
            if (this.endpointsDirty) this.endpointsChanged();
        } finally {
            this.ticking = false;
        }
    }

    // --- the API server's store -------------------------------------------------------------------------------

    record(m: Manifest): void {
        this.objects.set(`${m.kind}:${key(m.metadata.namespace, m.metadata.name)}`, m);
    }

    get(kind: string, namespace: string | undefined, name: string): Manifest | undefined {
        return this.objects.get(`${kind}:${key(namespace, name)}`);
    }

    list(kind: string): Manifest[] {
        return [...this.objects.values()].filter((m) => m.kind === kind);
    }

    private objectData(kind: "configMap" | "secret", namespace: string, name: string): Record<string, Buffer> | undefined {
        if (kind === "configMap") {
            const m = this.get("ConfigMap", namespace, name);
            if (!m) return undefined;
            const out: Record<string, Buffer> = {};
            for (const [k, v] of Object.entries(m.data ?? {})) out[k] = Buffer.from(String(v), "utf8");
            for (const [k, v] of Object.entries(m.binaryData ?? {})) out[k] = Buffer.from(String(v), "base64");
            return out;
        }
        const m = this.get("Secret", namespace, name);
        if (!m) return undefined;
        const out: Record<string, Buffer> = {};
        // The API server merges stringData into data, stringData winning.
        for (const [k, v] of Object.entries(m.data ?? {})) out[k] = Buffer.from(String(v), "base64");
        for (const [k, v] of Object.entries(m.stringData ?? {})) out[k] = Buffer.from(String(v), "utf8");
        return out;
    }

    headlessServices(): HeadlessService[] {
        return this.list("Service")
            .filter((s) => s.spec?.clusterIP === "None")
            .map((s) => ({ namespace: s.metadata.namespace!, name: s.metadata.name, selector: s.spec.selector }));
    }

    /** Pod Security admission of the Pod's namespace: "restricted" refuses violating Pods (the StatefulSet gets none). */
    admit(namespace: string, podSpec: any, where: string): void {
        const ns = this.get("Namespace", undefined, namespace);
        if (!ns && namespace !== "default") throw new StandInRefusal(`stand-in: ${where}: namespace ${namespace} does not exist`);
        if (ns?.metadata.labels?.["pod-security.kubernetes.io/enforce"] !== "restricted") return;
        const v = restrictedViolations(podSpec);
        if (v.length) throw new StandInRefusal(`stand-in: ${where}: pods violate PodSecurity "restricted:latest": ${v.join("; ")}`);
    }

    // --- Services ---------------------------------------------------------------------------------------------

    async applyService(m: Manifest): Promise<void> {
        this.record(m);
        if (m.spec.clusterIP === "None") return;
        const k = key(m.metadata.namespace, m.metadata.name);
        let proxy = this.proxies.get(k);
        if (!proxy) {
            proxy = new ServiceProxy(this.stack, this.network, this.domain, m);
            this.proxies.set(k, proxy);
        }
        proxy.service = m;
        await proxy.ensure();
        await proxy.sync(this.endpointsOf(m));
    }

    /** The Service's endpoints as the endpoints controller publishes them: matching Pods, ready, not terminating. */
    endpointsOf(service: Manifest): Endpoint[] {
        return [...this.pods.values()]
            .filter((p) => p.pod.namespace === service.metadata.namespace && matchesSelector(service.spec.selector, p.pod.labels))
            .filter((p) => p.ready && !p.terminating && p.ip)
            .map((p) => ({ pod: p.pod.name, ip: p.ip!, containers: p.pod.spec.containers }))
            .sort((a, b) => a.pod.localeCompare(b.pod));
    }

    /** Pods a Service selects that have an address, ready or not (what makes its Endpoints object non-empty). */
    addressedPods(service: Manifest): number {
        return [...this.pods.values()].filter((p) => p.pod.namespace === service.metadata.namespace && matchesSelector(service.spec.selector, p.pod.labels) && p.ip).length;
    }

    private endpointsChanged(): void {
        this.endpointsDirty = true;
        if (this.endpointsRunning) return;
        this.endpointsDirty = false;
        this.endpointsRunning = (async () => {
            for (const proxy of this.proxies.values()) {
                try {
                    await proxy.sync(this.endpointsOf(proxy.service));
                } catch (err) {
                    if (err instanceof StandInRefusal) this.fatal = err;
                    this.log(`service ${proxy.service.metadata.name}: ${err instanceof Error ? err.message : err}`);
                }
            }
        })().finally(() => {
            this.endpointsRunning = undefined;
            if (this.endpointsDirty) this.endpointsChanged();
        });
    }

    // --- StatefulSets -----------------------------------------------------------------------------------------

    /** Creates or updates a StatefulSet: a template change is a new revision the controller rolls out. */
    applyStatefulSet(m: Manifest): void {
        this.admit(m.metadata.namespace!, m.spec.template.spec, describe(m));
        const k = key(m.metadata.namespace, m.metadata.name);
        const revision = templateRevision(m.metadata.name, m.spec.template);
        const existing = this.sets.get(k);
        if (existing) {
            for (const field of ["selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"]) {
                if (JSON.stringify(existing.object.spec[field]) !== JSON.stringify(m.spec[field])) {
                    throw new StandInRefusal(`stand-in: ${describe(m)}: spec.${field} changed; the API server forbids that (the provider would replace the StatefulSet, which the stand-in does not implement)`);
                }
            }
            existing.object = m;
            existing.templates.set(revision, m.spec.template);
            existing.updateRevision = revision;
        } else {
            this.sets.set(k, { object: m, updateRevision: revision, currentRevision: revision, templates: new Map([[revision, m.spec.template]]), events: [] });
        }
        this.record(m);
    }

    private syncStatefulSet(set: SetState): void {
        const sts = set.object;
        const ns: string = sts.metadata.namespace!;
        const replicas: number = sts.spec.replicas ?? 1;
        const onDelete = sts.spec.updateStrategy?.type === "OnDelete";
        const partition: number = sts.spec.updateStrategy?.rollingUpdate?.partition ?? 0;
        const ordered = sts.spec.podManagementPolicy === "OrderedReady";
        set.pendingReason = undefined;
        for (let i = 0; i < replicas; i++) {
            const existing = this.pods.get(key(ns, podName(sts.metadata.name, i)));
            if (existing) {
                // OrderedReady: the next Pod only once this one is Running and Ready.
                if (ordered && !existing.ready) break;
                continue;
            }
            const revision = !onDelete && i < partition ? set.currentRevision : set.updateRevision;
            const template = set.templates.get(revision)!;
            const placed = [...this.pods.values()].map((p) => ({ namespace: p.pod.namespace, labels: p.pod.labels, spec: p.pod.spec, node: p.pod.node }));
            const where = schedule({ namespace: ns, labels: template.metadata?.labels ?? {}, spec: template.spec }, placed, this.nodes);
            if (!where.node) {
                set.pendingReason = `${podName(sts.metadata.name, i)} Pending: ${where.reason}`;
                continue;
            }
            const pod = newPod(sts, i, template, revision, where.node, Date.now());
            this.pods.set(key(ns, pod.name), new PodRuntime(pod, this.ctx));
            this.log(`statefulset ${sts.metadata.name}: created pod ${pod.name} (${revision}) on ${where.node}`);
            if (ordered) break;
        }
        if (onDelete) return;
        const states: (ReplicaState | undefined)[] = Array.from({ length: replicas }, (_, i) => {
            const p = this.pods.get(key(ns, podName(sts.metadata.name, i)));
            return p && { revision: p.pod.revision, terminating: p.terminating, healthy: p.ready && !p.terminating };
        });
        const step = rollingUpdateStep(states, set.updateRevision, partition);
        if (step.kind === "delete") {
            const name = podName(sts.metadata.name, step.ordinal);
            set.events.push({ kind: "update-delete", pod: name, at: Date.now() });
            this.log(`statefulset ${sts.metadata.name}: rolling update deletes ${name}`);
            void this.deletePod(ns, name);
        } else if (step.kind === "done" && set.currentRevision !== set.updateRevision) {
            set.currentRevision = set.updateRevision;
            this.log(`statefulset ${sts.metadata.name}: rollout to ${set.updateRevision} complete`);
        }
    }

    /** Notes when a Pod replaced by an update became Ready (for rollout reports). */
    private noteReady(set: SetState): void {
        const last = set.events.at(-1);
        if (last?.kind !== "update-delete") return;
        const p = this.pods.get(key(set.object.metadata.namespace, last.pod));
        if (p && p.ready && p.pod.revision === set.updateRevision) set.events.push({ kind: "ready", pod: last.pod, at: Date.now() });
    }

    statefulSetStatus(namespace: string, name: string): StatefulSetStatus {
        const set = this.sets.get(key(namespace, name));
        if (!set) throw new Error(`stand-in: no StatefulSet ${namespace}/${name}`);
        const pods = [...this.pods.values()].filter((p) => p.pod.namespace === namespace && p.pod.statefulSet === name && !p.terminating);
        return {
            replicas: pods.length,
            readyReplicas: pods.filter((p) => p.ready).length,
            currentReplicas: pods.filter((p) => p.pod.revision === set.currentRevision).length,
            updatedReplicas: pods.filter((p) => p.pod.revision === set.updateRevision).length,
            currentRevision: set.currentRevision,
            updateRevision: set.updateRevision,
            pendingReason: set.pendingReason,
        };
    }

    /** The provider's StatefulSet await: every replica ready and current, the rollout complete. */
    statefulSetReady(namespace: string, name: string): boolean {
        const set = this.sets.get(key(namespace, name))!;
        const s = this.statefulSetStatus(namespace, name);
        const want = set.object.spec.replicas ?? 1;
        return s.replicas === want && s.readyReplicas === want && s.currentReplicas === want && s.currentRevision === s.updateRevision;
    }

    /** `kubectl rollout restart`: a new template annotation, hence a new revision. */
    restartStatefulSet(namespace: string, name: string): { from: number } {
        const set = this.sets.get(key(namespace, name));
        if (!set) throw new Error(`stand-in: no StatefulSet ${namespace}/${name}`);
        const template = structuredClone(set.object.spec.template);
        template.metadata = { ...(template.metadata ?? {}), annotations: { ...(template.metadata?.annotations ?? {}), [RESTARTED_AT]: new Date().toISOString() } };
        const updated = { ...set.object, spec: { ...set.object.spec, template } } as Manifest;
        const from = set.events.length;
        this.applyStatefulSet(updated);
        return { from };
    }

    rolloutEvents(namespace: string, name: string, from = 0) {
        return this.sets.get(key(namespace, name))?.events.slice(from) ?? [];
    }

    // --- Pods -------------------------------------------------------------------------------------------------

    pod(namespace: string, name: string): PodRuntime {
        const p = this.pods.get(key(namespace, name));
        if (!p) throw new Error(`stand-in: no Pod ${namespace}/${name}; Pods: ${[...this.pods.keys()].join(", ")}`);
        return p;
    }

    podStatuses(): PodStatus[] {
        return [...this.pods.values()].map((p) => p.status()).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    }

    /** Graceful deletion; the StatefulSet controller creates the Pod again (same name, same claims) once it is gone. */
    async deletePod(namespace: string, name: string, graceSeconds?: number): Promise<void> {
        const p = this.pods.get(key(namespace, name));
        if (!p || p.terminating) return;
        try {
            await p.delete(graceSeconds);
        } finally {
            if (this.pods.get(key(namespace, name)) === p) this.pods.delete(key(namespace, name));
            void this.tick();
        }
    }

    claimVolumes(namespace: string): string[] {
        return [...this.sets.values()]
            .filter((s) => s.object.metadata.namespace === namespace)
            .flatMap((s) =>
                Array.from({ length: s.object.spec.replicas ?? 1 }, (_, i) =>
                    (s.object.spec.volumeClaimTemplates ?? []).map((c: any) => claimVolumeName(this.stack, namespace, `${c.metadata.name}-${podName(s.object.metadata.name, i)}`)),
                ).flat(),
            );
    }
}
