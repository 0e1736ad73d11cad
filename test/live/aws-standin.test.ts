import * as net from "net";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordedResource, runStack, StackRun } from "../harness/mockRun";
import { ConfigValues } from "../harness/stackConfig";
import { Applied, applyStack, bootLog, HostTiming, liveHost, PlannedHost, plannedHosts, replaceChanged, replaceHost, STANDIN_NETWORK, STANDIN_VPC_CIDR, standInTemplate } from "../aws/standin/apply";
import { blockedInbound, buildHostImage, hostExec, killHost, removeAll } from "../aws/standin/hosts";
import { getParameter, ssmStore } from "../aws/standin/ssm";
import { groupFormed, memberStatuses, missingOrders as missingMySqlOrders, mysqlOrders, withMySql } from "./mysql-support";
import { healthyCluster, leaderOf, missingOrders as missingPgOrders, patroniCluster, postgresOrders, withClient } from "./postgres-support";
import { liveEngine, report, reportCount, sleep, waitFor, watchWriters, WITHOUT_FLEETS } from "./support";
import { OrderDriver, OrderWriter } from "./writer";

// The prod stack (Pulumi.prod.yaml, target aws) on stand-in EC2 hosts (test/aws/standin): the program runs under
// Pulumi mocks, then applyStack() does what `pulumi up` would for the hosts — SSM parameters, each instance booted
// from its own user data on its fixed IP with its EBS volumes and its security groups as a packet filter, one
// member after another behind the ready-parameter gate. One VPC network 10.78.0.0/16 holds the three subnets;
// the test process (10.78.0.1 on it) is in awsClientCidrs and reaches the proxy hosts' IPs the way applications
// reach the load balancer's targets. Member state is read inside each host (docker exec), never over the network.
const live = liveEngine();

const SUBNETS = ["subnet-0000000000000a001 10.78.1.0/24 eu-west-1a", "subnet-0000000000000a002 10.78.2.0/24 eu-west-1b", "subnet-0000000000000a003 10.78.3.0/24 eu-west-1c"];
/** Each host's boot and readiness as it happens: HADB_STANDIN_VERBOSE=1 (the [measure] lines say the same afterwards). */
const log = process.env.HADB_STANDIN_VERBOSE ? (line: string) => console.log(`[aws stand-in] ${line}`) : undefined;

function standInConfig(engine: "postgres" | "mysql", extra: ConfigValues = {}): ConfigValues {
    return {
        ...WITHOUT_FLEETS,
        "hadb:engine": engine,
        // An array (structured config): loadStackConfig passes it on as JSON, as Pulumi does; ConfigValues does not type arrays.
        "hadb:awsSubnets": SUBNETS as unknown as string,
        "hadb:awsClientCidrs": STANDIN_VPC_CIDR,
        "hadb:haproxyInstances": 2,
        ...extra,
    };
}

/** Generated passwords as the stack's state keeps them, so a second run of the program is an update, not a new stack. */
function randomState(run: StackRun): Record<string, Record<string, unknown>> {
    return Object.fromEntries(run.resources.filter((r: RecordedResource) => r.type.startsWith("random:")).map((r) => [r.urn, r.state]));
}

/** An endpoint URL (the load balancer's DNS name) pointed at one proxy host's IP instead. */
function viaHost(url: string, ip: string): string {
    const u = new URL(url);
    u.hostname = ip;
    return u.toString();
}

/** Whether a TCP connection to ip:port opens within `timeoutMs` (a stopped host's IP just stays silent). */
function tcpOpen(ip: string, port: number, timeoutMs = 500): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host: ip, port });
        const done = (ok: boolean) => {
            socket.destroy();
            resolve(ok);
        };
        socket.setTimeout(timeoutMs, () => done(false));
        socket.once("connect", () => done(true));
        socket.once("error", () => done(false));
    });
}

/**
 * A client that knows every proxy host, as a libpq multi-host URL or a MySQL connector's host list: connects
 * through the first that answers, and after an error starts again from the first.
 */
function anyOf<C>(drivers: readonly OrderDriver<C>[]): OrderDriver<{ driver: OrderDriver<C>; client: C }> {
    return {
        async connect() {
            let last: unknown;
            for (const driver of drivers) {
                try {
                    return { driver, client: await driver.connect() };
                } catch (err) {
                    last = err;
                }
            }
            throw last instanceof Error ? last : new Error(String(last));
        },
        commitOrder: (c, customer) => c.driver.commitOrder(c.client, customer),
        discard: (c) => c.driver.discard(c.client),
        close: (c) => c.driver.close(c.client),
    };
}

/** What the hosts said, for a failure: hadb-host's output and each member's last log lines, inside each host. */
async function hostLogs(hosts: readonly PlannedHost[]): Promise<string> {
    const parts: string[] = [];
    for (const h of hosts) {
        const member = await hostExec(h.member, ["docker", "logs", "--tail", "25", h.member], 15_000).catch((err: Error) => ({ stdout: "", stderr: err.message, exitCode: 1 }));
        parts.push(`--- ${h.member}: cloud-init output ---\n${await bootLog(h.member, 12)}--- ${h.member}: member log ---\n${member.stdout}${member.stderr}`);
    }
    return parts.join("\n");
}

async function withHostLogs<T>(hosts: () => readonly PlannedHost[], work: () => Promise<T>): Promise<T> {
    try {
        return await work();
    } catch (err) {
        console.log(`[logs]\n${await hostLogs(hosts())}`);
        throw err;
    }
}

function reportTimings(label: string, timings: readonly HostTiming[]): void {
    for (const t of timings) {
        report(`${label}: ${t.member} (${t.instanceId}) user data start -> ready parameter`, t.seconds);
        report(`${label}: ${t.member} power-on -> ready (dockerd ${t.dockerSeconds.toFixed(1)} s, image load ${t.imageSeconds.toFixed(1)} s)`, t.bootSeconds);
    }
}

/** Every security group admitted what the members, proxies and configurator tried: no host refused a connection. */
async function expectNothingBlocked(hosts: readonly PlannedHost[]): Promise<void> {
    const blocked: Record<string, Record<string, string[]>> = {};
    for (const h of hosts) {
        const refused = await blockedInbound(h.member);
        if (Object.keys(refused).length) blocked[h.member] = refused;
    }
    expect(blocked, "connections the security groups refused (port: sources), by host").toEqual({});
}

/** Replacements of one service never overlap: each starts stopping a host only once the previous new one is ready. */
function expectOneAtATime(timings: readonly HostTiming[]): void {
    for (let i = 1; i < timings.length; i++) {
        if (timings[i].service !== timings[i - 1].service) continue;
        expect(timings[i].stoppingAt!, `${timings[i].member} stopped before ${timings[i - 1].member}'s replacement was ready`).toBeGreaterThanOrEqual(timings[i - 1].readyAt);
    }
}

const fileStarted = Date.now();

beforeAll(async () => {
    if (!live) return;
    await removeAll();
    const started = Date.now();
    // Bounded (15 minutes); answered from the build cache when scripts/prepare-machine.sh built it already.
    await buildHostImage();
    report("aws stand-in: host image build (cache)", (Date.now() - started) / 1000);
    const flattened = Date.now();
    // Flattened images and the Docker storage template every host starts from (kept across runs; built on a fresh machine).
    await standInTemplate();
    report("aws stand-in: flattened images and Docker storage template (cache)", (Date.now() - flattened) / 1000);
});

afterAll(async () => {
    if (!live) return;
    await removeAll();
    report("aws stand-in: test file wall time", (Date.now() - fileStarted) / 1000);
});

describe.skipIf(!live)("the prod stack's PostgreSQL on stand-in EC2 hosts (live)", () => {
    const config = standInConfig("postgres");
    let run: StackRun;
    let hosts: PlannedHost[];
    let applied: Applied;
    const acknowledged: number[] = [];
    const byIp = new Map<string, string>();
    const members = () => hosts.filter((h) => h.service === "pg");
    const proxies = () => hosts.filter((h) => h.service === "pg-proxy");
    const cluster = (among = members()) => patroniCluster(among.map((h) => h.member));
    const waitHealthy = (what: string, timeoutMs = 180_000) =>
        withHostLogs(
            () => hosts,
            async () => {
                const waited = await waitFor(
                    what,
                    async () => {
                        const c = await cluster();
                        return healthyCluster(c, 3, 1) && c;
                    },
                    timeoutMs,
                    500,
                );
                report(`aws stand-in postgres: waited for ${what}`, waited.seconds);
                return waited;
            },
        );
    let rw: string;
    let ro: string;
    /** inet_server_addr() is "<ip>/32". */
    const memberAt = (addr: string) => byIp.get(addr.replace(/\/32$/, "")) ?? addr;

    beforeAll(async () => {
        await removeAll();
        run = await runStack("prod", { config });
        hosts = plannedHosts(run);
        for (const h of hosts) byIp.set(h.ip, h.member);
        const started = Date.now();
        applied = await withHostLogs(() => hosts, () => applyStack(run, { log }));
        report(`aws stand-in postgres: applyStack (${hosts.length} hosts, each behind the ready gate)`, applied.seconds);
        reportTimings("aws stand-in postgres", applied.timings);
        await waitHealthy("a Patroni leader with two streaming replicas, one synchronous");
        ({ rwUrl: rw, roUrl: ro } = run.outputs.postgres as { rwUrl: string; roUrl: string });
        const writable = await waitFor("the read-write port of both proxy hosts accepting the application user", async () => {
            for (const p of proxies()) await withClient(viaHost(rw, p.ip), (c) => c.query("SELECT 1"));
            return true;
        }, 60_000, 500);
        report("aws stand-in postgres: waited for both proxy hosts' read-write port", writable.seconds);
        report("aws stand-in postgres: power-on of the first host -> cluster formed and writable through both proxy hosts", (Date.now() - started) / 1000);
    });

    afterAll(async () => {
        if (live) await removeAll();
    });

    it("boots every host in the engine's order and forms the cluster, every path admitted by the security groups", async () => {
        expect(hosts.map((h) => h.member)).toEqual(["etcd-0", "pg-proxy-0", "etcd-1", "pg-proxy-1", "etcd-2", "pg-0", "pg-1", "pg-2", "pg-config-0"]);
        const at = new Map(applied.timings.map((t) => [t.member, t]));
        // The ready gate: a member's user data starts only after the one before it (and what it depends on) is ready.
        for (const h of hosts) for (const d of h.after) expect(at.get(h.member)!.releasedAt, `${h.member} after ${d}`).toBeGreaterThanOrEqual(at.get(d)!.readyAt);
        // Each ready parameter holds its instance's ID, as the AwsTarget's gate reads it.
        for (const h of hosts) expect(getParameter(ssmStore(STANDIN_NETWORK), h.readyParameter)).toBe(liveHost(h.member).instanceId);
        const c = await cluster();
        expect(c.filter((m) => m.role === "leader").map((m) => m.state)).toEqual(["running"]);
        expect(c.filter((m) => m.role !== "leader").map((m) => [m.state, m.lag])).toEqual([
            ["streaming", 0],
            ["streaming", 0],
        ]);
        await expectNothingBlocked(hosts);
    });

    it("routes read-write to the leader and read-only to replicas through each proxy host", async () => {
        const leader = leaderOf(await cluster())!.name;
        for (const p of proxies()) {
            const w = await withClient(viaHost(rw, p.ip), async (c) => (await c.query("SELECT pg_is_in_recovery() AS replica, inet_server_addr()::text AS addr")).rows[0]);
            expect([p.member, memberAt(w.addr), w.replica]).toEqual([p.member, leader, false]);
            for (let i = 0; i < 4; i++) {
                const r = await withClient(viaHost(ro, p.ip), async (c) => (await c.query("SELECT pg_is_in_recovery() AS replica, inet_server_addr()::text AS addr")).rows[0]);
                expect(r.replica, `${p.member} read-only -> ${memberAt(r.addr)}`).toBe(true);
                expect(memberAt(r.addr)).not.toBe(leader);
            }
        }
    });

    let killed = "";

    it("power cut of the leader's host: a replica takes over, writes through proxy host A resume, nothing acknowledged lost", async () => {
        const before = leaderOf(await cluster())!.name;
        const survivors = members().filter((h) => h.member !== before);
        const url = viaHost(rw, proxies()[0].ip);
        const writer = new OrderWriter(postgresOrders(url));
        writer.start();
        report("aws stand-in: writer started -> 20 acknowledged writes", (await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 60_000)).seconds);
        const oldServer = writer.lastServer;
        const killedAt = Date.now();
        await killHost(before);
        killed = before;
        const [leader, writes] = await Promise.all([
            waitFor(
                "a new leader among the surviving hosts",
                async () => {
                    const l = leaderOf(await cluster(survivors));
                    return l && l.name !== before && l.state === "running" && l.name;
                },
                120_000,
                250,
            ),
            writer.waitForSuccessAfter(killedAt, oldServer, 120_000),
        ]);
        await sleep(2000);
        await writer.stop();
        report(`aws stand-in postgres: leader host ${before} killed -> ${leader.value} leader`, leader.seconds);
        report("aws stand-in postgres: leader host killed -> first acknowledged write through proxy host A on the new leader", writes);
        reportCount("aws stand-in postgres: acknowledged writes around the kill", writer.acknowledged.length);
        acknowledged.push(...writer.acknowledged);
        expect(await missingPgOrders(url, writer.acknowledged)).toEqual([]);
    });

    it("a replacement instance for the killed member (same user data and volume, new instance ID) rejoins as a replica", async () => {
        expect(killed, "runs after the kill test").not.toBe("");
        const old = liveHost(killed).instanceId;
        const timing = await withHostLogs(() => hosts, () => replaceHost(killed, { log }));
        expect(timing.instanceId).not.toBe(old);
        expect(timing.instanceId).toMatch(/^i-[0-9a-f]{17}$/);
        report(`aws stand-in postgres: replacement of ${killed} (${timing.instanceId}) power-on -> ready parameter`, timing.bootSeconds);
        const healthy = await waitHealthy("the replacement streaming");
        expect(healthy.value.find((m) => m.name === killed)?.role).toMatch(/^(replica|sync_standby)$/);
        report(`aws stand-in postgres: replacement of ${killed} power-on -> cluster healthy again`, (Date.now() - timing.startedAt) / 1000);
        expect(await missingPgOrders(viaHost(rw, proxies()[1].ip), acknowledged)).toEqual([]);
    });

    it("rolls a changed haproxy.cfg (haproxyCheckIntervalMs) one proxy host at a time under a writer using both, nothing acknowledged lost", async () => {
        const next = await runStack("prod", { config: { ...config, "hadb:haproxyCheckIntervalMs": 500 }, randomState: randomState(run) });
        const changed = plannedHosts(next).filter((h) => h.userData !== hosts.find((x) => x.member === h.member)!.userData);
        // Not an `appliedOnline` file: a new haproxy.cfg is new user data, so a new instance (userDataReplaceOnChange).
        expect(changed.map((h) => h.member)).toEqual(["pg-proxy-0", "pg-proxy-1"]);
        const writer = new OrderWriter(anyOf(proxies().map((p) => postgresOrders(viaHost(rw, p.ip)))), 420_000);
        writer.start();
        report("aws stand-in: writer started -> 20 acknowledged writes", (await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 60_000)).seconds);
        const from = Date.now();
        // Each round: which proxy hosts do not accept a connection on the read-write port.
        const { result: timings, rounds } = await watchWriters(
            async () => (await Promise.all(proxies().map(async (p) => ((await tcpOpen(p.ip, 5000)) ? undefined : p.member)))).filter((m): m is string => !!m),
            () => withHostLogs(() => hosts, () => replaceChanged(run, next, { log })),
        );
        await writer.waitForSuccessAfter(Date.now(), undefined, 30_000);
        await writer.stop();
        const to = Date.now();
        expect(timings.map((t) => t.member)).toEqual(["pg-proxy-0", "pg-proxy-1"]);
        expectOneAtATime(timings);
        const worst = Math.max(...rounds.map((r) => r.writers.length));
        reportCount(`aws stand-in postgres: rollout probe rounds ${rounds.length}, most proxy hosts down in one round`, worst);
        expect(worst, "proxy hosts down at once").toBeLessThanOrEqual(1);
        for (const t of timings) report(`aws stand-in postgres: rollout ${t.member} stop -> gone ${(t.goneAt! - t.stoppingAt!) / 1000} s, new ${t.instanceId} ready after`, (t.readyAt - t.stoppingAt!) / 1000);
        report("aws stand-in postgres: rollout of both proxy hosts", (to - from) / 1000);
        report("aws stand-in postgres: rollout longest gap between acknowledged writes", writer.longestGap(from, to));
        reportCount("aws stand-in postgres: acknowledged writes during the rollout", writer.acknowledged.length);
        acknowledged.push(...writer.acknowledged);
        hosts = plannedHosts(next);
        run = next;
        expect(await missingPgOrders(viaHost(rw, proxies()[0].ip), acknowledged)).toEqual([]);
        const cfg = await hostExec("pg-proxy-0", ["grep", "-c", "inter 500ms", "/etc/hadb-host/pg-proxy-0/files/haproxy.cfg"]);
        expect(Number(cfg.stdout.trim()), "the new host runs the new haproxy.cfg").toBeGreaterThan(0);
        await expectNothingBlocked(hosts);
    });
});

describe.skipIf(!live)("the prod stack's MySQL Group Replication on stand-in EC2 hosts (live)", () => {
    const config = standInConfig("mysql");
    let run: StackRun;
    let hosts: PlannedHost[];
    const acknowledged: number[] = [];
    const members = () => hosts.filter((h) => h.service === "mysql");
    const proxies = () => hosts.filter((h) => h.service === "mysql-proxy");
    const statuses = (among = members()) => memberStatuses(among.map((h) => h.member));
    const waitFormed = (what: string, timeoutMs = 240_000) =>
        withHostLogs(
            () => hosts,
            async () => {
                const waited = await waitFor(
                    what,
                    async () => {
                        const s = await statuses();
                        return groupFormed(s) && s;
                    },
                    timeoutMs,
                    500,
                );
                report(`aws stand-in mysql: waited for ${what}`, waited.seconds);
                return waited;
            },
        );
    const primary = async (among = members()) => among[(await statuses(among)).findIndex((s) => s?.state === "ONLINE" && s.role === "PRIMARY")]?.member;
    // server_id is the member's ordinal + 1 (my.cnf).
    const memberOf = (serverId: unknown) => `mysql-${Number(serverId) - 1}`;
    let rw: string;
    let ro: string;

    beforeAll(async () => {
        await removeAll();
        run = await runStack("prod", { config });
        hosts = plannedHosts(run);
        const started = Date.now();
        const applied = await withHostLogs(() => hosts, () => applyStack(run, { log }));
        report(`aws stand-in mysql: applyStack (${hosts.length} hosts, each behind the ready gate)`, applied.seconds);
        reportTimings("aws stand-in mysql", applied.timings);
        await waitFormed("every member ONLINE with one PRIMARY");
        ({ rwUrl: rw, roUrl: ro } = run.outputs.mysql as { rwUrl: string; roUrl: string });
        const writable = await waitFor("the read-write port of both proxy hosts accepting the application user", async () => {
            for (const p of proxies()) await withMySql(viaHost(rw, p.ip), (c) => c.query("SELECT 1"));
            return true;
        }, 60_000, 500);
        report("aws stand-in mysql: waited for both proxy hosts' read-write port", writable.seconds);
        report("aws stand-in mysql: power-on of the first host -> group formed and writable through both proxy hosts", (Date.now() - started) / 1000);
    });

    afterAll(async () => {
        if (live) await removeAll();
    });

    it("forms one group: every member ONLINE, one PRIMARY, every path admitted by the security groups", async () => {
        expect(members().map((h) => h.member)).toEqual(["mysql-0", "mysql-1", "mysql-2"]);
        const s = await statuses();
        expect(s.map((m) => m?.state)).toEqual(["ONLINE", "ONLINE", "ONLINE"]);
        expect(s.filter((m) => m?.role === "PRIMARY")).toHaveLength(1);
        expect(s.filter((m) => m?.role === "SECONDARY").every((m) => m!.super_read_only)).toBe(true);
        await expectNothingBlocked(hosts);
    });

    it("routes read-write to the primary and read-only to secondaries through each proxy host", async () => {
        const p0 = await primary();
        for (const p of proxies()) {
            const [w] = await withMySql(viaHost(rw, p.ip), (c) => c.query<mysql.RowDataPacket[]>("SELECT @@server_id AS id, @@super_read_only AS sro"));
            expect([p.member, memberOf(w[0].id), Number(w[0].sro)]).toEqual([p.member, p0, 0]);
            for (let i = 0; i < 4; i++) {
                const [r] = await withMySql(viaHost(ro, p.ip), (c) => c.query<mysql.RowDataPacket[]>("SELECT @@server_id AS id, @@super_read_only AS sro"));
                expect(Number(r[0].sro), `${p.member} read-only -> ${memberOf(r[0].id)}`).toBe(1);
                expect(memberOf(r[0].id)).not.toBe(p0);
            }
        }
    });

    let killed = "";

    it("power cut of the primary's host: a new primary takes writes through proxy host A, nothing acknowledged lost", async () => {
        const before = (await primary())!;
        const survivors = members().filter((h) => h.member !== before);
        const url = viaHost(rw, proxies()[0].ip);
        const writer = new OrderWriter(mysqlOrders(url));
        writer.start();
        report("aws stand-in: writer started -> 20 acknowledged writes", (await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 60_000)).seconds);
        const oldServer = writer.lastServer;
        const killedAt = Date.now();
        await killHost(before);
        killed = before;
        const [elected, writes] = await Promise.all([
            waitFor("a new primary among the surviving hosts", async () => primary(survivors), 120_000, 250),
            writer.waitForSuccessAfter(killedAt, oldServer, 120_000),
        ]);
        await sleep(2000);
        await writer.stop();
        report(`aws stand-in mysql: primary host ${before} killed -> ${elected.value} PRIMARY`, elected.seconds);
        report("aws stand-in mysql: primary host killed -> first acknowledged write through proxy host A on the new primary", writes);
        reportCount("aws stand-in mysql: acknowledged writes around the kill", writer.acknowledged.length);
        acknowledged.push(...writer.acknowledged);
        expect(await missingMySqlOrders(url, writer.acknowledged)).toEqual([]);
    });

    it("a replacement instance for the killed member (same user data and volume, new instance ID) rejoins ONLINE", async () => {
        expect(killed, "runs after the kill test").not.toBe("");
        const old = liveHost(killed).instanceId;
        const timing = await withHostLogs(() => hosts, () => replaceHost(killed, { log }));
        expect(timing.instanceId).not.toBe(old);
        report(`aws stand-in mysql: replacement of ${killed} (${timing.instanceId}) power-on -> ready parameter`, timing.bootSeconds);
        const formed = await waitFormed("the replacement ONLINE");
        expect(formed.value[members().findIndex((h) => h.member === killed)]?.role).toBe("SECONDARY");
        report(`aws stand-in mysql: replacement of ${killed} power-on -> group whole again`, (Date.now() - timing.startedAt) / 1000);
        expect(await missingMySqlOrders(viaHost(rw, proxies()[1].ip), acknowledged)).toEqual([]);
    });
});
