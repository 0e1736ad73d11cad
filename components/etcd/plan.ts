import { stringify } from "yaml";
import { withDefaults } from "../core/defaults";
import { ArgumentChecker } from "../core/errors";
import { checkPortClashes, publishedRange } from "../core/ports";
import { memberNames, ServicePlan } from "../core/plan";

/** The shape-defining settings of an etcd cluster. Plain values: they decide how many resources exist. */
export interface EtcdSettings {
    /**
     * Number of members. Odd, so that a majority (quorum) always exists on one side of a partition.
     * @default 3
     */
    readonly members?: number;
    /**
     * Token that keeps two clusters from accidentally joining each other.
     * @default "<stack>-<name>"
     */
    readonly clusterToken?: string;
    /** Port clients (Patroni) connect to. @default 2379 */
    readonly clientPort?: number;
    /** Port members replicate over. @default 2380 */
    readonly peerPort?: number;
    /**
     * Publish member i's client port on the host at `publishClientPortsFrom + i` (Docker target only).
     * @default not published
     */
    readonly publishClientPortsFrom?: number;
    /** Raft heartbeat interval in milliseconds. @default 100, etcd's own */
    readonly heartbeatIntervalMs?: number;
    /** Raft election timeout in milliseconds; etcd's rule: at least 5 × the heartbeat. @default 1000, etcd's own */
    readonly electionTimeoutMs?: number;
}

export const ETCD_DEFAULTS = {
    members: 3,
    clientPort: 2379,
    peerPort: 2380,
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
} as const;

/** Validates the settings; throws InvalidArgumentError naming the argument, the value and the fix. */
export function validateEtcdSettings(name: string, settings: EtcdSettings): void {
    const check = new ArgumentChecker(`EtcdCluster "${name}"`);
    check.dnsLabel("name", name);
    const members = settings.members ?? ETCD_DEFAULTS.members;
    if (!Number.isInteger(members) || members < 1 || members > 7 || members % 2 === 0) {
        check.fail(
            "members",
            members,
            "an etcd cluster needs an odd number of members from 1 to 7: an even count tolerates no more failures than the odd count below it, and more than 7 slows every write",
            members === 2 || members === 4 || members === 6 ? `use ${members + 1} (or ${members - 1})` : "use 3 (tolerates 1 failure) or 5 (tolerates 2)",
        );
    }
    if (settings.clusterToken !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(settings.clusterToken)) {
        check.fail("clusterToken", settings.clusterToken, "it must be 1 to 64 letters, digits, '.', '_' or '-'", "leave it out to use \"<stack>-<name>\"");
    }
    const heartbeat = settings.heartbeatIntervalMs ?? ETCD_DEFAULTS.heartbeatIntervalMs;
    const election = settings.electionTimeoutMs ?? ETCD_DEFAULTS.electionTimeoutMs;
    check.integer("heartbeatIntervalMs", heartbeat, 10, 5000);
    check.integer("electionTimeoutMs", election, 50, 50000);
    if (election < 5 * heartbeat) {
        check.fail("electionTimeoutMs", election, `it must be at least 5 × heartbeatIntervalMs (${5 * heartbeat})`, `raise it to ${5 * heartbeat} or lower heartbeatIntervalMs`);
    }
    checkPortClashes(check, [
        { argument: "clientPort", port: settings.clientPort ?? ETCD_DEFAULTS.clientPort, scope: "member" },
        { argument: "peerPort", port: settings.peerPort ?? ETCD_DEFAULTS.peerPort, scope: "member" },
        ...publishedRange("publishClientPortsFrom", settings.publishClientPortsFrom, members),
    ]);
}

export interface EtcdPlanContext {
    readonly stack: string;
    /** The address of a member, as the target decides it. */
    readonly memberHost: (member: string) => string;
}

export const ETCD_CONFIG_FILE = "etcd.yml";

/** etcd's own configuration file for one member (`etcd --config-file`). Pure. */
export function renderEtcdConfig(s: Required<Omit<EtcdSettings, "publishClientPortsFrom" | "members">>, member: string, host: string, initialCluster: string): string {
    return stringify({
        name: member,
        "data-dir": "/var/lib/etcd/data",
        "listen-client-urls": `http://0.0.0.0:${s.clientPort}`,
        "advertise-client-urls": `http://${host}:${s.clientPort}`,
        "listen-peer-urls": `http://0.0.0.0:${s.peerPort}`,
        "initial-advertise-peer-urls": `http://${host}:${s.peerPort}`,
        "initial-cluster": initialCluster,
        "initial-cluster-state": "new",
        "initial-cluster-token": s.clusterToken,
        "heartbeat-interval": s.heartbeatIntervalMs,
        "election-timeout": s.electionTimeoutMs,
        // Keep the keyspace small: Patroni rewrites its keys every loop.
        "auto-compaction-mode": "periodic",
        "auto-compaction-retention": "1h",
    });
}

/** The whole cluster as a target-neutral plan. Pure: same settings, same plan. */
export function planEtcdCluster(name: string, settings: EtcdSettings, ctx: EtcdPlanContext): ServicePlan {
    validateEtcdSettings(name, settings);
    const s = withDefaults({ ...ETCD_DEFAULTS, clusterToken: `${ctx.stack}-${name}` }, settings);
    const names = memberNames(name, s.members);
    const initialCluster = names.map((m) => `${m}=http://${ctx.memberHost(m)}:${s.peerPort}`).join(",");
    return {
        name,
        component: "etcd",
        image: "etcd",
        template: {
            env: {},
            files: [],
            ports: [
                { name: "client", port: s.clientPort, allow: ["members", "postgres"] },
                { name: "peer", port: s.peerPort, allow: ["members"] },
            ],
            volumes: [{ name: "data", mountPath: "/var/lib/etcd", sizeGiB: 1 }],
            checks: {
                // A quorum read (/health): a member that lost its majority is not in service. A member forming a new
                // cluster counts as ready once it serves, so members can start one after another (images/etcd).
                readiness: { command: ["hadb-etcd-ready", String(s.clientPort)], periodSeconds: 2, timeoutSeconds: 5, failureThreshold: 3 },
            },
            compute: { cpuMillis: { request: 100 }, memoryMiB: { request: 256, limit: 1024 } },
            stopGraceSeconds: 30,
        },
        members: names.map((member, i) => ({
            name: member,
            ordinal: i,
            files: [{ name: ETCD_CONFIG_FILE, content: renderEtcdConfig(s, member, ctx.memberHost(member), initialCluster), mode: "0644", secret: false }],
            hostPorts: s.publishClientPortsFrom === undefined ? undefined : { client: s.publishClientPortsFrom + i },
        })),
        endpoints: [],
        spread: { hosts: "required", zones: "preferred" },
        maxUnavailable: 1,
    };
}
