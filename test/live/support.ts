import { spawnSync } from "child_process";

import { DockerApiError, dockerRequest } from "../harness/dockerApi";
import { runChecked } from "../harness/process";
import { containerLogs } from "../k8s/standin/engine";

/**
 * Whether live tests can run. Without an engine they are reported as skipped, except where the README's
 * test command set HADB_REQUIRE_LIVE=1 (it starts the engine itself): there a missing engine is a failure.
 */
export function liveEngine(): boolean {
    const version = spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { timeout: 15_000 });
    // `error` is set when the timeout fired: the docker CLI may then still exit 0.
    const answers = version.error === undefined && version.status === 0;
    if (!answers && process.env.HADB_REQUIRE_LIVE === "1") throw new Error("HADB_REQUIRE_LIVE=1 but no Docker engine answers: run scripts/prepare-machine.sh");
    if (!answers) console.warn("[live] skipped: no Docker engine answers; `npm test` starts one");
    return answers;
}

export interface Waited<T> {
    readonly value: T;
    readonly seconds: number;
}

/**
 * Polls `probe` until it returns a value other than undefined/false, or throws after `timeoutMs` with the
 * last failure. Bounded in time and in attempts; returns the value and the seconds it took.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 250): Promise<Waited<T>> {
    const started = Date.now();
    const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1;
    let last: unknown = "no attempt finished";
    for (let attempt = 0; attempt < maxAttempts && Date.now() - started <= timeoutMs; attempt++) {
        try {
            const value = await probe();
            if (value !== undefined && value !== false) return { value: value as T, seconds: (Date.now() - started) / 1000 };
            last = "condition not met yet";
        } catch (err) {
            last = err instanceof Error ? err.message : err;
        }
        await sleep(intervalMs);
    }
    throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last: ${String(last)}`);
}

/**
 * The dev stack without its read-replica fleets: for the files that test the clusters themselves (their member
 * counts and failover timings), so they deploy only what they test. test/live/fleet.test.ts tests the fleets.
 */
export const WITHOUT_FLEETS = {
    "hadb:postgresReadReplicas": 0,
    "hadb:postgresAnalyticsReplicas": 0,
    "hadb:mysqlReadReplicas": 0,
    "hadb:mysqlAnalyticsReplicas": 0,
};

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prints a measured figure in one greppable format, so closing notes can quote test output. */
export function report(what: string, seconds: number): void {
    console.log(`[measure] ${what}: ${seconds.toFixed(2)} s`);
}

/** One look at every member: which of them said they take writes. */
export interface WriterRound {
    readonly at: number;
    readonly writers: string[];
}

/**
 * Runs `fault` while asking `probe` every ~`intervalMs` which members take writes (bounded: at most 2000 rounds).
 * `fault` sees the rounds so far; two writers in one round is a split brain.
 */
export async function watchWriters<T>(probe: () => Promise<string[]>, fault: (rounds: readonly WriterRound[]) => Promise<T>, intervalMs = 250): Promise<{ result: T; rounds: WriterRound[] }> {
    const rounds: WriterRound[] = [];
    let watching = true;
    const watch = (async () => {
        for (let i = 0; watching && i < 2000; i++) {
            const at = Date.now();
            rounds.push({ at, writers: await probe() });
            await sleep(Math.max(0, intervalMs - (Date.now() - at)));
        }
    })();
    try {
        return { result: await fault(rounds), rounds };
    } finally {
        watching = false;
        await watch;
    }
}

/** Prints a count the same way, for the closing notes. */
export function reportCount(what: string, count: number): void {
    console.log(`[measure] ${what}: ${count}`);
}

/**
 * Runs `work`; when it throws, prints the last lines of each container's log first, so a failure in CI (where
 * the containers are gone by the time anyone looks) says what the servers were doing.
 */
export async function withLogsOnFailure<T>(names: readonly string[], work: () => Promise<T>, lines = 40): Promise<T> {
    try {
        return await work();
    } catch (err) {
        await printLogs(names, lines);
        throw err;
    }
}

/** Prints the last lines of each container's log. */
export async function printLogs(names: readonly string[], lines = 40): Promise<void> {
    for (const name of names) console.log(`[logs] ${name} (last ${lines} lines):\n${await containerLogs(name, lines)}`);
}

/**
 * Runs `work`; when it is still running after `afterMs`, prints the containers' logs once and lets it go on: a step
 * that hangs until the test's own timeout (which abandons it, so withLogsOnFailure never sees an error) still
 * leaves the servers' side of the story in CI's output.
 */
export async function withLogsIfSlow<T>(names: () => Promise<readonly string[]>, afterMs: number, work: () => Promise<T>): Promise<T> {
    const timer = setTimeout(() => {
        console.log(`[logs] still running after ${afterMs / 1000} s:`);
        void names().then((n) => printLogs(n, 60));
    }, afterMs);
    try {
        return await work();
    } finally {
        clearTimeout(timer);
    }
}

/**
 * Starts a container. A member whose partition `containers.connect` healed keeps that address pinned; when
 * another container took the address while this one was down (a complete outage, started in another order),
 * Docker refuses the start ("Address already in use"). The pin is the harness's, not the program's: the member
 * is attached again the way the target attached it (dynamic address, its aliases) and started, as any container
 * that restarts with a new address.
 */
async function startContainer(name: string): Promise<void> {
    try {
        await dockerRequest("POST", `/containers/${name}/start`);
        return;
    } catch (err) {
        if (!(err instanceof DockerApiError && /Address already in use/.test(err.message))) throw err;
        const networks = (await dockerRequest("GET", `/containers/${name}/json`)).NetworkSettings.Networks as Record<string, { IPAMConfig?: { IPv4Address?: string }; Aliases?: string[] }>;
        const pinned = Object.entries(networks).filter(([, endpoint]) => endpoint.IPAMConfig?.IPv4Address);
        if (pinned.length === 0) throw err;
        for (const [network, endpoint] of pinned) {
            console.log(`[harness] ${name}: ${endpoint.IPAMConfig?.IPv4Address} on ${network} is taken; attaching it with a new address`);
            await dockerRequest("POST", `/networks/${network}/disconnect`, { Container: name, Force: true });
            await dockerRequest("POST", `/networks/${network}/connect`, { Container: name, EndpointConfig: { Aliases: (endpoint.Aliases ?? []).filter((a) => !/^[0-9a-f]{12}$/.test(a)) } });
        }
        await dockerRequest("POST", `/containers/${name}/start`);
    }
}

export const containers = {
    kill: (name: string) => dockerRequest("POST", `/containers/${name}/kill`),
    stop: (name: string, seconds = 10) => dockerRequest("POST", `/containers/${name}/stop?t=${seconds}`),
    start: startContainer,
    state: async (name: string) => (await dockerRequest("GET", `/containers/${name}/json`)).State,
    /**
     * Cuts the container off `network` (a partition: peers, DCS and proxies lose it, it loses them); returns the
     * address it had there, for `connect` to heal the cut with.
     */
    disconnect: async (name: string, network: string): Promise<string> => {
        const ip = ((await dockerRequest("GET", `/containers/${name}/json`)).NetworkSettings.Networks as Record<string, { IPAddress: string }>)[network].IPAddress;
        await dockerRequest("POST", `/networks/${network}/disconnect`, { Container: name, Force: true });
        return ip;
    },
    /**
     * Reconnects it under its member alias, as the target attached it, and with the address it had when `ip` is
     * given: a partition that heals. (A new address would leave its peers' old TCP connections unanswered, where
     * a healed network answers them with a reset.)
     */
    connect: (name: string, network: string, alias: string, ip?: string) =>
        dockerRequest("POST", `/networks/${network}/connect`, { Container: name, EndpointConfig: { Aliases: [alias], ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}) } }),
    /** The container's address on its network (what a server reports as its own address). */
    ip: async (name: string): Promise<string> => {
        const networks = (await dockerRequest("GET", `/containers/${name}/json`)).NetworkSettings.Networks as Record<string, { IPAddress: string }>;
        return Object.values(networks)[0].IPAddress;
    },
};


/**
 * Runs a command in a container (member introspection only; client traffic goes through 127.0.0.1).
 * Asynchronous, so writers and readers measuring unavailability are never paused by it.
 */
export async function dockerExec(container: string, args: string[], timeoutMs = 15_000): Promise<string> {
    return runChecked("docker", ["exec", container, ...args], timeoutMs);
}
