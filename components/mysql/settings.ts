import { createHash } from "crypto";
import { withDefaults } from "../core/defaults";
import { ArgumentChecker } from "../core/errors";
import { checkPortClashes } from "../core/ports";

/** How a member reacts to failures. See MySQL's group_replication_* variables of the same names. */
export interface GroupTiming {
    /** Seconds a suspected member may stay silent before it is expelled (after the fixed 5 s of suspicion). */
    readonly memberExpelTimeout: number;
    /** Seconds a member in a minority waits before it leaves the group (0 = forever). */
    readonly unreachableMajorityTimeout: number;
    /** Times an expelled member tries to rejoin by itself, 5 minutes apart. */
    readonly autorejoinTries: number;
    /** What a member that had to leave does: ABORT_SERVER lets the supervisor restart and rejoin it at once. */
    readonly exitStateAction: ExitStateAction;
}

/** What a member that had to leave the group does. */
export const ExitStateAction = { AbortServer: "ABORT_SERVER", ReadOnly: "READ_ONLY", OfflineMode: "OFFLINE_MODE" } as const;
export type ExitStateAction = (typeof ExitStateAction)[keyof typeof ExitStateAction];
/** Named failure-handling profiles. */
export const GroupTimingProfile = { Dev: "dev", Production: "production", MySqlDefaults: "mysql-defaults" } as const;
export type GroupTimingProfile = (typeof GroupTimingProfile)[keyof typeof GroupTimingProfile];

/**
 * `dev`: expel at once after the 5 s suspicion; a member in a minority leaves after 5 s and its supervisor
 * rejoins it when the majority is back. `production`: MySQL's expel timeout of 5 s, which tolerates a short
 * network blip; XCom checks expired suspicions only every 15 s (fixed), so a silent member is expelled about 20 s
 * after it fell silent (a killed primary: writes back after 22.7 s measured, against 6.9 s with `dev`); a
 * minority member leaves after 30 s. `mysql-defaults`: MySQL's own (expel timeout 5, a minority member waits
 * forever, 3 auto-rejoin tries, READ_ONLY on exit): what a group set up by hand runs, for comparison.
 */
export const GROUP_TIMING_PROFILES: Readonly<Record<GroupTimingProfile, GroupTiming>> = {
    dev: { memberExpelTimeout: 0, unreachableMajorityTimeout: 5, autorejoinTries: 0, exitStateAction: "ABORT_SERVER" },
    production: { memberExpelTimeout: 5, unreachableMajorityTimeout: 30, autorejoinTries: 0, exitStateAction: "ABORT_SERVER" },
    "mysql-defaults": { memberExpelTimeout: 5, unreachableMajorityTimeout: 0, autorejoinTries: 3, exitStateAction: "READ_ONLY" },
};

/** group_replication_consistency: what a read or write waits for. */
export const ConsistencyLevel = {
    Eventual: "EVENTUAL",
    BeforeOnPrimaryFailover: "BEFORE_ON_PRIMARY_FAILOVER",
    Before: "BEFORE",
    After: "AFTER",
    BeforeAndAfter: "BEFORE_AND_AFTER",
} as const;
export type ConsistencyLevel = (typeof ConsistencyLevel)[keyof typeof ConsistencyLevel];
export const CONSISTENCY_LEVELS: readonly ConsistencyLevel[] = ["EVENTUAL", "BEFORE_ON_PRIMARY_FAILOVER", "BEFORE", "AFTER", "BEFORE_AND_AFTER"];
/** `single-primary`: one member takes writes; `multi-primary`: every member does, conflicts are certified. */
export const GroupMode = { SinglePrimary: "single-primary", MultiPrimary: "multi-primary" } as const;
export type GroupMode = (typeof GroupMode)[keyof typeof GroupMode];

export interface MySqlSettings {
    /** Members: 3 to 9. @default 3 */
    readonly members?: number;
    /** @default "single-primary" */
    readonly mode?: GroupMode;
    /** The group's UUID. @default derived from the stack and the component name, so it is stable */
    readonly groupName?: string;
    /** Failure-handling profile. @default "production" */
    readonly timingProfile?: GroupTimingProfile;
    /** Explicit failure-handling values, each one replacing the profile's. */
    readonly timing?: Partial<GroupTiming>;
    /** @default "BEFORE_ON_PRIMARY_FAILOVER": a new primary serves only after applying its backlog */
    readonly consistency?: ConsistencyLevel;
    /** @default 3306 */
    readonly port?: number;
    /** Group communication port (group_replication_local_address). @default 33061 */
    readonly groupPort?: number;
    /** The member supervisor's role-check port, which HAProxy asks. @default 8008 */
    readonly agentPort?: number;
    /** @default "app" */
    readonly databaseName?: string;
    /** @default "app" */
    readonly appUser?: string;
    /** @default "admin" */
    readonly adminUser?: string;
    /** @default "repl" */
    readonly replicationUser?: string;
    /** @default "monitor" */
    readonly monitorUser?: string;
    /**
     * Raise to generate a new application password: the configurator sets it on the servers (ALTER USER), the
     * old one stops working, and the connection URLs carry the new one.
     * @default 0
     */
    readonly appPasswordRotation?: number;
    /**
     * SQL run once, in the application database, by the member that can write (the primary). A crash part-way
     * makes the next primary run it again, so write it to be repeatable (`CREATE TABLE IF NOT EXISTS`).
     */
    readonly bootstrapSql?: string;
    /** Server settings passed through to every member's my.cnf (`{ max_connections: "500" }`). */
    readonly serverSettings?: Record<string, string>;
    /** Size of each member's data volume in GiB (targets with sized volumes: Kubernetes, AWS). @default 10 */
    readonly storageGiB?: number;
    /**
     * An operator's decision after a complete outage from which a member will not return. Off (the default),
     * the group stays down until every member of its last view answers, since a silent member might hold a
     * group or transactions of its own. On, the configurator reboots the group from the most advanced of a
     * majority once the others have been silent for 30 s; the missing member joins whenever it comes back.
     * Safe for acknowledged writes (each was certified by a majority, and majorities overlap); set it back to
     * false once the group is whole.
     * @default false
     */
    readonly rebootFromMajority?: boolean;
}

export const MYSQL_DEFAULTS = {
    members: 3,
    mode: "single-primary" as GroupMode,
    timingProfile: "production" as GroupTimingProfile,
    storageGiB: 10,
    consistency: "BEFORE_ON_PRIMARY_FAILOVER" as ConsistencyLevel,
    port: 3306,
    groupPort: 33061,
    agentPort: 8008,
    databaseName: "app",
    appUser: "app",
    adminUser: "admin",
    replicationUser: "repl",
    monitorUser: "monitor",
};

/** Settings hadb derives from other arguments; passing them through would fight those. */
const MANAGED_SETTINGS: Record<string, string> = {
    server_id: "nothing: each member gets its ordinal + 1",
    report_host: "nothing: each member reports its own name",
    port: "`port`",
    gtid_mode: "nothing: Group Replication needs it ON",
    enforce_gtid_consistency: "nothing: Group Replication needs it ON",
    group_replication_single_primary_mode: "`mode`",
    group_replication_group_seeds: "nothing: every member is a seed",
    group_replication_bootstrap_group: "nothing: the member supervisor bootstraps exactly once",
    group_replication_ip_allowlist: "nothing: the allowlist is the cluster's network",
};

/** The profile's values with the explicit ones over them. */
export function resolveGroupTiming(s: Pick<MySqlSettings, "timingProfile" | "timing">): GroupTiming {
    return withDefaults(GROUP_TIMING_PROFILES[s.timingProfile ?? MYSQL_DEFAULTS.timingProfile] ?? {}, s.timing ?? {}) as GroupTiming;
}

/** A stable UUID for the group, from the stack and component names (a name-based UUID, version 5 layout). */
export function defaultGroupName(stack: string, name: string): string {
    const h = createHash("sha1").update(`hadb:${stack}:${name}`).digest("hex");
    const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function validateMySqlSettings(name: string, s: MySqlSettings): void {
    const check = new ArgumentChecker(`MySqlCluster "${name}"`);
    check.dnsLabel("name", name);
    const members = s.members ?? MYSQL_DEFAULTS.members;
    if (!Number.isInteger(members) || members < 3 || members > 9) {
        check.fail(
            "members",
            members,
            "a Group Replication group needs at least 3 members to keep a majority after losing one, and accepts at most 9",
            "use 3 (tolerates 1 failure) or 5 (tolerates 2)",
        );
    }
    const mode = s.mode ?? MYSQL_DEFAULTS.mode;
    check.oneOf("mode", mode, ["single-primary", "multi-primary"]);
    check.oneOf("consistency", s.consistency ?? MYSQL_DEFAULTS.consistency, CONSISTENCY_LEVELS);
    if (s.groupName !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s.groupName)) {
        check.fail("groupName", s.groupName, "it must be a lowercase UUID", "leave it out to derive a stable one, or generate one with `uuidgen`");
    }
    check.oneOf("timingProfile", s.timingProfile ?? MYSQL_DEFAULTS.timingProfile, Object.keys(GROUP_TIMING_PROFILES) as GroupTimingProfile[]);
    const t = resolveGroupTiming(s);
    check.integer("timing.memberExpelTimeout", t.memberExpelTimeout, 0, 3600);
    check.integer("timing.unreachableMajorityTimeout", t.unreachableMajorityTimeout, 0, 31536000);
    check.integer("timing.autorejoinTries", t.autorejoinTries, 0, 2016);
    check.oneOf("timing.exitStateAction", t.exitStateAction, ["ABORT_SERVER", "READ_ONLY", "OFFLINE_MODE"]);
    check.integer("storageGiB", s.storageGiB ?? MYSQL_DEFAULTS.storageGiB, 1, 65536);
    check.integer("appPasswordRotation", s.appPasswordRotation ?? 0, 0, 1_000_000);
    if (s.rebootFromMajority !== undefined && typeof s.rebootFromMajority !== "boolean") {
        check.fail("rebootFromMajority", s.rebootFromMajority, "it must be true or false", "set it to true only after deciding that a missing member will not return");
    }
    if (mode === "multi-primary") {
        const isolation = String(s.serverSettings?.transaction_isolation ?? "").toUpperCase();
        if (isolation === "SERIALIZABLE") {
            check.fail("serverSettings.transaction_isolation", "SERIALIZABLE", "multi-primary Group Replication cannot certify SERIALIZABLE transactions", 'use "READ-COMMITTED" or "REPEATABLE-READ", or mode "single-primary"');
        }
        if (s.bootstrapSql && /ON\s+(DELETE|UPDATE)\s+CASCADE/i.test(s.bootstrapSql)) {
            check.fail("bootstrapSql", "ON DELETE/UPDATE CASCADE", "multi-primary mode refuses cascading foreign keys (their changes cannot be certified)", "drop the cascade or use mode \"single-primary\"");
        }
    }
    checkPortClashes(check, [
        { argument: "port", port: s.port ?? MYSQL_DEFAULTS.port, scope: "member" },
        { argument: "groupPort", port: s.groupPort ?? MYSQL_DEFAULTS.groupPort, scope: "member" },
        { argument: "agentPort", port: s.agentPort ?? MYSQL_DEFAULTS.agentPort, scope: "member" },
    ]);
    for (const arg of ["databaseName", "appUser", "adminUser", "replicationUser", "monitorUser"] as const) {
        const value = s[arg] ?? MYSQL_DEFAULTS[arg];
        if (!/^[a-z_][a-z0-9_]{0,31}$/.test(value)) {
            check.fail(arg, value, "it must be lowercase letters, digits and '_', not starting with a digit, at most 32 characters", "rename it");
        }
    }
    const users = [s.appUser ?? MYSQL_DEFAULTS.appUser, s.adminUser ?? MYSQL_DEFAULTS.adminUser, s.replicationUser ?? MYSQL_DEFAULTS.replicationUser, s.monitorUser ?? MYSQL_DEFAULTS.monitorUser];
    if (new Set([...users, "root"]).size !== users.length + 1) {
        check.fail("appUser", users[0], "the application, admin, replication and monitoring users must be four different accounts, none named root", "give each its own name");
    }
    for (const key of Object.keys(s.serverSettings ?? {})) {
        const bare = key.replace(/^loose[-_]/, "").replace(/-/g, "_");
        if (bare in MANAGED_SETTINGS) check.fail(`serverSettings.${key}`, s.serverSettings![key], "hadb sets this itself", `set ${MANAGED_SETTINGS[bare]} instead`);
    }
}
