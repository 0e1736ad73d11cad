import { execFile } from "child_process";
import { randomBytes } from "crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from "fs";
import { join } from "path";
import { promisify } from "util";
import { runChecked } from "../../harness/process";
import { LABEL, Ran, docker, dockerRun, poll } from "./docker";
import { loadImage } from "./images";
import { SSM_ROOT, ssmStore } from "./ssm";

/**
 * Stand-in EC2 instances: each instance is a systemd container of hadb/aws-host:local that boots its user data
 * through cloud-init's NoCloud source and runs the members with Docker inside. What stands in for what:
 * README.md in this folder.
 */
export const HOST_IMAGE = "hadb/aws-host:local";
const SEED_LABEL = "hadb.standin.seed";
/** The host's root disk for /var/lib/docker: a named volume, removed with the host. */
const DOCKER_VOLUME_LABEL = "hadb.standin.docker-volume";
// Must match "cgroup-parent" in image/daemon.json: the name removeAll() looks for when cleaning up.
const INNER_CGROUP = "hadb-standin-inner";

export interface HostSpec {
    /** The instance's name: container name and hostname. */
    readonly name: string;
    /** A Docker network made by createNetwork() with the VPC subnet's range. */
    readonly network: string;
    /** The instance's planned private IP. */
    readonly ip: string;
    /** The user data exactly as EC2 would get it (cloud-config or a script). */
    readonly userData: string;
    readonly instanceId: string;
    /** Attached EBS volumes; each is a named Docker volume kept across host replacement. */
    readonly volumes: { volumeId: string }[];
    /** Images to load into the host's dockerd (there is no registry to pull from). */
    readonly images: string[];
    /**
     * Extra names for loaded images, set before the user data may look for them: `{ image, as }` tags the loaded
     * `image` as `as` inside the host (the registry reference the user data runs, e.g. an ECR URL).
     */
    readonly tags?: readonly { readonly image: string; readonly as: string }[];
    /** The Parameter Store directory shared by the hosts of a test; ssmStore(network) unless given. */
    readonly ssmStore?: string;
    /**
     * The instance's security groups as the host's own packet filter: new inbound TCP connections are accepted only
     * on these ports from these sources (CIDRs); everything else inbound is dropped and counted (blockedInbound()).
     * Loopback and established traffic always pass; outbound is open (the groups' egress rules allow all).
     * Undefined: no filter.
     */
    readonly firewall?: readonly FirewallRule[];
    /**
     * Power on and load the images, but hold the user data (cloud-init's final stage, where runcmd runs) until
     * releaseUserData(): the stand-in's image load then happens before the instance's turn, as a registry would
     * already hold the image. Nothing of the user data's runcmd runs before the release.
     */
    readonly holdUserData?: boolean;
    /**
     * A stopped dockerd's `image/` and `overlay2/` directories (template.ts) to start the host's Docker storage from,
     * hard-linked rather than copied: the images in it are there at power-on without a load. Must be on the file
     * system of the engine's volumes. Images of `images` not in it are loaded as usual.
     */
    readonly dockerTemplate?: string;
}

/** One ingress permission: TCP `port` (or range up to `toPort`) from any of `sources` (CIDRs). */
export interface FirewallRule {
    readonly port: number;
    readonly toPort?: number;
    readonly sources: readonly string[];
}

export interface BootedHost {
    readonly name: string;
    /** Date.now() just before `docker run`: the instance's power-on. */
    readonly startedAt: number;
    /** Seconds from power-on until the inner dockerd answered. */
    readonly dockerSeconds: number;
    /** Seconds each image took to load into the inner dockerd (0: it came with the Docker template). */
    readonly imageSeconds: Record<string, number>;
}

/** Builds the host image (classic builder, as everywhere on this engine); a second call answers from the cache. */
export async function buildHostImage(): Promise<void> {
    await runChecked("docker", ["build", "--build-arg", "BASE_IMAGE=hadb-base:trixie", "-t", HOST_IMAGE, join(__dirname, "image")], 15 * 60_000, undefined, { ...process.env, DOCKER_BUILDKIT: "0" });
}

/** The network standing in for the VPC subnet; reused if it already exists with the same range. */
export async function createNetwork(name: string, subnet: string): Promise<void> {
    const existing = await dockerRun(["network", "inspect", name, "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"]);
    if (existing.exitCode === 0) {
        if (!existing.stdout.split(" ").includes(subnet)) throw new Error(`network ${name} exists with subnet ${existing.stdout.trim()}, not ${subnet}`);
        return;
    }
    await docker(["network", "create", "--label", LABEL, "--subnet", subnet, name]);
}

/** Where a Nitro instance sees an attached EBS volume: by-id name with the volume id's dash removed. */
export function volumePath(volumeId: string): string {
    return `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace("-", "")}`;
}

export function volumeName(volumeId: string): string {
    return `hadb-standin-${volumeId}`;
}

/**
 * systemd needs a writable cgroup tree. This engine runs cgroup v1 (hybrid): binding the host's /sys/fs/cgroup
 * whole lets the host's systemd remount that shared tmpfs read-only and create directories in it, on the
 * machine itself. So: a private tmpfs there, and each host hierarchy bound into it (cgroupns=host, so the
 * paths in /proc/self/cgroup are those of the bound trees). Read from this machine's /sys: the engine is local.
 */
function cgroupFlags(): string[] {
    if (existsSync("/sys/fs/cgroup/cgroup.controllers")) {
        throw new Error("cgroup v2 engine: the stand-in host was only proven on cgroup v1 (hybrid); see README.md");
    }
    const hierarchies = readdirSync("/sys/fs/cgroup", { withFileTypes: true }).filter((d) => d.isDirectory());
    return ["--cgroupns=host", "--tmpfs", "/sys/fs/cgroup", ...hierarchies.flatMap((d) => ["-v", `/sys/fs/cgroup/${d.name}:/sys/fs/cgroup/${d.name}:rw`])];
}

/**
 * Powers on an instance: runs the host container with its NoCloud seed, root disk and volumes (and firewall),
 * waits (bounded) for its dockerd, loads the images its Docker template lacks, tags them, then releases the user
 * data (releaseUserData) unless `holdUserData`. cloud-init starts at once, but its final stage (runcmd) waits for
 * that release, as user data on EC2 starts with the registry already holding the image.
 */
export async function bootHost(spec: HostSpec): Promise<BootedHost> {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(spec.name)) throw new Error(`not a host name: ${spec.name}`);
    if (!/^i-[0-9a-z]+$/.test(spec.instanceId)) throw new Error(`not an instance id: ${spec.instanceId}`);

    const cgroups = cgroupFlags();
    const seed = mkdtempSync(`/tmp/hadb-standin-seed-${spec.name}-`);
    writeFileSync(join(seed, "user-data"), spec.userData);
    // JSON strings are YAML strings: no quoting surprises.
    writeFileSync(join(seed, "meta-data"), `instance-id: ${JSON.stringify(spec.instanceId)}\nlocal-hostname: ${JSON.stringify(spec.name)}\n`);

    const volumeFlags: string[] = [];
    for (const { volumeId } of spec.volumes) {
        if (!/^vol-[0-9a-z]+$/.test(volumeId)) throw new Error(`not a volume id: ${volumeId}`);
        await docker(["volume", "create", "--label", LABEL, volumeName(volumeId)]);
        volumeFlags.push("-v", `${volumeName(volumeId)}:${volumePath(volumeId)}`);
    }

    // The root disk's Docker storage on a volume of its own: overlay2 cannot sit on the container's overlay root.
    const dockerVolume = `hadb-standin-docker-${spec.name}-${randomBytes(4).toString("hex")}`;
    await docker(["volume", "create", "--label", LABEL, dockerVolume]);
    if (spec.dockerTemplate) await seedDockerStorage(dockerVolume, spec.dockerTemplate);

    const startedAt = Date.now();
    const run = docker([
        "run", "-d", "--name", spec.name, "--hostname", spec.name, "--label", LABEL, "--label", `${SEED_LABEL}=${seed}`, "--label", `${DOCKER_VOLUME_LABEL}=${dockerVolume}`,
        ...(spec.network === "none" ? ["--network", "none"] : ["--network", spec.network, "--ip", spec.ip]),
        // systemd as PID 1 and dockerd inside; --privileged is refused by this engine ("unable to apply caps").
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        // runc joins a member's namespaces for `docker exec` and health checks through /proc/<pid>/ns, which needs
        // ptrace access to a member running as another user (uid 999): without it, "error executing setns process".
        "--cap-add", "SYS_PTRACE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        ...cgroups,
        "-v", `${seed}:/var/lib/cloud/seed/nocloud:ro`,
        "-v", `${spec.ssmStore ?? ssmStore(spec.network)}:/var/lib/hadb-standin/ssm`,
        ...volumeFlags,
        "-v", `${dockerVolume}:/var/lib/docker`,
        HOST_IMAGE,
    ]);
    // Until the container exists, its labels are the only record of the seed directory and the root disk.
    await run.catch(async (err) => {
        removeSeed(seed);
        await dockerRun(["volume", "rm", dockerVolume]);
        throw err;
    });

    if (spec.firewall) {
        // Before any member starts: cloud-init has not reached the user data's runcmd yet, and nothing listens.
        const applied = await hostExec(spec.name, ["sh", "-c", firewallScript(spec.firewall)], 30_000);
        if (applied.exitCode !== 0) throw new Error(`firewall of ${spec.name}: ${applied.stderr.trim()}`);
    }

    // `docker version`, not `docker info`: with --format, the CLI's `info` exits 0 when no daemon answers.
    await poll(`dockerd inside ${spec.name}`, async () => {
        const ran = await dockerRun(["exec", spec.name, "docker", "version", "--format", "{{.Server.Version}}"], 15_000);
        return ran.exitCode === 0 && ran.stdout.trim() ? true : undefined;
    }, 120_000);
    const dockerSeconds = (Date.now() - startedAt) / 1000;

    const imageSeconds: Record<string, number> = {};
    for (const image of spec.images) {
        const present = spec.dockerTemplate && (await dockerRun(["exec", spec.name, "docker", "image", "inspect", image], 30_000)).exitCode === 0;
        imageSeconds[image] = present ? 0 : await loadImage(spec.name, image);
    }
    for (const { image, as } of spec.tags ?? []) {
        if (!spec.images.includes(image)) throw new Error(`${spec.name}: cannot tag ${image} as ${as}: it is not among the images loaded`);
        await docker(["exec", spec.name, "docker", "tag", image, as]);
    }
    if (!spec.holdUserData) await releaseUserData(spec.name);

    return { name: spec.name, startedAt, dockerSeconds, imageSeconds };
}

/**
 * Lets a host's user data run (image/cloud-final-wait-images.conf waits for this marker): at once by bootHost,
 * or by the test for a host booted with holdUserData. Returns Date.now() at the release.
 */
export async function releaseUserData(name: string): Promise<number> {
    await docker(["exec", name, "sh", "-c", "mkdir -p /run/hadb-standin && docker images --format '{{.Repository}}:{{.Tag}}' > /run/hadb-standin/images-loaded"]);
    return Date.now();
}

const CIDR = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;

/**
 * iptables rules standing in for the instance's security groups (what EC2 enforces outside the instance, here
 * inside the host's network namespace, which its `--network host` members share). A refused connection's source
 * is remembered per port in /proc/net/xt_recent/hadb-blocked-<port> (other ports: hadb-blocked-other).
 */
function firewallScript(rules: readonly FirewallRule[]): string {
    const lines = ["set -eu", "iptables -A INPUT -i lo -j ACCEPT", "iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"];
    const ports = new Set<string>();
    for (const rule of rules) {
        if (!Number.isInteger(rule.port) || (rule.toPort !== undefined && !Number.isInteger(rule.toPort))) throw new Error(`not a port: ${JSON.stringify(rule)}`);
        const range = rule.toPort !== undefined && rule.toPort !== rule.port ? `${rule.port}:${rule.toPort}` : String(rule.port);
        ports.add(range);
        for (const source of rule.sources) {
            if (!CIDR.test(source)) throw new Error(`not an IPv4 CIDR: ${source}`);
            lines.push(`iptables -A INPUT -p tcp --syn -s ${source} --dport ${range} -j ACCEPT`);
        }
    }
    for (const range of ports) lines.push(`iptables -A INPUT -p tcp --syn --dport ${range} -m recent --name hadb-blocked-${range.replace(":", "-")} --set -j DROP`);
    lines.push("iptables -A INPUT -p tcp --syn -m recent --name hadb-blocked-other --set -j DROP", "iptables -A INPUT -m conntrack --ctstate NEW -j DROP");
    return lines.join("\n");
}

/**
 * Inbound connections the host's firewall refused since boot: per port (or "other"), the source addresses.
 * Empty when the security groups admitted everything that was tried.
 */
export async function blockedInbound(name: string): Promise<Record<string, string[]>> {
    const ran = await hostExec(name, ["sh", "-c", 'cd /proc/net/xt_recent 2>/dev/null || exit 0; for f in hadb-blocked-*; do [ -e "$f" ] || continue; sed "s/^src=\\([^ ]*\\).*/$f \\1/" "$f"; done'], 15_000);
    if (ran.exitCode !== 0) throw new Error(`reading the firewall of ${name}: ${ran.stderr.trim()}`);
    const blocked: Record<string, string[]> = {};
    for (const line of ran.stdout.split("\n").filter(Boolean)) {
        const [list, source] = line.split(" ");
        (blocked[list.replace("hadb-blocked-", "")] ??= []).push(source);
    }
    return blocked;
}

/** The instance's power cut: systemd, dockerd and the members die at once, with no shutdown. */
export async function killHost(name: string): Promise<void> {
    await docker(["kill", name]);
}

/** A clean shutdown: SIGRTMIN+3 (the image's STOPSIGNAL) makes systemd stop its units, dockerd its containers. */
export async function stopHost(name: string, graceSeconds = 60): Promise<void> {
    await docker(["stop", "-t", String(graceSeconds), name], (graceSeconds + 30) * 1000);
}

/** Terminates the instance: the container and its root disk go, its EBS volumes stay (removeAll() deletes them). */
export async function removeHost(name: string): Promise<void> {
    await removeContainer(name);
}

/** Removes a host container with its seed directory and root disk volume. */
async function removeContainer(id: string): Promise<void> {
    const labels = await dockerRun(["inspect", id, "--format", `{{index .Config.Labels "${SEED_LABEL}"}} {{index .Config.Labels "${DOCKER_VOLUME_LABEL}"}}`]);
    await docker(["rm", "-f", "-v", id], 90_000);
    if (labels.exitCode !== 0) return;
    const [seed, volume] = labels.stdout.trim().split(" ");
    removeSeed(seed ?? "");
    if (volume?.startsWith("hadb-standin-docker-")) await docker(["volume", "rm", volume], 90_000);
}

/**
 * Starts a root disk's Docker storage from a template: its image store and layers hard-linked (`cp -al`), which
 * takes a second where a load takes ten or more. Safe because nothing writes into them in place: image layers are
 * read-only lower directories to overlay2 (a container's changes go to its own upper directory), and dockerd
 * replaces its metadata files by writing new ones and renaming. Everything dockerd keeps open and writes in place
 * (its bolt databases: buildkit, network, volumes) is left out of templates.
 */
async function seedDockerStorage(volume: string, template: string): Promise<void> {
    const mountpoint = (await docker(["volume", "inspect", "--format", "{{.Mountpoint}}", volume])).trim();
    if (statSync(mountpoint).dev !== statSync(template).dev) throw new Error(`Docker template ${template} is not on the file system of ${mountpoint}: hard links are impossible`);
    await promisify(execFile)("cp", ["-al", join(template, "image"), join(template, "overlay2"), `${mountpoint}/`], { timeout: 120_000 });
}

/** Runs a command inside the host (not inside a member); never throws on its exit code. */
export function hostExec(name: string, argv: string[], timeoutMs = 60_000, input?: string): Promise<Ran> {
    return dockerRun(["exec", ...(input === undefined ? [] : ["-i"]), name, ...argv], timeoutMs, input);
}

export interface CloudInitStatus {
    /** "running", "done", "error", "disabled", ... (the `status:` line). */
    readonly status: string;
    /** `cloud-init status --long` as printed, for failure messages. */
    readonly text: string;
    /** 0 ok, 1 error, 2 done with recoverable errors ("degraded"). */
    readonly exitCode: number;
    /**
     * When cloud-init's last stage ended (Date.now() scale): the time its result.json was written. Measured
     * inside the host, so it does not depend on when the test looked; comparable with BootedHost.startedAt.
     */
    readonly finishedAt?: number;
}

export async function cloudInitStatus(name: string): Promise<CloudInitStatus> {
    const ran = await hostExec(name, ["cloud-init", "status", "--long"], 30_000);
    const status = /^status: (.*)$/m.exec(ran.stdout)?.[1]?.trim();
    if (!status) throw new Error(`cloud-init status --long in ${name} exited ${ran.exitCode}: ${ran.stdout}${ran.stderr}`);
    // cloud-init's own timestamps (last_update) count from the machine's boot, not the container's: use the file.
    const result = await hostExec(name, ["stat", "-c", "%.3Y", "/run/cloud-init/result.json"], 30_000);
    const finishedAt = result.exitCode === 0 ? Math.round(Number(result.stdout.trim()) * 1000) : undefined;
    return { status, text: ran.stdout + ran.stderr, exitCode: ran.exitCode, finishedAt };
}

/** Removes every host, network and volume the stand-in made, their seed and SSM directories, leftover cgroups. */
export async function removeAll(): Promise<void> {
    const ids = (await docker(["ps", "-aq", "--filter", `label=${LABEL}`])).split("\n").filter(Boolean);
    for (const id of ids) await removeContainer(id);
    for (const network of (await docker(["network", "ls", "--filter", `label=${LABEL}`, "--format", "{{.Name}}"])).split("\n").filter(Boolean)) {
        await docker(["network", "rm", network]);
        rmSync(join(SSM_ROOT, network), { recursive: true, force: true });
    }
    for (const volume of (await docker(["volume", "ls", "-q", "--filter", `label=${LABEL}`])).split("\n").filter(Boolean)) {
        await docker(["volume", "rm", volume], 90_000);
    }
    removeInnerCgroups();
}

function removeSeed(dir: string): void {
    // Only ever a directory bootHost made.
    if (dir.startsWith("/tmp/hadb-standin-seed-")) rmSync(dir, { recursive: true, force: true });
}

/**
 * The inner dockerd's cgroups (cgroupfs driver, parent relative to its own cgroup) nest inside the host
 * container's cgroup for most controllers, but in blkio and the unified hierarchy they land at the root as
 * /hadb-standin-inner/<id>; a killed host never removes them. They are empty once the host is gone: rmdir
 * refuses a cgroup that still has processes or children, so this cannot touch a live one.
 */
function removeInnerCgroups(): void {
    const removeEmpty = (dir: string): void => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeEmpty(join(dir, entry.name));
        try {
            rmdirSync(dir);
        } catch {
            /* busy: a running host's container */
        }
    };
    for (const hierarchy of readdirSync("/sys/fs/cgroup")) {
        const dir = join("/sys/fs/cgroup", hierarchy, INNER_CGROUP);
        if (existsSync(dir)) removeEmpty(dir);
    }
}
