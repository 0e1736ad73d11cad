import { execFileSync } from "child_process";
import * as http from "http";
import * as path from "path";
import { dockerRequest, DockerApiError } from "../../harness/dockerApi";
import { PROJECT_ROOT } from "../../harness/stackConfig";
import { IMAGES, ImageName } from "../../../components/core/images";

/**
 * What the stand-in needs from the Engine API beyond test/harness/dockerApi.ts's JSON calls: raw streams
 * (exec output, logs), exit codes, and image preparation. Same socket, same API version.
 */
const SOCKET = process.env.DOCKER_SOCKET ?? "/var/run/docker.sock";
const API = "/v1.41";

export { dockerRequest };

export async function inspect(apiPath: string): Promise<any | undefined> {
    try {
        return await dockerRequest("GET", apiPath);
    } catch (err) {
        if (err instanceof DockerApiError && err.status === 404) return undefined;
        throw err;
    }
}

/** Ignores "not found" and "not running" (a delete of something already gone). */
export async function quietly(work: Promise<unknown>): Promise<void> {
    try {
        await work;
    } catch (err) {
        if (err instanceof DockerApiError && (err.status === 404 || err.status === 409 || err.status === 304)) return;
        throw err;
    }
}

/** A request whose answer is a raw (multiplexed) stream: read it whole, bounded in time. */
function rawRequest(method: string, apiPath: string, body: unknown, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const req = http.request({
            socketPath: SOCKET,
            method,
            path: API + apiPath,
            headers: payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {},
        });
        const timer = setTimeout(() => req.destroy(new Error(`${method} ${apiPath}: no end of stream within ${timeoutMs / 1000} s`)), timeoutMs);
        req.on("response", (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => {
                clearTimeout(timer);
                const buf = Buffer.concat(chunks);
                if ((res.statusCode ?? 0) >= 400) reject(new DockerApiError(res.statusCode ?? 0, `${method} ${apiPath}: ${res.statusCode} ${buf.toString("utf8")}`));
                else resolve(buf);
            });
            res.on("error", (e) => {
                clearTimeout(timer);
                reject(e);
            });
        });
        req.on("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
        if (payload) req.write(payload);
        req.end();
    });
}

/** Splits Docker's multiplexed stream (8-byte frame headers) into stdout and stderr. */
export function demux(buf: Buffer): { stdout: string; stderr: string } {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let i = 0;
    while (i + 8 <= buf.length) {
        const size = buf.readUInt32BE(i + 4);
        const frame = buf.subarray(i + 8, i + 8 + size);
        (buf[i] === 2 ? err : out).push(frame);
        i += 8 + size;
    }
    return { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}

export interface ExecResult {
    readonly exitCode: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs a command in a running container and returns its output and exit code. */
export async function execCapture(container: string, cmd: readonly string[], timeoutMs = 15_000, user?: string): Promise<ExecResult> {
    const { Id } = await dockerRequest("POST", `/containers/${container}/exec`, { Cmd: cmd, AttachStdout: true, AttachStderr: true, User: user });
    const raw = await rawRequest("POST", `/exec/${Id}/start`, { Detach: false, Tty: false }, timeoutMs);
    const { ExitCode } = await dockerRequest("GET", `/exec/${Id}/json`);
    return { exitCode: ExitCode ?? -1, ...demux(raw) };
}

/** A probe's exit code: 0 passes. Detached, polled, and abandoned as a failure after `timeoutMs`, like the kubelet's probe timeout. */
export async function execStatus(container: string, cmd: readonly string[], timeoutMs: number): Promise<number> {
    const { Id } = await dockerRequest("POST", `/containers/${container}/exec`, { Cmd: cmd, AttachStdout: false, AttachStderr: false });
    await dockerRequest("POST", `/exec/${Id}/start`, { Detach: true, Tty: false });
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
        const s = await dockerRequest("GET", `/exec/${Id}/json`);
        if (!s.Running) return s.ExitCode ?? -1;
        await new Promise((r) => setTimeout(r, Math.min(200, 20 * (i + 1))));
    }
    return -1;
}

export async function containerLogs(container: string, tail = 40): Promise<string> {
    try {
        const { stdout, stderr } = demux(await rawRequest("GET", `/containers/${container}/logs?stdout=1&stderr=1&tail=${tail}`, undefined, 15_000));
        return (stdout + stderr).trim();
    } catch (err) {
        return `(no logs: ${err instanceof Error ? err.message : err})`;
    }
}

export function putArchive(container: string, dir: string, tar: Buffer): Promise<unknown> {
    return dockerRequest("PUT", `/containers/${container}/archive?path=${encodeURIComponent(dir)}`, tar, "application/x-tar");
}

/** Waits for a container to exit; its exit code, or undefined when it still runs at the deadline. */
export async function waitExit(container: string, timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; Date.now() < deadline && i < 100_000; i++) {
        const state = (await dockerRequest("GET", `/containers/${container}/json`)).State;
        if (!state.Running && state.Status !== "created") return state.ExitCode;
        await new Promise((r) => setTimeout(r, Math.min(500, 50 * (i + 1))));
    }
    return undefined;
}

/** The catalogue image a `hadb/<name>:local` reference names, if it is one. */
export function localHadbImage(ref: string): ImageName | undefined {
    const m = /^hadb\/([a-z]+):local$/.exec(ref);
    return m && m[1] in IMAGES ? (m[1] as ImageName) : undefined;
}

/**
 * Makes an image the Pods reference present: `hadb/<name>:local` is built from images/<name> on the local base
 * image of its suite (the build cache answers when nothing changed, as scripts/prepare-machine.sh builds it);
 * anything else must already be on the engine, since nothing can be pulled here.
 */
export async function prepareImage(ref: string, build: boolean, log: (line: string) => void): Promise<void> {
    const local = localHadbImage(ref);
    if (local && build) {
        log(`building ${ref}`);
        const args = ["build", "-q", "--build-arg", `BASE_IMAGE=hadb-base:${IMAGES[local].suite}`, "-t", ref, path.join(PROJECT_ROOT, "images", local)];
        try {
            execFileSync("docker", args, { env: { ...process.env, DOCKER_BUILDKIT: "0" }, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
        } catch (err: any) {
            throw new Error(`stand-in: docker build of ${ref} failed:\n${err.stderr?.toString() ?? err.message}`);
        }
        return;
    }
    if (!(await inspect(`/images/${encodeURIComponent(ref)}/json`))) {
        throw new Error(`stand-in: image ${ref} is not on this engine and there is no registry to pull it from (ErrImagePull); build it or use hadb/<image>:local`);
    }
}
