import { createHash } from "crypto";
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "fs";
import { join } from "path";
import { docker } from "./docker";
import { HOST_IMAGE, bootHost, hostExec, removeHost } from "./hosts";

/**
 * Docker storage templates are Docker volumes with this label (its value: the key of their image ids), kept across
 * runs like IMAGE_CACHE and not removed by removeAll(): `docker volume rm` them by hand. A volume, not a directory
 * elsewhere: hard links cannot cross mount points, and hosts' root disks are volumes on the engine's mount.
 */
export const TEMPLATE_LABEL = "hadb.standin.docker-template";
const BUILDER = "hadb-standin-template";

const building = new Map<string, Promise<string>>();

/**
 * A directory holding the `image/` and `overlay2/` trees of a host's dockerd that loaded `images` (flattened, as
 * bootHost loads them), to start hosts' Docker storage from (HostSpec.dockerTemplate): every host then has the
 * images at power-on, hard-linked instead of loaded. Built once per set of image ids and host image, by a host
 * of the stand-in itself, so the layout is exactly what the hosts' dockerd (same version, same daemon.json) reads.
 */
export function dockerTemplate(images: readonly string[]): Promise<string> {
    const sorted = [...new Set(images)].sort();
    const key = sorted.join(" ");
    let pending = building.get(key);
    if (!pending) {
        pending = build(sorted).finally(() => building.delete(key));
        building.set(key, pending);
    }
    return pending;
}

async function imageId(image: string): Promise<string> {
    return (await docker(["image", "inspect", "--format", "{{.Id}}", image])).trim();
}

async function mountpoint(volume: string): Promise<string> {
    return (await docker(["volume", "inspect", "--format", "{{.Mountpoint}}", volume])).trim();
}

async function build(images: string[]): Promise<string> {
    const ids = await Promise.all([HOST_IMAGE, ...images].map(async (i) => `${i}=${await imageId(i)}`));
    const key = createHash("sha256").update(ids.join("\n")).digest("hex").slice(0, 16);
    const name = `hadb-standin-template-${key}`;
    const existing = (await docker(["volume", "ls", "-q", "--filter", `label=${TEMPLATE_LABEL}`])).split("\n").filter(Boolean);
    // Templates of other image ids are outdated: each holds a full copy of its images.
    for (const old of existing.filter((v) => v !== name)) await docker(["volume", "rm", old], 120_000);
    if (existing.includes(name)) {
        const dir = await mountpoint(name);
        if (existsSync(join(dir, "complete"))) return dir;
        await docker(["volume", "rm", name], 120_000);
    }

    await removeHost(BUILDER).catch(() => undefined);
    const ssm = mkdtempSync("/tmp/hadb-standin-template-ssm-");
    try {
        // No network, no user data: only its dockerd, loading the images.
        await bootHost({ name: BUILDER, network: "none", ip: "", userData: "#cloud-config\n{}\n", instanceId: "i-template", volumes: [], images, ssmStore: ssm, holdUserData: true });
        // A clean stop, so every file dockerd keeps is complete on disk.
        const stopped = await hostExec(BUILDER, ["systemctl", "stop", "docker.socket", "docker.service", "containerd.service"], 120_000);
        if (stopped.exitCode !== 0) throw new Error(`stopping the template's dockerd: ${stopped.stderr.trim()}`);
        const from = await mountpoint((await docker(["inspect", "--format", '{{index .Config.Labels "hadb.standin.docker-volume"}}', BUILDER])).trim());
        await docker(["volume", "create", "--label", `${TEMPLATE_LABEL}=${key}`, name]);
        const dir = await mountpoint(name);
        // Only the image store and the layers: dockerd's bolt databases (buildkit, network, volumes) are per host.
        for (const tree of ["image", "overlay2"]) renameSync(join(from, tree), join(dir, tree));
        writeFileSync(join(dir, "complete"), `${ids.join("\n")}\n`);
        return dir;
    } finally {
        await removeHost(BUILDER).catch(() => undefined);
        rmSync(ssm, { recursive: true, force: true });
    }
}
