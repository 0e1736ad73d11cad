import { execFile } from "child_process";

export interface Ran {
    readonly stdout: string;
    readonly stderr: string;
    readonly exitCode: number;
}

/**
 * Runs `command` bounded in time; resolves with its exit code instead of throwing on failure, and rejects when it
 * cannot start or does not finish within `timeoutMs`. A timeout is an error whatever the exit code: the docker
 * CLI traps the SIGTERM that execFile's own `timeout` sends and exits 0, which execFile then reports as success
 * — a `docker exec` that never answered would read as one that answered nothing.
 */
export function runBounded(command: string, args: string[], timeoutMs: number, input?: string): Promise<Ran> {
    return new Promise((resolve, reject) => {
        let settled = false;
        const settle = (done: () => void) => {
            if (!settled) done();
            settled = true;
        };
        const child = execFile(command, args, { maxBuffer: 64 * 1024 * 1024, encoding: "utf8" }, (err, stdout, stderr) => {
            clearTimeout(timer);
            const code = err ? (err as NodeJS.ErrnoException & { code?: unknown }).code : 0;
            if (err && typeof code !== "number") settle(() => reject(new Error(`${command} ${args.join(" ")}: ${err.message}`)));
            else settle(() => resolve({ stdout, stderr, exitCode: (code as number | undefined) ?? 0 }));
        });
        // Settled at once: a grandchild holding the output open must not stretch the bound.
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            settle(() => reject(new Error(`${command} ${args.join(" ")}: no answer within ${timeoutMs / 1000} s`)));
        }, timeoutMs);
        if (input !== undefined) child.stdin?.end(input);
    });
}

/** Like runBounded, but a non-zero exit is an error carrying the command's stderr. Returns stdout. */
export async function runChecked(command: string, args: string[], timeoutMs: number, input?: string): Promise<string> {
    const ran = await runBounded(command, args, timeoutMs, input);
    if (ran.exitCode !== 0) throw new Error(`${command} ${args.join(" ")} exited ${ran.exitCode}: ${ran.stderr.trim()}`);
    return ran.stdout;
}
