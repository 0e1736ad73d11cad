import { execFile } from "child_process";
import { createHash } from "crypto";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "fs";
import { join } from "path";
import { promisify } from "util";
import { LABEL, docker, dockerRun, dockerStream } from "./docker";

/** Flattened images, built once per image id and kept across runs (they are large: clear them by hand). */
export const IMAGE_CACHE = "/tmp/hadb-standin-images";
const IMAGE_TIMEOUT_MS = 10 * 60_000;

const building = new Map<string, Promise<string>>();

/**
 * A `docker load` archive of `image` with its whole file system in one layer, under the same tag.
 *
 * Why: the hosts' inner dockerd uses vfs, which stores every layer as a full copy, so a 5-layer image costs five
 * times its size per host; one layer costs it once. Why not `docker export | docker import`: import would need
 * its config re-applied with --change (no HEALTHCHECK there) and gives every host a different image id. Here the
 * archive is written by hand instead: the exported file system as the only layer, and the original image's
 * config (Entrypoint, Cmd, Env, User, WorkingDir, ExposedPorts, Healthcheck, ...) unchanged. A side effect that
 * matters: the hadb-base images carry a 0700 root directory (debootstrap's mktemp dir); overlay2 hides that,
 * vfs applies it and non-root members then fail to load their libraries. The export has no "./" entry, so the
 * flattened layer's root is 0755.
 */
export function flattenedImage(image: string): Promise<string> {
    let pending = building.get(image);
    if (!pending) {
        pending = flatten(image).finally(() => building.delete(image));
        building.set(image, pending);
    }
    return pending;
}

async function flatten(image: string): Promise<string> {
    const [info] = JSON.parse(await docker(["image", "inspect", image]));
    const file = join(IMAGE_CACHE, `${image.replace(/[^A-Za-z0-9_.-]/g, "_")}-${String(info.Id).replace("sha256:", "").slice(0, 12)}.tar`);
    if (existsSync(file)) return file;

    mkdirSync(IMAGE_CACHE, { recursive: true });
    const work = mkdtempSync(join(IMAGE_CACHE, ".build-"));
    const container = (await docker(["create", "--label", LABEL, image])).trim();
    try {
        const digest = createHash("sha256");
        await dockerStream(["export", container], { to: join(work, "layer.tar"), onData: (c) => digest.update(c) }, IMAGE_TIMEOUT_MS);
        const config = {
            architecture: info.Architecture,
            os: info.Os,
            created: info.Created,
            config: info.Config,
            rootfs: { type: "layers", diff_ids: [`sha256:${digest.digest("hex")}`] },
            history: [{ created: info.Created, created_by: `hadb stand-in: ${image} (${info.Id}) flattened to one layer` }],
        };
        writeFileSync(join(work, "config.json"), JSON.stringify(config));
        writeFileSync(join(work, "manifest.json"), JSON.stringify([{ Config: "config.json", RepoTags: [image], Layers: ["layer.tar"] }]));
        await promisify(execFile)("tar", ["-C", work, "-cf", `${file}.partial`, "manifest.json", "config.json", "layer.tar"], { timeout: IMAGE_TIMEOUT_MS });
        renameSync(`${file}.partial`, file);
        return file;
    } finally {
        rmSync(work, { recursive: true, force: true });
        await dockerRun(["rm", "-f", container]);
    }
}

/** Loads the flattened archive into a host's inner dockerd; returns the seconds it took. */
export async function loadImage(host: string, image: string): Promise<number> {
    const file = await flattenedImage(image);
    const started = Date.now();
    await dockerStream(["exec", "-i", host, "docker", "load"], { from: file }, IMAGE_TIMEOUT_MS);
    return (Date.now() - started) / 1000;
}
