import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerRequest, labelFilter } from "../harness/dockerApi";
import { down, preview, up } from "../harness";
import { ConfigValues, PROJECT_ROOT } from "../harness/stackConfig";
import { groupFormed, memberSql as mysqlSql, memberStatuses, missingOrders as missingMySqlOrders, mysqlOrders, withMySql } from "./mysql-support";
import { healthyCluster, memberSql as pgSql, missingOrders as missingPgOrders, patroniCluster, postgresOrders, withClient } from "./postgres-support";
import { OrderWriter } from "./writer";
import { dockerExec, liveEngine, report, sleep, waitFor, withLogsIfSlow, WITHOUT_FLEETS } from "./support";

// Day-2 changes on the running dev stack, each applied by a plain `up` with new config, as a user would run
// `pulumi up`: writers run on both read-write endpoints throughout, a monitor samples every member's container
// every 250 ms, and each change must lose no acknowledged write and never have two members of a cluster down.
const live = liveEngine();

type ClusterName = "pg" | "mysql";

/** Containers of the dev stack's members by cluster (the configurators and proxies are not members). */
async function memberContainers(): Promise<Record<ClusterName, { name: string; id: string; up: boolean }[]>> {
    const all = await dockerRequest<any[]>("GET", `/containers/json?all=1&filters=${labelFilter("hadb.stack=dev")}`);
    const of = (cluster: ClusterName) =>
        all
            .filter((c) => c.Labels["hadb.cluster"] === cluster)
            .map((c) => ({ name: c.Labels["hadb.member"] as string, id: c.Id as string, up: c.State === "running" && /\(healthy\)/.test(c.Status) }))
            .sort((a, b) => a.name.localeCompare(b.name));
    return { pg: of("pg"), mysql: of("mysql") };
}

/** The dev stack's container of a member. */
const container = (member: string) => `hadb-dev-${member}`;

/** Every member's container now, for printing logs. */
async function everyMemberContainer(): Promise<string[]> {
    const now = await memberContainers();
    return [...now.pg, ...now.mysql].map((c) => container(c.name));
}

/**
 * Samples every member until stopped: a member is down when its container is missing, stopped or not ready, or
 * when its server says so (Patroni: not running or streaming; MySQL: not ONLINE), which also catches a restart
 * inside a running container. A server that does not answer one sample (a 2 s probe on two busy cores) is down
 * only when it does not answer the next one either. Returns the most members of each cluster down at once.
 */
function downMonitor(expected: Record<ClusterName, string[]>) {
    const worst: Record<ClusterName, { down: number; who: string[] }> = { pg: { down: 0, who: [] }, mysql: { down: 0, who: [] } };
    let running = true;
    const unanswered = new Set<string>();
    const loop = (async () => {
        for (let i = 0; running && i < 4 * 60 * 20; i++) {
            const [now, patroni, mysql] = await Promise.all([
                memberContainers(),
                patroniCluster(expected.pg.map(container)).catch(() => undefined),
                memberStatuses(expected.mysql.map(container)),
            ]);
            // undefined: the server did not answer this sample.
            const serverUp: Record<ClusterName, (m: string) => boolean | undefined> = {
                pg: (m) => patroni && patroni.some((p) => p.name === m && (p.state === "running" || p.state === "streaming")),
                mysql: (m) => {
                    const status = mysql[expected.mysql.indexOf(m)];
                    return status && status.state === "ONLINE";
                },
            };
            for (const cluster of ["pg", "mysql"] as const) {
                const who = expected[cluster].filter((m) => {
                    const up = serverUp[cluster](m);
                    const silentTwice = up === undefined && unanswered.has(m);
                    if (up === undefined) unanswered.add(m);
                    else unanswered.delete(m);
                    return !now[cluster].find((c) => c.name === m && c.up) || up === false || silentTwice;
                });
                if (who.length > worst[cluster].down) worst[cluster] = { down: who.length, who };
            }
            await sleep(250);
        }
    })();
    return {
        async stop() {
            running = false;
            await loop;
            return worst;
        },
    };
}

describe.skipIf(!live)("day-2 changes on a running dev stack (live)", () => {
    const config: ConfigValues = { ...WITHOUT_FLEETS };
    let outputs: Record<string, any>;
    let pgMembers: string[];
    let mysqlMembers: string[];
    let adminPassword: string;

    const pgHealthy = (size: number) =>
        waitFor(`${size} PostgreSQL members: a leader and streaming replicas`, async () => healthyCluster(await patroniCluster(pgMembers), size, 1), 300_000, 500);
    const mysqlFormed = (containers: string[]) => waitFor(`${containers.length} MySQL members ONLINE`, async () => groupFormed(await memberStatuses(containers)), 300_000, 500);

    /**
     * Applies `changes` with a plain `up` while both writers run, and returns what happened: containers replaced,
     * the most members down at once, the longest write gap and lost writes per engine.
     */
    async function apply(what: string, changes: ConfigValues, settle: () => Promise<unknown> = async () => {}, expectedMembers?: Record<ClusterName, string[]>) {
        Object.assign(config, changes);
        const before = await memberContainers();
        const pgWriter = new OrderWriter(postgresOrders(outputs.postgres.rwUrl), 900_000);
        const mysqlWriter = new OrderWriter(mysqlOrders(outputs.mysql.rwUrl), 900_000);
        pgWriter.start();
        mysqlWriter.start();
        await waitFor("writes flowing on both engines", async () => pgWriter.acknowledged.length >= 10 && mysqlWriter.acknowledged.length >= 10, 60_000);
        const monitor = downMonitor(expectedMembers ?? { pg: before.pg.map((c) => c.name), mysql: before.mysql.map((c) => c.name) });
        const started = Date.now();
        // Within the test's 600 s: a member that never gets ready holds `up` (the provider's wait) until then.
        await withLogsIfSlow(everyMemberContainer, 400_000, async () => {
            outputs = (await up("dev", { config, log: () => {} })).outputs;
            await settle();
        });
        const applied = (Date.now() - started) / 1000;
        await sleep(2000);
        await Promise.all([pgWriter.stop(), mysqlWriter.stop()]);
        const worst = await monitor.stop();
        const after = await memberContainers();
        const replaced = (["pg", "mysql"] as const).flatMap((cluster) =>
            after[cluster].filter((c) => before[cluster].find((b) => b.name === c.name && b.id !== c.id)).map((c) => c.name),
        );
        const result = {
            replaced,
            worst,
            pg: { gap: pgWriter.longestGap(started - 2000, Date.now()), acknowledged: pgWriter.acknowledged.length, lost: await missingPgOrders(outputs.postgres.rwUrl, pgWriter.acknowledged) },
            mysql: { gap: mysqlWriter.longestGap(started - 2000, Date.now()), acknowledged: mysqlWriter.acknowledged.length, lost: await missingMySqlOrders(outputs.mysql.rwUrl, mysqlWriter.acknowledged) },
        };
        report(`day-2 ${what}: up until applied`, applied);
        report(`day-2 ${what}: longest PostgreSQL write gap (${result.pg.acknowledged} acknowledged, ${result.pg.lost.length} lost)`, result.pg.gap);
        report(`day-2 ${what}: longest MySQL write gap (${result.mysql.acknowledged} acknowledged, ${result.mysql.lost.length} lost)`, result.mysql.gap);
        console.log(`[measure] day-2 ${what}: replaced [${replaced.join(", ")}]; most members down at once: pg ${worst.pg.down} ${worst.pg.who}, mysql ${worst.mysql.down} ${worst.mysql.who}`);
        expect(result.pg.lost).toEqual([]);
        expect(result.mysql.lost).toEqual([]);
        expect(worst.pg.down).toBeLessThanOrEqual(1);
        expect(worst.mysql.down).toBeLessThanOrEqual(1);
        return result;
    }

    beforeAll(async () => {
        await down("dev", () => {}, { destroyData: true });
        const started = Date.now();
        outputs = (await up("dev", { config, log: () => {} })).outputs;
        pgMembers = outputs.postgres.members;
        mysqlMembers = outputs.mysql.members;
        adminPassword = decodeURIComponent(new URL(outputs.mysql.adminUrl).password);
        await pgHealthy(3);
        await mysqlFormed(mysqlMembers);
        report("day-2: dev stack up and both clusters formed", (Date.now() - started) / 1000);
    });

    afterAll(async () => {
        if (live) await down("dev", () => {}, { destroyData: true });
    });

    it("a second up with no change touches nothing: preview shows every resource unchanged", async () => {
        const plan = await preview("dev", { config });
        expect(plan.steps.filter((step) => step.op !== "same").map((step) => `${step.op} ${step.name}`)).toEqual([]);
        const result = await apply("no change", {});
        expect(result.replaced).toEqual([]);
    });

    it("a PostgreSQL parameter PostgreSQL takes online reaches every member without replacing any", async () => {
        const result = await apply("postgres work_mem (online)", { "hadb:postgresParameters": "work_mem=8MB" }, () =>
            waitFor("work_mem 8MB on every member", async () => (await Promise.all(pgMembers.map((m) => pgSql(m, "SHOW work_mem", "postgres")))).every((v) => v === "8MB"), 60_000, 500),
        );
        expect(result.replaced).toEqual([]);
    });

    it("a PostgreSQL parameter that needs a restart is rolled by the configurator, one member at a time", async () => {
        const result = await apply("postgres max_connections (restart rolled)", { "hadb:postgresParameters": "work_mem=8MB,max_connections=250" }, () =>
            waitFor(
                "max_connections 250 on every member, no restart pending",
                async () => {
                    const values = await Promise.all(pgMembers.map((m) => pgSql(m, "SHOW max_connections", "postgres")));
                    const cluster = await patroniCluster(pgMembers);
                    return values.every((v) => v === "250") && cluster.every((m: any) => !m.pending_restart) && healthyCluster(cluster, 3, 1);
                },
                300_000,
                1000,
            ),
        );
        expect(result.replaced).toEqual([]);
    });

    it("MySQL settings, the group's failure handling and a server variable, reach every member online", async () => {
        const result = await apply("mysql expel timeout and max_connections (online)", { "hadb:mysqlTiming": "production", "hadb:mysqlServerSettings": "max_connections=300" }, () =>
            waitFor(
                "the new settings on every member",
                async () => {
                    const rows = await Promise.all(mysqlMembers.map((m) => mysqlSql(m, adminPassword, "SELECT @@GLOBAL.max_connections, @@GLOBAL.group_replication_member_expel_timeout")));
                    return rows.every((r) => r.replace(/\s+/g, " ") === "300 5");
                },
                120_000,
                500,
            ),
        );
        expect(result.replaced).toEqual([]);
    });

    it("the application passwords rotate: the new ones work, the old ones are refused", async () => {
        const old = { pg: outputs.postgres.rwUrl as string, mysql: outputs.mysql.rwUrl as string };
        await apply("application password rotation", { "hadb:appPasswordRotation": 1 });
        expect(outputs.postgres.rwUrl).not.toBe(old.pg);
        expect(outputs.mysql.rwUrl).not.toBe(old.mysql);
        await withClient(outputs.postgres.rwUrl, (c) => c.query("SELECT 1"));
        await withMySql(outputs.mysql.rwUrl, (c) => c.query("SELECT 1"));
        await expect(withClient(old.pg, (c) => c.query("SELECT 1"))).rejects.toThrow(/password authentication failed/);
        await expect(withMySql(old.mysql, (c) => c.query("SELECT 1"))).rejects.toThrow(/Access denied/);
    });

    it("PostgreSQL scales out to 5 members and back to 3 without downtime", async () => {
        const original = pgMembers;
        await apply("postgres 3 -> 5 members", { "hadb:postgresMembers": 5 }, async () => {
            pgMembers = outputs.postgres.members;
            await pgHealthy(5);
        }, { pg: original.map((c) => c.replace("hadb-dev-", "")), mysql: mysqlMembers.map((c) => c.replace("hadb-dev-", "")) });
        expect(pgMembers).toHaveLength(5);
        await apply("postgres 5 -> 3 members", { "hadb:postgresMembers": 3 }, async () => {
            pgMembers = outputs.postgres.members;
            await waitFor("Patroni lists exactly the 3 remaining members", async () => (await patroniCluster(pgMembers)).length === 3 && healthyCluster(await patroniCluster(pgMembers), 3, 1), 120_000, 1000);
        }, { pg: original.map((c) => c.replace("hadb-dev-", "")), mysql: mysqlMembers.map((c) => c.replace("hadb-dev-", "")) });
        expect(pgMembers).toEqual(original);
    });

    it("MySQL scales out to 5 members without downtime", async () => {
        const original = mysqlMembers.map((c) => c.replace("hadb-dev-", ""));
        const result = await apply("mysql 3 -> 5 members", { "hadb:mysqlMembers": 5 }, async () => {
            mysqlMembers = outputs.mysql.members;
            await mysqlFormed(mysqlMembers);
        }, { pg: pgMembers.map((c) => c.replace("hadb-dev-", "")), mysql: original });
        expect(mysqlMembers).toHaveLength(5);
        // A running member does not need the new member list: no member is replaced.
        expect(result.replaced).toEqual([]);
    });

    it("MySQL scales back in to 3 members without downtime", async () => {
        const remaining = mysqlMembers.slice(0, 3);
        await apply("mysql 5 -> 3 members", { "hadb:mysqlMembers": 3 }, async () => {
            mysqlMembers = outputs.mysql.members;
            await waitFor(
                "a group of exactly the 3 remaining members",
                async () => groupFormed(await memberStatuses(mysqlMembers)) && (await mysqlSql(mysqlMembers[0], adminPassword, "SELECT COUNT(*) FROM performance_schema.replication_group_members")) === "3",
                180_000,
                1000,
            );
        }, { pg: pgMembers.map((c) => c.replace("hadb-dev-", "")), mysql: remaining.map((c) => c.replace("hadb-dev-", "")) });
        expect(mysqlMembers).toEqual(remaining);
    });

    it("etcd scales out to 5 members and back to 3: the cluster's membership follows, one member at a time", async () => {
        const etcdMembers = () => dockerExec("hadb-dev-etcd-0", ["etcdctl", "--endpoints=http://127.0.0.1:2379", "member", "list"]).then((out) => out.trim().split("\n").map((l) => l.split(", ")[2]).sort());
        const healthy = (n: number) =>
            waitFor(`an etcd cluster of ${n} healthy members`, async () => {
                const names = await etcdMembers();
                const health = await dockerExec("hadb-dev-etcd-0", ["etcdctl", "--endpoints=http://127.0.0.1:2379", "endpoint", "health", "--cluster"]).catch(() => "");
                return names.length === n && (health.match(/is healthy/g) ?? []).length === n && names;
            }, 180_000, 1000);
        await apply("etcd 3 -> 5 members", { "hadb:etcdMembers": 5 }, () => healthy(5));
        expect(await etcdMembers()).toEqual(["etcd-0", "etcd-1", "etcd-2", "etcd-3", "etcd-4"]);
        await apply("etcd 5 -> 3 members", { "hadb:etcdMembers": 3 }, () => healthy(3));
        expect(await etcdMembers()).toEqual(["etcd-0", "etcd-1", "etcd-2"]);
        await pgHealthy(3);
    });

    it("a rebuilt image rolls its members one at a time", async () => {
        // A copy of images/ whose MySQL image differs by one layer, as after a package update.
        const imagesDir = fs.mkdtempSync(path.join(os.tmpdir(), "hadb-images-"));
        fs.cpSync(path.join(PROJECT_ROOT, "images"), imagesDir, { recursive: true });
        fs.appendFileSync(path.join(imagesDir, "mysql", "Dockerfile"), "\nLABEL io.hadb.revision=\"day-2 test\"\n");
        try {
            const result = await apply("mysql image rebuilt", { "hadb:dockerImagesDir": imagesDir }, () => mysqlFormed(mysqlMembers));
            expect(result.replaced.filter((m) => /^mysql-\d$/.test(m)).sort()).toEqual(["mysql-0", "mysql-1", "mysql-2"]);
            expect(result.replaced.filter((m) => m.startsWith("pg-"))).toEqual([]);
        } finally {
            fs.rmSync(imagesDir, { recursive: true, force: true });
        }
    });
});
