import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { down, up } from "../harness";
import { confirmedHealthy, leaderOf, memberSql, missingOrders, patroniCluster, postgresOrders, PatroniMember, switchover, waitIdentical, withClient } from "./postgres-support";
import { OrderWriter } from "./writer";
import { containers, dockerExec, liveEngine, report, reportCount, sleep, waitFor, watchWriters, WITHOUT_FLEETS, WriterRound } from "./support";
import { onInstance, overlappingWriters, postgresCommitProbe, PROBE_TABLE, readThroughReplicaLoss, writeThroughFrontendLoss } from "./faults";
import { expectReadsSurvivedReplicaLoss, expectWritesSurvivedFrontendLoss } from "./fault-checks";

// The dev stack's Patroni cluster behind HAProxy, on real containers. Client traffic goes only through the
// endpoints published on 127.0.0.1 (5000 read-write, 5001 read-only); member state is read with docker exec.
const live = liveEngine();
// Two HAProxy instances, as production runs them: losing one is one of the faults.
const STACK = { ...WITHOUT_FLEETS, "hadb:haproxyInstances": 2 };

describe.skipIf(!live)("PostgreSQL on Patroni behind HAProxy (live)", () => {
    let rwUrl: string;
    let roUrl: string;
    let members: string[];
    const containerOf = (member: string) => members.find((c) => c.endsWith(`-${member}`))!;
    const cluster = () => patroniCluster(members);
    const waitHealthy = (what: string, timeoutMs = 120_000) =>
        waitFor(
            what,
            () => confirmedHealthy(members, members.length, 1),
            timeoutMs,
            500,
        );

    /** Runs the writer around a fault and returns what it saw. */
    async function writeThrough(fault: () => Promise<void>, settle: () => Promise<unknown>) {
        const writer = new OrderWriter(postgresOrders(rwUrl));
        writer.start();
        await waitFor("writes flowing before the fault", async () => writer.acknowledged.length >= 20, 30_000);
        const oldServer = writer.lastServer;
        const faultAt = Date.now();
        await fault();
        const firstWrite = await writer.waitForSuccessAfter(faultAt, oldServer, 90_000);
        await settle();
        await sleep(2000);
        await writer.stop();
        return { writer, faultAt, firstWrite, gap: writer.longestGap(faultAt - 5000, Date.now()) };
    }

    let etcdMembers: string[];

    beforeAll(async () => {
        await down("dev", () => {}, { destroyData: true });
        const started = Date.now();
        const deployment = await up("dev", { config: STACK, log: () => {} });
        ({ rwUrl, roUrl, members } = deployment.outputs.postgres);
        etcdMembers = deployment.outputs.etcd.members;
        await waitHealthy("a leader and two streaming replicas", 240_000);
        await waitFor("the read-write endpoint accepting the application user", () => withClient(rwUrl, async (c) => (await c.query("SELECT 1")).rowCount === 1), 60_000);
        report("postgres dev stack: harness up to a writable, fully replicated cluster", (Date.now() - started) / 1000);
        // The commit probes' table, then replicated everywhere again: the first test expects zero lag.
        await withClient(rwUrl, (c) => c.query(PROBE_TABLE.postgres));
        await waitHealthy("the probe table replayed on every replica");
    });

    /** Every member asked directly, every ~100 ms, to commit a row: only a commit that returned counts. */
    const commitProbe = () => postgresCommitProbe(members).start();

    afterAll(async () => {
        if (live) await down("dev", () => {}, { destroyData: true });
    });

    it("bootstraps one leader and two streaming replicas with zero lag", async () => {
        // The snapshot in which Patroni reported the cluster healthy: a second look may catch WAL written since.
        const { value: members_ } = await waitHealthy("the synchronous standby chosen", 30_000);
        expect(members_.filter((m) => m.role === "leader")).toHaveLength(1);
        expect(members_.filter((m) => m.role !== "leader").map((m) => [m.state, m.lag])).toEqual([
            ["streaming", 0],
            ["streaming", 0],
        ]);
        // Synchronous mode: exactly one replica is the synchronous standby.
        expect(members_.filter((m) => m.role === "sync_standby")).toHaveLength(1);
    });

    it("writes through the read-write port to the leader and reads them through the read-only port from replicas", async () => {
        const written = await withClient(rwUrl, (c) => c.query("INSERT INTO orders (user_id) VALUES (7) RETURNING id, pg_is_in_recovery() AS replica"));
        expect(written.rows[0].replica).toBe(false);
        const id = Number(written.rows[0].id);
        const { seconds } = await waitFor(
            "the order visible on the read-only port",
            () => withClient(roUrl, async (c) => (await c.query("SELECT 1 FROM orders WHERE id = $1", [id])).rowCount === 1),
            10_000,
            100,
        );
        report("postgres: row written on 5000 visible on 5001 after", seconds);
        const sessions = [];
        for (let i = 0; i < 6; i++) {
            sessions.push(await withClient(roUrl, async (c) => (await c.query("SELECT pg_is_in_recovery() AS replica, inet_server_addr()::text AS addr")).rows[0]));
        }
        expect(sessions.every((s) => s.replica === true), JSON.stringify(sessions)).toBe(true);
        expect(new Set(sessions.map((s) => s.addr)).size).toBe(2);
    });

    let killedLeader = "";

    it("after docker kill of the leader, a new leader takes writes and no acknowledged write is lost", async () => {
        const before = leaderOf(await cluster())!;
        killedLeader = before.name;
        const { writer, firstWrite } = await writeThrough(
            () => containers.kill(containerOf(before.name)),
            () => waitFor("a new leader", async () => leaderOf(await cluster())?.name !== before.name, 30_000),
        );
        report("postgres: docker kill of the leader -> first acknowledged write through 5000", firstWrite);
        const after = leaderOf(await cluster())!;
        expect(after.name).not.toBe(before.name);
        expect(writer.acknowledged.length).toBeGreaterThan(20);
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
    });

    it("the killed leader rejoins as a replica and catches up", async () => {
        expect(killedLeader, "runs after the kill test").not.toBe("");
        const old = containerOf(killedLeader);
        const restartedAt = Date.now();
        await containers.start(old);
        const { value } = await waitHealthy("the old leader streaming again");
        report("postgres: old leader restarted -> streaming replica with lag 0", (Date.now() - restartedAt) / 1000);
        expect(value.find((m: PatroniMember) => m.name === killedLeader)?.role).not.toBe("leader");
        // Row by row, the same orders and items on the old leader as on the others.
        await waitIdentical(members);
        expect(await memberSql(old, "SELECT pg_is_in_recovery()")).toBe("t");
    });

    it("a planned switchover moves the leader with little write unavailability and no loss", async () => {
        const members_ = await cluster();
        const before = leaderOf(members_)!;
        const candidate = members_.find((m) => m.role === "sync_standby")!;
        const { writer, gap } = await writeThrough(
            () => switchover(containerOf(before.name), before.name, candidate.name),
            () => waitFor("the candidate leading", async () => leaderOf(await cluster())?.name === candidate.name, 30_000),
        );
        report("postgres: planned switchover write unavailability (longest gap between acknowledged writes)", gap);
        expect(leaderOf(await cluster())?.name).toBe(candidate.name);
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
        await waitHealthy("the former leader streaming after the switchover");
    });

    it("a graceful stop of the leader hands over with no loss", async () => {
        const before = leaderOf(await cluster())!;
        const { writer, gap } = await writeThrough(
            () => containers.stop(containerOf(before.name)),
            () => waitFor("a new leader", async () => ![undefined, before.name].includes(leaderOf(await cluster())?.name), 30_000),
        );
        report("postgres: docker stop of the leader write unavailability (longest gap)", gap);
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
        await containers.start(containerOf(before.name));
        await waitHealthy("the stopped leader back as a replica");
    });

    it("losing a replica does not interrupt reads on the read-only port", async () => {
        const replica = (await cluster()).find((m) => m.role === "replica")!;
        const seen = await readThroughReplicaLoss(() => withClient(roUrl, async (c) => (await c.query("SELECT pg_is_in_recovery() AS replica")).rows[0].replica === true), containerOf(replica.name));
        expectReadsSurvivedReplicaLoss("postgres, port 5001", seen);
        await containers.start(containerOf(replica.name));
        await waitHealthy("the killed replica streaming again");
    });

    it("losing one of two HAProxy instances: a client that lists both (as a libpq multi-host URL) keeps committing, nothing lost", async () => {
        const proxy = members[0].replace(/-\d+$/, "-proxy-0");
        const seen = await writeThroughFrontendLoss([postgresOrders(rwUrl), postgresOrders(onInstance(rwUrl, 1))], proxy);
        expectWritesSurvivedFrontendLoss("postgres", seen);
        // Read back through the second instance: the first one is only starting again.
        expect(await missingOrders(onInstance(rwUrl, 1), seen.acknowledged)).toEqual([]);
        await waitFor("the first HAProxy instance serving again", () => withClient(rwUrl, async (c) => c.query("SELECT 1")), 30_000, 250);
    });

    /** Which members say they are primary, asked directly (docker exec reaches a cut-off container, not the DCS). */
    const primaries = async () =>
        (await Promise.all(members.map(async (c) => ((await memberSql(c, "SELECT pg_is_in_recovery()").catch(() => "down")) === "f" ? [c] : [])))).flat();
    const watchPrimaries = <T>(fault: (rounds: readonly WriterRound[]) => Promise<T>) => watchWriters(primaries, fault);

    const etcdHealthy = () => waitFor("every etcd member healthy", async () => (await Promise.all(etcdMembers.map(containers.state))).every((st) => st.Health?.Status === "healthy"), 90_000, 500);

    it("a leader cut off from its peers and etcd stops being primary within ttl + retry_timeout, before another is elected, and commits nothing", async () => {
        const leader = leaderOf(await cluster())!;
        const isolated = containerOf(leader.name);
        const claimsPrimary = async (c: string) => (await memberSql(c, "SELECT pg_is_in_recovery()").catch(() => "down")) === "f";
        // What makes this fast: the target's resolver options reach the container's resolv.conf.
        expect(await dockerExec(isolated, ["cat", "/etc/resolv.conf"])).toMatch(/^options .*\btimeout:1 attempts:2\b/m);
        const probe = commitProbe();
        const { rounds } = await watchPrimaries(async () => {
            const address = await containers.disconnect(isolated, "hadb-dev");
            const cutAt = Date.now();
            // A client on the cut-off leader keeps trying: synchronous replication holds each commit, which must never return.
            // The exec outlives statement_timeout, so whatever psql ends with is what the test sees.
            const attempt = memberSql(isolated, "SET statement_timeout = '40s'; INSERT INTO orders (user_id) VALUES (313131)", "app", 50_000)
                .then(() => "committed")
                .catch((err: Error) => `refused: ${err.message.split("\n").find((l) => l.includes("ERROR")) ?? err.message.slice(0, 120)}`);
            try {
                const demoted = await waitFor("the cut-off leader no longer primary", async () => !(await claimsPrimary(isolated)), 60_000, 200);
                report("postgres: leader cut off -> it stops being primary after", demoted.seconds);
                const next = await waitFor("a new leader on the majority", async () => {
                    const l = leaderOf(await patroniCluster(members.filter((c) => c !== isolated)).catch(() => []));
                    return l && l.name !== leader.name && l.state === "running" ? l : undefined;
                }, 90_000, 250);
                report("postgres: leader cut off -> the majority has a new leader after", (Date.now() - cutAt) / 1000);
                // dev profile: ttl 20 + retry_timeout 5, and the probe's own interval.
                expect(demoted.seconds, "the cut-off leader held its role past ttl + retry_timeout").toBeLessThan(25 + 1);
                expect(next.value.name).not.toBe(leader.name);
                // The new leader commits once its synchronous standby streams: the probe must see that before it stops.
                await waitFor("the new leader acknowledging probe commits", async () => probe.acks.some((a) => a.member !== isolated), 30_000, 200);
                report("postgres: leader cut off -> the new leader acknowledged a probe commit after", (Date.now() - cutAt) / 1000);
                expect(await Promise.race([attempt, sleep(45_000).then(() => "still blocked after 45 s")])).not.toBe("committed");
            } finally {
                await containers.connect(isolated, "hadb-dev", leader.name, address);
            }
        });
        const acks = await probe.stop();
        const overlaps = overlappingWriters(acks);
        reportCount(`postgres: commit probe around the cut — acknowledged by ${[...new Set(acks.map((a) => a.member))].join(", ")}: ${acks.length} commits; overlapping writers`, overlaps.length);
        expect(acks.some((a) => a.member !== isolated), "the new leader acknowledged probe commits").toBe(true);
        expect(overlaps).toEqual([]);
        const twoPrimaries = rounds.filter((r) => r.writers.length > 1);
        report(`postgres: ${rounds.length} probe rounds, rounds with two members claiming primary: ${twoPrimaries.length}; probing took`, (rounds.at(-1)!.at - rounds[0].at) / 1000);
        expect(twoPrimaries).toEqual([]);
        await waitHealthy("the cut-off leader back as a streaming replica", 240_000);
        const [row] = (await withClient(rwUrl, (c) => c.query("SELECT count(*)::int AS n FROM orders WHERE user_id = 313131"))).rows;
        expect(row.n, "the write tried on the cut-off leader").toBe(0);
        await waitIdentical(members);
    });

    it("one etcd member lost: nothing changes — the same leader, writes flowing, no loss", async () => {
        const writer = new OrderWriter(postgresOrders(rwUrl));
        writer.start();
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 10, 30_000);
        const leader = leaderOf(await cluster())!;
        const lost = etcdMembers[etcdMembers.length - 1];
        const { rounds } = await watchPrimaries(async () => {
            await containers.kill(lost);
            // Observed for longer than a lease (ttl 20 s): a lost DCS member must not cost the leader its lock.
            await sleep(25_000);
        });
        const at = rounds[0].at;
        await writer.stop();
        expect(new Set(rounds.flatMap((r) => r.writers))).toEqual(new Set([containerOf(leader.name)]));
        report("postgres: one etcd member killed -> longest write gap over 25 s", writer.longestGap(at, Date.now()));
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
        await containers.start(lost);
        await etcdHealthy();
    });

    it("etcd quorum lost with failsafe mode on: the leader keeps serving while it reaches every member, nobody else promotes, and all is well once quorum returns", async () => {
        const writer = new OrderWriter(postgresOrders(rwUrl), 300_000);
        writer.start();
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 10, 30_000);
        const leader = leaderOf(await cluster())!;
        const lost = etcdMembers.slice(1);
        const lostAt = Date.now();
        const { rounds } = await watchPrimaries(async () => {
            await Promise.all(lost.map((m) => containers.kill(m)));
            // Past ttl + retry_timeout: without failsafe mode the leader would have demoted by now.
            await sleep(35_000);
        });
        const during = writer.acknowledged.length;
        const lateWrites = writer.attempts.filter((a) => a.ok && a.at > lostAt + 30_000).length;
        report(`postgres: etcd quorum lost (failsafe on) -> writes acknowledged 30-35 s after the loss: ${lateWrites}; longest write gap`, writer.longestGap(lostAt, Date.now()));
        expect(rounds.every((r) => r.writers.length <= 1), "two members primary at once").toBe(true);
        expect(new Set(rounds.flatMap((r) => r.writers))).toEqual(new Set([containerOf(leader.name)]));
        expect(lateWrites, "the leader still took writes past ttl + retry_timeout").toBeGreaterThan(0);
        await Promise.all(lost.map((m) => containers.start(m)));
        const back = Date.now();
        await etcdHealthy();
        await waitHealthy("the cluster healthy again with quorum back");
        report("postgres: etcd quorum back -> cluster healthy after", (Date.now() - back) / 1000);
        expect(leaderOf(await cluster())!.name).toBe(leader.name);
        await writer.stop();
        expect(during).toBeGreaterThan(0);
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
    });

    it("etcd quorum lost with failsafe mode off: the leader demotes within ttl + retry_timeout, nobody promotes, and one leader returns with quorum", async () => {
        await up("dev", { config: { ...STACK, "hadb:postgresFailsafeMode": false }, log: () => {} });
        const dynamic = async () => JSON.parse(await dockerExec(members[0], ["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:8008/config"]));
        await waitFor("the configurator turning failsafe mode off", async () => (await dynamic()).failsafe_mode === false, 60_000, 500);
        const writer = new OrderWriter(postgresOrders(rwUrl), 300_000);
        writer.start();
        try {
            await waitFor("writes flowing", async () => writer.acknowledged.length >= 10, 30_000);
            const lost = etcdMembers.slice(1);
            const lostAt = Date.now();
            const { rounds } = await watchPrimaries(async (seen) => {
                await Promise.all(lost.map((m) => containers.kill(m)));
                await waitFor("no member primary", async () => {
                    const last = seen.at(-1);
                    return last !== undefined && last.at > lostAt && last.writers.length === 0;
                }, 60_000, 100);
                // Watched a while longer: with the DCS gone nobody may promote.
                await sleep(10_000);
            });
            const demotedAt = rounds.find((r) => r.at > lostAt && r.writers.length === 0)!.at;
            report("postgres: etcd quorum lost (failsafe off) -> the leader stops being primary after", (demotedAt - lostAt) / 1000);
            expect((demotedAt - lostAt) / 1000, "the leader held its role past ttl + retry_timeout").toBeLessThan(25 + 1);
            expect(rounds.filter((r) => r.at > demotedAt && r.writers.length > 0), "a member promoted without the DCS").toEqual([]);
            expect(rounds.every((r) => r.writers.length <= 1)).toBe(true);
            await Promise.all(lost.map((m) => containers.start(m)));
            const back = Date.now();
            await etcdHealthy();
            await waitHealthy("one leader again with quorum back");
            report("postgres: etcd quorum back (failsafe off) -> cluster healthy after", (Date.now() - back) / 1000);
            await writer.waitForSuccessAfter(back, undefined, 60_000);
        } finally {
            await writer.stop();
            await up("dev", { config: STACK, log: () => {} });
        }
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
    });

    it("comes back after a complete outage (every member killed at once, started in reverse order) with every acknowledged row, identical on every member", async () => {
        const writer = new OrderWriter(postgresOrders(rwUrl));
        writer.start();
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 30_000);
        await Promise.all(members.map((c) => containers.kill(c)));
        const at = Date.now();
        await writer.stop();
        for (const c of [...members].reverse()) await containers.start(c);
        await waitHealthy("a leader and two streaming replicas after the outage", 240_000);
        await waitFor("writes accepted on 5000", () => withClient(rwUrl, async (c) => (await c.query("INSERT INTO orders (user_id) VALUES (5)"), true)), 60_000, 250);
        report("postgres: complete outage, members started in reverse order -> healthy and writable", (Date.now() - at) / 1000);
        expect(await missingOrders(rwUrl, writer.acknowledged)).toEqual([]);
        // Every member's tables, row by row: equal once the replicas have replayed everything.
        await waitIdentical(members);
    });

    it("the read-only port falls back to the leader when no replica qualifies", async () => {
        const replicas = (await cluster()).filter((m) => m.role !== "leader");
        const stoppedAt = Date.now();
        await Promise.all(replicas.map((m) => containers.stop(containerOf(m.name))));
        await waitFor(
            "a read-only session answered by the leader",
            () => withClient(roUrl, async (c) => (await c.query("SELECT pg_is_in_recovery() AS replica")).rows[0].replica === false),
            30_000,
            200,
        );
        report("postgres: both replicas stopped -> read-only port served by the leader after", (Date.now() - stoppedAt) / 1000);
        // Writes go on too: synchronous mode "on" (not strict) lets the leader commit alone.
        await withClient(rwUrl, (c) => c.query("INSERT INTO orders (user_id) VALUES (99)"));
        await Promise.all(replicas.map((m) => containers.start(containerOf(m.name))));
        await waitHealthy("both replicas streaming again");
    });
});

