import { execFileSync } from "child_process";
import { RecordedResource } from "./mockRun";
import { dockerRequest, DockerApiError, labelFilter, tarOneFile } from "./dockerApi";
import { Change, createError, Goal, StateResource } from "./plan";
import { CONTAINER, CONTAINER_UPDATE_APPLIES, IMAGE, NETWORK, parseGoDuration, readBack, VOLUME } from "./schema";

/**
 * The @pulumi/docker provider's operations (create, update, delete) on the local engine through the Docker
 * Engine API, reading each input the way the provider does (terraform-provider-docker v4.5.0 for containers,
 * volumes and networks; pulumi-docker's native Image). A field the harness does not implement is an error,
 * never ignored. What to call when is the engine's business: see plan.ts and index.ts.
 */

/** The input fields implemented per type; nested objects list their own fields, arrays of objects too. */
type Shape = { [field: string]: true | Shape };
const SHAPES: Record<string, Shape> = {
    [IMAGE]: {
        imageName: true,
        skipPush: true,
        buildOnPreview: true,
        build: { context: true, dockerfile: true, args: true, builderVersion: true, platform: true, target: true, contextDigest: true },
    },
    [NETWORK]: {
        name: true,
        driver: true,
        internal: true,
        attachable: true,
        ipamConfigs: { subnet: true, gateway: true, ipRange: true },
        labels: { label: true, value: true },
    },
    [VOLUME]: { name: true, driver: true, labels: { label: true, value: true } },
    [CONTAINER]: {
        name: true,
        image: true,
        hostname: true,
        envs: true,
        command: true,
        entrypoints: true,
        user: true,
        workingDir: true,
        restart: true,
        maxRetryCount: true,
        memory: true,
        cpuShares: true,
        mustRun: true,
        start: true,
        wait: true,
        waitTimeout: true,
        stopSignal: true,
        stopTimeout: true,
        destroyGraceSeconds: true,
        removeVolumes: true,
        init: true,
        shmSize: true,
        labels: { label: true, value: true },
        ports: { internal: true, external: true, ip: true, protocol: true },
        networksAdvanced: { name: true, aliases: true },
        dnsOpts: true,
        volumes: { volumeName: true, containerPath: true, readOnly: true },
        uploads: { file: true, content: true, contentBase64: true, executable: true, permissions: true, owner: true, group: true },
        healthcheck: { tests: true, interval: true, timeout: true, retries: true, startPeriod: true, startInterval: true },
        capabilities: { adds: true, drops: true },
    },
};

/** Types the harness accepts without deploying anything: their values come from the engine stand-in. */
export const VALUE_ONLY_TYPES = new Set(["random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString", "random:index/randomId:RandomId"]);
/** Provider resources the harness stands in for: the local engine, with no settings (a `host` would be another engine). */
const PROVIDER_SHAPES: Record<string, Shape> = { "pulumi:providers:docker": {}, "pulumi:providers:random": {} };

export const HARNESS_LABEL = "hadb.harness";

export function checkShape(where: string, value: unknown, shape: Shape, path = ""): void {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
        value.forEach((v, i) => checkShape(where, v, shape, `${path}[${i}]`));
        return;
    }
    if (typeof value !== "object") return;
    for (const [field, inner] of Object.entries(value)) {
        const spec = shape[field];
        const at = path ? `${path}.${field}` : field;
        if (!spec) {
            throw new Error(`harness: ${where} sets input \`${at}\`, which the harness does not implement. Implement it in test/harness/dockerApply.ts or do not use it.`);
        }
        if (spec !== true) checkShape(where, inner, spec, at);
    }
}

/** Refuses a custom resource whose type or input fields the harness cannot deploy. Components pass. */
export function checkDeployable(r: { type: string; name: string; custom: boolean; inputs: Record<string, any> }): void {
    if (!r.custom || VALUE_ONLY_TYPES.has(r.type)) return;
    const shape = SHAPES[r.type] ?? PROVIDER_SHAPES[r.type];
    if (!shape) throw new Error(`harness: ${r.type} "${r.name}" is not a resource type the harness can deploy`);
    checkShape(`${r.type} "${r.name}"`, r.inputs, shape);
}

/**
 * Every resource in an order where each comes after what it depends on. A dependency on a component means all its
 * descendants; a component's own dependencies hold for its children too (the SDK registers a child only once its
 * parent is registered, and the parent only once its dependencies are).
 */
export function dependencyOrder(resources: RecordedResource[]): RecordedResource[] {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const inherited = (r: RecordedResource | undefined): string[] => (r ? [...r.dependencies, ...inherited(r.parent ? byUrn.get(r.parent) : undefined)] : []);
    const children = new Map<string, string[]>();
    for (const r of resources) if (r.parent) children.set(r.parent, [...(children.get(r.parent) ?? []), r.urn]);
    const expand = (urn: string, seen = new Set<string>()): string[] => {
        if (seen.has(urn)) return [];
        seen.add(urn);
        const r = byUrn.get(urn);
        if (r?.custom) return [urn];
        return (children.get(urn) ?? []).flatMap((c) => expand(c, seen));
    };
    const done = new Set<string>();
    const visiting = new Set<string>();
    const out: RecordedResource[] = [];
    const visit = (r: RecordedResource) => {
        if (done.has(r.urn)) return;
        if (visiting.has(r.urn)) throw new Error(`harness: dependency cycle through ${r.urn}`);
        visiting.add(r.urn);
        for (const dep of inherited(r).flatMap((d) => expand(d))) {
            const d = byUrn.get(dep);
            if (d && d.urn !== r.urn) visit(d);
        }
        visiting.delete(r.urn);
        done.add(r.urn);
        if (r.custom) out.push(r);
    };
    resources.forEach(visit);
    return out;
}

/** Go-style durations as the provider takes them ("2s", "500ms", "1m"), in nanoseconds for the API. */
export function durationNs(value: string | undefined): number | undefined {
    return value === undefined ? undefined : parseGoDuration(value);
}

/** A create that failed after the object existed (the provider's `wait` timed out): the engine keeps it with init errors. */
export class InitError extends Error {
    constructor(
        message: string,
        readonly id: string,
        readonly outputs: Record<string, any>,
    ) {
        super(message);
    }
}

/** What the harness needs from the run while it acts as the provider. */
export interface ProviderContext {
    readonly stack: string;
    readonly log: (line: string) => void;
    /** Volumes a `down` or replacement of this stack kept (retainOnDelete): Docker hands them back on create. */
    readonly retainedVolumes: ReadonlySet<string>;
}

export interface ProviderOperations {
    create(goal: Goal, inputs: Record<string, any>): Promise<{ id: string; outputs: Record<string, any> }>;
    update(old: StateResource, goal: Goal, inputs: Record<string, any>, changes: readonly Change[]): Promise<{ outputs: Record<string, any> }>;
    delete(old: StateResource): Promise<void>;
}

/** The Docker provider's operations on the local engine. */
export function dockerProvider(ctx: ProviderContext): ProviderOperations {
    return {
        async create(goal, inputs) {
            const labels = { [HARNESS_LABEL]: ctx.stack, ...toLabels(inputs.labels) };
            switch (goal.type) {
                case IMAGE:
                    return buildImage(inputs);
                case NETWORK:
                    return createNetwork(inputs, labels, ctx);
                case VOLUME:
                    return createVolume(inputs, labels, ctx);
                case CONTAINER:
                    return createContainer(goal, inputs, labels, ctx);
                default:
                    throw new Error(`harness: cannot create ${goal.type}`);
            }
        },
        async update(old, goal, inputs, changes) {
            switch (goal.type) {
                case IMAGE:
                    // pulumi-docker's Update rebuilds (and would push).
                    return buildImage(inputs);
                case CONTAINER:
                    return updateContainer(old, inputs, changes, ctx);
                default:
                    // docker_volume's Update handles cluster.availability only; docker_network has none.
                    return { outputs: { ...old.outputs, ...readBack(goal.type, inputs) } };
            }
        },
        async delete(old) {
            switch (old.type) {
                case IMAGE:
                    // pulumi-docker's Image Delete is a no-op: the image stays.
                    return;
                case NETWORK:
                    return deleteNetwork(old, ctx);
                case VOLUME:
                    return deleteVolume(old, ctx);
                case CONTAINER:
                    return deleteContainer(old, ctx);
                default:
                    throw new Error(`harness: cannot delete ${old.type}`);
            }
        },
    };
}

function toLabels(labels: { label: string; value: string }[] | undefined): Record<string, string> {
    return Object.fromEntries((labels ?? []).map((l) => [l.label, l.value]));
}

async function buildImage(inputs: Record<string, any>): Promise<{ id: string; outputs: Record<string, any> }> {
    const { imageName, build = {} } = inputs;
    if (inputs.skipPush !== true) throw new Error(`harness: image ${imageName} would be pushed (skipPush is not true); there is no registry here`);
    const args = ["build", "-q", "-t", imageName];
    for (const [k, v] of Object.entries(build.args ?? {})) args.push("--build-arg", `${k}=${v}`);
    if (build.dockerfile) args.push("-f", build.dockerfile);
    if (build.platform) args.push("--platform", build.platform);
    if (build.target) args.push("--target", build.target);
    args.push(build.context ?? ".");
    // The provider builds with BuildKit unless builderVersion is "BuilderV1" (the classic builder).
    const buildkit = build.builderVersion === "BuilderV1" ? "0" : "1";
    try {
        execFileSync("docker", args, { env: { ...process.env, DOCKER_BUILDKIT: buildkit }, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
    } catch (err: any) {
        throw new Error(`harness: docker build of ${imageName} failed:\n${err.stderr?.toString() ?? err.message}`);
    }
    // With skipPush the provider reports the local image ID as repoDigest; the resource's ID is the image name.
    const imageId: string = (await dockerRequest("GET", `/images/${encodeURIComponent(imageName)}/json`)).Id;
    return { id: imageName, outputs: { ...inputs, repoDigest: imageId } };
}

async function inspect(path: string): Promise<any | undefined> {
    try {
        return await dockerRequest("GET", path);
    } catch (err) {
        if (err instanceof DockerApiError && err.status === 404) return undefined;
        throw err;
    }
}

/**
 * An object with the name already exists. The real `up` fails on a container or network name (Docker's conflict);
 * a volume it would silently adopt — the harness refuses that too, unless this stack itself retained the volume.
 */
function leftover(kind: string, name: string, labels: Record<string, string> | null | undefined, ctx: ProviderContext, dockerError: string): Error {
    const ours = labels?.[HARNESS_LABEL] === ctx.stack;
    const why = ours
        ? `a ${kind} named ${name} exists, created by the harness for stack ${ctx.stack} but not in its state (an interrupted run, or a state file removed by hand)`
        : `a ${kind} named ${name} exists that this harness did not create for stack ${ctx.stack}`;
    return new Error(`harness: ${why}. pulumi up would stop here: ${dockerError}. Remove it (npm run harness -- down ${ctx.stack}${ours ? " --destroy-data" : ""}, or by hand).`);
}

async function createNetwork(i: Record<string, any>, labels: Record<string, string>, ctx: ProviderContext): Promise<{ id: string; outputs: Record<string, any> }> {
    const name: string = i.name;
    const existing = await inspect(`/networks/${name}`);
    if (existing) throw leftover("network", name, existing.Labels, ctx, `network with name ${name} already exists`);
    const created = await dockerRequest("POST", "/networks/create", {
        Name: name,
        CheckDuplicate: true,
        Driver: i.driver ?? "bridge",
        Internal: i.internal ?? false,
        Attachable: i.attachable ?? false,
        IPAM: i.ipamConfigs ? { Driver: "default", Config: i.ipamConfigs.map((c: any) => ({ Subnet: c.subnet, Gateway: c.gateway, IPRange: c.ipRange })) } : undefined,
        Labels: labels,
    });
    return { id: created.Id, outputs: { ...i, driver: i.driver ?? "bridge", scope: "local" } };
}

async function createVolume(i: Record<string, any>, labels: Record<string, string>, ctx: ProviderContext): Promise<{ id: string; outputs: Record<string, any> }> {
    const name: string = i.name;
    const existing = await inspect(`/volumes/${name}`);
    if (existing) {
        const ours = existing.Labels?.[HARNESS_LABEL] === ctx.stack;
        if (!ours || !ctx.retainedVolumes.has(name)) throw leftover("volume", name, existing.Labels, ctx, "nothing: Docker would hand back the existing volume and its old data");
        ctx.log(
            `warning: volume ${name} was retained (retainOnDelete) by an earlier down or replacement of stack ${ctx.stack}; Docker hands the existing volume back, so its data — and the database users and passwords in it — will be reused, whatever passwords this run generates`,
        );
    }
    // VolumeCreate with an existing name returns that volume: the provider has no existence check.
    const created = await dockerRequest("POST", "/volumes/create", { Name: name, Driver: i.driver ?? "local", Labels: labels });
    return { id: created.Name, outputs: { ...i, driver: created.Driver, mountpoint: created.Mountpoint } };
}

function uploadMode(u: any): number {
    if (u.permissions !== undefined) return parseInt(u.permissions, 8);
    return u.executable ? 0o744 : 0o644;
}

function numericId(what: string, value: string | undefined): number {
    if (value === undefined) return 0;
    if (!/^\d+$/.test(value)) throw new Error(`harness: upload ${what} ${JSON.stringify(value)} is not numeric; the provider would resolve it on the host, so use a numeric ID`);
    return Number(value);
}

function restartPolicy(i: Record<string, any>) {
    return { Name: i.restart ?? "no", MaximumRetryCount: i.restart === "on-failure" ? (i.maxRetryCount ?? 0) : 0 };
}

async function createContainer(goal: Goal, i: Record<string, any>, labels: Record<string, string>, ctx: ProviderContext): Promise<{ id: string; outputs: Record<string, any> }> {
    const name: string = i.name ?? goal.name;
    const refused = createError({ ...goal, inputs: i });
    if (refused) throw new Error(`harness: ${refused}`);
    const existing = await inspect(`/containers/${name}/json`);
    if (existing) throw leftover("container", name, existing.Config?.Labels, ctx, `Conflict. The container name "/${name}" is already in use`);
    const ports: any[] = i.ports ?? [];
    const networks: any[] = i.networksAdvanced ?? [];
    const h = i.healthcheck;
    const body = {
        Hostname: i.hostname,
        Image: i.image,
        Env: i.envs,
        Cmd: i.command,
        Entrypoint: i.entrypoints,
        User: i.user,
        WorkingDir: i.workingDir,
        StopSignal: i.stopSignal,
        StopTimeout: i.stopTimeout,
        Labels: labels,
        ExposedPorts: Object.fromEntries(ports.map((p) => [`${p.internal}/${p.protocol ?? "tcp"}`, {}])),
        Healthcheck: h
            ? {
                  Test: h.tests,
                  Interval: durationNs(h.interval),
                  Timeout: durationNs(h.timeout),
                  Retries: h.retries,
                  StartPeriod: durationNs(h.startPeriod),
                  StartInterval: durationNs(h.startInterval),
              }
            : undefined,
        HostConfig: {
            PortBindings: Object.fromEntries(
                ports.map((p) => [`${p.internal}/${p.protocol ?? "tcp"}`, [{ HostIp: p.ip ?? "0.0.0.0", HostPort: p.external === undefined ? "" : String(p.external) }]]),
            ),
            RestartPolicy: restartPolicy(i),
            Memory: i.memory === undefined ? undefined : i.memory * 1024 * 1024,
            CpuShares: i.cpuShares,
            Binds: (i.volumes ?? []).map((v: any) => {
                if (!v.volumeName || !v.containerPath) throw new Error(`harness: container ${name}: volumes need volumeName and containerPath`);
                return `${v.volumeName}:${v.containerPath}${v.readOnly ? ":ro" : ""}`;
            }),
            NetworkMode: networks[0]?.name ?? "bridge",
            Init: i.init,
            ShmSize: i.shmSize === undefined ? undefined : i.shmSize * 1024 * 1024,
            CapAdd: i.capabilities?.adds,
            CapDrop: i.capabilities?.drops,
            // dns_opts → HostConfig.DNSOptions (terraform-provider-docker resource_docker_container_funcs.go).
            DnsOptions: i.dnsOpts,
        },
        NetworkingConfig: networks[0] ? { EndpointsConfig: { [networks[0].name]: { Aliases: networks[0].aliases ?? [] } } } : undefined,
    };
    const created = await dockerRequest("POST", `/containers/create?name=${encodeURIComponent(name)}`, body);
    const id: string = created.Id;
    const outputs = { ...readBack(CONTAINER, i), id };
    for (const n of networks.slice(1)) {
        await dockerRequest("POST", `/networks/${n.name}/connect`, { Container: id, EndpointConfig: { Aliases: n.aliases ?? [] } });
    }
    for (const u of i.uploads ?? []) {
        const content = u.contentBase64 ? Buffer.from(u.contentBase64, "base64") : Buffer.from(u.content, "utf8");
        const tar = tarOneFile(u.file, content, uploadMode(u), numericId("owner", u.owner), numericId("group", u.group ?? u.owner));
        await dockerRequest("PUT", `/containers/${id}/archive?path=/`, tar, "application/x-tar");
    }
    if (i.start === false) return { id, outputs };
    await dockerRequest("POST", `/containers/${id}/start`);
    if (i.wait) {
        const started = Date.now();
        try {
            await waitHealthy(id, i.waitTimeout ?? 60);
        } catch (err) {
            throw new InitError(`harness: container ${name}: ${(err as Error).message}`, id, outputs);
        }
        ctx.log(`container ${name} healthy after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    return { id, outputs };
}

/** The provider's `wait`: ContainerInspect every second until Health.Status is "healthy", within wait_timeout seconds. */
async function waitHealthy(id: string, timeoutSeconds: number): Promise<void> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
        const state = (await dockerRequest("GET", `/containers/${id}/json`)).State;
        if (!state.Health) throw new Error("container has no healthcheck, so `wait` cannot be used");
        if (state.Health.Status === "healthy") return;
        // "unhealthy" does not stop the polling: only the timeout does.
        if (Date.now() + 1000 > deadline) throw new Error("container failed to be in healthy state");
        await new Promise((r) => setTimeout(r, 1000));
    }
}

/**
 * resourceDockerContainerUpdate: one ContainerUpdate for the restart policy and resources, a start when mustRun
 * went from false to true; every other updatable input (healthcheck, destroyGraceSeconds, wait, …) changes state only.
 */
async function updateContainer(old: StateResource, i: Record<string, any>, changes: readonly Change[], ctx: ProviderContext): Promise<{ outputs: Record<string, any> }> {
    const id = old.id ?? i.name;
    const top = new Set(changes.map((c) => c.path.split(/[.[]/)[0]));
    if ([...top].some((k) => CONTAINER_UPDATE_APPLIES.has(k))) {
        ctx.log(`updating container ${i.name} in place: ${[...top].filter((k) => CONTAINER_UPDATE_APPLIES.has(k)).join(", ")}`);
        await dockerRequest("POST", `/containers/${id}/update`, { RestartPolicy: restartPolicy(i), Memory: i.memory === undefined ? undefined : i.memory * 1024 * 1024, CpuShares: i.cpuShares });
    }
    if (top.has("mustRun") && old.inputs.mustRun === false && i.mustRun !== false && i.start !== false) {
        await dockerRequest("POST", `/containers/${id}/start`);
    }
    const stateOnly = [...top].filter((k) => !CONTAINER_UPDATE_APPLIES.has(k) && k !== "mustRun");
    if (stateOnly.length) ctx.log(`container ${i.name}: ${stateOnly.join(", ")} changed in state only; the running container keeps what it was created with`);
    return { outputs: { ...old.outputs, ...readBack(CONTAINER, i) } };
}

/**
 * resourceDockerContainerDelete: ContainerStop with a timeout of destroy_grace_seconds from the OLD state (0, the
 * default, is a kill right after the stop signal), then a forced remove, then wait until it is gone.
 */
async function deleteContainer(old: StateResource, ctx: ProviderContext): Promise<void> {
    const name = old.inputs.name ?? old.name;
    const id = old.id ?? name;
    if (!(await inspect(`/containers/${id}/json`))) {
        ctx.log(`container ${name} is already gone`);
        return;
    }
    const grace = Number(old.inputs.destroyGraceSeconds ?? 0);
    const started = Date.now();
    await dockerRequest("POST", `/containers/${id}/stop?t=${grace > 0 ? grace : 0}`).catch((err) => {
        if (!(err instanceof DockerApiError && err.status === 304)) throw err;
    });
    const removeVolumes = old.inputs.removeVolumes ?? true;
    await dockerRequest("DELETE", `/containers/${id}?force=1&v=${removeVolumes ? 1 : 0}`);
    while (await inspect(`/containers/${id}/json`)) await new Promise((r) => setTimeout(r, 200));
    ctx.log(`deleted container ${name} (stop timeout ${grace} s; ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/**
 * The provider's retry of a delete Docker refuses while something still uses the object: every `refreshSeconds`,
 * after `delaySeconds`, for up to 30 s.
 */
async function retryWhileInUse(what: string, attempt: () => Promise<unknown>, inUse: (err: DockerApiError) => boolean, delaySeconds: number, refreshSeconds: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    await new Promise((r) => setTimeout(r, delaySeconds * 1000));
    for (;;) {
        try {
            await attempt();
            return;
        } catch (err) {
            if (err instanceof DockerApiError && err.status === 404) return;
            if (!(err instanceof DockerApiError && inUse(err))) throw err;
            if (Date.now() + refreshSeconds * 1000 > deadline) throw new Error(`harness: ${what}: still in use after 30 s (${err.message})`);
        }
        await new Promise((r) => setTimeout(r, refreshSeconds * 1000));
    }
}

/** docker_volume Delete: VolumeRemove(force) retried while "in use", 2 s initial delay, 5 s refresh, 30 s timeout. */
async function deleteVolume(old: StateResource, ctx: ProviderContext): Promise<void> {
    const name: string = old.inputs.name ?? old.id;
    ctx.log(`deleting volume ${name}`);
    await retryWhileInUse(`delete of volume ${name}`, () => dockerRequest("DELETE", `/volumes/${name}?force=1`), (e) => e.status === 409 || /in use/.test(e.message), 2, 5);
}

/** docker_network Delete: NetworkRemove retried while it "has active endpoints", for 30 s. */
async function deleteNetwork(old: StateResource, ctx: ProviderContext): Promise<void> {
    const name: string = old.inputs.name ?? old.id;
    ctx.log(`deleting network ${name}`);
    await retryWhileInUse(`delete of network ${name}`, () => dockerRequest("DELETE", `/networks/${old.id ?? name}`), (e) => /active endpoints/.test(e.message), 0, 2);
}

/** Every object carrying the stack's harness label, by kind. */
export async function stackObjects(stack: string): Promise<{ containers: any[]; volumes: any[]; networks: any[] }> {
    const filter = labelFilter(`${HARNESS_LABEL}=${stack}`);
    return {
        containers: await dockerRequest<any[]>("GET", `/containers/json?all=1&filters=${filter}`),
        volumes: (await dockerRequest<any>("GET", `/volumes?filters=${filter}`)).Volumes ?? [],
        networks: await dockerRequest<any[]>("GET", `/networks?filters=${filter}`),
    };
}

/**
 * Removes what the harness created for the stack: containers, then volumes and networks. Volumes named in `keep`
 * (retainOnDelete) stay, as `pulumi destroy` leaves them.
 */
export async function destroyStackObjects(stack: string, log: (line: string) => void, keep: ReadonlySet<string> = new Set()): Promise<number> {
    const { containers, volumes, networks } = await stackObjects(stack);
    let removed = 0;
    for (const c of containers) {
        log(`removing container ${c.Names[0]}`);
        await dockerRequest("DELETE", `/containers/${c.Id}?force=1&v=1`);
        removed++;
    }
    for (const v of volumes) {
        if (keep.has(v.Name)) {
            log(`keeping volume ${v.Name} (retainOnDelete)`);
            continue;
        }
        log(`removing volume ${v.Name}`);
        await dockerRequest("DELETE", `/volumes/${v.Name}`);
        removed++;
    }
    for (const n of networks) {
        log(`removing network ${n.Name}`);
        await dockerRequest("DELETE", `/networks/${n.Id}`);
        removed++;
    }
    return removed;
}
