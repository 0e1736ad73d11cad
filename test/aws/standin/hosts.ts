import { execFile } from "child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "fs";
import { join } from "path";
import { promisify } from "util";
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
    /** The Parameter Store directory shared by the hosts of a test; ssmStore(network) unless given. */
    readonly ssmStore?: string;
}

export interface BootedHost {
    readonly name: string;
    /** Date.now() just before `docker run`: the instance's power-on. */
    readonly startedAt: number;
    /** Seconds from power-on until the inner dockerd answered. */
    readonly dockerSeconds: number;
    /** Seconds each image took to load into the inner dockerd. */
    readonly imageSeconds: Record<string, number>;
}

/** Builds the host image (classic builder, as everywhere on this engine); a second call answers from the cache. */
export async function buildHostImage(): Promise<void> {
    await promisify(execFile)("docker", ["build", "--build-arg", "BASE_IMAGE=hadb-base:trixie", "-t", HOST_IMAGE, join(__dirname, "image")], {
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
        timeout: 15 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
    });
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
 * Powers on an instance: runs the host container with its NoCloud seed and volumes, waits (bounded) for its
 * dockerd, loads the images, then writes /run/hadb-standin/images-loaded inside it. cloud-init starts at once and
 * runs concurrently: user data that needs an image waits for it with `docker image inspect`.
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

    const startedAt = Date.now();
    const run = docker([
        "run", "-d", "--name", spec.name, "--hostname", spec.name, "--label", LABEL, "--label", `${SEED_LABEL}=${seed}`,
        "--network", spec.network, "--ip", spec.ip,
        // systemd as PID 1 and dockerd inside; --privileged is refused by this engine ("unable to apply caps").
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        ...cgroups,
        "-v", `${seed}:/var/lib/cloud/seed/nocloud:ro`,
        "-v", `${spec.ssmStore ?? ssmStore(spec.network)}:/var/lib/hadb-standin/ssm`,
        ...volumeFlags,
        HOST_IMAGE,
    ]);
    // Until the container exists, its label is the only record of the seed directory: no container, no seed.
    await run.catch((err) => {
        removeSeed(seed);
        throw err;
    });

    // `docker version`, not `docker info`: with --format, the CLI's `info` exits 0 when no daemon answers.
    await poll(`dockerd inside ${spec.name}`, async () => {
        const ran = await dockerRun(["exec", spec.name, "docker", "version", "--format", "{{.Server.Version}}"], 15_000);
        return ran.exitCode === 0 && ran.stdout.trim() ? true : undefined;
    }, 120_000);
    const dockerSeconds = (Date.now() - startedAt) / 1000;

    const imageSeconds: Record<string, number> = {};
    for (const image of spec.images) imageSeconds[image] = await loadImage(spec.name, image);
    await docker(["exec", spec.name, "sh", "-c", 'mkdir -p /run/hadb-standin && printf "%s\\n" "$@" > /run/hadb-standin/images-loaded', "sh", ...spec.images]);

    return { name: spec.name, startedAt, dockerSeconds, imageSeconds };
}

/** The instance's power cut: systemd, dockerd and the members die at once, with no shutdown. */
export async function killHost(name: string): Promise<void> {
    await docker(["kill", name]);
}

/** A clean shutdown: SIGRTMIN+3 (the image's STOPSIGNAL) makes systemd stop its units, dockerd its containers. */
export async function stopHost(name: string): Promise<void> {
    await docker(["stop", "-t", "60", name], 90_000);
}

/** Terminates the instance: the container goes, its EBS volumes stay (removeAll() deletes them). */
export async function removeHost(name: string): Promise<void> {
    const seed = await dockerRun(["inspect", name, "--format", `{{index .Config.Labels "${SEED_LABEL}"}}`]);
    await docker(["rm", "-f", "-v", name]);
    if (seed.exitCode === 0) removeSeed(seed.stdout.trim());
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
    for (const id of ids) {
        const seed = await dockerRun(["inspect", id, "--format", `{{index .Config.Labels "${SEED_LABEL}"}}`]);
        await docker(["rm", "-f", "-v", id], 90_000);
        if (seed.exitCode === 0) removeSeed(seed.stdout.trim());
    }
    for (const network of (await docker(["network", "ls", "--filter", `label=${LABEL}`, "--format", "{{.Name}}"])).split("\n").filter(Boolean)) {
        await docker(["network", "rm", network]);
        rmSync(join(SSM_ROOT, network), { recursive: true, force: true });
    }
    for (const volume of (await docker(["volume", "ls", "-q", "--filter", `label=${LABEL}`])).split("\n").filter(Boolean)) {
        await docker(["volume", "rm", volume]);
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
