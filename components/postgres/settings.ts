import { withDefaults } from "../core/defaults";
import { ArgumentChecker } from "../core/errors";
import { checkPortClashes } from "../core/ports";

/** Patroni's three timing knobs. Rule: loopWait + 2 × retryTimeout ≤ ttl. */
export interface FailoverTiming {
    /** Seconds the leader lock lives without renewal: the floor for failover after a hard kill. Patroni 4 raises anything below 20 to 20. */
    readonly ttl: number;
    /** Seconds between Patroni's checks; also how quickly a replica notices the lock expired. */
    readonly loopWait: number;
    /** Seconds Patroni retries DCS and PostgreSQL operations before demoting itself. */
    readonly retryTimeout: number;
}

/**
 * Named timing profiles. `dev`: the fastest safe failover on one host (a hard kill is bounded by ttl 20).
 * `production`: the same lock lease with a calmer loop for networks with real latency; worst case after a hard
 * kill ≈ ttl + loopWait + HAProxy detection ≈ 27 s. `patroni-defaults`: Patroni's own (30/10/10), ≈ 45 s.
 */
export const TimingProfile = { Dev: "dev", Production: "production", PatroniDefaults: "patroni-defaults" } as const;
export type TimingProfile = (typeof TimingProfile)[keyof typeof TimingProfile];

export const TIMING_PROFILES: Readonly<Record<TimingProfile, FailoverTiming>> = {
    dev: { ttl: 20, loopWait: 1, retryTimeout: 5 },
    production: { ttl: 20, loopWait: 5, retryTimeout: 5 },
    "patroni-defaults": { ttl: 30, loopWait: 10, retryTimeout: 10 },
};

/** `on`: commits wait for a synchronous standby while one is available; `strict`: even when none is left; `off`: asynchronous. */
export const SynchronousMode = { Off: "off", On: "on", Strict: "strict" } as const;
export type SynchronousMode = (typeof SynchronousMode)[keyof typeof SynchronousMode];
export const SYNCHRONOUS_MODES: readonly SynchronousMode[] = ["off", "on", "strict"];
export const SUPPORTED_VERSIONS = [17] as const;

export interface PatroniTags {
    /** Never promote this member. */
    readonly nofailover?: boolean;
    /** Keep this member out of the read-only endpoint. */
    readonly noloadbalance?: boolean;
    /** Never choose this member as a synchronous standby. */
    readonly nosync?: boolean;
}

/** The shape-defining settings of a Patroni cluster. Passwords are not here: they are Pulumi secrets. */
export interface PostgresSettings {
    /** @default 3 */
    readonly members?: number;
    /** PostgreSQL major version. @default 17 */
    readonly version?: number;
    /**
     * `on`: commits wait for a synchronous standby while one is available, and only it can be promoted (no
     * acknowledged write is lost). `strict`: commits wait even when no standby is left. `off`: asynchronous.
     * @default "on"
     */
    readonly synchronousMode?: SynchronousMode;
    /** Number of synchronous standbys. Must be below `members`. @default 1 */
    readonly synchronousStandbys?: number;
    /** Failover timing profile. @default "production" */
    readonly timingProfile?: TimingProfile;
    /** Explicit timing values, each one replacing the profile's. */
    readonly timing?: Partial<FailoverTiming>;
    /** A replica further behind than this many bytes is never promoted. @default 1048576 */
    readonly maximumLagOnFailover?: number;
    /** Rewind a former leader instead of recloning it. @default true */
    readonly usePgRewind?: boolean;
    /** Replication slots per member, so the primary keeps WAL a replica still needs. @default true */
    readonly useSlots?: boolean;
    /** Keep the leader running while the DCS is down, if it can still reach every member. @default true */
    readonly failsafeMode?: boolean;
    /** Tags per member ordinal. */
    readonly memberTags?: PatroniTags[];
    /** @default 5432 */
    readonly port?: number;
    /** Patroni REST API port, which HAProxy checks. @default 8008 */
    readonly apiPort?: number;
    /** @default "app" */
    readonly databaseName?: string;
    /** @default "app" */
    readonly appUser?: string;
    /** @default "postgres" */
    readonly superuser?: string;
    /** @default "replicator" */
    readonly replicationUser?: string;
    /**
     * Raise to generate a new application password: the configurator sets it on the servers (ALTER ROLE), the
     * old one stops working, and the connection URLs carry the new one.
     * @default 0
     */
    readonly appPasswordRotation?: number;
    /** SQL run once, as the application user in the application database, on the first primary. */
    readonly bootstrapSql?: string;
    /** PostgreSQL parameters, passed through to every member (`{ work_mem: "64MB" }`). */
    readonly parameters?: Record<string, string>;
    /** Size of each member's data volume in GiB (targets with sized volumes: Kubernetes, AWS). @default 10 */
    readonly storageGiB?: number;
}

export const POSTGRES_DEFAULTS = {
    members: 3,
    version: 17,
    synchronousMode: "on" as SynchronousMode,
    synchronousStandbys: 1,
    timingProfile: "production" as TimingProfile,
    storageGiB: 10,
    maximumLagOnFailover: 1048576,
    usePgRewind: true,
    useSlots: true,
    failsafeMode: true,
    port: 5432,
    apiPort: 8008,
    databaseName: "app",
    appUser: "app",
    superuser: "postgres",
    replicationUser: "replicator",
};

/** Parameters Patroni or hadb sets from other arguments; passing them through would fight those. */
const MANAGED_PARAMETERS: Record<string, string> = {
    port: "`port`",
    listen_addresses: "nothing: Patroni listens on all addresses of the member",
    data_directory: "nothing: the data directory is on the member's volume",
    hba_file: "nothing: pg_hba is rendered from the cluster network",
    synchronous_standby_names: "`synchronousMode` and `synchronousStandbys`",
    hot_standby: "nothing: replicas always serve reads",
};

/** The profile's values with the explicit ones over them; an unknown profile gives undefined values. */
export function resolveTiming(s: Pick<PostgresSettings, "timingProfile" | "timing">): FailoverTiming {
    return withDefaults(TIMING_PROFILES[s.timingProfile ?? POSTGRES_DEFAULTS.timingProfile] ?? {}, s.timing ?? {}) as FailoverTiming;
}

export function validatePostgresSettings(name: string, s: PostgresSettings): void {
    const check = new ArgumentChecker(`PostgresCluster "${name}"`);
    check.dnsLabel("name", name);
    const members = s.members ?? POSTGRES_DEFAULTS.members;
    if (!Number.isInteger(members) || members < 2 || members > 9) {
        check.fail("members", members, "a highly-available cluster needs at least 2 members (a leader and a replica to promote), and more than 9 adds load without adding safety", "use 3: a leader and two replicas");
    }
    const version = s.version ?? POSTGRES_DEFAULTS.version;
    if (!(SUPPORTED_VERSIONS as readonly number[]).includes(version)) {
        check.fail("version", version, `the images provide PostgreSQL ${SUPPORTED_VERSIONS.join(", ")} only`, `use ${SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]}`);
    }
    const mode = s.synchronousMode ?? POSTGRES_DEFAULTS.synchronousMode;
    check.oneOf("synchronousMode", mode, SYNCHRONOUS_MODES);
    const standbys = s.synchronousStandbys ?? POSTGRES_DEFAULTS.synchronousStandbys;
    if (!Number.isInteger(standbys) || standbys < 1 || standbys >= members) {
        check.fail("synchronousStandbys", standbys, `it must be from 1 to members - 1 (${members - 1}): the leader cannot be its own standby`, `use 1, or add members`);
    }
    check.oneOf("timingProfile", s.timingProfile ?? POSTGRES_DEFAULTS.timingProfile, Object.keys(TIMING_PROFILES) as TimingProfile[]);
    const t = resolveTiming(s);
    check.integer("timing.ttl", t.ttl, 1, 3600);
    check.integer("timing.loopWait", t.loopWait, 1, 60);
    check.integer("timing.retryTimeout", t.retryTimeout, 1, 120);
    if (!Number.isInteger(t.ttl) || t.ttl < 20) {
        check.fail("timing.ttl", t.ttl, "Patroni 4 raises any ttl below 20 s to 20 s, so a smaller value would not mean what it says", "use 20 or more");
    }
    if (t.loopWait + 2 * t.retryTimeout > t.ttl) {
        check.fail(
            "timing.ttl",
            t.ttl,
            `Patroni needs loopWait + 2 × retryTimeout ≤ ttl (${t.loopWait} + 2 × ${t.retryTimeout} = ${t.loopWait + 2 * t.retryTimeout}), or a leader can lose its lock while still retrying`,
            `raise ttl to ${t.loopWait + 2 * t.retryTimeout} or lower loopWait or retryTimeout`,
        );
    }
    check.integer("maximumLagOnFailover", s.maximumLagOnFailover ?? POSTGRES_DEFAULTS.maximumLagOnFailover, 0, Number.MAX_SAFE_INTEGER);
    check.integer("storageGiB", s.storageGiB ?? POSTGRES_DEFAULTS.storageGiB, 1, 65536);
    check.integer("appPasswordRotation", s.appPasswordRotation ?? 0, 0, 1_000_000);
    const tags = s.memberTags ?? [];
    if (tags.length > members) {
        check.fail("memberTags", tags.length, `there are tags for ${tags.length} members but only ${members} members`, "give at most one entry per member");
    }
    const candidates = Array.from({ length: members }, (_, i) => tags[i]).filter((t) => !t?.nofailover).length;
    if (candidates < 2) {
        check.fail("memberTags", tags, "at most one member may be promoted, so losing it leaves no leader", "leave nofailover off on at least two members");
    }
    const syncCandidates = Array.from({ length: members }, (_, i) => tags[i]).filter((t) => !t?.nosync).length - 1;
    if (mode === "strict" && syncCandidates < standbys) {
        check.fail("memberTags", tags, `strict synchronous mode needs ${standbys} members without nosync besides the leader`, "remove nosync from a member or lower synchronousStandbys");
    }
    checkPortClashes(check, [
        { argument: "port", port: s.port ?? POSTGRES_DEFAULTS.port, scope: "member" },
        { argument: "apiPort", port: s.apiPort ?? POSTGRES_DEFAULTS.apiPort, scope: "member" },
    ]);
    for (const arg of ["databaseName", "appUser", "superuser", "replicationUser"] as const) {
        const value = s[arg] ?? POSTGRES_DEFAULTS[arg];
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
            check.fail(arg, value, "it must be a plain SQL identifier: lowercase letters, digits and '_', not starting with a digit, at most 63 characters", "rename it");
        }
    }
    const roles = [s.appUser ?? POSTGRES_DEFAULTS.appUser, s.superuser ?? POSTGRES_DEFAULTS.superuser, s.replicationUser ?? POSTGRES_DEFAULTS.replicationUser];
    if (new Set(roles).size !== roles.length) {
        check.fail("appUser", roles[0], "the application user, superuser and replication user must be three different roles", "give each its own name");
    }
    for (const key of Object.keys(s.parameters ?? {})) {
        if (key in MANAGED_PARAMETERS) check.fail(`parameters.${key}`, s.parameters![key], "hadb sets this parameter itself", `set ${MANAGED_PARAMETERS[key]} instead`);
    }
}
