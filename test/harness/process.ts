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
export function runBounded(command: string, args: string[], timeoutMs: number, input?: string, env?: NodeJS.ProcessEnv): Promise<Ran> {
    return new Promise((resolve, reject) => {
        let settled = false;
        const settle = (done: () => void) => {
            if (!settled) done();
            settled = true;
        };
        const child = execFile(command, args, { maxBuffer: 64 * 1024 * 1024, encoding: "utf8", env: env ?? process.env }, (err, stdout, stderr) => {
            clearTimeout(timer);
            const code = err ? (err as NodeJS.ErrnoException & { code?: unknown }).code : 0;
            // Not an exit code: it could not start (code ENOENT…) or a signal ended it. err.message would repeat the command line.
            const why = typeof code === "string" ? code : `ended by ${err?.signal ?? "a signal"}`;
            if (err && typeof code !== "number") settle(() => reject(new Error(`${shown(command, args)}: ${why}`)));
            else settle(() => resolve({ stdout, stderr, exitCode: (code as number | undefined) ?? 0 }));
        });
        // Settled at once: a grandchild holding the output open must not stretch the bound.
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            settle(() => reject(new Error(`${shown(command, args)}: no answer within ${timeoutMs / 1000} s`)));
        }, timeoutMs);
        if (input !== undefined) child.stdin?.end(input);
    });
}

/**
 * Like runBounded, but a non-zero exit is an error carrying the command's stderr, from its second line on (tests
 * pick the server's ERROR line out of it). Returns stdout.
 */
export async function runChecked(command: string, args: string[], timeoutMs: number, input?: string, env?: NodeJS.ProcessEnv): Promise<string> {
    const ran = await runBounded(command, args, timeoutMs, input, env);
    if (ran.exitCode !== 0) throw new Error(`${shown(command, args)} exited ${ran.exitCode}:\n${ran.stderr.trim()}`);
    return ran.stdout;
}

/** The command line for a message, with the value of any `…PWD=` / `…PASSWORD=` argument (docker exec env) hidden. */
function shown(command: string, args: string[]): string {
    return [command, ...args.map((a) => a.replace(/^([A-Z_]*(?:PWD|PASSWORD)=).*/s, "$1***"))].join(" ");
}
