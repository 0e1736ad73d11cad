// One face for both engines of the dev stack, for the runs that do the same thing to each (the benchmark and
// the chaos run): deploy it, find its primary, fail it over, check what the writers wrote.
import { up } from "../harness";
import type { ConfigValues } from "../harness/stackConfig";
import { CommitProbe, mysqlCommitProbe, postgresCommitProbe, PROBE_TABLE } from "./faults";
import { groupFormed, memberSql as mysqlSql, memberStatuses, missingOrders as missingMySql, mysqlOrders, waitIdentical, withMySql } from "./mysql-support";
import { confirmedHealthy, leaderOf, missingOrders as missingPostgres, patroniCluster, postgresOrders, switchover, waitIdentical as waitIdenticalPostgres, withClient } from "./postgres-support";
import { waitFor, WITHOUT_FLEETS } from "./support";
import { OrderDriver } from "./writer";

export type EngineName = "postgres" | "mysql";

/** The dev stack with one engine, no fleets and two HAProxy instances (the chaos run loses one of them). */
export function engineStack(engine: EngineName, extra: ConfigValues = {}): ConfigValues {
    return { ...WITHOUT_FLEETS, "hadb:engine": engine, "hadb:haproxyInstances": 2, ...extra };
}

export interface DeployedEngine {
    readonly engine: EngineName;
    readonly rwUrl: string;
    readonly roUrl: string;
    /** Member containers, in member order. */
    readonly members: string[];
    /** etcd containers (PostgreSQL's DCS); empty for MySQL. */
    readonly dcs: string[];
    /** The HAProxy instances' containers. */
    readonly proxies: string[];
    orders(url: string): OrderDriver<unknown>;
    /** Waits until every member is back in its role and replicating with no lag. */
    healthy(timeoutMs?: number): Promise<void>;
    /** The container of the member that takes writes. */
    primary(): Promise<string>;
    /** Hands the primary role to another member, the way an operator would. */
    switchover(): Promise<void>;
    missing(acknowledged: number[]): Promise<number[]>;
    /** Waits until every member holds the same data (table checksums; for MySQL GTID_EXECUTED too). */
    identical(): Promise<void>;
    commitProbe(): CommitProbe;
}

/** `hadb up` of the dev stack with `config`, then the engine's face once it is healthy and writable. */
export async function deployEngine(engine: EngineName, config: ConfigValues): Promise<DeployedEngine> {
    const { outputs } = await up("dev", { config, log: () => {} });
    const out = outputs[engine] as { rwUrl: string; roUrl: string; members: string[]; adminUrl?: string };
    const members = out.members;
    const prefix = members[0].replace(/-\d+$/, "");
    const instances = Number(config["hadb:haproxyInstances"] ?? 1);
    const proxies = Array.from({ length: instances }, (_, i) => `${prefix}-proxy-${i}`);
    const deployed = engine === "postgres" ? postgresFace(out, members, proxies, (outputs.etcd as { members: string[] }).members) : mysqlFace(out, members, proxies);
    await deployed.healthy(300_000);
    await waitFor("the read-write endpoint writable", async () => (await deployed.missing([]), true), 60_000);
    return deployed;
}

function postgresFace(out: { rwUrl: string; roUrl: string }, members: string[], proxies: string[], dcs: string[]): DeployedEngine {
    const containerOf = (member: string) => members.find((c) => c.endsWith(`-${member}`))!;
    return {
        engine: "postgres",
        rwUrl: out.rwUrl,
        roUrl: out.roUrl,
        members,
        dcs,
        proxies,
        orders: (url) => postgresOrders(url) as OrderDriver<unknown>,
        healthy: async (timeoutMs = 180_000) => {
            await waitFor("a leader and streaming replicas, confirmed by the leader", () => confirmedHealthy(members, members.length, 1), timeoutMs, 500);
        },
        primary: async () => containerOf(leaderOf(await patroniCluster(members))!.name),
        switchover: async () => {
            const cluster = await patroniCluster(members);
            const leader = leaderOf(cluster)!.name;
            await switchover(containerOf(leader), leader, cluster.find((m) => m.role === "sync_standby")!.name);
        },
        missing: async (ids) => (ids.length ? missingPostgres(out.rwUrl, ids) : (await withClient(out.rwUrl, (c) => c.query("SELECT 1")), [])),
        identical: () => waitIdenticalPostgres(members),
        commitProbe: () => postgresCommitProbe(members),
    };
}

function mysqlFace(out: { rwUrl: string; roUrl: string; adminUrl?: string }, members: string[], proxies: string[]): DeployedEngine {
    const adminPassword = decodeURIComponent(new URL(out.adminUrl!).password);
    const roles = async () => (await memberStatuses(members)).map((s) => s?.role);
    return {
        engine: "mysql",
        rwUrl: out.rwUrl,
        roUrl: out.roUrl,
        members,
        dcs: [],
        proxies,
        orders: (url) => mysqlOrders(url) as OrderDriver<unknown>,
        healthy: async (timeoutMs = 180_000) => {
            await waitFor("every member ONLINE with one PRIMARY", async () => groupFormed(await memberStatuses(members)), timeoutMs, 500);
        },
        primary: async () => members[(await roles()).indexOf("PRIMARY")],
        switchover: async () => {
            const now = await roles();
            const next = members[now.indexOf("SECONDARY")];
            const uuid = await mysqlSql(next, adminPassword, "SELECT @@server_uuid");
            await mysqlSql(members[now.indexOf("PRIMARY")], adminPassword, `SELECT group_replication_set_as_primary('${uuid}')`);
        },
        missing: async (ids) => (ids.length ? missingMySql(out.rwUrl, ids) : (await withMySql(out.rwUrl, (c) => c.query("SELECT 1")), [])),
        identical: () => waitIdentical(members, adminPassword),
        commitProbe: () => mysqlCommitProbe(members, adminPassword),
    };
}

/** The probe table, created through the read-write endpoint (replicated like any table). */
export async function createProbeTable(e: DeployedEngine): Promise<void> {
    if (e.engine === "postgres") await withClient(e.rwUrl, (c) => c.query(PROBE_TABLE.postgres));
    else await withMySql(e.rwUrl, (c) => c.query(PROBE_TABLE.mysql));
}
