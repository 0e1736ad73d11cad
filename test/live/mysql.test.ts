import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { down, up } from "../harness";
import { connect, groupFormed, memberSql, memberStatuses, missingOrders, mysqlOrders, waitIdentical, withMySql } from "./mysql-support";
import { OrderWriter } from "./writer";
import { containers, liveEngine, report, reportCount, sleep, waitFor, watchWriters, withLogsOnFailure, WITHOUT_FLEETS } from "./support";
import { mysqlCommitProbe, onInstance, overlappingWriters, PROBE_TABLE, readThroughReplicaLoss, writeThroughFrontendLoss } from "./faults";
import { expectReadsSurvivedReplicaLoss, expectWritesSurvivedFrontendLoss } from "./fault-checks";

// The dev stack's Group Replication group behind HAProxy, on real containers. Client traffic goes through
// 127.0.0.1:6446 (read-write) and 6447 (read-only), or the second HAProxy instance's 6456 and 6457; member state
// is read with docker exec.
const live = liveEngine();
// Two HAProxy instances, as production runs them: losing one is one of the faults.
const STACK = { ...WITHOUT_FLEETS, "hadb:haproxyInstances": 2 };

describe.skipIf(!live)("MySQL Group Replication behind HAProxy (live)", () => {
    let rwUrl: string;
    let roUrl: string;
    let adminPassword: string;
    let members: string[];
    const statuses = () => memberStatuses(members);
    const waitFormed = (what: string, timeoutMs = 180_000) =>
        withLogsOnFailure(members, () => waitFor(what, async () => groupFormed(await statuses()) && (await statuses()), timeoutMs, 500));
    const primary = async () => members[(await statuses()).findIndex((s) => s?.role === "PRIMARY")];
    const everyAcknowledged: number[] = [];

    const identicalMembers = () => waitIdentical(members, adminPassword);

    beforeAll(async () => {
        await down("dev", () => {}, { destroyData: true });
        const started = Date.now();
        const deployment = await up("dev", { config: STACK, log: () => {} });
        ({ rwUrl, roUrl, members } = deployment.outputs.mysql);
        adminPassword = decodeURIComponent(new URL(deployment.outputs.mysql.adminUrl).password);
        await waitFormed("every member ONLINE with one PRIMARY", 300_000);
        await waitFor("the read-write endpoint accepting the application user", () => withMySql(rwUrl, async (c) => ((await c.query("SELECT 1"))[0] as unknown[]).length === 1), 60_000);
        report("mysql dev stack: harness up to a formed, writable group", (Date.now() - started) / 1000);
        await withMySql(rwUrl, (c) => c.query(PROBE_TABLE.mysql));
    });

    /** Every member asked directly, every ~100 ms, to commit a row: only a commit that returned counts. */
    const commitProbe = () => mysqlCommitProbe(members, adminPassword).start();

    afterAll(async () => {
        if (live) await down("dev", () => {}, { destroyData: true });
    });

    it("forms one group: every member ONLINE, exactly one PRIMARY, secondaries super_read_only", async () => {
        const s = await statuses();
        expect(s.map((m) => m?.state)).toEqual(["ONLINE", "ONLINE", "ONLINE"]);
        expect(s.filter((m) => m?.role === "PRIMARY")).toHaveLength(1);
        expect(s.filter((m) => m?.role === "SECONDARY").every((m) => m!.super_read_only)).toBe(true);
        const view = await memberSql(await primary(), adminPassword, "SELECT COUNT(*) FROM performance_schema.replication_group_members WHERE MEMBER_STATE = 'ONLINE'");
        expect(view).toBe("3");
    });

    it("reads through 6447, from a super_read_only secondary, a row written through 6446", async () => {
        const [res] = await withMySql(rwUrl, (c) => c.query<mysql.ResultSetHeader>("INSERT INTO orders (user_id) VALUES (7)"));
        const id = Number(res.insertId);
        const { seconds, value } = await waitFor(
            "the order visible on 6447",
            () =>
                withMySql(roUrl, async (c) => {
                    const [rows] = await c.query<mysql.RowDataPacket[]>("SELECT (SELECT COUNT(*) FROM orders WHERE id = ?) AS found, @@super_read_only AS sro, @@server_id AS server", [id]);
                    return Number(rows[0].found) === 1 && rows[0];
                }),
            10_000,
            100,
        );
        report("mysql: row written on 6446 visible on 6447 after", seconds);
        expect(Number(value.sro)).toBe(1);
        const [rw] = await withMySql(rwUrl, (c) => c.query<mysql.RowDataPacket[]>("SELECT @@server_id AS server, @@super_read_only AS sro"));
        expect(Number(rw[0].sro)).toBe(0);
        expect(Number(value.server)).not.toBe(Number(rw[0].server));
    });

    it("losing a secondary does not interrupt reads on 6447", async () => {
        const secondary = members[(await statuses()).findIndex((s) => s?.role === "SECONDARY")];
        const seen = await readThroughReplicaLoss(
            () => withMySql(roUrl, async (c) => Number(((await c.query<mysql.RowDataPacket[]>("SELECT @@super_read_only AS sro"))[0])[0].sro) === 1),
            secondary,
        );
        expectReadsSurvivedReplicaLoss("mysql, port 6447", seen);
        await containers.start(secondary);
        await waitFormed("the killed secondary ONLINE again");
    });

    it("losing one of two HAProxy instances: a client that lists both keeps committing, nothing lost", async () => {
        const proxy = members[0].replace(/-\d+$/, "-proxy-0");
        const seen = await writeThroughFrontendLoss([mysqlOrders(rwUrl), mysqlOrders(onInstance(rwUrl, 1))], proxy);
        expectWritesSurvivedFrontendLoss("mysql", seen);
        everyAcknowledged.push(...seen.acknowledged);
        // Read back through the second instance: the first one is only starting again.
        expect(await missingOrders(onInstance(rwUrl, 1), seen.acknowledged)).toEqual([]);
        await waitFor("the first HAProxy instance serving again", () => withMySql(rwUrl, async (c) => c.query("SELECT 1")), 30_000, 250);
    });

    let killed = "";

    it("after docker kill of the primary, a new primary takes writes through 6446 and no acknowledged write is lost", async () => {
        killed = await primary();
        const writer = new OrderWriter(mysqlOrders(rwUrl));
        writer.start();
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 30_000);
        const oldServer = writer.lastServer;
        const at = Date.now();
        await containers.kill(killed);
        const seconds = await writer.waitForSuccessAfter(at, oldServer, 90_000);
        await sleep(1500);
        await writer.stop();
        report("mysql: docker kill of the primary -> first acknowledged write through 6446", seconds);
        everyAcknowledged.push(...writer.acknowledged);
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
        expect(await primary()).not.toBe(killed);
    });

    it("the killed member comes back ONLINE by itself, through a clone when the binary logs it missed are purged", async () => {
        expect(killed, "runs after the kill test").not.toBe("");
        // Incremental recovery is impossible once every donor purged the transactions the member missed.
        for (const m of members.filter((m) => m !== killed)) {
            await memberSql(m, adminPassword, "FLUSH BINARY LOGS; PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 SECOND");
        }
        const at = Date.now();
        await containers.start(killed);
        await waitFormed("the killed member ONLINE again");
        report("mysql: killed member restarted (binary logs purged) -> cloned and ONLINE", (Date.now() - at) / 1000);
        expect(await memberSql(killed, adminPassword, "SELECT STATE FROM performance_schema.clone_status")).toBe("Completed");
        await identicalMembers();
    });

    it("comes back after a complete outage without any manual step, with every acknowledged row", async () => {
        const writer = new OrderWriter(mysqlOrders(rwUrl));
        writer.start();
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 30_000);
        await writer.stop();
        everyAcknowledged.push(...writer.acknowledged);
        await Promise.all(members.map((m) => containers.stop(m, 30)));
        const at = Date.now();
        await Promise.all(members.map((m) => containers.start(m)));
        await waitFormed("the group rebooted from the most advanced member", 240_000);
        await waitFor("writes accepted on 6446", () => withMySql(rwUrl, async (c) => (await c.query("INSERT INTO orders (user_id) VALUES (8)"), true)), 60_000, 250);
        report("mysql: complete outage, all members started -> group ONLINE and writable", (Date.now() - at) / 1000);
        expect(await missingOrders(rwUrl, everyAcknowledged)).toEqual([]);
        await identicalMembers();
    });

    it("a member cut off from the network cannot commit; the majority keeps serving; reconnected it rejoins", async () => {
        const isolated = await primary();
        const member = isolated.replace(/^hadb-dev-/, "");
        const network = "hadb-dev";
        // Every member asked directly, every ~250 ms, whether it takes writes (an ONLINE primary with super_read_only off).
        const writers = async () => {
            const now = await statuses();
            return members.filter((_, i) => now[i]?.state === "ONLINE" && now[i]?.role === "PRIMARY" && now[i]?.super_read_only === false);
        };
        const probe = commitProbe();
        const { rounds } = await watchWriters(writers, async () => {
            const address = await containers.disconnect(isolated, network);
            try {
                const at = Date.now();
                // The isolated member must not commit: with its majority gone the write blocks, then fails.
                const attempt = memberSql(isolated, adminPassword, "SET SESSION innodb_lock_wait_timeout = 5; INSERT INTO app.orders (user_id) VALUES (424242)")
                    .then(() => "committed")
                    .catch((err: Error) => `refused: ${err.message.split("\n").find((l) => l.includes("ERROR")) ?? err.message.slice(0, 120)}`);
                const writer = new OrderWriter(mysqlOrders(rwUrl));
                writer.start();
                const seconds = await writer.waitForSuccessAfter(at, undefined, 60_000);
                report("mysql: primary cut off -> first acknowledged write on the majority", seconds);
                await waitFor("writes flowing on the majority", async () => writer.acknowledged.length >= 10, 30_000);
                await writer.stop();
                everyAcknowledged.push(...writer.acknowledged);
                const outcome = await Promise.race([attempt, sleep(30_000).then(() => "still blocked after 30 s")]);
                report(`mysql: write on the cut-off member: ${outcome}; after`, (Date.now() - at) / 1000);
                expect(outcome).not.toBe("committed");
                // Split brain: having left the group (its write failed), the cut-off member must not found a group of
                // its own; it waits for the peers on record. ONLINE while cut off can only mean a second group.
                const watchUntil = Date.now() + 20_000;
                for (let probe = 0; probe < 60 && Date.now() < watchUntil; probe++) {
                    const [own] = await memberStatuses([isolated]);
                    expect(own?.state, `${isolated} ONLINE (a group of its own) while cut off`).not.toBe("ONLINE");
                    await sleep(500);
                }
            } finally {
                await containers.connect(isolated, network, member, address);
            }
        });
        // A cut-off primary still calls itself an ONLINE PRIMARY in its own view until it leaves the group, while
        // the majority has elected another: reported. What counts is that it cannot commit (no majority certifies
        // its transactions): the commit probe asked every member directly and no two acknowledged over one stretch.
        const acks = await probe.stop();
        const overlaps = overlappingWriters(acks);
        report(`mysql: ${rounds.length} role rounds while cut off, rounds with two members calling themselves writable primary: ${rounds.filter((r) => r.writers.length > 1).length}; probing took`, (rounds.at(-1)!.at - rounds[0].at) / 1000);
        reportCount(`mysql: commit probe around the cut — acknowledged by ${[...new Set(acks.map((a) => a.member))].join(", ")}: ${acks.length} commits; overlapping writers`, overlaps.length);
        expect(acks.some((a) => a.member !== isolated), "the majority's new primary acknowledged probe commits").toBe(true);
        expect(overlaps).toEqual([]);
        const back = Date.now();
        await waitFormed("the cut-off member ONLINE again");
        report("mysql: reconnected member -> ONLINE", (Date.now() - back) / 1000);
        await identicalMembers();
        const [rows] = await withMySql(rwUrl, (c) => c.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM orders WHERE user_id = 424242"));
        expect(Number(rows[0].n), "the write tried on the cut-off member").toBe(0);
        expect(await missingOrders(rwUrl, everyAcknowledged)).toEqual([]);
    });

    it("after an outage one member never returns: the group stays down until the stack decides rebootFromMajority, then reboots from the most advanced of the rest, every acknowledged row kept", async () => {
        const before = await statuses();
        const primaryMember = members[before.findIndex((m) => m?.role === "PRIMARY")];
        const [behind, lost] = members.filter((m) => m !== primaryMember);
        // One secondary stops first and the group commits on without it: the two that return then differ, and
        // only the primary holds every acknowledged row.
        const writer = new OrderWriter(mysqlOrders(rwUrl));
        writer.start();
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 30_000);
        await containers.stop(behind, 30);
        const stoppedAt = Date.now();
        await waitFor("writes committed without the stopped secondary", async () => writer.attempts.filter((a) => a.ok && a.at > stoppedAt).length >= 30, 30_000);
        await writer.stop();
        everyAcknowledged.push(...writer.acknowledged);
        await Promise.all([primaryMember, lost].map((m) => containers.stop(m, 30)));
        const returning = [behind, primaryMember];
        await Promise.all(returning.map((m) => containers.start(m)));
        await waitFor("the returning members' supervisors answering", async () => (await memberStatuses(returning)).every((m) => m !== undefined), 90_000, 500);
        // Without the decision: both answer, neither may found a group while the third is silent.
        const deadline = Date.now() + 20_000;
        for (let probe = 0; probe < 40 && Date.now() < deadline; probe++) {
            const states = (await memberStatuses(returning)).map((m) => m?.state);
            expect(states.filter((st) => st === "ONLINE" || st === "RECOVERING"), `a group without ${lost}`).toEqual([]);
            await sleep(500);
        }
        const decidedAt = Date.now();
        try {
            await up("dev", { config: { ...STACK, "hadb:mysqlRebootFromMajority": true }, log: () => {} });
            report("mysql: rebootFromMajority declared -> up returned (the configurator ready on the rebooted majority)", (Date.now() - decidedAt) / 1000);
            const rebooted = await withLogsOnFailure(returning, () =>
                waitFor("the two returning members ONLINE", async () => {
                    const now = await memberStatuses(returning);
                    return now.every((m) => m?.state === "ONLINE") && now;
                }, 120_000, 500),
            );
            report("mysql: rebootFromMajority declared -> both returning members ONLINE", (Date.now() - decidedAt) / 1000);
            expect(rebooted.value.map((m) => m!.role), "the most advanced member founded the group").toEqual(returning.map((m) => (m === primaryMember ? "PRIMARY" : "SECONDARY")));
            await waitFor("writes accepted on 6446", () => withMySql(rwUrl, async (c) => (await c.query("INSERT INTO orders (user_id) VALUES (9)"), true)), 60_000, 250);
            expect(await missingOrders(rwUrl, everyAcknowledged)).toEqual([]);
            const back = Date.now();
            await containers.start(lost);
            await waitFormed("the member that was given up ONLINE again once it returns");
            report("mysql: the given-up member started -> ONLINE in the rebooted group", (Date.now() - back) / 1000);
            await identicalMembers();
        } finally {
            await up("dev", { config: STACK, log: () => {} });
        }
    });
});

describe.skipIf(!live)("MySQL Group Replication in multi-primary mode (live)", () => {
    let rwUrl: string;
    let adminPassword: string;
    let members: string[];

    beforeAll(async () => {
        await down("dev", () => {}, { destroyData: true });
        const deployment = await up("dev", { config: { ...WITHOUT_FLEETS, "hadb:mysqlMode": "multi-primary" }, log: () => {} });
        ({ rwUrl, members } = deployment.outputs.mysql);
        adminPassword = decodeURIComponent(new URL(deployment.outputs.mysql.adminUrl).password);
        await waitFor("every member ONLINE and PRIMARY", async () => groupFormed(await memberStatuses(members), true), 300_000, 500);
        await waitFor("6446 writable", () => withMySql(rwUrl, async (c) => (await c.query("INSERT INTO orders (user_id) VALUES (1)"), true)), 60_000, 250);
    });

    afterAll(async () => {
        if (live) await down("dev", () => {}, { destroyData: true });
    });

    it("certifies concurrent updates of one row on two members: exactly one commit fails, data stays identical", async () => {
        // Two sessions through 6446 (round robin over every ONLINE member) that landed on different members.
        const sessions: { conn: mysql.Connection; server: number }[] = [];
        for (let i = 0; i < 12 && new Set(sessions.map((s) => s.server)).size < 2; i++) {
            const conn = await connect(rwUrl);
            const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT @@server_id AS server");
            sessions.push({ conn, server: Number(rows[0].server) });
        }
        const a = sessions[0];
        const b = sessions.find((s) => s.server !== a.server);
        expect(b, "two sessions on different members").toBeDefined();
        const [inserted] = await a.conn.query<mysql.ResultSetHeader>("INSERT INTO orders (user_id) VALUES (2)");
        const id = Number(inserted.insertId);
        await waitFor(
            `order ${id} on the second member`,
            async () => ((await b!.conn.query<mysql.RowDataPacket[]>("SELECT id FROM orders WHERE id = ?", [id]))[0]).length === 1,
            10_000,
            100,
        );
        await a.conn.query("BEGIN");
        await b!.conn.query("BEGIN");
        await a.conn.query("UPDATE orders SET status = 'processing' WHERE id = ?", [id]);
        await b!.conn.query("UPDATE orders SET status = 'shipped' WHERE id = ?", [id]);
        const results = await Promise.allSettled([a.conn.query("COMMIT"), b!.conn.query("COMMIT")]);
        const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
        report(`mysql multi-primary: concurrent commits of one row -> ${results.length - failed.length} committed, ${failed.length} failed (${failed.map((f) => f.reason?.message).join("; ")})`, 0);
        expect(failed).toHaveLength(1);
        // Either certification refuses the later COMMIT ("Plugin instructed the server to rollback"), or the earlier
        // one, certified first, is applied on the other member and aborts its still-local transaction there
        // (ER_LOCK_DEADLOCK during COMMIT): both are Group Replication resolving the conflict.
        expect(String(failed[0].reason?.message)).toMatch(/rollback|conflict|certification|deadlock/i);
        for (const s of sessions) await s.conn.end().catch(() => {});
        await waitIdentical(members, adminPassword);
        const statuses = await Promise.all(members.map((m) => memberSql(m, adminPassword, `SELECT status FROM app.orders WHERE id = ${id}`)));
        expect(new Set(statuses).size).toBe(1);
        expect(["processing", "shipped"]).toContain(statuses[0]);
    });
});
