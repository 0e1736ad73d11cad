import { Client } from "pg";
import { dockerExec, waitFor } from "./support";
import { OrderDriver } from "./writer";

/** What Patroni's /cluster says of one member. */
export interface PatroniMember {
    name: string;
    role: "leader" | "replica" | "sync_standby" | "standby_leader";
    state: string;
    lag?: number | string;
    timeline?: number;
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

/** What a member's Patroni says of itself (GET /patroni), from its own PostgreSQL at the moment of asking. */
export interface PatroniSelf {
    role: string;
    state: string;
    replication?: { application_name: string; state: string; sync_state: string }[];
}

/**
 * Whether the leader itself confirms what /cluster says: it runs as primary and each synchronous standby named
 * there streams from it synchronously now. /cluster is built from member keys the DCS keeps for a ttl after
 * a member died, so right after a complete outage it can still show the cluster as it was before.
 */
export function leaderConfirms(self: PatroniSelf, cluster: readonly PatroniMember[]): boolean {
    const sync = cluster.filter((m) => m.role === "sync_standby").map((m) => m.name);
    const streamsSync = (name: string) => (self.replication ?? []).some((r) => r.application_name === name && r.state === "streaming" && (r.sync_state === "sync" || r.sync_state === "quorum"));
    return self.role === "primary" && self.state === "running" && sync.every(streamsSync);
}

/** The cluster when it is healthy (healthyCluster) and its leader confirms it (leaderConfirms); false otherwise. */
export async function confirmedHealthy(containers: readonly string[], size: number, syncStandbys: number): Promise<PatroniMember[] | false> {
    const cluster = await patroniCluster(containers);
    if (!healthyCluster(cluster, size, syncStandbys)) return false;
    const leader = containers.find((c) => c.endsWith(`-${leaderOf(cluster)!.name}`));
    if (!leader) return false;
    const self = JSON.parse(await dockerExec(leader, ["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:8008/patroni"])) as PatroniSelf;
    return leaderConfirms(self, cluster) && cluster;
}

/**
 * A planned switchover through patronictl, which uses the REST API credentials in the member's own config.
 * Asynchronous, so a writer measuring unavailability keeps running while patronictl waits.
 */
export async function switchover(container: string, leader: string, candidate: string): Promise<void> {
    await dockerExec(container, ["patronictl", "-c", "/etc/hadb", "switchover", "--leader", leader, "--candidate", candidate, "--force"], 30_000);
}

/** SQL on one member, as postgres over its local socket. */
export async function memberSql(container: string, sql: string, database = "app", timeoutMs?: number): Promise<string> {
    return (await dockerExec(container, ["psql", "-X", "-At", "-h", "/run/postgresql", "-U", "postgres", "-d", database, "-c", sql], timeoutMs)).trim();
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

/** Orders through a PostgreSQL endpoint; the server is named by its address (`inet_server_addr()`). */
export function postgresOrders(url: string): OrderDriver<Client> {
    return {
        async connect() {
            const client = new Client({ connectionString: url, connectionTimeoutMillis: 1000, query_timeout: 2000 });
            client.on("error", () => {});
            await client.connect();
            return client;
        },
        async commitOrder(client, customer) {
            await client.query("BEGIN");
            const { rows } = await client.query("INSERT INTO orders (user_id, total_amount) VALUES ($1, 29.97) RETURNING id, inet_server_addr()::text AS server", [customer]);
            const id = Number(rows[0].id);
            await client.query("INSERT INTO order_items (order_id, product_id, quantity, price) VALUES ($1, 101, 1, 19.99), ($1, 202, 2, 4.99)", [id]);
            await client.query("COMMIT");
            return { id, server: String(rows[0].server) };
        },
        discard: (client) => void client.end().catch(() => {}),
        close: (client) => client.end(),
    };
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

/** A checksum of the shop's tables, row by row, on one member. */
export function tablesChecksum(container: string): Promise<string> {
    return memberSql(container, "SELECT (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o) || (SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM order_items i)");
}

/** Waits until every member holds the same orders and items (once the replicas have replayed everything). */
export async function waitIdentical(members: readonly string[]): Promise<void> {
    await waitFor("the same orders and items on every member", async () => new Set(await Promise.all(members.map(tablesChecksum))).size === 1, 60_000, 250);
}
