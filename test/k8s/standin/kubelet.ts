import { DockerApiError } from "../../harness/dockerApi";
import { containerLogs, dockerRequest, execCapture, execStatus, inspect, putArchive, quietly, waitExit } from "./engine";
import { parseBytes, parseMillicores, StandInRefusal } from "./objects";
import {
    BACKOFF_RESET_MS,
    containerEnv,
    containerUser,
    HeadlessService,
    LABEL,
    podDnsConfig,
    podDnsNames,
    PodObject,
    podStatusText,
    probeCommand,
    readinessHealthcheck,
    nextBackoffSeconds,
} from "./pods";
import { atomicWriterStamp, projectedVolume, ProjectedSource, tarTree, VolumeSetup, volumeSetupScript } from "./volumes";

/**
 * The kubelet of the stand-in, one object per Pod. A Pod is a sandbox container that owns the network
 * namespace (hostname, DNS names, resolv.conf: the Pod IP survives container restarts), a volume holder that
 * stands for the node's mounts (it keeps tmpfs volumes for the Pod's life and runs the volume set-up as root),
 * init containers run to completion in order, and the main container, which joins the sandbox's network.
 * Containers are recreated, never restarted, on each attempt (a fresh writable layer, as in Kubernetes).
 */

/** What a Pod needs from its cluster. */
export interface PodContext {
    readonly stack: string;
    readonly network: string;
    readonly domain: string;
    /** Data of a ConfigMap or Secret, decoded; undefined when it does not exist. */
    objectData(kind: "configMap" | "secret", namespace: string, name: string): Record<string, Buffer> | undefined;
    headlessServices(): HeadlessService[];
    /** fsGroupChangePolicy applies to claims of this class (ownership-managed volumes). */
    readonly log: (line: string) => void;
    /** Called when readiness or the Pod's address changes, so endpoints follow at once. */
    changed(): void;
    /** A Pod got an address (kept as history: which Pod had an address, whatever happened since). */
    addressed(pod: string, ip: string): void;
}

const VOLUME_ROOT = "/standin/volumes";

export function dockerName(stack: string, namespace: string, pod: string, container: string): string {
    return `k8s_${container}_${pod}_${namespace}_${stack}`;
}

export function claimVolumeName(stack: string, namespace: string, claim: string): string {
    return `${stack}_${namespace}_${claim}`;
}

function ephemeralVolumeName(stack: string, pod: PodObject, volume: string): string {
    return `${stack}_${pod.namespace}_${pod.name}_${pod.uid.slice(0, 8)}_${volume}`;
}

interface Backoff {
    delay: number;
    lastUpdate: number;
}

interface ProbeState {
    failures: number;
    nextAt: number;
    inFlight: boolean;
}

export interface PodStatus {
    readonly namespace: string;
    readonly name: string;
    readonly statefulSet: string;
    readonly ordinal: number;
    readonly node: string;
    readonly uid: string;
    readonly revision: string;
    readonly ip?: string;
    /** kubectl's STATUS column. */
    readonly status: string;
    readonly ready: boolean;
    readonly restarts: number;
    /** The Docker container of the Pod's (first) container: for docker exec and logs. */
    readonly container: string;
    readonly lastError?: string;
    /** How many times an init container failed, and the main container restarted, in a row. */
    readonly initFailures: number;
}

export class PodRuntime {
    readonly sandbox: string;
    readonly holder: string;
    readonly main: any;
    readonly mainName: string;
    ip?: string;
    terminating = false;
    gone = false;
    ready = false;
    restarts = 0;
    initFailures = 0;
    lastError?: string;
    private holderReady = false;
    private initDone = false;
    private initIndex = 0;
    private initFailed = false;
    private initFinishedAt = 0;
    private waiting?: string;
    private mainRunning = false;
    private everStarted = false;
    private mainStartedAt = 0;
    private startupPassed = false;
    private health?: string;
    private busy?: Promise<void>;
    private readonly backoff = new Map<string, Backoff>();
    private startup: ProbeState = { failures: 0, nextAt: 0, inFlight: false };
    private liveness: ProbeState = { failures: 0, nextAt: 0, inFlight: false };
    private imageUsers = new Map<string, string>();

    constructor(
        readonly pod: PodObject,
        private readonly ctx: PodContext,
    ) {
        this.sandbox = this.name("POD");
        this.holder = this.name("volumes");
        this.main = pod.spec.containers[0];
        if (pod.spec.containers.length !== 1) throw new StandInRefusal(`stand-in: Pod ${pod.name}: only one (main) container per Pod is implemented`);
        this.mainName = this.name(this.main.name);
    }

    private name(container: string): string {
        return dockerName(this.ctx.stack, this.pod.namespace, this.pod.name, container);
    }

    private labels(role: string, container: string): Record<string, string> {
        return {
            [LABEL]: this.ctx.stack,
            "io.kubernetes.pod.name": this.pod.name,
            "io.kubernetes.pod.namespace": this.pod.namespace,
            "io.kubernetes.pod.uid": this.pod.uid,
            "io.kubernetes.container.name": container,
            "io.kubernetes.docker.type": role,
        };
    }

    status(): PodStatus {
        const initCount = (this.pod.spec.initContainers ?? []).length;
        return {
            namespace: this.pod.namespace,
            name: this.pod.name,
            statefulSet: this.pod.statefulSet,
            ordinal: this.pod.ordinal,
            node: this.pod.node,
            uid: this.pod.uid,
            revision: this.pod.revision,
            ip: this.ip,
            status: podStatusText({
                terminating: this.terminating,
                initDone: this.initDone,
                initIndex: this.initIndex,
                initCount,
                initFailed: this.initFailed,
                waiting: this.waiting,
                running: this.mainRunning,
            }),
            ready: this.ready,
            restarts: this.restarts,
            container: this.mainName,
            lastError: this.lastError,
            initFailures: this.initFailures,
        };
    }

    /** One PLEG-like relist (the controller calls it every second): start what is missing, restart what died, probe. */
    async sync(): Promise<void> {
        if (this.terminating || this.gone) return;
        if (this.busy) return;
        const sandbox = await inspect(`/containers/${this.sandbox}/json`);
        const holder = await inspect(`/containers/${this.holder}/json`);
        if (!holder?.State.Running) return this.run(() => this.startPod(true));
        if (!sandbox?.State.Running) return this.run(() => this.startPod(false));
        if (!this.initDone) return this.run(() => this.runInit());
        const main = await inspect(`/containers/${this.mainName}/json`);
        if (!main || !main.State.Running) {
            this.setReady(false);
            this.mainRunning = false;
            if (main && main.State.Status === "created") return this.run(() => this.startMain());
            return this.run(() => this.restartMain(main));
        }
        this.mainRunning = true;
        this.health = main.State.Health?.Status;
        this.probe();
        const readiness = this.main.readinessProbe;
        this.setReady(this.startupPassed && (!readiness || this.health === "healthy"));
    }

    private run(work: () => Promise<void>): void {
        this.busy = work()
            .catch((err) => {
                this.lastError = err instanceof Error ? err.message : String(err);
                this.ctx.log(`pod ${this.pod.namespace}/${this.pod.name}: ${this.lastError}`);
                if (err instanceof StandInRefusal) throw err;
            })
            .finally(() => {
                this.busy = undefined;
            });
    }

    private setReady(ready: boolean): void {
        if (ready === this.ready) return;
        this.ready = ready;
        this.ctx.log(`pod ${this.pod.namespace}/${this.pod.name}: ${ready ? "Ready" : "not ready"}`);
        this.ctx.changed();
    }

    /** A new sandbox (new Pod IP, init containers again), and on the Pod's first start its volumes. */
    private async startPod(withVolumes: boolean): Promise<void> {
        this.setReady(false);
        this.mainRunning = false;
        this.initDone = false;
        this.initIndex = 0;
        this.initFailed = false;
        if (this.ip !== undefined || withVolumes) {
            // The kubelet kills every container of a Pod whose sandbox died before it makes a new one.
            await this.removeContainers(withVolumes);
        }
        if (withVolumes) await this.setUpVolumes();
        await this.createSandbox();
        await this.runInit();
    }

    private podVolumes(): any[] {
        return this.pod.spec.volumes ?? [];
    }

    /** The Docker volume a mount names: an ephemeral one of this Pod or the claim of a volume claim template. */
    private volumeFor(mountName: string): { name: string; projected: boolean } {
        const v = this.podVolumes().find((x) => x.name === mountName);
        if (v) return { name: ephemeralVolumeName(this.ctx.stack, this.pod, v.name), projected: !!v.projected };
        const claim = this.pod.claims[mountName];
        if (!claim) throw new StandInRefusal(`stand-in: Pod ${this.pod.name}: volume mount ${mountName} names no volume or claim`);
        return { name: claimVolumeName(this.ctx.stack, this.pod.namespace, claim), projected: false };
    }

    /**
     * The node's side of the Pod's volumes: create them, keep tmpfs ones mounted in the holder, write projected
     * files, then the root modes and fsGroup ownership the kubelet applies (research §1, §2).
     */
    private async setUpVolumes(): Promise<void> {
        const fsGroup: number | undefined = this.pod.spec.securityContext?.fsGroup;
        const policy = this.pod.spec.securityContext?.fsGroupChangePolicy ?? "Always";
        const mounts: any[] = [];
        const steps: VolumeSetup[] = [];
        const projected: { dir: string; tar: Buffer }[] = [];
        for (const v of this.podVolumes()) {
            const name = ephemeralVolumeName(this.ctx.stack, this.pod, v.name);
            const dir = `${VOLUME_ROOT}/${v.name}`;
            const memory = v.emptyDir?.medium === "Memory" || !!v.projected;
            const size = v.emptyDir?.sizeLimit !== undefined ? `size=${parseBytes(v.emptyDir.sizeLimit)},` : "";
            await dockerRequest("POST", "/volumes/create", {
                Name: name,
                Driver: "local",
                DriverOpts: memory ? { type: "tmpfs", device: "tmpfs", o: `${size}mode=1777` } : {},
                Labels: this.labels("volume", v.name),
            });
            mounts.push({ Type: "volume", Source: name, Target: dir, VolumeOptions: { NoCopy: true } });
            if (v.emptyDir) steps.push({ dir, kind: memory ? "memoryEmptyDir" : "emptyDir", provision: false, policy: "Always" });
            if (v.projected) {
                const where = `Pod ${this.pod.namespace}/${this.pod.name} volume ${v.name}`;
                const sources: ProjectedSource[] = v.projected.sources.map((s: any) => {
                    const kind = s.configMap ? "configMap" : "secret";
                    const ref = s.configMap ?? s.secret;
                    return { kind, name: ref.name, items: ref.items, data: this.ctx.objectData(kind, this.pod.namespace, ref.name) };
                });
                const tree = projectedVolume(sources, v.projected.defaultMode, fsGroup, atomicWriterStamp(new Date(), Math.floor(Math.random() * 1e9)), where);
                projected.push({ dir, tar: tarTree(tree.entries) });
                steps.push({ dir, kind: "projected", rootMode: tree.rootMode, rootGid: tree.rootGid });
            }
        }
        for (const [claimTemplate, claim] of Object.entries(this.pod.claims)) {
            const name = claimVolumeName(this.ctx.stack, this.pod.namespace, claim);
            const exists = await inspect(`/volumes/${name}`);
            if (!exists) await dockerRequest("POST", "/volumes/create", { Name: name, Driver: "local", Labels: { [LABEL]: this.ctx.stack, "io.kubernetes.pvc.name": claim, "io.kubernetes.pvc.namespace": this.pod.namespace } });
            const dir = `${VOLUME_ROOT}/${claimTemplate}`;
            mounts.push({ Type: "volume", Source: name, Target: dir, VolumeOptions: { NoCopy: true } });
            steps.push({ dir, kind: "claim", provision: !exists, policy });
        }
        await quietly(dockerRequest("DELETE", `/containers/${this.holder}?force=1`));
        await dockerRequest("POST", `/containers/create?name=${this.holder}`, {
            Image: this.main.image,
            Entrypoint: ["sleep", "infinity"],
            User: "0:0",
            Labels: this.labels("volume-holder", "volumes"),
            HostConfig: { NetworkMode: "none", Mounts: mounts, RestartPolicy: { Name: "no" } },
        });
        await dockerRequest("POST", `/containers/${this.holder}/start`);
        for (const p of projected) await putArchive(this.holder, p.dir, p.tar);
        const setup = await execCapture(this.holder, ["sh", "-c", volumeSetupScript(steps, fsGroup)], 120_000);
        if (setup.exitCode !== 0) throw new Error(`volume set-up exited ${setup.exitCode}: ${setup.stderr.trim()}`);
        this.holderReady = true;
    }

    private async createSandbox(): Promise<void> {
        const dns = podDnsConfig(this.pod.namespace, this.ctx.domain, this.pod.spec.dnsConfig);
        const aliases = podDnsNames(this.pod, this.ctx.headlessServices(), this.ctx.domain);
        const meta = { ...this.pod, spec: undefined };
        await dockerRequest("POST", `/containers/create?name=${this.sandbox}`, {
            Image: this.main.image,
            Entrypoint: ["sleep", "infinity"],
            User: "65535:65535",
            Hostname: this.pod.hostname,
            Domainname: this.pod.subdomain ? `${this.pod.subdomain}.${this.pod.namespace}.svc.${this.ctx.domain}` : undefined,
            Labels: { ...this.labels("podsandbox", "POD"), [`${LABEL}.pod`]: JSON.stringify(meta) },
            HostConfig: {
                NetworkMode: this.ctx.network,
                DnsSearch: dns.search,
                DnsOptions: dns.options,
                CapDrop: ["ALL"],
                SecurityOpt: ["no-new-privileges:true"],
                Memory: 32 << 20,
                RestartPolicy: { Name: "no" },
            },
            NetworkingConfig: { EndpointsConfig: { [this.ctx.network]: { Aliases: aliases } } },
        });
        await dockerRequest("POST", `/containers/${this.sandbox}/start`);
        const info = await dockerRequest("GET", `/containers/${this.sandbox}/json`);
        this.ip = info.NetworkSettings.Networks[this.ctx.network]?.IPAddress;
        if (this.ip) this.ctx.addressed(this.pod.name, this.ip);
        this.ctx.log(`pod ${this.pod.namespace}/${this.pod.name}: sandbox up on ${this.pod.node}, IP ${this.ip}, DNS ${aliases.join(" ")}`);
        this.ctx.changed();
    }

    private async imageUser(image: string): Promise<string> {
        let user = this.imageUsers.get(image);
        if (user === undefined) {
            user = String((await dockerRequest("GET", `/images/${encodeURIComponent(image)}/json`)).Config?.User ?? "");
            this.imageUsers.set(image, user);
        }
        return user;
    }

    /** The Engine API body of one of the Pod's containers. */
    private async containerBody(c: any, role: "init" | "main") {
        const where = `Pod ${this.pod.namespace}/${this.pod.name} container ${c.name}`;
        const spec = this.pod.spec;
        const sc = c.securityContext ?? {};
        const limits = c.resources?.limits ?? {};
        const requests = c.resources?.requests ?? {};
        const memory = limits.memory !== undefined ? parseBytes(limits.memory) : undefined;
        const mounts = (c.volumeMounts ?? []).map((m: any) => {
            const v = this.volumeFor(m.name);
            // Kubernetes mounts projected (and configMap/secret) volumes read-only, whatever the mount says.
            return { Type: "volume", Source: v.name, Target: m.mountPath, ReadOnly: !!m.readOnly || v.projected, VolumeOptions: { NoCopy: true } };
        });
        const fsGroup = spec.securityContext?.fsGroup;
        return {
            Image: c.image,
            Entrypoint: c.command?.length ? c.command : undefined,
            Cmd: c.args?.length ? c.args : undefined,
            Env: containerEnv(c, this.pod, this.ip ?? ""),
            User: containerUser(c, spec, await this.imageUser(c.image), where),
            Labels: this.labels("container", c.name),
            // Docker's own HEALTHCHECK of an image is ignored by Kubernetes; readiness is the probe.
            Healthcheck: role === "main" ? readinessHealthcheck(c.readinessProbe, c, this.ip ?? "", where) : { Test: ["NONE"] },
            StopTimeout: spec.terminationGracePeriodSeconds ?? 30,
            HostConfig: {
                NetworkMode: `container:${this.sandbox}`,
                Mounts: mounts,
                GroupAdd: fsGroup !== undefined ? [String(fsGroup)] : undefined,
                CapDrop: sc.capabilities?.drop,
                CapAdd: sc.capabilities?.add,
                SecurityOpt: sc.allowPrivilegeEscalation === false ? ["no-new-privileges:true"] : [],
                Memory: memory,
                // No swap, as on a node with swap disabled.
                MemorySwap: memory,
                NanoCpus: limits.cpu !== undefined ? parseMillicores(limits.cpu) * 1e6 : undefined,
                // cpu.shares from the request, as the kubelet sets it (min 2).
                CpuShares: requests.cpu !== undefined ? Math.max(2, Math.floor((parseMillicores(requests.cpu) * 1024) / 1000)) : undefined,
                RestartPolicy: { Name: "no" },
            },
        };
    }

    /** Init containers from the first not yet successful one, each to completion; a failure stops the Pod's start. */
    private async runInit(): Promise<void> {
        const inits: any[] = this.pod.spec.initContainers ?? [];
        while (this.initIndex < inits.length) {
            const c = inits[this.initIndex];
            const name = this.name(c.name);
            if (this.initFailed) {
                if (!this.backoffAllows(name, this.initFinishedAt)) {
                    this.waiting = "CrashLoopBackOff";
                    return;
                }
                this.noteRestart(name, this.initFinishedAt);
            }
            this.waiting = undefined;
            await quietly(dockerRequest("DELETE", `/containers/${name}?force=1`));
            await dockerRequest("POST", `/containers/create?name=${name}`, await this.containerBody(c, "init"));
            await dockerRequest("POST", `/containers/${name}/start`);
            const code = await waitExit(name, 600_000);
            if (this.terminating) return;
            if (code !== 0) {
                this.initFailed = true;
                this.initFinishedAt = Date.now();
                this.initFailures++;
                const logs = await containerLogs(name);
                this.lastError = `init container ${c.name} exited ${code ?? "(still running after 600 s)"}: ${logs}`;
                this.ctx.log(`pod ${this.pod.namespace}/${this.pod.name}: ${this.lastError}`);
                return;
            }
            this.initFailed = false;
            this.initIndex++;
        }
        this.initDone = true;
        await this.startMain();
    }

    private async startMain(): Promise<void> {
        await quietly(dockerRequest("DELETE", `/containers/${this.mainName}?force=1`));
        await dockerRequest("POST", `/containers/create?name=${this.mainName}`, await this.containerBody(this.main, "main"));
        await dockerRequest("POST", `/containers/${this.mainName}/start`);
        // Each new attempt of the container counts, a new sandbox's included (kubectl's RESTARTS).
        if (this.everStarted) this.restarts++;
        this.everStarted = true;
        this.mainRunning = true;
        this.waiting = undefined;
        this.mainStartedAt = Date.now();
        this.startupPassed = !this.main.startupProbe;
        this.startup = { failures: 0, nextAt: Date.now(), inFlight: false };
        this.liveness = { failures: 0, nextAt: Date.now() + 1000 * (this.main.livenessProbe?.periodSeconds ?? 10), inFlight: false };
    }

    /** The main container exited: keep it as the previous one (its logs) and start a new one after the back-off. */
    private async restartMain(dead: any | undefined): Promise<void> {
        const finishedAt = dead ? Date.parse(dead.State.FinishedAt) || Date.now() : Date.now();
        if (!this.backoffAllows(this.mainName, finishedAt)) {
            this.waiting = "CrashLoopBackOff";
            return;
        }
        if (dead) {
            this.lastError = `container ${this.main.name} exited ${dead.State.ExitCode}${dead.State.OOMKilled ? " (OOMKilled)" : ""}`;
            await quietly(dockerRequest("DELETE", `/containers/${this.mainName}_previous?force=1`));
            await quietly(dockerRequest("POST", `/containers/${this.mainName}/rename?name=${this.mainName}_previous`));
        }
        this.noteRestart(this.mainName, finishedAt);
        this.ctx.log(`pod ${this.pod.namespace}/${this.pod.name}: restarting ${this.main.name} (restart ${this.restarts + 1})`);
        await this.startMain();
    }

    /** Whether the container's back-off since it finished at `finishedAt` is over (CrashLoopBackOff otherwise). */
    private backoffAllows(key: string, finishedAt: number): boolean {
        const b = this.backoff.get(key);
        if (!b || finishedAt - b.lastUpdate > BACKOFF_RESET_MS) return true;
        return Date.now() - finishedAt >= b.delay * 1000;
    }

    /** A restart after an exit at `finishedAt`: the next exit waits the doubled back-off (kubelet's Backoff.Next). */
    private noteRestart(key: string, finishedAt: number): void {
        const b = this.backoff.get(key);
        const expired = !b || finishedAt - b.lastUpdate > BACKOFF_RESET_MS;
        this.backoff.set(key, { delay: nextBackoffSeconds(expired ? undefined : b.delay), lastUpdate: Date.now() });
    }

    /** Startup, then liveness, each on its period, run inside the container; readiness is Docker's health check. */
    private probe(): void {
        const now = Date.now();
        const where = `Pod ${this.pod.name}`;
        const run = (probe: any, state: ProbeState, onPass: () => void, what: string) => {
            if (state.inFlight || now < state.nextAt) return;
            state.inFlight = true;
            state.nextAt = now + 1000 * (probe.periodSeconds ?? 10);
            const timeout = probe.timeoutSeconds ?? 1;
            const cmd = probe.exec ? ["timeout", "-s", "KILL", String(timeout + 1), ...probeCommand(probe, this.main, this.ip ?? "", where)] : probeCommand(probe, this.main, this.ip ?? "", where);
            const started = this.mainStartedAt;
            execStatus(this.mainName, cmd, (timeout + 2) * 1000)
                .catch(() => -1)
                .then(async (code) => {
                    state.inFlight = false;
                    if (started !== this.mainStartedAt || this.terminating) return;
                    if (code === 0) {
                        state.failures = 0;
                        onPass();
                        return;
                    }
                    state.failures++;
                    if (state.failures < (probe.failureThreshold ?? 3)) return;
                    this.lastError = `${what} probe failed ${state.failures} times: the kubelet kills the container`;
                    this.ctx.log(`pod ${this.pod.namespace}/${this.pod.name}: ${this.lastError}`);
                    state.failures = 0;
                    await quietly(dockerRequest("POST", `/containers/${this.mainName}/stop?t=${this.pod.spec.terminationGracePeriodSeconds ?? 30}`));
                })
                .catch(() => {
                    state.inFlight = false;
                });
        };
        if (!this.startupPassed && this.main.startupProbe) {
            run(this.main.startupProbe, this.startup, () => {
                this.startupPassed = true;
                this.liveness.nextAt = Date.now();
            }, "startup");
        } else if (this.main.livenessProbe) {
            run(this.main.livenessProbe, this.liveness, () => {}, "liveness");
        }
    }

    /**
     * Graceful deletion: out of every Service's endpoints first, then the main container gets its stop signal
     * and terminationGracePeriodSeconds, then everything of the Pod goes except its claims.
     */
    async delete(graceSeconds?: number): Promise<void> {
        if (this.terminating) return;
        this.terminating = true;
        this.setReady(false);
        this.ctx.changed();
        const grace = graceSeconds ?? this.pod.spec.terminationGracePeriodSeconds ?? 30;
        // An init container still running is ended, so a start in progress stops at once.
        for (const c of this.pod.spec.initContainers ?? []) await quietly(dockerRequest("POST", `/containers/${this.name(c.name)}/kill`));
        await this.settle();
        await quietly(dockerRequest("POST", `/containers/${this.mainName}/stop?t=${grace}`));
        await this.removeContainers(true);
        for (const v of this.podVolumes()) await quietly(dockerRequest("DELETE", `/volumes/${ephemeralVolumeName(this.ctx.stack, this.pod, v.name)}`));
        this.gone = true;
        this.ctx.log(`pod ${this.pod.namespace}/${this.pod.name}: deleted`);
    }

    /** SIGKILL to every container of the Pod (not the node's volume mounts): the kubelet then starts it again. */
    async kill(): Promise<void> {
        await this.settle();
        const names = [this.mainName, ...(this.pod.spec.initContainers ?? []).map((c: any) => this.name(c.name)), this.sandbox];
        for (const n of names) await quietly(dockerRequest("POST", `/containers/${n}/kill`));
        this.setReady(false);
    }

    /** Stops the kubelet's work on this Pod (teardown): what runs finishes, nothing new starts. */
    async halt(): Promise<void> {
        this.terminating = true;
        this.gone = true;
        for (const c of this.pod.spec.initContainers ?? []) await quietly(dockerRequest("POST", `/containers/${this.name(c.name)}/kill`));
        await this.settle();
    }

    /** Waits for a start or restart in progress (bounded): deleting under it would race it. */
    private async settle(): Promise<void> {
        const deadline = Date.now() + 120_000;
        while (this.busy && Date.now() < deadline) await Promise.race([this.busy, new Promise((r) => setTimeout(r, 1000))]);
    }

    private async removeContainers(withHolder: boolean): Promise<void> {
        const names = [this.mainName, `${this.mainName}_previous`, ...(this.pod.spec.initContainers ?? []).map((c: any) => this.name(c.name)), this.sandbox];
        if (withHolder) names.push(this.holder);
        for (const n of names) {
            try {
                await dockerRequest("DELETE", `/containers/${n}?force=1`);
            } catch (err) {
                if (!(err instanceof DockerApiError && err.status === 404)) throw err;
            }
        }
        if (withHolder) this.holderReady = false;
        this.ip = undefined;
    }

    get volumesReady(): boolean {
        return this.holderReady;
    }
}
