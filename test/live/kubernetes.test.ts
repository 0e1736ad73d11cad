import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyStack, down, StandIn } from "../k8s/standin";
import { containerLogs } from "../k8s/standin/engine";
import { groupFormed, memberStatuses, missingOrders as missingMySqlOrders, mysqlOrders, withMySql } from "./mysql-support";
import { healthyCluster, leaderOf, missingOrders as missingPgOrders, patroniCluster, postgresOrders, withClient } from "./postgres-support";
import { liveEngine, report, sleep, waitFor } from "./support";
import { Attempt, OrderWriter } from "./writer";

// The staging stack (Pulumi.staging.yaml) applied to the Kubernetes stand-in on Docker (test/k8s/standin.ts): the same
// StatefulSets, Services and files a cluster would get, Pods with a sandbox, init containers, projected files,
// claims and probes. Clients reach the Services only through their forwards on 127.0.0.1; member state is read
// with docker exec. Faster timing profiles keep the file within a few minutes.
const live = liveEngine();
const STACK = "staging";
const CONFIG = { "hadb:postgresTiming": "dev", "hadb:mysqlTiming": "dev", "hadb:haproxyCheckIntervalMs": 500 };

/** Prints a count in the [measure] format. */
function reportCount(what: string, n: number): void {
    console.log(`[measure] ${what}: ${n}`);
}

/** Members that acknowledged the writes in [from, to], in order, and how often the writer's primary changed. */
function primaryChanges(attempts: readonly Attempt[], from: number, to: number, member: (server: string) => string): { changes: number; sequence: string[] } {
    const sequence: string[] = [];
    for (const a of attempts) {
        if (!a.ok || a.at < from || a.at > to) continue;
        const m = member(a.server!);
        if (sequence.at(-1) !== m) sequence.push(m);
    }
    return { changes: Math.max(0, sequence.length - 1), sequence };
}

describe.skipIf(!live)("the staging stack on the Kubernetes stand-in (live)", () => {
    let s: StandIn;
    let pgRw: string;
    let pgRo: string;
    let myRw: string;
    let myRo: string;
    const pgAcknowledged: number[] = [];
    /** Why a recreated PostgreSQL Pod cannot start, once seen: later tests that recreate Pods fail at once with it. */
    let pgRecreation: string | undefined;
    const pgRecreates = () => expect(pgRecreation, "a recreated PostgreSQL Pod must start (see the Pod re-creation test)").toBeUndefined();
    const myAcknowledged: number[] = [];

    const pgContainers = () => s.pods("pg").map((p) => p.container);
    const myContainers = () => s.pods("mysql").map((p) => p.container);
    const pgCluster = () => patroniCluster(pgContainers());
    // inet_server_addr()::text is "<ip>/32".
    const pgMember = (addr: string) => s.podByIp(addr.replace(/\/32$/, "")) ?? addr;
    const waitPgHealthy = (what: string, timeoutMs = 180_000) =>
        waitFor(
            what,
            async () => {
                const c = await pgCluster();
                return healthyCluster(c, 3, 1) && c;
            },
            timeoutMs,
            500,
        );
    const waitGroup = (what: string, timeoutMs = 240_000) =>
        waitFor(
            what,
            async () => {
                const st = await memberStatuses(myContainers());
                return groupFormed(st) && st;
            },
            timeoutMs,
            500,
        );
    const myPrimary = async () => {
        const st = await memberStatuses(myContainers());
        return s.pods("mysql")[st.findIndex((m) => m?.role === "PRIMARY")]?.name;
    };
    const pgWritable = () => withClient(pgRw, async (c) => (await c.query("SELECT 1")).rowCount === 1);
    const myWritable = () => withMySql(myRw, async (c) => ((await c.query("SELECT 1"))[0] as unknown[]).length === 1);

    async function writing<C>(writer: OrderWriter<C>): Promise<void> {
        writer.start();
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 60_000);
    }

    beforeAll(async () => {
        await down(STACK);
        const started = Date.now();
        s = await applyStack(STACK, CONFIG);
        report("k8s stand-in: applyStack (every StatefulSet ready, Services with endpoints)", (Date.now() - started) / 1000);
        pgRw = s.localUrl(s.outputs.postgres.rwUrl);
        pgRo = s.localUrl(s.outputs.postgres.roUrl);
        myRw = s.localUrl(s.outputs.mysql.rwUrl);
        myRo = s.localUrl(s.outputs.mysql.roUrl);
        await waitPgHealthy("a Patroni leader and two streaming replicas");
        await waitGroup("every MySQL member ONLINE with one PRIMARY");
        await waitFor("both read-write Services accepting the application user", async () => (await pgWritable()) && (await myWritable()), 120_000);
        report("k8s stand-in: applyStack to both clusters formed and writable through their Services", (Date.now() - started) / 1000);
    });

    afterAll(async () => {
        if (live) await down(STACK);
    });

    it("forms both clusters: one Patroni leader with streaming replicas; every GR member ONLINE with one PRIMARY", async () => {
        const pg = await pgCluster();
        expect(pg.filter((m) => m.role === "leader").map((m) => m.state)).toEqual(["running"]);
        expect(pg.filter((m) => m.role !== "leader").map((m) => [m.state, m.lag])).toEqual([
            ["streaming", 0],
            ["streaming", 0],
        ]);
        const group = await memberStatuses(myContainers());
        expect(group.map((m) => m?.state)).toEqual(["ONLINE", "ONLINE", "ONLINE"]);
        expect(group.filter((m) => m?.role === "PRIMARY")).toHaveLength(1);
        // Every Pod is Ready and placed one per node, as required anti-affinity asks.
        expect(s.pods().filter((p) => !p.ready)).toEqual([]);
        for (const sts of ["etcd", "pg", "mysql"]) expect(new Set(s.pods(sts).map((p) => p.node)).size).toBe(3);
    });

    it("routes read-write to the leader/primary and read-only to replicas/secondaries through the Services", async () => {
        const leader = leaderOf(await pgCluster())!.name;
        const rw = await withClient(pgRw, (c) => c.query("SELECT pg_is_in_recovery() AS replica, inet_server_addr()::text AS addr"));
        expect(rw.rows[0].replica).toBe(false);
        expect(pgMember(rw.rows[0].addr)).toBe(leader);
        const ro = [];
        for (let i = 0; i < 6; i++) ro.push(await withClient(pgRo, async (c) => (await c.query("SELECT pg_is_in_recovery() AS replica, inet_server_addr()::text AS addr")).rows[0]));
        expect(ro.every((r) => r.replica === true), JSON.stringify(ro)).toBe(true);
        expect(ro.map((r) => pgMember(r.addr))).not.toContain(leader);

        const primary = await myPrimary();
        const [rwRows] = await withMySql(myRw, (c) => c.query<mysql.RowDataPacket[]>("SELECT @@server_id AS id, @@super_read_only AS sro"));
        expect(Number(rwRows[0].sro)).toBe(0);
        expect(`mysql-${Number(rwRows[0].id) - 1}`).toBe(primary);
        for (let i = 0; i < 4; i++) {
            const [roRows] = await withMySql(myRo, (c) => c.query<mysql.RowDataPacket[]>("SELECT @@server_id AS id, @@super_read_only AS sro"));
            expect(Number(roRows[0].sro)).toBe(1);
            expect(`mysql-${Number(roRows[0].id) - 1}`).not.toBe(primary);
        }
    });

    it("a deleted Pod comes back under its name on its own claim, data intact, and Ready", async () => {
        const replica = (await pgCluster()).find((m) => m.role === "replica" || m.role === "sync_standby")!.name;
        const before = s.pod(replica);
        // A mark on the claim, written by the old Pod: the new one must find it (same claim, not a fresh volume).
        const mark = "/var/lib/postgresql/data/.standin-claim-mark";
        await s.exec(replica, ["sh", "-c", `echo ${before.uid} > ${mark}`]);
        const deletedAt = Date.now();
        await s.deletePod(replica);
        try {
            await waitFor(`${replica} recreated and Ready`, async () => s.pods("pg").some((p) => p.name === replica && p.ready), 120_000, 500);
        } catch (err) {
            const fatal = (await containerLogs(s.container(replica), 200))
                .split("\n")
                .filter((l) => /FATAL|DETAIL/.test(l))
                .slice(-2)
                .join(" / ");
            const modes = await s.exec(replica, ["stat", "-c", "%A %U:%G %n", "/var/lib/postgresql/data", "/var/lib/postgresql/data/pg17"]).catch(() => "");
            pgRecreation = `${replica} never became Ready after its Pod was recreated: ${fatal || String(err)}; ${modes.trim().replace(/\n/g, "; ")}`;
            throw new Error(pgRecreation);
        }
        report(`k8s stand-in postgres: replica Pod ${replica} deleted -> recreated and Ready`, (Date.now() - deletedAt) / 1000);
        const after = s.pod(replica);
        expect(after.uid).not.toBe(before.uid);
        expect((await s.exec(replica, ["cat", mark])).trim()).toBe(before.uid);
        await waitPgHealthy("the recreated replica streaming");
    });

    it("postgres: docker kill of the leader's Pod; the kubelet restarts it, writes resume with nothing acknowledged lost", async () => {
        pgRecreates();
        const before = leaderOf(await pgCluster())!.name;
        const uid = s.pod(before).uid;
        const writer = new OrderWriter(postgresOrders(pgRw));
        await writing(writer);
        const killedAt = Date.now();
        await s.killPod(before);
        // Every container of the Pod is dead once killPod returns: a write acknowledged later came from a leader
        // that runs now (the restarted Pod may keep its lease and its address).
        const dead = Date.now();
        const first = (dead - killedAt) / 1000 + (await writer.waitForSuccessAfter(dead, undefined, 120_000));
        await sleep(2000);
        await writer.stop();
        const after = leaderOf(await pgCluster());
        report(`k8s stand-in postgres: leader Pod ${before} killed -> first acknowledged write through the rw Service (leader then: ${after?.name ?? "none"})`, first);
        pgAcknowledged.push(...writer.acknowledged);
        expect(await missingPgOrders(pgRw, writer.acknowledged)).toEqual([]);
        await waitPgHealthy("the killed member streaming again");
        // Restarted in place by the kubelet: the same Pod (uid), a new attempt of its container.
        expect(s.pod(before).uid).toBe(uid);
        expect(s.pod(before).restarts).toBe(1);
    });

    it("mysql: docker kill of the primary's Pod; a new primary takes writes with nothing acknowledged lost", async () => {
        const before = (await myPrimary())!;
        const writer = new OrderWriter(mysqlOrders(myRw));
        await writing(writer);
        const oldServer = writer.lastServer!;
        const killedAt = Date.now();
        await s.killPod(before);
        const dead = Date.now();
        // @@server_id names the member: the first write after the kill on another member is the new primary's.
        const first = (dead - killedAt) / 1000 + (await writer.waitForSuccessAfter(dead, oldServer, 120_000));
        await sleep(2000);
        await writer.stop();
        report(`k8s stand-in mysql: primary Pod ${before} killed -> first acknowledged write on the new primary`, first);
        myAcknowledged.push(...writer.acknowledged);
        expect(await missingMySqlOrders(myRw, writer.acknowledged)).toEqual([]);
        await waitGroup("the killed member ONLINE again");
        expect(await myPrimary()).not.toBe(before);
    });

    it("every Pod deleted at once: the clusters come back with every acknowledged row", async () => {
        pgRecreates();
        const pgWriter = new OrderWriter(postgresOrders(pgRw), 420_000);
        const myWriter = new OrderWriter(mysqlOrders(myRw), 420_000);
        await Promise.all([writing(pgWriter), writing(myWriter)]);
        const deletedAt = Date.now();
        await s.deleteAllPods();
        const goneAt = Date.now();
        const [pgBack, myBack] = await Promise.all([pgWriter.waitForSuccessAfter(goneAt, undefined, 240_000), myWriter.waitForSuccessAfter(goneAt, undefined, 240_000)]);
        await sleep(2000);
        await Promise.all([pgWriter.stop(), myWriter.stop()]);
        report("k8s stand-in: every Pod deleted (graceful) -> all gone", (goneAt - deletedAt) / 1000);
        report("k8s stand-in: every Pod deleted -> postgres writable again through its Service", (goneAt - deletedAt) / 1000 + pgBack);
        report("k8s stand-in: every Pod deleted -> mysql writable again through its Service", (goneAt - deletedAt) / 1000 + myBack);
        pgAcknowledged.push(...pgWriter.acknowledged);
        myAcknowledged.push(...myWriter.acknowledged);
        await s.waitReady(undefined, 240_000);
        await waitPgHealthy("Patroni healthy after the restart of every Pod");
        await waitGroup("the group whole after the restart of every Pod");
        expect(await missingPgOrders(pgRw, pgAcknowledged)).toEqual([]);
        expect(await missingMySqlOrders(myRw, myAcknowledged)).toEqual([]);
    });

    /**
     * Rolls every Pod of a workload (the stand-in's StatefulSet controller, highest ordinal first) while a writer
     * runs; checks each Pod went only after the previous was Ready; reports the time, the longest write gap and the
     * primary changes; returns what the writer got acknowledged.
     */
    async function rollWithWriter<C>(label: string, workload: string, writer: OrderWriter<C>, healthy: () => Promise<unknown>, member: (server: string) => string): Promise<number[]> {
        await writing(writer);
        const from = Date.now();
        const rollout = await s.rollingRestart(workload, 300_000);
        await healthy();
        await writer.waitForSuccessAfter(Date.now(), undefined, 30_000);
        await writer.stop();
        const to = Date.now();
        expect(rollout.steps.map((x) => x.pod)).toEqual([2, 1, 0].map((i) => `${workload}-${i}`));
        for (let i = 1; i < rollout.steps.length; i++) expect(rollout.steps[i].deletedAt).toBeGreaterThanOrEqual(rollout.steps[i - 1].readyAt!);
        const { changes, sequence } = primaryChanges(writer.attempts, from, to, member);
        report(`k8s stand-in ${label}: rolling restart of ${workload} (3 Pods, one at a time)`, rollout.seconds);
        report(`k8s stand-in ${label}: rolling restart longest write gap`, writer.longestGap(from, to));
        reportCount(`k8s stand-in ${label}: rolling restart primary changes (${sequence.join(" -> ")})`, changes);
        return writer.acknowledged;
    }

    it("postgres: a rolling restart (highest ordinal first) with the writer running loses nothing", async () => {
        pgRecreates();
        const writer = new OrderWriter(postgresOrders(pgRw), 420_000);
        pgAcknowledged.push(...(await rollWithWriter("postgres", "pg", writer, () => waitPgHealthy("Patroni healthy after the rollout"), pgMember)));
        expect(await missingPgOrders(pgRw, pgAcknowledged)).toEqual([]);
    });

    it("mysql: a rolling restart (highest ordinal first) with the writer running loses nothing", async () => {
        const writer = new OrderWriter(mysqlOrders(myRw), 420_000);
        myAcknowledged.push(...(await rollWithWriter("mysql", "mysql", writer, () => waitGroup("the group whole after the rollout"), (id) => `mysql-${Number(id) - 1}`)));
        expect(await missingMySqlOrders(myRw, myAcknowledged)).toEqual([]);
    });
});
