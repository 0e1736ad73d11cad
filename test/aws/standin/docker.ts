import { spawn } from "child_process";
import { createReadStream, createWriteStream } from "fs";
import { runBounded, runChecked } from "../../harness/process";

/** Everything the stand-in creates on the engine carries this label, so removeAll() finds it. */
export const LABEL = "hadb.standin=aws";

export type { Ran } from "../../harness/process";

/** Runs the docker CLI, bounded in time; resolves with the exit code instead of throwing on failure. */
export const dockerRun = (args: string[], timeoutMs = 60_000, input?: string) => runBounded("docker", args, timeoutMs, input);

/** Like dockerRun, but a non-zero exit is an error carrying the CLI's stderr. Returns stdout. */
export const docker = (args: string[], timeoutMs = 60_000, input?: string) => runChecked("docker", args, timeoutMs, input);

/**
 * Streams between the docker CLI and a file (`docker export` to a file, a file into `docker load`) without
 * holding the bytes in memory; `onData` sees every chunk going to the file (for a digest). Bounded in time.
 */
export function dockerStream(args: string[], io: { from?: string; to?: string; onData?: (chunk: Buffer) => void }, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn("docker", args, { stdio: ["pipe", "pipe", "pipe"] });
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        let stderr = "";
        let stdout = "";
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        // When writing a file, the answer waits for the file to be flushed as well as for the CLI to exit.
        let flushed: Promise<void> = Promise.resolve();
        if (io.to) {
            const out = createWriteStream(io.to);
            flushed = new Promise((done, failed) => out.on("finish", done).on("error", failed));
            if (io.onData) child.stdout.on("data", io.onData);
            child.stdout.pipe(out);
        } else {
            child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        }
        // A CLI that exits early closes its stdin: its exit status reports that, not the broken pipe.
        child.stdin.on("error", () => undefined);
        if (io.from) createReadStream(io.from).on("error", reject).pipe(child.stdin);
        else child.stdin.end();
        child.on("error", reject);
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            if (code === 0) flushed.then(() => resolve(stdout), reject);
            else reject(new Error(`docker ${args.join(" ")}: ${signal ? `killed after ${timeoutMs / 1000} s` : `exited ${code}`}: ${stderr.trim()}`));
        });
    });
}

/**
 * Polls `probe` until it returns something other than undefined, or throws after `timeoutMs` with the last
 * failure. Bounded in time and in attempts; returns the value and the seconds it took.
 */
export async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 500): Promise<{ value: T; seconds: number }> {
    const started = Date.now();
    let last: unknown = "no attempt finished";
    for (let attempt = 0; attempt <= timeoutMs / intervalMs && Date.now() - started <= timeoutMs; attempt++) {
        try {
            const value = await probe();
            if (value !== undefined) return { value, seconds: (Date.now() - started) / 1000 };
            last = "not yet";
        } catch (err) {
            last = err instanceof Error ? err.message : err;
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last: ${String(last)}`);
}
