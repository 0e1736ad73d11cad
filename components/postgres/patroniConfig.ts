import { stringify } from "yaml";
import { withDefaults } from "../core/defaults";
import { CONFIG_DIR } from "../core/plan";
import { FailoverTiming, PatroniTags, PostgresSettings, POSTGRES_DEFAULTS, resolveTiming } from "./settings";

/** Passwords, resolved: only ever rendered inside a secret Output. */
export interface PostgresPasswords {
    readonly superuser: string;
    readonly replication: string;
    readonly app: string;
    /** Basic auth for Patroni's unsafe REST endpoints (switchover, restart, config). */
    readonly restApi: string;
}

export interface MemberContext {
    readonly scope: string;
    readonly member: string;
    /** The address peers and proxies reach this member at, as the target decided it. */
    readonly host: string;
    readonly tags: PatroniTags;
    /** A read-replica fleet member: the member it streams from, else the leader, and its fleet and role as custom tags. */
    readonly fleet?: { readonly name: string; readonly analytics: boolean; readonly replicatefrom?: string };
    /** etcd `host:port` pairs reachable from the member. */
    readonly dcsHosts: readonly string[];
    /** The ranges members and proxies connect from: the only ones pg_hba admits over TCP. */
    readonly clusterRanges: readonly string[];
}

/** File names in CONFIG_DIR, and the server's own directories. */
export const PATRONI_FILES = {
    config: "patroni.yml",
    bootstrapConfig: "bootstrap.yml",
    postBootstrap: "post-bootstrap.sh",
    bootstrapSql: "bootstrap.sql",
    schemaSql: "schema.sql",
};
export const POSTGRES_PATHS = { dataDir: "/var/lib/postgresql/data", socketDir: "/run/postgresql" };

const inConfigDir = (file: string) => `${CONFIG_DIR}/${file}`;

export type ResolvedPostgresSettings = typeof POSTGRES_DEFAULTS & PostgresSettings & { timing: FailoverTiming };

export function resolvePostgresSettings(s: PostgresSettings): ResolvedPostgresSettings {
    return { ...withDefaults(POSTGRES_DEFAULTS, s), timing: resolveTiming(s) } as ResolvedPostgresSettings;
}

/** Cluster-wide parameters: what replication, rewind and slots need, then the user's pass-through. */
export function clusterParameters(s: ResolvedPostgresSettings): Record<string, string | number> {
    return {
        wal_level: "replica",
        max_connections: 200,
        // Enough for the largest cluster plus spares, so scaling never changes a restart-only parameter.
        max_wal_senders: 20,
        max_replication_slots: 20,
        wal_keep_size: "256MB",
        // pg_rewind needs hint bits in WAL (checksums are on too, from initdb).
        wal_log_hints: "on",
        password_encryption: "scram-sha-256",
        ...(s.parameters ?? {}),
    };
}

/** pg_hba: local peer for Patroni itself; password auth over TCP from the cluster's ranges only. */
export function pgHba(s: ResolvedPostgresSettings, clusterRanges: readonly string[]): string[] {
    return [
        "local all all peer",
        // Patroni reads a rejoining member's own timeline over a local replication connection.
        `host replication ${s.replicationUser} 127.0.0.1/32 scram-sha-256`,
        ...clusterRanges.map((range) => `host replication ${s.replicationUser} ${range} scram-sha-256`),
        `host all all 127.0.0.1/32 scram-sha-256`,
        ...clusterRanges.map((range) => `host all all ${range} scram-sha-256`),
    ];
}

/**
 * Patroni's dynamic configuration, which lives in the DCS and applies to every member: timing, synchronous
 * replication, failover limits and PostgreSQL's parameters. Written once at bootstrap, changed online after.
 */
export function dynamicConfig(s: ResolvedPostgresSettings) {
    const t = s.timing;
    return {
        ttl: t.ttl,
        loop_wait: t.loopWait,
        retry_timeout: t.retryTimeout,
        maximum_lag_on_failover: s.maximumLagOnFailover,
        synchronous_mode: s.synchronousMode !== "off",
        synchronous_mode_strict: s.synchronousMode === "strict",
        synchronous_node_count: s.synchronousStandbys,
        failsafe_mode: s.failsafeMode,
        postgresql: { use_pg_rewind: s.usePgRewind, use_slots: s.useSlots, parameters: clusterParameters(s) },
    };
}

/** bootstrap.yml: the dynamic configuration the first member writes into a new cluster's DCS. */
export function renderBootstrapConfig(s: ResolvedPostgresSettings): string {
    return stringify({ bootstrap: { dcs: dynamicConfig(s) } }, { lineWidth: 0 });
}

/** The Patroni configuration of one member, as YAML: everything but the dynamic configuration. Pure. */
export function renderPatroniConfig(s: ResolvedPostgresSettings, ctx: MemberContext, passwords: PostgresPasswords): string {
    const config = {
        scope: ctx.scope,
        namespace: "/hadb/",
        name: ctx.member,
        log: { level: "INFO" },
        restapi: {
            listen: `0.0.0.0:${s.apiPort}`,
            connect_address: `${ctx.host}:${s.apiPort}`,
            authentication: { username: "patroni", password: passwords.restApi },
        },
        ctl: { authentication: { username: "patroni", password: passwords.restApi } },
        etcd3: { hosts: [...ctx.dcsHosts] },
        // bootstrap.dcs lives in its own file (renderBootstrapConfig): Patroni merges every .yml in CONFIG_DIR.
        bootstrap: {
            initdb: [{ encoding: "UTF8" }, { locale: "C.UTF-8" }, "data-checksums"],
            post_bootstrap: inConfigDir(PATRONI_FILES.postBootstrap),
        },
        postgresql: {
            listen: `0.0.0.0:${s.port}`,
            connect_address: `${ctx.host}:${s.port}`,
            data_dir: `${POSTGRES_PATHS.dataDir}/pg${s.version}`,
            bin_dir: `/usr/lib/postgresql/${s.version}/bin`,
            pgpass: "/tmp/pgpass",
            use_unix_socket: true,
            // Without a fast checkpoint a new replica waits for the next scheduled one (up to 5 minutes).
            basebackup: [{ checkpoint: "fast" }],
            authentication: {
                superuser: { username: s.superuser, password: passwords.superuser },
                replication: { username: s.replicationUser, password: passwords.replication },
                rewind: { username: s.superuser, password: passwords.superuser },
            },
            parameters: { unix_socket_directories: POSTGRES_PATHS.socketDir },
            pg_hba: pgHba(s, ctx.clusterRanges),
        },
        // Containers have no /dev/watchdog; fencing comes from the lock lease, failsafe mode and HAProxy
        // cutting sessions to a member that stops answering /primary.
        watchdog: { mode: "off" },
        tags: {
            nofailover: ctx.tags.nofailover ?? false,
            noloadbalance: ctx.tags.noloadbalance ?? false,
            nosync: ctx.tags.nosync ?? false,
            clonefrom: false,
            // Custom tags show in /cluster and patronictl list: what `npm run status` reads a member's place from.
            ...(ctx.fleet
                ? { hadb_fleet: ctx.fleet.name, hadb_pool: ctx.fleet.analytics ? "analytics" : "read-only", ...(ctx.fleet.replicatefrom ? { replicatefrom: ctx.fleet.replicatefrom } : {}) }
                : {}),
        },
    };
    return stringify(config, { lineWidth: 0 });
}

/** SQL literal: doubles single quotes (standard_conforming_strings is on by default). */
function literal(value: string): string {
    return `'${value.replace(/'/g, "''")}'`;
}

/** Run once by Patroni on the first primary: the application role and database. */
export function renderBootstrapSql(s: ResolvedPostgresSettings, passwords: PostgresPasswords): string {
    return [
        `CREATE ROLE ${s.appUser} LOGIN PASSWORD ${literal(passwords.app)};`,
        `CREATE DATABASE ${s.databaseName} OWNER ${s.appUser};`,
        `REVOKE ALL ON DATABASE ${s.databaseName} FROM PUBLIC;`,
        `GRANT CONNECT, TEMPORARY ON DATABASE ${s.databaseName} TO ${s.appUser};`,
        "",
    ].join("\n");
}

/** The post_bootstrap script: Patroni runs it once, as postgres, after initdb on the first primary. */
export function renderPostBootstrapScript(s: ResolvedPostgresSettings): string {
    const psql = `psql -X -v ON_ERROR_STOP=1 -h ${POSTGRES_PATHS.socketDir} -p ${s.port} -U ${s.superuser}`;
    return [
        "#!/bin/sh",
        "# Generated by hadb: creates the application role and database, then runs the user's schema as that role.",
        "set -eu",
        `${psql} -d postgres -f ${inConfigDir(PATRONI_FILES.bootstrapSql)}`,
        // schema.sql is placed only when there is a schema: targets refuse empty files.
        `if [ -s ${inConfigDir(PATRONI_FILES.schemaSql)} ]; then`,
        `  ${psql} -d ${s.databaseName} -c 'SET ROLE ${s.appUser}' -f ${inConfigDir(PATRONI_FILES.schemaSql)}`,
        "fi",
        "",
    ].join("\n");
}

/**
 * What the cluster's configurator (images/postgres/hadb-pg-configurator) keeps true: the dynamic configuration
 * and the application role's password. Holds passwords: only ever inside a secret.
 */
export function renderConfiguratorDeclaration(s: ResolvedPostgresSettings, memberHosts: readonly string[], passwords: PostgresPasswords, statusPort: number): string {
    return JSON.stringify(
        {
            members: memberHosts.map((h) => `http://${h}:${s.apiPort}`),
            restApi: { username: "patroni", password: passwords.restApi },
            dynamic: dynamicConfig(s),
            sql: { superuser: s.superuser, superuserPassword: passwords.superuser },
            app: { user: s.appUser, password: passwords.app, database: s.databaseName },
            port: statusPort,
        },
        null,
        2,
    );
}
