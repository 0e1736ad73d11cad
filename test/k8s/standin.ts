import * as fs from "fs";
import * as path from "path";
import { labelFilter } from "../harness/dockerApi";
import { RecordedResource, runStack } from "../harness/mockRun";
import { ConfigValues, PROJECT_ROOT } from "../harness/stackConfig";
import { applied, Manifest, manifests } from "./manifests";
import { ClusterOptions, STORAGE_CLASSES, StandInCluster, StatefulSetStatus } from "./standin/controller";
import { dockerRequest, execCapture, inspect, prepareImage } from "./standin/engine";
import { PodStatus } from "./standin/kubelet";
import { checkFields, checkResource, checkValues, describe, SHAPES, StandInRefusal } from "./standin/objects";
import { LABEL } from "./standin/pods";
import { PROXY_IMAGE } from "./standin/proxy";

/**
 * A Kubernetes stand-in on the local Docker engine: applies exactly the Kubernetes objects a stack registers
 * (run under Pulumi mocks by test/harness/mockRun.ts) the way an API server, a StatefulSet controller, a
 * scheduler over three nodes, kubelets, cluster DNS and kube-proxy would, and refuses every field it does not
 * implement. Not implemented, on purpose: NetworkPolicy and PodDisruptionBudget are recorded but not enforced,
 * and there is no API server to talk to (no service account tokens, no Service environment variables).
 */

export { PodStatus, StatefulSetStatus };

const STATE_DIR = path.join(PROJECT_ROOT, ".hadb-harness");
const statePath = (stack: string) => path.join(STATE_DIR, `standin-${stack}.json`);

interface StandInState {
    readonly random: Record<string, Record<string, unknown>>;
    readonly config: ConfigValues;
}

function readState(stack: string): StandInState | undefined {
    return fs.existsSync(statePath(stack)) ? JSON.parse(fs.readFileSync(statePath(stack), "utf8")) : undefined;
}

/** Generated passwords survive a second apply, as in Pulumi state (0600, in the harness's gitignored directory). */
function writeState(stack: string, state: StandInState): void {
    fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
    fs.writeFileSync(statePath(stack), JSON.stringify(state, null, 2), { mode: 0o600 });
}

const clusters = new Map<string, StandInCluster>();

export interface ApplyOptions extends Omit<ClusterOptions, "stack"> {
    /** Build the hadb/<image>:local images first (the build cache answers when nothing changed). @default true */
    readonly build?: boolean;
    /** The provider's await timeout per StatefulSet and Service. @default 10 minutes */
    readonly awaitTimeoutMs?: number;
}

/** Each custom resource's dependencies, as the engine orders them (a component dependency means its custom descendants). */
export function dependencies(resources: readonly RecordedResource[]): Map<string, string[]> {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const children = new Map<string, string[]>();
    for (const r of resources) if (r.parent) children.set(r.parent, [...(children.get(r.parent) ?? []), r.urn]);
    const inherited = (r: RecordedResource | undefined, depth = 0): string[] => (r && depth < 100 ? [...r.dependencies, ...inherited(r.parent ? byUrn.get(r.parent) : undefined, depth + 1)] : []);
    const expand = (urn: string, seen: Set<string>): string[] => {
        if (seen.has(urn)) return [];
        seen.add(urn);
        const r = byUrn.get(urn);
        return r?.custom ? [urn] : (children.get(urn) ?? []).flatMap((c) => expand(c, seen));
    };
    return new Map(resources.filter((r) => r.custom).map((r) => [r.urn, [...new Set(inherited(r).flatMap((d) => expand(d, new Set())))].filter((d) => d !== r.urn)]));
}

/** Checks every resource and object of a run before anything is created: a refusal names the field path. */
export function checkRun(resources: readonly RecordedResource[]): Manifest[] {
    for (const r of resources) checkResource(r);
    const list = manifests(resources);
    for (const m of list) {
        const shape = SHAPES[m.kind];
        if (!shape) throw new StandInRefusal(`stand-in: ${describe(m)}: kind ${m.kind} is not one the stand-in implements`);
        checkFields(describe(m), applied(m, false), shape);
        checkValues(m, STORAGE_CLASSES);
    }
    return list;
}

/**
 * `pulumi up` of a stack onto the stand-in: runs the program under mocks with the stack's config and the
 * overrides, refuses what it cannot implement, then applies every object in the engine's dependency order,
 * awaiting StatefulSets (all replicas ready and current) and Services (endpoints) as the provider does.
 */
export async function applyStack(stack: string, config: ConfigValues = {}, options: ApplyOptions = {}): Promise<StandIn> {
    const log = options.log ?? (process.env.HADB_STANDIN_VERBOSE ? (l: string) => console.error(`[standin] ${l}`) : () => {});
    const previous = readState(stack);
    const run = await runStack(stack, { config, randomState: previous?.random });
    writeState(stack, { random: Object.fromEntries(run.resources.filter((r) => r.type.startsWith("random:")).map((r) => [r.urn, r.state])), config });
    const list = checkRun(run.resources);
    const images = new Set<string>([PROXY_IMAGE]);
    for (const m of list.filter((x) => x.kind === "StatefulSet")) {
        for (const c of [...(m.spec.template.spec.initContainers ?? []), ...m.spec.template.spec.containers]) images.add(c.image);
    }
    for (const image of images) await prepareImage(image, options.build ?? true, log);

    let cluster = clusters.get(stack);
    if (!cluster && (await dockerRequest<any[]>("GET", `/containers/json?all=1&filters=${labelFilter(`${LABEL}=${stack}`)}`)).length) {
        // Its control plane was another process: this one knows neither its Pods' identities nor their state.
        throw new Error(`stand-in: stack ${stack} was applied by another process; remove it first (npm run standin -- down ${stack})`);
    }
    if (!cluster) {
        cluster = new StandInCluster({ ...options, stack, log });
        clusters.set(stack, cluster);
    }
    await cluster.ensureNetwork();
    cluster.start();
    const byUrn = new Map(list.map((m) => [m.resource.urn, m]));
    const deps = dependencies(run.resources);
    const done = new Map<string, Promise<void>>();
    const timeoutMs = options.awaitTimeoutMs ?? 600_000;
    const applyOne = (urn: string): Promise<void> => {
        let p = done.get(urn);
        if (!p) {
            p = (async () => {
                await Promise.all((deps.get(urn) ?? []).map(applyOne));
                const m = byUrn.get(urn);
                if (m) await applyObject(cluster!, m, timeoutMs, log);
            })();
            done.set(urn, p);
        }
        return p;
    };
    await Promise.all([...deps.keys()].map(applyOne));
    return new StandIn(cluster, run.outputs as Record<string, any>, list);
}

async function applyObject(cluster: StandInCluster, m: Manifest, timeoutMs: number, log: (line: string) => void): Promise<void> {
    const object = applied(m, false) as Manifest;
    const ns = m.metadata.namespace;
    if (m.kind !== "Namespace" && ns !== "default" && !cluster.get("Namespace", undefined, ns!)) {
        throw new StandInRefusal(`stand-in: ${describe(m)}: namespace ${ns} does not exist (the stack neither creates it nor is it "default")`);
    }
    log(`apply ${describe(m)}`);
    switch (m.kind) {
        case "Service":
            await cluster.applyService(object);
            // The provider waits for a ClusterIP Service's Endpoints to target a Pod, then ~10 s for them to settle.
            if (object.spec.clusterIP !== "None") {
                await until(`${describe(m)} to target a Pod`, () => cluster.addressedPods(object) > 0, timeoutMs, cluster);
                await new Promise((r) => setTimeout(r, 10_000));
            }
            return;
        case "StatefulSet":
            cluster.applyStatefulSet(object);
            await awaitStatefulSet(cluster, ns!, m.metadata.name, timeoutMs);
            return;
        default:
            cluster.record(object);
    }
}

async function until(what: string, ok: () => boolean, timeoutMs: number, cluster: StandInCluster, check?: () => void): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < timeoutMs) {
        cluster.checkFatal();
        check?.();
        if (ok()) return (Date.now() - started) / 1000;
        await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`stand-in: timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

/**
 * Waits as the provider's StatefulSet awaiter does. Fails early, with the container's logs, when a Pod's init
 * container failed twice or its container crash-loops (the provider would report it and wait until its timeout).
 */
async function awaitStatefulSet(cluster: StandInCluster, namespace: string, name: string, timeoutMs: number): Promise<number> {
    return until(
        `StatefulSet ${namespace}/${name} to be ready: ${JSON.stringify(cluster.statefulSetStatus(namespace, name))}`,
        () => cluster.statefulSetReady(namespace, name),
        timeoutMs,
        cluster,
        () => {
            for (const p of cluster.podStatuses().filter((x) => x.namespace === namespace && x.statefulSet === name)) {
                if (p.initFailures >= 2 || (p.restarts >= 3 && p.status === "CrashLoopBackOff")) {
                    throw new Error(`stand-in: Pod ${namespace}/${p.name} is ${p.status} (${p.restarts} restarts): ${p.lastError}`);
                }
            }
        },
    );
}

export interface RolloutReport {
    /** Pods in the order the controller replaced them, with when each was deleted and when its replacement was Ready. */
    readonly steps: { pod: string; deletedAt: number; readyAt?: number }[];
    readonly seconds: number;
}

/** A stack applied to the stand-in: its outputs, its objects, and the operations tests drive. */
export class StandIn {
    constructor(
        readonly cluster: StandInCluster,
        readonly outputs: Record<string, any>,
        readonly manifests: readonly Manifest[],
    ) {}

    get stack(): string {
        return this.cluster.stack;
    }

    private ref(pod: string): [string, string] {
        if (pod.includes("/")) return pod.split("/", 2) as [string, string];
        const found = this.cluster.podStatuses().find((p) => p.name === pod);
        if (!found) throw new Error(`stand-in: no Pod ${pod}`);
        return [found.namespace, pod];
    }

    /** Where a Service address (`<svc>.<ns>.svc.cluster.local:<port>`) is forwarded on 127.0.0.1. */
    forwarded(host: string, port: number): { host: string; port: number } {
        for (const proxy of this.cluster.proxies.values()) {
            if (proxy.dnsName === host && proxy.hostPorts[port]) return { host: "127.0.0.1", port: proxy.hostPorts[port] };
        }
        throw new Error(`stand-in: ${host}:${port} is no ClusterIP Service port of this stand-in`);
    }

    /** A stack output URL with its in-cluster Service address replaced by the forwarded one. */
    localUrl(url: string): string {
        const u = new URL(url);
        const { host, port } = this.forwarded(u.hostname, Number(u.port));
        u.hostname = host;
        u.port = String(port);
        return u.toString();
    }

    pods(statefulSet?: string): PodStatus[] {
        return this.cluster.podStatuses().filter((p) => !statefulSet || p.statefulSet === statefulSet);
    }

    pod(name: string): PodStatus {
        const [ns, pod] = this.ref(name);
        return this.cluster.pod(ns, pod).status();
    }

    /** The Pod an address belongs (or belonged) to. */
    podByIp(ip: string): string | undefined {
        return this.cluster.addresses.get(ip);
    }

    /** The Docker container of the Pod's main container (stable across restarts), for existing docker-exec helpers. */
    container(name: string): string {
        return this.pod(name).container;
    }

    /** `kubectl exec`: stdout of a command in the Pod's container; a non-zero exit is an error with its stderr. */
    async exec(name: string, cmd: readonly string[], timeoutMs = 15_000): Promise<string> {
        const r = await execCapture(this.container(name), cmd, timeoutMs);
        if (r.exitCode !== 0) throw new Error(`exec in ${name} exited ${r.exitCode}: ${r.stderr.trim()}`);
        return r.stdout;
    }

    statefulSet(name: string, namespace?: string): StatefulSetStatus {
        return this.cluster.statefulSetStatus(namespace ?? this.namespaceOf(name), name);
    }

    private namespaceOf(statefulSet: string): string {
        const set = [...this.cluster.sets.values()].find((s) => s.object.metadata.name === statefulSet);
        if (!set) throw new Error(`stand-in: no StatefulSet ${statefulSet}`);
        return set.object.metadata.namespace!;
    }

    /** `kubectl delete pod` (graceful; resolves once it is gone): the StatefulSet controller then creates it again. */
    deletePod(name: string, graceSeconds?: number): Promise<void> {
        const [ns, pod] = this.ref(name);
        return this.cluster.deletePod(ns, pod, graceSeconds);
    }

    /** SIGKILL to every container of the Pod (`docker kill`); the kubelet starts it again (new sandbox, init containers). */
    killPod(name: string): Promise<void> {
        const [ns, pod] = this.ref(name);
        return this.cluster.pod(ns, pod).kill();
    }

    /** Deletes every Pod (of one StatefulSet, or all) at once, gracefully; resolves once all are gone. */
    async deleteAllPods(statefulSet?: string): Promise<void> {
        await Promise.all(this.pods(statefulSet).map((p) => this.cluster.deletePod(p.namespace, p.name)));
    }

    /** Seconds until every StatefulSet (or the named ones) has all replicas ready and current. */
    async waitReady(statefulSets?: readonly string[], timeoutMs = 600_000): Promise<number> {
        const sets = [...this.cluster.sets.values()].map((s) => s.object.metadata).filter((m) => !statefulSets || statefulSets.includes(m.name));
        const started = Date.now();
        for (const m of sets) await awaitStatefulSet(this.cluster, m.namespace!, m.name, Math.max(1000, timeoutMs - (Date.now() - started)));
        return (Date.now() - started) / 1000;
    }

    /** `kubectl rollout restart` and `kubectl rollout status`: Pods replaced one at a time, highest ordinal first. */
    async rollingRestart(statefulSet: string, timeoutMs = 600_000): Promise<RolloutReport> {
        const ns = this.namespaceOf(statefulSet);
        const started = Date.now();
        const { from } = this.cluster.restartStatefulSet(ns, statefulSet);
        await awaitStatefulSet(this.cluster, ns, statefulSet, timeoutMs);
        const events = this.cluster.rolloutEvents(ns, statefulSet, from);
        const steps = events.filter((e) => e.kind === "update-delete").map((e) => ({ pod: e.pod, deletedAt: e.at, readyAt: events.find((r) => r.kind === "ready" && r.pod === e.pod && r.at >= e.at)?.at }));
        return { steps, seconds: (Date.now() - started) / 1000 };
    }
}

/** The stand-in of a stack applied in this process, if any. */
export function standIn(stack: string): StandInCluster | undefined {
    return clusters.get(stack);
}

/**
 * Removes exactly what the stand-in created for the stack (containers, volumes with the claims' data, its
 * network), after stopping its control loop: like destroying the stack, namespace included.
 */
export async function down(stack: string, log: (line: string) => void = () => {}): Promise<number> {
    const cluster = clusters.get(stack);
    if (cluster) {
        cluster.stop();
        clusters.delete(stack);
        await Promise.all([...cluster.pods.values()].map((p) => p.halt()));
    }
    const filter = labelFilter(`${LABEL}=${stack}`);
    let removed = 0;
    for (const c of await dockerRequest<any[]>("GET", `/containers/json?all=1&filters=${filter}`)) {
        log(`removing container ${c.Names[0]}`);
        await dockerRequest("DELETE", `/containers/${c.Id}?force=1&v=1`);
        removed++;
    }
    for (const v of (await dockerRequest<any>("GET", `/volumes?filters=${filter}`)).Volumes ?? []) {
        log(`removing volume ${v.Name}`);
        await dockerRequest("DELETE", `/volumes/${v.Name}`);
        removed++;
    }
    for (const n of await dockerRequest<any[]>("GET", `/networks?filters=${filter}`)) {
        log(`removing network ${n.Name}`);
        await dockerRequest("DELETE", `/networks/${n.Id}`);
        removed++;
    }
    fs.rmSync(statePath(stack), { force: true });
    return removed;
}

/** Pods and forwarded Services of a stack as Docker shows them (any process: no control loop needed). */
export async function dockerStatus(stack: string): Promise<{ pods: Record<string, unknown>[]; services: Record<string, unknown>[] }> {
    const filter = labelFilter(`${LABEL}=${stack}`);
    const containers = await dockerRequest<any[]>("GET", `/containers/json?all=1&filters=${filter}`);
    const pods: Record<string, unknown>[] = [];
    for (const c of containers.filter((x) => x.Labels["io.kubernetes.docker.type"] === "podsandbox")) {
        const meta = JSON.parse(c.Labels[`${LABEL}.pod`] ?? "{}");
        const main = containers.find(
            (x) => x.Labels["io.kubernetes.docker.type"] === "container" && x.Labels["io.kubernetes.pod.uid"] === meta.uid && x.Names[0].startsWith(`/k8s_`) && !x.Names[0].endsWith("_previous") && x.Labels["io.kubernetes.container.name"] !== "place-files",
        );
        const state = main ? (await inspect(`/containers/${main.Id}/json`))?.State : undefined;
        pods.push({ namespace: meta.namespace, name: meta.name, node: meta.node, revision: meta.revision, sandbox: c.State, container: main?.Names[0].slice(1), state: state?.Status, health: state?.Health?.Status });
    }
    const services = containers
        .filter((x) => x.Labels["io.kubernetes.docker.type"] === "service-proxy")
        .map((x) => ({
            service: `${x.Labels["io.kubernetes.service.namespace"]}/${x.Labels["io.kubernetes.service.name"]}`,
            forwarded: (x.Ports ?? []).filter((p: any) => p.PublicPort).map((p: any) => `127.0.0.1:${p.PublicPort} -> ${p.PrivatePort}`),
        }));
    return { pods, services };
}
