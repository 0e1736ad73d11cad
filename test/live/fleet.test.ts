import { execFile } from "child_process";
import { promisify } from "util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { down, up } from "../harness";
import { shopFromStackOutputs } from "../../examples/ecommerce/shop";
import { groupFormed, missingOrders as missingMySqlOrders, memberSql as mysqlSql, memberStatuses, withMySql } from "./mysql-support";
import { healthyCluster, leaderOf, memberSql, missingOrders, patroniCluster, withClient } from "./postgres-support";
import { gatherStatus, proxyStates } from "../status/cli";
import { statusRows } from "../status/status";
import { containers, dockerExec, liveEngine, report, reportCount, waitFor } from "./support";

// The dev stack's read-replica fleets, and examples/ecommerce through a failover, on real containers: each engine's cluster with one read replica and one
// analytics replica behind its HAProxy. Client traffic goes only through the published ports on 127.0.0.1;
// replicas are paused and the primary killed through the Docker engine.
const live = liveEngine();
const PG_STATS = 7000;
const MYSQL_STATS = 7001;

/** The server address behind each of `n` fresh connections to a PostgreSQL endpoint. */
async function pgServersBehind(url: string, n: number): Promise<string[]> {
    const servers: string[] = [];
    for (let i = 0; i < n; i++) servers.push(await withClient(url, async (c) => (await c.query("SELECT host(inet_server_addr()) AS s")).rows[0].s));
    return servers;
}

/** The member behind each of `n` fresh connections to a MySQL endpoint (its report_host: the member's alias). */
async function mysqlServersBehind(url: string, n: number): Promise<string[]> {
    const servers: string[] = [];
    for (let i = 0; i < n; i++) servers.push(await withMySql(url, async (c) => ((await c.query("SELECT @@report_host AS s")) as any)[0][0].s));
    return servers;
}

/** What a fleet replica's supervisor reports on /member. */
interface ReplicaStatus {
    state: string;
    role: string;
    source: string | null;
    applier_queue: number | null;
    super_read_only: boolean;
}

describe.skipIf(!live)("read-replica fleets and the e-commerce example on the dev stack (live)", () => {
    let outputs: Record<string, any>;
    const ip: Record<string, string> = {};

    beforeAll(async () => {
        await down("dev", () => {}, { destroyData: true });
        const started = Date.now();
        outputs = (await up("dev", { log: () => {} })).outputs;
        for (const name of [...outputs.postgres.members, ...outputs.postgres.replicas]) ip[name] = await containers.ip(name);
        report("dev stack with fleets: harness up", (Date.now() - started) / 1000);
    });

    afterAll(async () => {
        if (live) await down("dev", () => {}, { destroyData: true });
    });

    describe("PostgreSQL", () => {
        const all = () => [...outputs.postgres.members, ...outputs.postgres.replicas] as string[];
        const [readReplica, analyticsReplica] = ["hadb-dev-pg-reads-0", "hadb-dev-pg-reads-1"];
        const healthy = (what: string) => waitFor(what, async () => healthyCluster(await patroniCluster(all()), 5, 1), 240_000, 500);

        it("adds Patroni members that are never promoted nor synchronous, streaming with the cluster's replicas", async () => {
            await healthy("a leader and four streaming replicas, one synchronous");
            const members = await patroniCluster(all());
            for (const name of ["pg-reads-0", "pg-reads-1"]) {
                const m = members.find((x) => x.name === name) as (typeof members)[number] & { tags?: Record<string, unknown> };
                expect(m?.role, name).toBe("replica");
                expect(m?.tags).toMatchObject({ nofailover: true, nosync: true, hadb_fleet: "pg-reads", hadb_pool: name.endsWith("1") ? "analytics" : "read-only" });
            }
        });

        it("a row written on rw is read on a fleet replica and through the analytics endpoint, served by the analytics replica", async () => {
            const id = await withClient(outputs.postgres.rwUrl, async (c) => (await c.query("INSERT INTO orders (user_id) VALUES (4242) RETURNING id")).rows[0].id);
            await waitFor("the row on the read replica", async () => (await memberSql(readReplica, `SELECT count(*) FROM orders WHERE id = ${id}`)) === "1", 10_000);
            const seen = await waitFor("the row through the analytics endpoint", () => withClient(outputs.postgres.analyticsUrl, async (c) => (await c.query("SELECT host(inet_server_addr()) AS s FROM orders WHERE id = $1", [id])).rows[0]?.s), 10_000);
            expect(seen.value).toBe(ip[analyticsReplica]);
            const analytics = await pgServersBehind(outputs.postgres.analyticsUrl, 10);
            expect(new Set(analytics)).toEqual(new Set([ip[analyticsReplica]]));
            // The read-only pool: the cluster's replicas and the read replica, never the leader or the analytics replica.
            const leader = leaderOf(await patroniCluster(all()))!;
            const readOnly = new Set(await pgServersBehind(outputs.postgres.roUrl, 24));
            expect(readOnly.has(ip[`hadb-dev-${leader.name}`])).toBe(false);
            expect(readOnly.has(ip[analyticsReplica])).toBe(false);
            expect(readOnly.has(ip[readReplica])).toBe(true);
        });

        it("a replica whose replay is paused leaves the read-only pool once past the lag bound, and returns after it catches up", async () => {
            const state = async () => (await proxyStates(`http://127.0.0.1:${PG_STATS}`)).replicas?.["pg-reads-0"];
            expect(await state()).toBe("UP");
            // Patroni resumes a paused replay on its next loop unless the cluster is in maintenance mode.
            const patronictl = (command: string) => dockerExec(readReplica, ["patronictl", "-c", "/etc/hadb", command, "--wait"], 30_000);
            await patronictl("pause");
            try {
                await memberSql(readReplica, "SELECT pg_wal_replay_pause()");
                try {
                    // About 5 MB of WAL, past the 1 MiB bound, while the replica receives but does not replay it.
                    await withClient(outputs.postgres.rwUrl, (c) => c.query("INSERT INTO orders (user_id) SELECT g FROM generate_series(1, 40000) g"));
                    const left = await waitFor("the paused replica marked DOWN in the read-only pool", async () => (await state())?.startsWith("DOWN"), 15_000, 100);
                    report("postgres fleet: paused replica out of the read-only pool after the bulk write", left.seconds);
                    expect(new Set(await pgServersBehind(outputs.postgres.roUrl, 12)).has(ip[readReplica])).toBe(false);
                    expect(Number(await memberSql(readReplica, "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"))).toBeGreaterThan(1048576);
                    // npm run status shows the paused replica's lag and that no endpoint routes to it.
                    const row = statusRows(await gatherStatus("dev")).find((r) => r.member === "pg-reads-0")!;
                    expect(row).toMatchObject({ kind: "read replica", role: "replica", note: "replay paused", endpoints: [] });
                    expect(row.lag).toBeGreaterThan(1048576);
                } finally {
                    await memberSql(readReplica, "SELECT pg_wal_replay_resume()");
                }
                const back = await waitFor("the replica UP again after catching up", async () => (await state()) === "UP", 30_000, 100);
                report("postgres fleet: resumed replica back in the read-only pool", back.seconds);
            } finally {
                await patronictl("resume");
            }
        });

        it("after a hard kill of the leader the fleet streams from the new leader with no manual step", async () => {
            const before = leaderOf(await patroniCluster(all()))!;
            const killedAt = Date.now();
            await containers.kill(`hadb-dev-${before.name}`);
            const next = await waitFor("a new leader", async () => {
                const l = leaderOf(await patroniCluster(all().filter((n) => n !== `hadb-dev-${before.name}`)));
                return l && l.name !== before.name && l.state === "running" ? l : undefined;
            }, 90_000, 250);
            expect(next.value.name.startsWith("pg-reads")).toBe(false);
            report("postgres fleet: a new leader after the kill", next.seconds);
            const id = (await waitFor("a write on rw after the failover", async () => {
                try {
                    return await withClient(outputs.postgres.rwUrl, async (c) => (await c.query("INSERT INTO orders (user_id) VALUES (777) RETURNING id")).rows[0].id as string);
                } catch {
                    return undefined;
                }
            }, 60_000, 250)).value;
            for (const replica of [readReplica, analyticsReplica]) {
                await waitFor(`${replica} has the row written after the failover`, async () => (await memberSql(replica, `SELECT count(*) FROM orders WHERE id = ${id}`)) === "1", 60_000, 250);
                expect(await memberSql(replica, "SELECT sender_host FROM pg_stat_wal_receiver")).toBe(next.value.name);
            }
            report("postgres fleet: from the leader's kill to both fleet replicas having a write made after the failover", (Date.now() - killedAt) / 1000);
            // The analytics endpoint still serves only the analytics replica.
            expect(new Set(await pgServersBehind(outputs.postgres.analyticsUrl, 6))).toEqual(new Set([ip[analyticsReplica]]));
            await containers.start(`hadb-dev-${before.name}`);
            await healthy("the old leader back as a replica, five members streaming");
        });

        it("exposes Prometheus metrics: Patroni's on every member and HAProxy's on the stats port", async () => {
            const patroni = await dockerExec(readReplica, ["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:8008/metrics"]);
            expect(patroni).toMatch(/^patroni_xlog_replayed_location\{[^}]*\} \d+/m);
            const haproxy = await (await fetch(`http://127.0.0.1:${PG_STATS}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
            expect(haproxy).toMatch(/^haproxy_server_status\{proxy="replicas",server="pg-reads-0"/m);
        });
    });
    describe("MySQL", () => {
        const [readReplica, analyticsReplica] = ["hadb-dev-mysql-reads-0", "hadb-dev-mysql-reads-1"];
        const admin = () => decodeURIComponent(new URL(outputs.mysql.adminUrl).password);
        const replicaStatus = async (container: string) =>
            JSON.parse(await dockerExec(container, ["curl", "-sS", "--max-time", "2", "http://127.0.0.1:8008/member"])) as ReplicaStatus;
        const members = () => outputs.mysql.members as string[];
        const primaryOf = async (names: string[]) => {
            const statuses = await memberStatuses(names);
            const at = statuses.findIndex((s) => s?.state === "ONLINE" && s.role === "PRIMARY");
            return at < 0 ? undefined : names[at];
        };

        it("runs asynchronous replicas of the group: cloned, replicating from its primary, super_read_only", async () => {
            await waitFor("the group formed", async () => groupFormed(await memberStatuses(members())), 240_000, 500);
            const primary = (await primaryOf(members()))!.replace("hadb-dev-", "");
            for (const replica of [readReplica, analyticsReplica]) {
                const s = (await waitFor(`${replica} replicating`, async () => {
                    const r = await replicaStatus(replica).catch(() => undefined);
                    return r?.state === "REPLICATING" ? r : undefined;
                }, 180_000, 500)).value;
                expect(s).toMatchObject({ role: "REPLICA", super_read_only: true, source: primary });
            }
        });

        it("a row written on rw is read on a fleet replica and through the analytics endpoint, served by the analytics replica", async () => {
            const id = await withMySql(outputs.mysql.rwUrl, async (c) => ((await c.query("INSERT INTO orders (user_id) VALUES (4242)")) as any)[0].insertId as number);
            await waitFor("the row on the read replica", async () => (await mysqlSql(readReplica, admin(), `SELECT COUNT(*) FROM app.orders WHERE id = ${id}`)) === "1", 10_000);
            await waitFor("the row through the analytics endpoint", () => withMySql(outputs.mysql.analyticsUrl, async (c) => ((await c.query("SELECT id FROM orders WHERE id = ?", [id])) as any)[0].length === 1), 10_000);
            expect(new Set(await mysqlServersBehind(outputs.mysql.analyticsUrl, 10))).toEqual(new Set(["mysql-reads-1"]));
            const primary = (await primaryOf(members()))!.replace("hadb-dev-", "");
            const readOnly = new Set(await mysqlServersBehind(outputs.mysql.roUrl, 24));
            expect(readOnly.has(primary)).toBe(false);
            expect(readOnly.has("mysql-reads-1")).toBe(false);
            expect(readOnly.has("mysql-reads-0")).toBe(true);
        });

        it("a replica whose applier is stopped leaves the read-only pool once past the lag bound, and returns after it catches up", async () => {
            const state = async () => (await proxyStates(`http://127.0.0.1:${MYSQL_STATS}`)).replicas?.["mysql-reads-0"];
            expect(await state()).toBe("UP");
            await mysqlSql(readReplica, admin(), "STOP REPLICA SQL_THREAD");
            try {
                // 150 transactions, past the bound of 100 received but not applied.
                await withMySql(outputs.mysql.rwUrl, async (c) => {
                    for (let i = 0; i < 150; i++) await c.query("INSERT INTO orders (user_id) VALUES (?)", [9000 + i]);
                });
                const left = await waitFor("the stopped replica marked DOWN in the read-only pool", async () => (await state())?.startsWith("DOWN"), 15_000, 100);
                report("mysql fleet: replica with a stopped applier out of the read-only pool after 150 writes", left.seconds);
                expect(new Set(await mysqlServersBehind(outputs.mysql.roUrl, 12)).has("mysql-reads-0")).toBe(false);
                expect((await replicaStatus(readReplica)).applier_queue).toBeGreaterThan(100);
                const row = statusRows(await gatherStatus("dev")).find((r) => r.member === "mysql-reads-0")!;
                expect(row).toMatchObject({ kind: "read replica", role: "REPLICA", endpoints: [] });
                expect(row.lag).toBeGreaterThan(100);
            } finally {
                await mysqlSql(readReplica, admin(), "START REPLICA SQL_THREAD");
            }
            const back = await waitFor("the replica UP again after catching up", async () => (await state()) === "UP", 30_000, 100);
            report("mysql fleet: restarted applier back in the read-only pool", back.seconds);
        });

        it("after a hard kill of the primary the fleet replicates from the new primary with no manual step", async () => {
            const before = (await primaryOf(members()))!;
            const killedAt = Date.now();
            await containers.kill(before);
            const rest = members().filter((m) => m !== before);
            const next = (await waitFor("a new primary", () => primaryOf(rest), 90_000, 250)).value;
            const id = (await waitFor("a write on rw after the failover", async () => {
                try {
                    return await withMySql(outputs.mysql.rwUrl, async (c) => ((await c.query("INSERT INTO orders (user_id) VALUES (777)")) as any)[0].insertId as number);
                } catch {
                    return undefined;
                }
            }, 60_000, 250)).value;
            for (const replica of [readReplica, analyticsReplica]) {
                await waitFor(`${replica} has the row written after the failover`, async () => (await mysqlSql(replica, admin(), `SELECT COUNT(*) FROM app.orders WHERE id = ${id}`)) === "1", 60_000, 250);
                // It may first reconnect to whichever member answers; MySQL then moves it to the member with the
                // highest weight, the primary.
                const onPrimary = await waitFor(`${replica} replicating from the new primary`, async () => (await replicaStatus(replica)).source === next.replace("hadb-dev-", ""), 60_000, 250);
                report(`mysql fleet: ${replica} on the new primary, after the row arrived`, onPrimary.seconds);
            }
            report("mysql fleet: from the primary's kill to both fleet replicas having a write made after the failover", (Date.now() - killedAt) / 1000);
            expect(new Set(await mysqlServersBehind(outputs.mysql.analyticsUrl, 6))).toEqual(new Set(["mysql-reads-1"]));
            await containers.start(before);
            await waitFor("the old primary back in the group", async () => groupFormed(await memberStatuses(members())), 180_000, 500);
        });

        it("exposes Prometheus metrics from the supervisor on members and replicas", async () => {
            const replica = await dockerExec(readReplica, ["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:8008/metrics"]);
            expect(replica).toMatch(/^hadb_mysql_replica_seconds_behind /m);
            expect(replica).toMatch(/^hadb_mysql_member_info\{[^}]*role="REPLICA"/m);
            const member = await dockerExec(members()[0], ["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:8008/metrics"]);
            expect(member).toMatch(/^hadb_mysql_applier_queue_transactions /m);
            const haproxy = await (await fetch(`http://127.0.0.1:${MYSQL_STATS}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
            expect(haproxy).toMatch(/^haproxy_server_status\{proxy="replicas",server="mysql-reads-0"/m);
        });
    });
    // examples/ecommerce as an application runs it: orders on rw, a user's history on ro, revenue on analytics.
    describe.each(["postgres", "mysql"] as const)("the e-commerce example on %s", (engine) => {
        const STATS = engine === "postgres" ? PG_STATS : MYSQL_STATS;
        // A member restarted by an earlier test may have a new address.
        beforeAll(async () => {
            for (const name of Object.keys(ip)) ip[name] = await containers.ip(name);
        });
        /** The member name behind a server the shop reports (PostgreSQL answers with its address). */
        const memberOf = (server: string) => (engine === "postgres" ? Object.entries(ip).find(([, a]) => a === server)?.[0].replace("hadb-dev-", "") : server) ?? server;
        const primary = async (): Promise<string | undefined> => {
            if (engine === "postgres") return leaderOf(await patroniCluster([...outputs.postgres.members, ...outputs.postgres.replicas]))?.name;
            const names = outputs.mysql.members as string[];
            const statuses = await memberStatuses(names);
            return names[statuses.findIndex((x) => x?.state === "ONLINE" && x.role === "PRIMARY")]?.replace("hadb-dev-", "");
        };

        it("places orders on the primary, reads a user's history from replicas and the 30-day revenue from the analytics replica", async () => {
            const shop = shopFromStackOutputs(outputs, engine);
            try {
                const userId = 500_001;
                for (let i = 0; i < 5; i++) await shop.createOrder(userId, [{ productId: 7, quantity: 2, price: 12.5 }]);
                const history = (await waitFor("the user's five orders on a replica", async () => {
                    const h = await shop.getUserOrders(userId);
                    return h.rows.length === 5 ? h : undefined;
                }, 10_000)).value;
                expect(history.rows.every((o) => o.totalAmount === "25.00" && o.status === "pending" && o.items === 1)).toBe(true);
                const leader = await primary();
                expect(memberOf(history.server)).not.toBe(leader);
                const report = await shop.getOrderAnalytics();
                expect(memberOf(report.server)).toBe(`${engine === "postgres" ? "pg" : "mysql"}-reads-1`);
                expect(report.rows.reduce((n, d) => n + d.orders, 0)).toBeGreaterThanOrEqual(5);
            } finally {
                await shop.close();
            }
        });

        it("through a hard kill of the primary: every acknowledged order is kept, and reads reach the primary only while the proxy is moving them", async () => {
            const shop = shopFromStackOutputs(outputs, engine);
            const acknowledged: number[] = [];
            const reads: { at: number; member: string }[] = [];
            let running = true;
            const deadline = Date.now() + 180_000;
            const writer = (async () => {
                for (let n = 0; running && Date.now() < deadline; n++) {
                    try {
                        acknowledged.push(await shop.createOrder(600_000 + (n % 50), [{ productId: 1, quantity: 1, price: 9.99 }, { productId: 2, quantity: 3, price: 1.25 }]));
                    } catch {
                        await new Promise((r) => setTimeout(r, 100));
                    }
                }
            })();
            const reader = (async () => {
                for (let n = 0; running && Date.now() < deadline; n++) {
                    try {
                        reads.push({ at: Date.now(), member: memberOf((await shop.getUserOrders(600_000 + (n % 50), 5)).server) });
                    } catch {
                        await new Promise((r) => setTimeout(r, 100));
                    }
                }
            })();
            try {
                await waitFor("orders flowing", async () => acknowledged.length >= 100, 60_000);
                const old = (await primary())!;
                const killedAt = Date.now();
                await containers.kill(`hadb-dev-${old}`);
                const next = (await waitFor("a new primary", async () => {
                    const p = await primary().catch(() => undefined);
                    return p && p !== old ? p : undefined;
                }, 90_000, 100)).value;
                const electedAt = Date.now();
                // The new primary was a replica a moment ago: the proxy stops reading from it within its checks.
                const moved = await waitFor("the new primary out of the read-only pool", async () => !(await proxyStates(`http://127.0.0.1:${STATS}`)).replicas?.[next]?.startsWith("UP"), 30_000, 100);
                const movedAt = Date.now();
                const written = acknowledged.length;
                await waitFor("orders flowing on the new primary", async () => acknowledged.length >= written + 100, 60_000);
                running = false;
                await Promise.all([writer, reader]);
                const onPrimary = reads.filter((r) => (r.at < killedAt && r.member === old) || (r.at > movedAt && r.member === next));
                // Seen elected (polled every 100 ms) until the proxy's checks moved reads off it.
                const inTransition = reads.filter((r) => r.at >= electedAt && r.at <= movedAt && r.member === next).length;
                reportCount(`${engine} shop: reads served by the new primary in the ${moved.seconds.toFixed(2)} s between seeing it elected and the proxy moving reads off it`, inTransition);
                expect(onPrimary).toEqual([]);
                const lost = engine === "postgres" ? await missingOrders(outputs.postgres.rwUrl, acknowledged) : await missingMySqlOrders(outputs.mysql.rwUrl, acknowledged);
                reportCount(`${engine} shop: orders acknowledged through the failover, all present afterwards (reads: ${reads.length})`, acknowledged.length);
                expect(lost).toEqual([]);
            } finally {
                running = false;
                await Promise.all([writer, reader]);
                await shop.close();
            }
            await containers.start(`hadb-dev-${(await waitFor("a stopped member", async () => {
                for (const name of [...outputs[engine].members]) if (!(await containers.state(name)).Running) return name.replace("hadb-dev-", "");
                return undefined;
            }, 5000)).value}`);
            if (engine === "postgres") await waitFor("five PostgreSQL members streaming", async () => healthyCluster(await patroniCluster([...outputs.postgres.members, ...outputs.postgres.replicas]), 5, 1), 240_000, 500);
            else await waitFor("the group whole again", async () => groupFormed(await memberStatuses(outputs.mysql.members)), 240_000, 500);
        });
    });

    it("npm run status -- dev prints every member of both clusters with its role and the endpoints routing to it", async () => {
        const { stdout } = await promisify(execFile)("npx", ["tsx", "test/status/cli.ts", "dev"], { timeout: 60_000, encoding: "utf8" });
        console.log(stdout);
        const line = (member: string) => stdout.split("\n").find((l) => l.split(/\s+/)[1] === member) ?? "";
        expect(line("pg-reads-1")).toMatch(/analytics replica\s+replica\s+running\s+\d+ B\s+analytics/);
        expect(line("mysql-reads-1")).toMatch(/analytics replica\s+REPLICA\s+REPLICATING\s+\d+ tx.*\s+analytics\s+from mysql-\d/);
        const leaders = stdout.split("\n").filter((l) => /\sleader\s/.test(l));
        expect(leaders).toHaveLength(1);
        expect(leaders[0]).toMatch(/\srw\s*$/);
    });
});
