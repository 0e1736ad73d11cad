import { ArgumentChecker } from "../core/errors";
import { checkPortClashes, publishedRange } from "../core/ports";
import { MemberPlan, ServicePlan } from "../core/plan";

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
    /** @default 2379 */
    readonly clientPort?: number;
    /** @default 2380 */
    readonly peerPort?: number;
    /**
     * Publish member i's client port on the host at `publishClientPortsFrom + i` (Docker dev only).
     * @default not published
     */
    readonly publishClientPortsFrom?: number;
    /**
     * Raft heartbeat and election timeout in milliseconds. etcd's rule: election ≥ 5 × heartbeat.
     * @default 100 and 1000, etcd's own defaults
     */
    readonly heartbeatIntervalMs?: number;
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

/** Member names are the component name plus an ordinal, like a StatefulSet's Pods. */
export function etcdMemberNames(name: string, members: number): string[] {
    return Array.from({ length: members }, (_, i) => `${name}-${i}`);
}

/** The whole cluster as a target-neutral plan. Pure: same settings, same plan. */
export function planEtcdCluster(name: string, stack: string, settings: EtcdSettings): ServicePlan {
    validateEtcdSettings(name, settings);
    const s = { ...ETCD_DEFAULTS, ...settings };
    const names = etcdMemberNames(name, s.members);
    const initialCluster = names.map((m) => `${m}=http://${m}:${s.peerPort}`).join(",");
    const token = s.clusterToken ?? `${stack}-${name}`;
    const members: MemberPlan[] = names.map((member, i) => ({
        name: member,
        // etcd reads every setting from ETCD_* variables, so the plan needs no config file.
        env: {
            ETCD_NAME: member,
            ETCD_DATA_DIR: "/var/lib/etcd/data",
            ETCD_LISTEN_CLIENT_URLS: `http://0.0.0.0:${s.clientPort}`,
            ETCD_ADVERTISE_CLIENT_URLS: `http://${member}:${s.clientPort}`,
            ETCD_LISTEN_PEER_URLS: `http://0.0.0.0:${s.peerPort}`,
            ETCD_INITIAL_ADVERTISE_PEER_URLS: `http://${member}:${s.peerPort}`,
            ETCD_INITIAL_CLUSTER: initialCluster,
            ETCD_INITIAL_CLUSTER_STATE: "new",
            ETCD_INITIAL_CLUSTER_TOKEN: token,
            ETCD_HEARTBEAT_INTERVAL: String(s.heartbeatIntervalMs),
            ETCD_ELECTION_TIMEOUT: String(s.electionTimeoutMs),
            // Keep the keyspace small: Patroni rewrites its keys every loop.
            ETCD_AUTO_COMPACTION_MODE: "periodic",
            ETCD_AUTO_COMPACTION_RETENTION: "1h",
        },
        files: [],
        ports: [
            { name: "client", port: s.clientPort, hostPort: s.publishClientPortsFrom === undefined ? undefined : s.publishClientPortsFrom + i },
            { name: "peer", port: s.peerPort },
        ],
        volumes: [{ name: "data", mountPath: "/var/lib/etcd" }],
        // `endpoint health` does a quorum read, so a member that lost its majority reports unhealthy.
        health: {
            command: ["etcdctl", `--endpoints=http://127.0.0.1:${s.clientPort}`, "--command-timeout=2s", "endpoint", "health"],
            intervalSeconds: 2,
            timeoutSeconds: 3,
            retries: 5,
            startPeriodSeconds: 10,
        },
        restart: "unless-stopped",
    }));
    return { name, image: "etcd", members, labels: { "hadb.component": "etcd", "hadb.cluster": name } };
}
