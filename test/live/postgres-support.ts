import { execFile } from "child_process";
import { promisify } from "util";
import { Client } from "pg";
import { sleep } from "./support";

/** What Patroni's /cluster says of one member. */
export interface PatroniMember {
    name: string;
    role: "leader" | "replica" | "sync_standby" | "standby_leader";
    state: string;
    lag?: number | string;
    timeline?: number;
}

/**
 * Runs a command in a container (member introspection only; client traffic goes through 127.0.0.1).
 * Asynchronous, so writers and readers measuring unavailability are never paused by it.
 */
export async function dockerExec(container: string, args: string[], timeoutMs = 15_000): Promise<string> {
    const { stdout } = await promisify(execFile)("docker", ["exec", container, ...args], { timeout: timeoutMs, encoding: "utf8" });
    return stdout;
}

/** The cluster as any reachable member's Patroni sees it. */
export async function patroniCluster(containers: readonly string[]): Promise<PatroniMember[]> {
    let last: unknown;
    for (const c of containers) {
        try {
            return JSON.parse(await dockerExec(c, ["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:8008/cluster"])).members;
        } catch (err) {
            last = err;
        }
    }
    throw new Error(`no member answered /cluster: ${last instanceof Error ? last.message : last}`);
}

export function leaderOf(members: PatroniMember[]): PatroniMember | undefined {
    return members.find((m) => m.role === "leader");
}

/** True when there is one running leader, every other member is a replica streaming with no lag, and the synchronous standbys are chosen. */
export function healthyCluster(members: PatroniMember[], size: number, syncStandbys: number): boolean {
    const leaders = members.filter((m) => m.role === "leader" && m.state === "running");
    const replicas = members.filter((m) => (m.role === "replica" || m.role === "sync_standby") && m.state === "streaming" && m.lag === 0);
    const sync = members.filter((m) => m.role === "sync_standby");
    return members.length === size && leaders.length === 1 && replicas.length === size - 1 && sync.length === syncStandbys;
}

/**
 * A planned switchover through patronictl, which uses the REST API credentials in the member's own config.
 * Asynchronous, so a writer measuring unavailability keeps running while patronictl waits.
 */
export async function switchover(container: string, leader: string, candidate: string): Promise<void> {
    await dockerExec(container, ["patronictl", "-c", "/etc/patroni/patroni.yml", "switchover", "--leader", leader, "--candidate", candidate, "--force"], 30_000);
}

/** SQL on one member, as postgres over its local socket. */
export async function memberSql(container: string, sql: string, database = "app"): Promise<string> {
    return (await dockerExec(container, ["psql", "-X", "-At", "-h", "/run/postgresql", "-U", "postgres", "-d", database, "-c", sql])).trim();
}

export async function withClient<T>(url: string, work: (c: Client) => Promise<T>): Promise<T> {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000, query_timeout: 3000 });
    client.on("error", () => {});
    await client.connect();
    try {
        return await work(client);
    } finally {
        await client.end().catch(() => {});
    }
}

export interface Attempt {
    readonly at: number;
    readonly ok: boolean;
    readonly id?: number;
    /** Address of the server that committed it. */
    readonly server?: string;
    readonly error?: string;
}

/**
 * The e-commerce writer: each transaction inserts an order and two items through the read-write endpoint,
 * and counts as acknowledged only when COMMIT returned. Reconnects after any error. Bounded by `maxMs`.
 */
export class OrderWriter {
    readonly attempts: Attempt[] = [];
    private running = false;
    private loop?: Promise<void>;

    constructor(
        private readonly url: string,
        private readonly maxMs = 120_000,
    ) {}

    start(): void {
        this.running = true;
        this.loop = this.run();
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.loop;
    }

    get acknowledged(): number[] {
        return this.attempts.filter((a) => a.ok).map((a) => a.id!);
    }

    /** Seconds from `since` (ms epoch) to the first acknowledged write after it on a server other than `oldServer`. */
    firstSuccessAfter(since: number, oldServer?: string): number | undefined {
        const a = this.attempts.find((x) => x.ok && x.at > since && x.server !== oldServer);
        return a ? (a.at - since) / 1000 : undefined;
    }

    /** The server that acknowledged the latest write. */
    get lastServer(): string | undefined {
        return this.attempts.filter((a) => a.ok).at(-1)?.server;
    }

    /** The longest time between two acknowledged writes inside [from, to]: the unavailability a user saw. */
    longestGap(from: number, to: number): number {
        const times = this.attempts.filter((a) => a.ok && a.at >= from && a.at <= to).map((a) => a.at);
        let gap = 0;
        for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
        return gap / 1000;
    }

    async waitForSuccessAfter(since: number, oldServer: string | undefined, timeoutMs: number): Promise<number> {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            const s = this.firstSuccessAfter(since, oldServer);
            if (s !== undefined) return s;
            await sleep(100);
        }
        throw new Error(`no acknowledged write within ${timeoutMs / 1000} s; last error: ${this.attempts.filter((a) => !a.ok).at(-1)?.error}`);
    }

    private async run(): Promise<void> {
        const started = Date.now();
        let client: Client | undefined;
        let customer = 0;
        while (this.running && Date.now() - started < this.maxMs) {
            try {
                if (!client) {
                    client = new Client({ connectionString: this.url, connectionTimeoutMillis: 1000, query_timeout: 2000 });
                    client.on("error", () => {});
                    await client.connect();
                }
                customer++;
                await client.query("BEGIN");
                const { rows } = await client.query("INSERT INTO orders (customer_id) VALUES ($1) RETURNING id, inet_server_addr()::text AS server", [customer]);
                const id = Number(rows[0].id);
                const server: string = rows[0].server;
                await client.query("INSERT INTO order_items (order_id, sku, quantity, price_cents) VALUES ($1, 'sku-a', 1, 1999), ($1, 'sku-b', 2, 499)", [id]);
                await client.query("COMMIT");
                this.attempts.push({ at: Date.now(), ok: true, id, server });
            } catch (err) {
                this.attempts.push({ at: Date.now(), ok: false, error: err instanceof Error ? err.message : String(err) });
                const dead = client;
                client = undefined;
                dead?.end().catch(() => {});
                await sleep(100);
            }
            await sleep(20);
        }
        await client?.end().catch(() => {});
    }
}

/** Every acknowledged order is on the server behind `url`, each with both of its items. */
export async function missingOrders(url: string, ids: number[]): Promise<number[]> {
    return withClient(url, async (c) => {
        const { rows } = await c.query(
            "SELECT o.id FROM unnest($1::bigint[]) AS o(id) WHERE (SELECT count(*) FROM order_items i JOIN orders r ON r.id = i.order_id WHERE r.id = o.id) <> 2",
            [ids],
        );
        return rows.map((r) => Number(r.id));
    });
}
