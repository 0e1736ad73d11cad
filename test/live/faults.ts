// What the fault tests, the chaos run and the benchmark share, whatever the engine: a commit probe on every
// member, a reader through a lost replica, and a client that lists several front-end instances.
import { spawn } from "child_process";
import { containers, dockerExec, sleep, waitFor } from "./support";
import { OrderDriver, OrderWriter } from "./writer";

/** One write a member acknowledged to the commit probe, at the member's own clock (the machine's). */
export interface ProbeAck {
    readonly member: string;
    readonly at: number;
}

/** Two members acknowledging writes over one stretch of time: a split brain. */
export interface WriterOverlap {
    readonly members: [string, string];
    readonly seconds: number;
}

/**
 * Asks every member directly, about every 100 ms, to commit one row: a shell loop inside each container whose
 * client prints the time of each acknowledged commit. A member that is read-only refuses at once; a member
 * that cannot reach its majority blocks, and only a commit that returned counts. Bounded by `maxMs`.
 */
export class CommitProbe {
    readonly acks: ProbeAck[] = [];
    private readonly children: ReturnType<typeof spawn>[] = [];
    private readonly started = Date.now();
    private readonly pidFile = `/tmp/hadb-commit-probe-${process.pid}-${Date.now()}.pid`;

    /** `commit` is the shell command (inside the member) that commits one row. */
    constructor(
        private readonly members: readonly string[],
        private readonly commit: (member: string) => string,
        private readonly maxMs = 300_000,
    ) {}

    start(): this {
        const rounds = Math.ceil(this.maxMs / 100);
        for (const member of this.members) {
            const script = `echo $$ > ${this.pidFile}; i=0; while [ $i -lt ${rounds} ]; do i=$((i+1)); if ${this.commit(member)} >/dev/null 2>&1; then echo "ack $(date +%s%3N)"; fi; sleep 0.1; done`;
            const child = spawn("docker", ["exec", member, "sh", "-c", script], { stdio: ["ignore", "pipe", "ignore"] });
            let buffered = "";
            child.stdout!.on("data", (chunk: Buffer) => {
                buffered += chunk.toString();
                const lines = buffered.split("\n");
                buffered = lines.pop()!;
                for (const line of lines) {
                    const m = /^ack (\d+)$/.exec(line.trim());
                    if (m) this.acks.push({ member, at: Number(m[1]) });
                }
            });
            child.on("error", () => {});
            this.children.push(child);
        }
        return this;
    }

    /** Ends the loops inside the containers (docker exec's client going away would not) and returns the acks. */
    async stop(): Promise<ProbeAck[]> {
        await Promise.all(this.members.map((m) => dockerExec(m, ["sh", "-c", `kill $(cat ${this.pidFile}) 2>/dev/null; rm -f ${this.pidFile}`], 10_000).catch(() => "")));
        for (const child of this.children) child.kill("SIGKILL");
        await sleep(100);
        return this.acks.filter((a) => a.at >= this.started).sort((a, b) => a.at - b.at);
    }
}

/**
 * Pairs of members whose acknowledged commits interleave: member A acknowledged a commit after member B had,
 * and B again after that. A clean failover is one hand-over (A's acks, then B's); two writable members at
 * once alternate. `seconds` is how long both were acknowledging.
 */
export function overlappingWriters(acks: readonly ProbeAck[]): WriterOverlap[] {
    const spans = new Map<string, { first: number; last: number }>();
    for (const a of acks) {
        const s = spans.get(a.member);
        spans.set(a.member, s ? { first: Math.min(s.first, a.at), last: Math.max(s.last, a.at) } : { first: a.at, last: a.at });
    }
    const members = [...spans.keys()].sort();
    const overlaps: WriterOverlap[] = [];
    for (let i = 0; i < members.length; i++) {
        for (let j = i + 1; j < members.length; j++) {
            const a = spans.get(members[i])!;
            const b = spans.get(members[j])!;
            const overlap = Math.min(a.last, b.last) - Math.max(a.first, b.first);
            if (overlap >= 0) overlaps.push({ members: [members[i], members[j]], seconds: overlap / 1000 });
        }
    }
    return overlaps;
}

/** What readers saw through the read-only endpoint while one replica was killed. */
export interface ReadsThroughLoss {
    readonly reads: number;
    readonly readsAfterKill: number;
    readonly errors: string[];
    /** Longest time between two answered reads, seconds. */
    readonly gap: number;
}

/**
 * Four readers, each opening a fresh session per read, like a small pool, for `durationMs`; the container is
 * killed 2 s in. `read` answers whether the session landed on a replica (a read-only member).
 */
export async function readThroughReplicaLoss(read: () => Promise<boolean>, container: string, durationMs = 10_000): Promise<ReadsThroughLoss> {
    const times: number[] = [];
    const errors: string[] = [];
    const started = Date.now();
    const killedAt = started + 2000;
    const reader = async () => {
        for (let i = 0; i < 1000 && Date.now() - started < durationMs; i++) {
            try {
                if (await read()) times.push(Date.now());
                else errors.push("read-only session on a primary");
            } catch (err) {
                errors.push((err as Error).message);
            }
        }
    };
    const killer = (async () => {
        await sleep(killedAt - Date.now());
        await containers.kill(container);
    })();
    await Promise.all([reader(), reader(), reader(), reader(), killer]);
    times.sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
    return { reads: times.length, readsAfterKill: times.filter((t) => t > killedAt + 1000).length, errors, gap: gap / 1000 };
}

/**
 * A client that lists several front-end instances, as a libpq multi-host URL does (and the reconnect loop of
 * a MySQL application): each new connection tries them in order and takes the first that answers.
 */
export function multiHostOrders<C>(endpoints: readonly OrderDriver<C>[]): OrderDriver<C> & { readonly endpointOf: Map<C, number> } {
    const endpointOf = new Map<C, number>();
    const first = endpoints[0];
    return {
        endpointOf,
        async connect() {
            let last: unknown;
            for (const [i, e] of endpoints.entries()) {
                try {
                    const client = await e.connect();
                    endpointOf.set(client, i);
                    return client;
                } catch (err) {
                    last = err;
                }
            }
            throw last instanceof Error ? last : new Error(String(last));
        },
        commitOrder: (client, customer) => first.commitOrder(client, customer),
        discard: (client) => (endpointOf.delete(client), first.discard(client)),
        close: (client) => (endpointOf.delete(client), first.close(client)),
    };
}

/** The same URL on the front end's instance `i`, which publishes every port 10 × i higher. */
export function onInstance(url: string, i: number): string {
    const u = new URL(url);
    u.port = String(Number(u.port) + 10 * i);
    return u.toString();
}

/** What a writer listing both front-end instances saw when the first one was killed. */
export interface FrontendLoss {
    readonly acknowledged: number[];
    readonly afterKill: number;
    /** Seconds from the kill to the first acknowledged write. */
    readonly firstWrite: number;
    /** Longest time between two acknowledged writes around the kill, seconds. */
    readonly gap: number;
    readonly endpointsUsed: number[];
}

/**
 * Kills the front end's first instance under a writer whose client lists both (`endpoints[0]` on it) and
 * restarts it afterwards; the writer must carry on through the second instance.
 */
export async function writeThroughFrontendLoss<C>(endpoints: readonly OrderDriver<C>[], proxyContainer: string): Promise<FrontendLoss> {
    const driver = multiHostOrders(endpoints);
    const writer = new OrderWriter(driver, 120_000);
    const used = new Set<number>();
    const watchEndpoints = setInterval(() => driver.endpointOf.forEach((i) => used.add(i)), 50);
    writer.start();
    try {
        await waitFor("writes flowing through the first instance", async () => writer.acknowledged.length >= 20, 30_000);
        const killedAt = Date.now();
        await containers.kill(proxyContainer);
        const firstWrite = await writer.waitForSuccessAfter(killedAt, undefined, 30_000);
        await waitFor("writes flowing through the second instance", async () => writer.attempts.filter((a) => a.ok && a.at > killedAt).length >= 50, 30_000);
        await writer.stop();
        return {
            acknowledged: writer.acknowledged,
            afterKill: writer.attempts.filter((a) => a.ok && a.at > killedAt).length,
            firstWrite,
            gap: writer.longestGap(killedAt - 2000, Date.now()),
            endpointsUsed: [...used].sort(),
        };
    } finally {
        clearInterval(watchEndpoints);
        await writer.stop();
        await containers.start(proxyContainer);
    }
}

/** The table the commit probes write to, created once through the read-write endpoint. */
export const PROBE_TABLE = {
    postgres: "CREATE TABLE IF NOT EXISTS write_probe (id bigserial PRIMARY KEY, member text NOT NULL)",
    mysql: "CREATE TABLE IF NOT EXISTS write_probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, member VARCHAR(64) NOT NULL)",
};

/** A commit probe on every PostgreSQL member, as postgres over the local socket. */
export function postgresCommitProbe(members: readonly string[]): CommitProbe {
    return new CommitProbe(members, (m) => `psql -X -q -h /run/postgresql -U postgres -d app -c "INSERT INTO write_probe (member) VALUES ('${m}')"`);
}

/** A commit probe on every MySQL member, as root over the local socket. */
export function mysqlCommitProbe(members: readonly string[], adminPassword: string): CommitProbe {
    return new CommitProbe(members, (m) => `MYSQL_PWD='${adminPassword}' mysql -uroot -N -B -e "INSERT INTO app.write_probe (member) VALUES ('${m}')"`);
}
