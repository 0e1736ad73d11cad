import { execFileSync } from "child_process";
import * as crypto from "crypto";
import { RecordedResource } from "./mockRun";
import { dockerRequest, DockerApiError, labelFilter, tarOneFile } from "./dockerApi";

/**
 * Applies the @pulumi/docker resources a stack registered to the local engine, reading each input field
 * the way the provider documents it. A field the harness does not implement is an error, never ignored.
 */

/** The input fields implemented per type; nested objects list their own fields, arrays of objects too. */
type Shape = { [field: string]: true | Shape };
const SHAPES: Record<string, Shape> = {
    "docker:index/image:Image": {
        imageName: true,
        skipPush: true,
        buildOnPreview: true,
        build: { context: true, dockerfile: true, args: true, builderVersion: true, platform: true, target: true },
    },
    "docker:index/network:Network": {
        name: true,
        driver: true,
        internal: true,
        attachable: true,
        ipamConfigs: { subnet: true, gateway: true, ipRange: true },
        labels: { label: true, value: true },
    },
    "docker:index/volume:Volume": { name: true, driver: true, labels: { label: true, value: true } },
    "docker:index/container:Container": {
        name: true,
        image: true,
        hostname: true,
        envs: true,
        command: true,
        entrypoints: true,
        user: true,
        workingDir: true,
        restart: true,
        mustRun: true,
        start: true,
        wait: true,
        waitTimeout: true,
        stopSignal: true,
        stopTimeout: true,
        destroyGraceSeconds: true,
        init: true,
        shmSize: true,
        labels: { label: true, value: true },
        ports: { internal: true, external: true, ip: true, protocol: true },
        networksAdvanced: { name: true, aliases: true },
        volumes: { volumeName: true, containerPath: true, readOnly: true },
        uploads: { file: true, content: true, contentBase64: true, executable: true, permissions: true, owner: true, group: true },
        healthcheck: { tests: true, interval: true, timeout: true, retries: true, startPeriod: true, startInterval: true },
        capabilities: { adds: true, drops: true },
    },
};

/** Types the harness accepts without deploying anything: their values come from the mock. */
const VALUE_ONLY_TYPES = new Set(["random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString", "random:index/randomId:RandomId"]);
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

export interface ApplyOptions {
    readonly stack: string;
    readonly log: (line: string) => void;
}

/** Deploys every resource in dependency order. Re-running with unchanged inputs leaves containers alone. */
export async function applyResources(resources: RecordedResource[], options: ApplyOptions): Promise<void> {
    const ordered = dependencyOrder(resources);
    for (const r of ordered) {
        if (VALUE_ONLY_TYPES.has(r.type)) continue;
        const shape = SHAPES[r.type] ?? PROVIDER_SHAPES[r.type];
        if (!shape) throw new Error(`harness: ${r.type} "${r.name}" is not a resource type the harness can deploy`);
        checkShape(`${r.type} "${r.name}"`, r.inputs, shape);
    }
    for (const r of ordered) {
        const labels = { [HARNESS_LABEL]: options.stack, ...toLabels(r.inputs.labels) };
        switch (r.type) {
            case "docker:index/image:Image":
                buildImage(r, options);
                break;
            case "docker:index/network:Network":
                await ensureNetwork(r, labels, options);
                break;
            case "docker:index/volume:Volume":
                await ensureVolume(r, labels, options);
                break;
            case "docker:index/container:Container":
                await ensureContainer(r, labels, options);
                break;
        }
    }
}

function toLabels(labels: { label: string; value: string }[] | undefined): Record<string, string> {
    return Object.fromEntries((labels ?? []).map((l) => [l.label, l.value]));
}

function buildImage(r: RecordedResource, options: ApplyOptions): void {
    const { imageName, build = {} } = r.inputs;
    if (r.inputs.skipPush !== true) throw new Error(`harness: image ${imageName} would be pushed (skipPush is not true); there is no registry here`);
    const args = ["build", "-q", "-t", imageName];
    for (const [k, v] of Object.entries(build.args ?? {})) args.push("--build-arg", `${k}=${v}`);
    if (build.dockerfile) args.push("-f", build.dockerfile);
    if (build.platform) args.push("--platform", build.platform);
    if (build.target) args.push("--target", build.target);
    args.push(build.context ?? ".");
    options.log(`building image ${imageName}`);
    // This engine (Docker 20.10 from Debian) builds reliably with the classic builder only.
    const buildkit = build.builderVersion === "BuilderV1" ? "0" : "1";
    try {
        execFileSync("docker", args, { env: { ...process.env, DOCKER_BUILDKIT: buildkit }, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
    } catch (err: any) {
        throw new Error(`harness: docker build of ${imageName} failed:\n${err.stderr?.toString() ?? err.message}`);
    }
}

async function ensureNetwork(r: RecordedResource, labels: Record<string, string>, options: ApplyOptions): Promise<void> {
    const name = r.inputs.name ?? r.name;
    await createUnlessOwned("network", name, `/networks/${name}`, options, () =>
        dockerRequest("POST", "/networks/create", {
            Name: name,
            CheckDuplicate: true,
            Driver: r.inputs.driver ?? "bridge",
            Internal: r.inputs.internal ?? false,
            Attachable: r.inputs.attachable ?? false,
            IPAM: r.inputs.ipamConfigs
                ? { Driver: "default", Config: r.inputs.ipamConfigs.map((c: any) => ({ Subnet: c.subnet, Gateway: c.gateway, IPRange: c.ipRange })) }
                : undefined,
            Labels: labels,
        }),
    );
}

async function ensureVolume(r: RecordedResource, labels: Record<string, string>, options: ApplyOptions): Promise<void> {
    const name = r.inputs.name ?? r.name;
    await createUnlessOwned("volume", name, `/volumes/${name}`, options, () =>
        dockerRequest("POST", "/volumes/create", { Name: name, Driver: r.inputs.driver ?? "local", Labels: labels }),
    );
}

/** Networks and volumes are kept across `up`s (as Pulumi keeps unchanged resources); a foreign one is an error. */
async function createUnlessOwned(kind: string, name: string, path: string, options: ApplyOptions, create: () => Promise<unknown>): Promise<void> {
    const existing = await inspect(path);
    if (existing) {
        ownedOrFail(kind, name, existing.Labels, options.stack);
        return;
    }
    options.log(`creating ${kind} ${name}`);
    await create();
}

/** Go-style durations as the provider takes them ("2s", "500ms", "1m"), in nanoseconds for the API. */
export function durationNs(value: string | undefined): number | undefined {
    if (value === undefined) return undefined;
    const units: Record<string, number> = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
    let total = 0;
    const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
    let consumed = 0;
    for (let m = re.exec(value); m; m = re.exec(value)) {
        total += Number(m[1]) * units[m[2]];
        consumed += m[0].length;
    }
    if (consumed !== value.length || consumed === 0) throw new Error(`harness: duration ${JSON.stringify(value)} is not of the form 2s, 500ms, 1m`);
    return Math.round(total);
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

async function ensureContainer(r: RecordedResource, labels: Record<string, string>, options: ApplyOptions): Promise<void> {
    const i = r.inputs;
    const name: string = i.name ?? r.name;
    // Replace only when the inputs changed, as `pulumi up` would; the hash rides along as a label.
    const inputsHash = crypto.createHash("sha256").update(JSON.stringify(i)).digest("hex").slice(0, 16);
    const imageId = (await dockerRequest("GET", `/images/${encodeURIComponent(i.image)}/json`)).Id;
    const existing = await inspect(`/containers/${name}/json`);
    if (existing) {
        ownedOrFail("container", name, existing.Config.Labels, options.stack);
        const same = existing.Config.Labels["hadb.harness.inputs"] === inputsHash && existing.Image === imageId;
        if (same) {
            if (i.mustRun !== false && i.start !== false && !existing.State.Running) await dockerRequest("POST", `/containers/${name}/start`);
            return;
        }
        options.log(`replacing container ${name}`);
        // As the provider deletes: stop with the old state's destroyGraceSeconds (0: killed at once), then remove.
        const grace = Number(existing.Config.Labels["hadb.harness.destroyGrace"] ?? 0);
        await dockerRequest("POST", `/containers/${name}/stop?t=${grace}`);
        await dockerRequest("DELETE", `/containers/${name}?force=1`);
    } else {
        options.log(`creating container ${name}`);
    }
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
        Labels: { ...labels, "hadb.harness.inputs": inputsHash, "hadb.harness.destroyGrace": String(i.destroyGraceSeconds ?? 0) },
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
            RestartPolicy: { Name: i.restart ?? "no" },
            Binds: (i.volumes ?? []).map((v: any) => {
                if (!v.volumeName || !v.containerPath) throw new Error(`harness: container ${name}: volumes need volumeName and containerPath`);
                return `${v.volumeName}:${v.containerPath}${v.readOnly ? ":ro" : ""}`;
            }),
            NetworkMode: networks[0]?.name ?? "bridge",
            Init: i.init,
            ShmSize: i.shmSize === undefined ? undefined : i.shmSize * 1024 * 1024,
            CapAdd: i.capabilities?.adds,
            CapDrop: i.capabilities?.drops,
        },
        NetworkingConfig: networks[0] ? { EndpointsConfig: { [networks[0].name]: { Aliases: networks[0].aliases ?? [] } } } : undefined,
    };
    await dockerRequest("POST", `/containers/create?name=${encodeURIComponent(name)}`, body);
    for (const n of networks.slice(1)) {
        await dockerRequest("POST", `/networks/${n.name}/connect`, { Container: name, EndpointConfig: { Aliases: n.aliases ?? [] } });
    }
    for (const u of i.uploads ?? []) {
        const content = u.contentBase64 !== undefined ? Buffer.from(u.contentBase64, "base64") : Buffer.from(u.content ?? "", "utf8");
        const tar = tarOneFile(u.file, content, uploadMode(u), numericId("owner", u.owner), numericId("group", u.group ?? u.owner));
        await dockerRequest("PUT", `/containers/${name}/archive?path=/`, tar, "application/x-tar");
    }
    if (i.start === false) return;
    await dockerRequest("POST", `/containers/${name}/start`);
    if (i.wait) await waitHealthy(name, (i.waitTimeout ?? 60) * 1000);
}

async function waitHealthy(name: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const state = (await dockerRequest("GET", `/containers/${name}/json`)).State;
        if (state.Health?.Status === "healthy" || (!state.Health && state.Running)) return;
        await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`harness: container ${name} was not healthy within ${timeoutMs / 1000} s (wait: true)`);
}

async function inspect(path: string): Promise<any | undefined> {
    try {
        return await dockerRequest("GET", path);
    } catch (err) {
        if (err instanceof DockerApiError && err.status === 404) return undefined;
        throw err;
    }
}

function ownedOrFail(kind: string, name: string, labels: Record<string, string> | null, stack: string): void {
    if (labels?.[HARNESS_LABEL] !== stack) {
        throw new Error(`harness: a ${kind} named ${name} exists that this harness did not create for stack ${stack}; remove or rename it`);
    }
}

/** Removes exactly what the harness created for the stack: containers, then volumes and networks. */
export async function destroyStackObjects(stack: string, log: (line: string) => void): Promise<number> {
    const filter = labelFilter(`${HARNESS_LABEL}=${stack}`);
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
    return removed;
}
