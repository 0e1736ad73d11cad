import * as crypto from "crypto";
import { IMAGE_NAMES } from "../../../components/core/images";
import { HostDocument, nvmeDevicePath, readUserData } from "../../../components/targets/awsHost";
import { RecordedResource, StackRun, mockId } from "../../harness/mockRun";
import { dependencies } from "../../k8s/standin";
import { dockerRun, poll } from "./docker";
import { BootedHost, FirewallRule, bootHost, cloudInitStatus, createNetwork, hostExec, releaseUserData, removeHost, stopHost } from "./hosts";
import { getParameter, putParameter, ssmStore } from "./ssm";
import { dockerTemplate } from "./template";

/**
 * `pulumi up` of a stack's AWS resources onto stand-in EC2 hosts (hosts.ts): what the engine and the AWS provider
 * would do with the registrations a run under mocks recorded (test/harness/mockRun.ts), for the parts a host sees.
 *
 * - SSM parameters: every `aws:ssm/parameter:Parameter` value goes into the Parameter Store stand-in first (the
 *   instances depend on them, so Pulumi creates them before any instance).
 * - Instances: each `aws:ec2/instance:Instance` becomes a host on its network interface's fixed IP, with its user
 *   data unchanged, its instance ID the mock's, the EBS volumes its VolumeAttachments attach, the image its host
 *   document names (the local `hadb/<image>:local`, from the Docker storage template or loaded, tagged with that
 *   reference: there is no registry), and its security groups' ingress rules as the host's packet filter.
 * - Order: a host boots once every instance it depends on (through any chain of recorded dependencies) reported
 *   ready: its ready parameter holds its instance ID. That is the AwsTarget's rollout gate (`readyGate`): the
 *   program registers the next member of a service only after the previous one's gate resolved, and a service that
 *   starts after another depends on the other's in-service parameter, whose value waits for every gate. Hosts with
 *   no such dependency between them boot in parallel, as the engine would create them (or one at a time: `serial`).
 *
 * Not modelled: the load balancers (clients reach the proxy hosts' IPs directly, as with libpq multi-host URLs),
 * IAM (every host reads every parameter), the AMI, instance types, and any change but `userData` in replaceChanged.
 */

export const INSTANCE = "aws:ec2/instance:Instance";
const NIC = "aws:ec2/networkInterface:NetworkInterface";
const ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment";
const PARAMETER = "aws:ssm/parameter:Parameter";
const SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";

/** The network standing in for the VPC; it holds every subnet's range. */
export const STANDIN_NETWORK = "hadb-standin-aws";
export const STANDIN_VPC_CIDR = "10.78.0.0/16";

export interface ApplyOptions {
    readonly network?: string;
    /** The Docker network's range: must contain every subnet the stack places hosts in. */
    readonly vpcCidr?: string;
    /** One host at a time in registration order, instead of as the engine's dependency graph allows. */
    readonly serial?: boolean;
    /** Power hosts on ahead of their turn, their user data held until it comes (see applyStack). @default true */
    readonly preload?: boolean;
    /** How many hosts are powered on at once ahead of their turn. @default 2 */
    readonly preloadConcurrency?: number;
    /** Start hosts' Docker storage from a template holding the images (template.ts) instead of loading them. @default true */
    readonly dockerTemplate?: boolean;
    /** How long one host may take from its user data's start to its ready parameter (the target allows 30 minutes). */
    readonly readyTimeoutMs?: number;
    /** Enforce the security groups inside each host. @default true */
    readonly firewall?: boolean;
    readonly log?: (line: string) => void;
}

/** What one instance of a run needs to become a host. */
export interface PlannedHost {
    readonly member: string;
    /** `hadb:service` tag: the plan the member belongs to (etcd, pg, pg-proxy, ...). */
    readonly service: string;
    readonly urn: string;
    readonly ip: string;
    readonly userData: string;
    readonly document: HostDocument;
    readonly volumeIds: string[];
    readonly readyParameter: string;
    /** The local image loaded into the host, and the reference the host document runs it by. */
    readonly image: { readonly local: string; readonly ref: string };
    readonly firewall: FirewallRule[];
    /** Members whose readiness this one waits for before it is created. */
    readonly after: string[];
}

export interface HostTiming {
    readonly member: string;
    readonly service: string;
    readonly instanceId: string;
    /** Date.now() at the host's power-on. */
    readonly startedAt: number;
    /** Date.now() when its user data was let run: its turn (power-on when it was not preloaded). */
    readonly releasedAt: number;
    /** Date.now() when its ready parameter held its instance ID. */
    readonly readyAt: number;
    /** User data start to ready: what the rollout gate waited for this host (image load excluded when preloaded). */
    readonly seconds: number;
    /** Power-on to ready. */
    readonly bootSeconds: number;
    readonly dockerSeconds: number;
    readonly imageSeconds: number;
    /** replaceChanged only: when the old host's graceful stop began and when it was gone. */
    readonly stoppingAt?: number;
    readonly goneAt?: number;
}

export interface Applied {
    readonly hosts: PlannedHost[];
    readonly timings: HostTiming[];
    /** Start of applyStack to the last host ready. */
    readonly seconds: number;
}

interface LiveHost {
    planned: PlannedHost;
    instanceId: string;
    generation: number;
}

/** The hosts applyStack booted, per network: replaceChanged and replaceHost continue from them. */
const deployed = new Map<string, Map<string, LiveHost>>();
/** The Docker storage template of each network's hosts, if they use one. */
const templates = new Map<string, string>();

/**
 * The instance ID of a host's `generation`: the mock's ID for the first, then a new one per replacement, shaped
 * like AWS's (`i-` and 17 hex digits).
 */
export function instanceIdOf(member: string, generation: number): string {
    if (generation === 0) return mockId(INSTANCE, member);
    return `i-${crypto.createHash("sha256").update(`${INSTANCE}\0${member}\0${generation}`).digest("hex").slice(0, 17)}`;
}

/**
 * The Docker storage template hosts start from (template.ts): every catalogue image, not only one run's, so one
 * template serves every stack and engine; built once per set of image ids and kept across runs.
 */
export function standInTemplate(): Promise<string> {
    return dockerTemplate(IMAGE_NAMES.map((i) => `hadb/${i}:local`));
}

/** The `hadb/<image>:local` image a host document's reference stands for (`…/<prefix>/<image>:<tag>`). */
export function localImageOf(ref: string): string {
    const m = /\/([a-z0-9][a-z0-9._-]*)(?::[\w.-]+)?$/.exec(ref);
    if (!m || ref.includes("@")) throw new Error(`stand-in: cannot map the image reference ${ref} to a local image (expected <registry>/<path>/<image>:<tag>, not a digest)`);
    return `hadb/${m[1]}:local`;
}

function ipv4(ip: string): number {
    return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

export function cidrContains(cidr: string, ip: string): boolean {
    const [base, bits] = cidr.split("/");
    const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
    return ((ipv4(base) & mask) >>> 0) === ((ipv4(ip) & mask) >>> 0);
}

/** Every instance of a run as a host to boot, in registration order. Throws on anything it cannot stand in for. */
export function plannedHosts(run: StackRun): PlannedHost[] {
    const byType = (type: string) => run.resources.filter((r) => r.type === type);
    const byId = new Map(run.resources.filter((r) => r.custom).map((r) => [mockId(r.type, r.name), r]));
    const instances = byType(INSTANCE);
    const nics = new Map(instances.map((i) => [i.urn, byId.get(i.inputs.primaryNetworkInterface?.networkInterfaceId)]));
    const groupsOf = (nic: RecordedResource | undefined): string[] => nic?.inputs.securityGroups ?? [];
    const rules = byType(INGRESS);
    for (const r of rules) {
        const i = r.inputs;
        const known = new Set(["securityGroupId", "ipProtocol", "fromPort", "toPort", "description", "cidrIpv4", "referencedSecurityGroupId", "tags"]);
        const unknown = Object.keys(i).filter((k) => !known.has(k));
        if (unknown.length || i.ipProtocol !== "tcp") throw new Error(`stand-in: ingress rule ${r.name}: ${unknown.length ? `fields ${unknown.join(", ")}` : `protocol ${i.ipProtocol}`} not implemented`);
    }
    // Security group ID -> the fixed IPs of the network interfaces in it (a load balancer's group has none here).
    const members = new Map<string, string[]>();
    for (const nic of byType(NIC)) for (const g of groupsOf(nic)) members.set(g, [...(members.get(g) ?? []), `${nic.inputs.privateIps[0]}/32`]);
    const groupIds = new Set(byType(SECURITY_GROUP).map((g) => mockId(g.type, g.name)));

    const deps = dependencies(run.resources);
    const byUrn = new Map(run.resources.map((r) => [r.urn, r]));
    const instanceUrns = new Set(instances.map((i) => i.urn));
    // The instances each instance waits for: through any chain of non-instance resources, stopping at instances.
    const instanceDeps = (urn: string): string[] => {
        const found = new Set<string>();
        const seen = new Set<string>();
        const walk = (u: string, depth: number) => {
            if (depth > 200) throw new Error(`stand-in: dependency chain too deep at ${u}`);
            for (const d of deps.get(u) ?? []) {
                if (seen.has(d)) continue;
                seen.add(d);
                if (instanceUrns.has(d)) found.add(byUrn.get(d)!.name);
                else walk(d, depth + 1);
            }
        };
        walk(urn, 0);
        return [...found];
    };

    return instances.map((instance): PlannedHost => {
        const nic = nics.get(instance.urn);
        if (!nic) throw new Error(`stand-in: instance ${instance.name} has no recorded network interface (${instance.inputs.primaryNetworkInterface?.networkInterfaceId})`);
        const { document } = readUserData(instance.inputs.userData);
        const id = mockId(instance.type, instance.name);
        const volumeIds = byType(ATTACHMENT)
            .filter((a) => a.inputs.instanceId === id)
            .map((a) => a.inputs.volumeId as string);
        // The host document must name exactly the devices of the volumes attached to its instance.
        const devices = document.volumes.map((v) => v.device).sort();
        const attached = volumeIds.map(nvmeDevicePath).sort();
        if (JSON.stringify(devices) !== JSON.stringify(attached)) {
            throw new Error(`stand-in: ${instance.name}'s user data mounts ${devices.join(", ") || "nothing"} but its attachments give ${attached.join(", ") || "nothing"}`);
        }
        const readyParameter = instance.inputs.tags?.["hadb:ready-parameter"];
        if (readyParameter !== document.readyParameter) throw new Error(`stand-in: ${instance.name}: tag hadb:ready-parameter ${readyParameter} differs from the host document's ${document.readyParameter}`);
        const own = groupsOf(nic);
        for (const g of own) if (!groupIds.has(g)) throw new Error(`stand-in: ${instance.name}'s network interface is in ${g}, which the stack does not declare`);
        const firewall = rules
            .filter((r) => own.includes(r.inputs.securityGroupId))
            .map((r) => ({
                port: r.inputs.fromPort as number,
                toPort: r.inputs.toPort as number,
                sources: r.inputs.cidrIpv4 ? [r.inputs.cidrIpv4 as string] : (members.get(r.inputs.referencedSecurityGroupId) ?? []),
            }))
            .filter((r) => r.sources.length > 0);
        return {
            member: instance.name,
            service: instance.inputs.tags?.["hadb:service"],
            urn: instance.urn,
            ip: nic.inputs.privateIps[0],
            userData: instance.inputs.userData,
            document,
            volumeIds,
            readyParameter,
            image: { local: localImageOf(document.image), ref: document.image },
            firewall,
            after: instanceDeps(instance.urn),
        };
    });
}

/** Whether the run's security groups let `fromIp` open a TCP connection to `to`'s `port`. */
export function admitted(to: PlannedHost, port: number, fromIp: string): boolean {
    return to.firewall.some((r) => port >= r.port && port <= (r.toPort ?? r.port) && r.sources.some((s) => cidrContains(s, fromIp)));
}

/** Writes the run's SSM parameters as Pulumi creates or updates them; `skip` names are left as they are. */
function writeParameters(run: StackRun, store: string, skip: (r: RecordedResource) => boolean = () => false): void {
    for (const r of run.resources.filter((x) => x.type === PARAMETER && !skip(x))) {
        if (typeof r.inputs.value !== "string" || typeof r.inputs.name !== "string") throw new Error(`stand-in: parameter ${r.name} has no plain name and value`);
        putParameter(store, r.inputs.name, r.inputs.value);
    }
}

/** The last lines of hadb-host's output (cloud-init's output log) inside a host, for failure messages. */
export async function bootLog(member: string, lines = 30): Promise<string> {
    const ran = await hostExec(member, ["tail", "-n", String(lines), "/var/log/cloud-init-output.log"], 15_000).catch((err: Error) => ({ stdout: "", stderr: err.message, exitCode: 1 }));
    return ran.exitCode === 0 ? ran.stdout : `(no cloud-init output log: ${ran.stderr.trim()})`;
}

/** Powers on one generation of a member's host: container, firewall, dockerd, its image loaded and tagged. */
function powerOn(network: string, store: string, planned: PlannedHost, generation: number, options: ApplyOptions, hold: boolean): Promise<BootedHost> {
    const instanceId = instanceIdOf(planned.member, generation);
    (options.log ?? (() => {}))(`power on ${planned.member} (${instanceId}) on ${planned.ip}${hold ? ", user data held" : ""}`);
    return bootHost({
        name: planned.member,
        network,
        ip: planned.ip,
        userData: planned.userData,
        instanceId,
        volumes: planned.volumeIds.map((volumeId) => ({ volumeId })),
        images: [planned.image.local],
        tags: [{ image: planned.image.local, as: planned.image.ref }],
        ssmStore: store,
        firewall: options.firewall === false ? undefined : planned.firewall,
        holdUserData: hold,
        dockerTemplate: templates.get(network),
    });
}

/**
 * Waits (bounded) for a host's ready parameter to hold its instance ID; fails early, with hadb-host's output, when
 * cloud-init ended without it. Returns Date.now() when it was seen.
 */
async function awaitReady(store: string, planned: PlannedHost, instanceId: string, options: ApplyOptions): Promise<number> {
    let checked = 0;
    const ready = await poll(
        `${planned.member} (${instanceId}) to report ready in ${planned.readyParameter}`,
        async (): Promise<{ at: number } | { fatal: string } | undefined> => {
            if (getParameter(store, planned.readyParameter) === instanceId) return { at: Date.now() };
            // Every ~5 s: has cloud-init finished without reporting ready? Then it never will.
            if (++checked % 10 === 0) {
                const status = await cloudInitStatus(planned.member).catch(() => undefined);
                if (status && !["running", "not started", "not run"].includes(status.status) && getParameter(store, planned.readyParameter) !== instanceId) {
                    return { fatal: `cloud-init is ${status.status} and the host never reported ready:\n${status.text}` };
                }
            }
            return undefined;
        },
        options.readyTimeoutMs ?? 600_000,
        500,
    ).catch(async (err: Error) => {
        throw new Error(`${err.message}\n--- ${planned.member}: /var/log/cloud-init-output.log ---\n${await bootLog(planned.member)}`);
    });
    if ("fatal" in ready.value) throw new Error(`${planned.member} (${instanceId}): ${ready.value.fatal}\n--- /var/log/cloud-init-output.log ---\n${await bootLog(planned.member)}`);
    return ready.value.at;
}

/**
 * One host's life until ready: powered on (now, or earlier by a preload: `powered`), its turn awaited (`turn`),
 * its user data released, its ready parameter awaited.
 */
async function bootOne(
    network: string,
    store: string,
    planned: PlannedHost,
    generation: number,
    options: ApplyOptions,
    powered?: Promise<BootedHost>,
    turn: () => Promise<unknown> = async () => {},
): Promise<{ live: LiveHost; timing: HostTiming }> {
    const instanceId = instanceIdOf(planned.member, generation);
    let booted: BootedHost;
    let releasedAt: number;
    if (powered) {
        // Preloaded: powered on ahead, its user data held until its turn.
        booted = await powered;
        await turn();
        releasedAt = await releaseUserData(planned.member);
    } else {
        // Created at its turn, as the engine creates the instance; the user data runs once its images are in.
        await turn();
        booted = await powerOn(network, store, planned, generation, options, false);
        releasedAt = booted.startedAt;
    }
    const readyAt = await awaitReady(store, planned, instanceId, options);
    const timing: HostTiming = {
        member: planned.member,
        service: planned.service,
        instanceId,
        startedAt: booted.startedAt,
        releasedAt,
        readyAt,
        seconds: (readyAt - releasedAt) / 1000,
        bootSeconds: (readyAt - booted.startedAt) / 1000,
        dockerSeconds: booted.dockerSeconds,
        imageSeconds: Object.values(booted.imageSeconds).reduce((a, b) => a + b, 0),
    };
    (options.log ?? (() => {}))(
        `${planned.member} ready ${timing.seconds.toFixed(1)} s after its user data started (power-on to ready ${timing.bootSeconds.toFixed(1)} s; dockerd ${timing.dockerSeconds.toFixed(1)} s, image ${timing.imageSeconds.toFixed(1)} s)`,
    );
    return { live: { planned, instanceId, generation }, timing };
}

/**
 * `pulumi up` of a run onto stand-in hosts: parameters first, then every instance's host as the engine would
 * create it (see the top of this file). Returns each host's timings. Nothing of a previous apply is reused:
 * call removeAll() first.
 *
 * With `preload` (the default), hosts are powered on two at a time in registration order ahead of their turn,
 * their user data held, and released when their turn comes (every instance they depend on is ready). Which member
 * starts when is unchanged; only the stand-in's power-on (systemd, dockerd, and image loads without a template)
 * moves out of the critical path. Measured on the PostgreSQL stack with the template: 51 s with preload, 64 s
 * without, 61 s with preload but one host at a time (`serial`).
 */
export async function applyStack(run: StackRun, options: ApplyOptions = {}): Promise<Applied> {
    const started = Date.now();
    const network = options.network ?? STANDIN_NETWORK;
    const vpc = options.vpcCidr ?? STANDIN_VPC_CIDR;
    const hosts = plannedHosts(run);
    for (const h of hosts) if (!cidrContains(vpc, h.ip)) throw new Error(`stand-in: ${h.member}'s address ${h.ip} is outside the network's ${vpc}`);
    for (const image of new Set(hosts.map((h) => h.image.local))) {
        if ((await dockerRun(["image", "inspect", image], 30_000)).exitCode !== 0) throw new Error(`stand-in: ${image} is not on this engine: run scripts/prepare-machine.sh`);
    }
    await createNetwork(network, vpc);
    const store = ssmStore(network);
    writeParameters(run, store);
    templates.delete(network);
    if (options.dockerTemplate ?? true) templates.set(network, await standInTemplate());

    const live = new Map<string, LiveHost>();
    deployed.set(network, live);
    const timings: HostTiming[] = [];
    const preload = options.preload ?? true;
    const powered = new Map<string, Promise<BootedHost>>();
    if (preload) {
        // `preloadConcurrency` queues, each powering on every n-th host in registration order.
        const lanes: Promise<unknown>[] = Array.from({ length: Math.max(1, options.preloadConcurrency ?? 2) }, () => Promise.resolve());
        hosts.forEach((h, i) => {
            const lane = i % lanes.length;
            const p = lanes[lane].then(() => powerOn(network, store, h, 0, options, true));
            // Handled where it is awaited; a rejection here must not go unobserved.
            p.catch(() => undefined);
            powered.set(h.member, p);
            lanes[lane] = p.catch(() => undefined);
        });
    }
    // Serial: each host waits for the one registered before it; otherwise for the instances it depends on.
    const after = new Map(hosts.map((h, i) => [h.member, options.serial ? (i ? [hosts[i - 1].member] : []) : h.after]));
    const done = new Map<string, Promise<void>>();
    const boot = (member: string): Promise<void> => {
        let p = done.get(member);
        if (!p) {
            const h = hosts.find((x) => x.member === member)!;
            p = (async () => {
                const { live: l, timing } = await bootOne(network, store, h, 0, options, powered.get(member), () => Promise.all(after.get(member)!.map(boot)));
                live.set(member, l);
                timings.push(timing);
            })();
            done.set(member, p);
        }
        return p;
    };
    // allSettled: a failed host must not leave others booting unobserved after this returns.
    const results = await Promise.allSettled(hosts.map((h) => boot(h.member)));
    await Promise.allSettled(powered.values());
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return { hosts, timings, seconds: (Date.now() - started) / 1000 };
}

/** The member's host as applyStack (or a replacement since) left it. */
export function liveHost(member: string, network = STANDIN_NETWORK): { planned: PlannedHost; instanceId: string; generation: number } {
    const host = deployed.get(network)?.get(member);
    if (!host) throw new Error(`stand-in: no host ${member} was applied on ${network}`);
    return host;
}

/**
 * Replaces one member's instance as EC2 would for a new one: the old host is stopped gracefully (`graceful`, a
 * terminated instance shuts down) or is assumed gone (after killHost), then removed with its root disk; its EBS
 * volumes stay. A new host boots with the same (or `planned`'s new) user data and a new instance ID; returns once it
 * reported ready.
 */
export async function replaceHost(member: string, options: ApplyOptions & { graceful?: boolean; planned?: PlannedHost } = {}): Promise<HostTiming> {
    const network = options.network ?? STANDIN_NETWORK;
    const current = liveHost(member, network);
    const stoppingAt = Date.now();
    // The unit's own stop timeout (grace + 30 s) and a little more: systemd stops the member before the power goes.
    if (options.graceful) await stopHost(member, current.planned.document.stopGraceSeconds + 45);
    await removeHost(member);
    const goneAt = Date.now();
    const { live, timing } = await bootOne(network, ssmStore(network), options.planned ?? current.planned, current.generation + 1, options);
    deployed.get(network)!.set(member, live);
    return { ...timing, stoppingAt, goneAt };
}

/**
 * The update `pulumi up` makes from `previousRun` to `nextRun` for the hosts: parameters updated first (instances
 * depend on them; ready parameters keep their value: `ignoreChanges`), then each instance whose user data changed
 * (`userDataReplaceOnChange`) replaced delete-before-replace — stopped gracefully and terminated, its volumes kept,
 * a new instance booted with the new user data — one at a time in registration order (each member's chain), the
 * next only once the new one reported ready. Returns the replacements' timings in order.
 */
export async function replaceChanged(previousRun: StackRun, nextRun: StackRun, options: ApplyOptions = {}): Promise<HostTiming[]> {
    const network = options.network ?? STANDIN_NETWORK;
    const before = new Map(plannedHosts(previousRun).map((h) => [h.member, h]));
    const after = plannedHosts(nextRun);
    const added = after.filter((h) => !before.has(h.member)).map((h) => h.member);
    const removed = [...before.keys()].filter((m) => !after.some((h) => h.member === m));
    if (added.length || removed.length) throw new Error(`stand-in: replaceChanged handles changed hosts only; added ${added.join(", ") || "none"}, removed ${removed.join(", ") || "none"}`);
    for (const h of after) {
        const old = before.get(h.member)!;
        if (old.ip !== h.ip || JSON.stringify(old.volumeIds) !== JSON.stringify(h.volumeIds)) throw new Error(`stand-in: ${h.member}'s address or volumes changed: not implemented`);
    }
    const ignored = new Set(nextRun.resources.filter((r) => r.type === PARAMETER && r.options?.ignoreChanges.includes("value")).map((r) => r.urn));
    writeParameters(nextRun, ssmStore(network), (r) => ignored.has(r.urn));
    const timings: HostTiming[] = [];
    for (const h of after.filter((x) => x.userData !== before.get(x.member)!.userData)) {
        timings.push(await replaceHost(h.member, { ...options, graceful: true, planned: h }));
    }
    return timings;
}
