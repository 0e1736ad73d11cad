import { ClusterBackends, Engine } from "../core/backends";
import { ArgumentChecker } from "../core/errors";
import { checkPortClashes, PortClaim } from "../core/ports";
import { CONFIG_DIR, httpCheck, memberNames, NameResolution, ServicePlan } from "../core/plan";
import { DEFAULT_CHECK_TIMING, HaproxyModel, HealthCheckTiming, renderHaproxyConfig } from "./config";

/** The proxy's client ports. */
export interface FrontendPorts {
    /** To the primary (every ONLINE member in MySQL multi-primary). */
    readonly readWrite?: number;
    /** To replicas within the lag bound, else the primary. */
    readonly readOnly?: number;
    /**
     * To the cluster's analytics replicas within the lag bound, else the read-only pool, else the primary.
     * Served only when the backends have analytics replicas (a ReadReplicaFleet with `analytics`).
     */
    readonly analytics?: number;
    /** HAProxy's statistics page. */
    readonly stats?: number;
}

export interface FrontendSettings {
    /** The cluster behind the proxy: `pg.backends` or `mysql.backends`. Its engine decides how roles are checked. */
    readonly backends: ClusterBackends;
    /** @default PostgreSQL { readWrite: 5000, readOnly: 5001, analytics: 5002, stats: 7000 }; MySQL { readWrite: 6446, readOnly: 6447, analytics: 6448, stats: 7001 } */
    readonly ports?: FrontendPorts;
    /**
     * Publish the ports on the host (Docker target). Instance i publishes each port plus 10 × i.
     * @default false
     */
    readonly publish?: boolean;
    /** HAProxy instances; two or more remove the proxy as a single point of failure. @default 2 */
    readonly instances?: number;
    /**
     * Replicas further behind than this leave the read-only and analytics endpoints: bytes of WAL not yet
     * replayed for PostgreSQL, transactions received but not yet applied for MySQL.
     * @default the fleet's `maxLag` when the backends come from a ReadReplicaFleet, else 1048576 (PostgreSQL), 100 (MySQL)
     */
    readonly maxReplicaLag?: number;
    /** How often servers are checked and how many results change their state. @default { intervalMs: 1000, fall: 2, rise: 1 } */
    readonly checks?: HealthCheckTiming;
}

const DEFAULT_PORTS: Record<Engine, Required<FrontendPorts>> = {
    postgres: { readWrite: 5000, readOnly: 5001, analytics: 5002, stats: 7000 },
    mysql: { readWrite: 6446, readOnly: 6447, analytics: 6448, stats: 7001 },
};
export const DEFAULT_MAX_LAG: Record<Engine, number> = { postgres: 1048576, mysql: 100 };
export const FRONTEND_DEFAULTS = { instances: 2 };
const INSTANCE_PORT_STRIDE = 10;
/** Endpoint and port names: IANA service names, so Kubernetes can name its ports after them. */
export const FRONTEND_ENDPOINTS = { readWrite: "read-write", readOnly: "read-only", analytics: "analytics", stats: "stats" } as const;

/** The ports this proxy serves: the engine's defaults with the caller's overrides; analytics only for analytics replicas. */
function frontendPorts(s: FrontendSettings): Partial<Required<FrontendPorts>> & Omit<Required<FrontendPorts>, "analytics"> {
    const ports = { ...DEFAULT_PORTS[s.backends.engine], ...s.ports };
    if (!s.backends.analytics?.length) delete (ports as FrontendPorts & { analytics?: number }).analytics;
    return ports;
}

function maxLag(s: FrontendSettings): number {
    return s.maxReplicaLag ?? s.backends.maxLag ?? DEFAULT_MAX_LAG[s.backends.engine];
}

export function validateFrontendSettings(name: string, s: FrontendSettings): void {
    const check = new ArgumentChecker(`HaproxyFrontend "${name}"`);
    check.dnsLabel("name", name);
    check.oneOf("backends.engine", s.backends?.engine, ["postgres", "mysql"]);
    if (s.backends.servers.length === 0) check.fail("backends.servers", [], "there is nothing to route to", "pass the cluster's backends, e.g. `backends: pg.backends`");
    if (s.backends.multiWriter && s.backends.engine !== "mysql") {
        check.fail("backends.multiWriter", true, "only MySQL multi-primary groups accept writes on every member", "pass a MySqlCluster's backends, or leave multiWriter false");
    }
    const instances = s.instances ?? FRONTEND_DEFAULTS.instances;
    check.integer("instances", instances, 1, 5, "use 2 (or 1 for a development stack)");
    check.integer("maxReplicaLag", maxLag(s), 0, Number.MAX_SAFE_INTEGER);
    if (s.ports?.analytics !== undefined && !s.backends.analytics?.length) {
        check.fail("ports.analytics", s.ports.analytics, "the backends have no analytics replicas to serve", "pass a ReadReplicaFleet's backends with `analytics` of 1 or more, or leave ports.analytics out");
    }
    const timing = s.checks ?? DEFAULT_CHECK_TIMING;
    check.integer("checks.intervalMs", timing.intervalMs, 100, 60000);
    check.integer("checks.fall", timing.fall, 1, 10);
    check.integer("checks.rise", timing.rise, 1, 10);
    const claims: PortClaim[] = [];
    for (const [key, port] of Object.entries(frontendPorts(s))) {
        claims.push({ argument: `ports.${key}`, port, scope: "instance" });
        if (s.publish) for (let i = 0; i < instances; i++) claims.push({ argument: `ports.${key}`, port: port + INSTANCE_PORT_STRIDE * i, scope: "host" });
    }
    checkPortClashes(check, claims);
}

/**
 * The routing model: read-write to the primary only (every ONLINE member in multi-primary), read-only to
 * replicas within the lag bound, else the primary. Patroni and hadb's MySQL supervisor answer the same paths.
 */
export function frontendModel(s: FrontendSettings, nameResolution?: NameResolution): HaproxyModel {
    const ports = frontendPorts(s);
    const { multiWriter, servers, readers = [], analytics = [] } = s.backends;
    // /replica?lag=N: a running replica (not tagged noloadbalance) whose replay is at most N bytes behind the
    // leader, an ONLINE MySQL secondary with at most N transactions in its applier queue, or a MySQL fleet
    // replica connected to the group with at most N received transactions not yet applied.
    const replicaCheck = `/replica?lag=${maxLag(s)}`;
    return {
        statsPort: ports.stats,
        timing: s.checks ?? DEFAULT_CHECK_TIMING,
        nameservers: nameResolution?.nameservers,
        routes: [
            { name: "read_write", port: ports.readWrite, backends: ["primary"] },
            { name: "read_only", port: ports.readOnly, backends: ["replicas", "primary"] },
            ...(ports.analytics !== undefined ? [{ name: "analytics", port: ports.analytics, backends: ["analytics", "replicas", "primary"] }] : []),
        ],
        backends: [
            // /primary answers 200 only on the member holding Patroni's leader lock, or on an ONLINE MySQL
            // primary with super_read_only off. Fleet replicas can never be primary, so they are not asked.
            { name: "primary", checkPath: "/primary", balance: multiWriter ? "roundrobin" : "first", servers },
            { name: "replicas", checkPath: replicaCheck, balance: "roundrobin", servers: [...servers, ...readers] },
            ...(analytics.length ? [{ name: "analytics", checkPath: replicaCheck, balance: "leastconn" as const, servers: analytics }] : []),
        ],
    };
}

export const HAPROXY_CONFIG_FILE = "haproxy.cfg";
export const HAPROXY_CONFIG_PATH = `${CONFIG_DIR}/${HAPROXY_CONFIG_FILE}`;

export function planFrontend(name: string, s: FrontendSettings, nameResolution?: NameResolution): ServicePlan {
    validateFrontendSettings(name, s);
    const ports = frontendPorts(s);
    const endpoints = [
        { name: FRONTEND_ENDPOINTS.readWrite, port: ports.readWrite },
        { name: FRONTEND_ENDPOINTS.readOnly, port: ports.readOnly },
        ...(ports.analytics !== undefined ? [{ name: FRONTEND_ENDPOINTS.analytics, port: ports.analytics }] : []),
        { name: FRONTEND_ENDPOINTS.stats, port: ports.stats },
    ];
    return {
        name,
        component: "haproxy",
        image: "haproxy",
        template: {
            env: {},
            files: [{ name: HAPROXY_CONFIG_FILE, content: renderHaproxyConfig(frontendModel(s, nameResolution)), mode: "0644", secret: false }],
            ports: endpoints.map((e) => ({ ...e, allow: ["clients"] })),
            volumes: [],
            checks: {
                readiness: httpCheck(ports.stats, "/", 2, 3),
                liveness: httpCheck(ports.stats, "/", 10, 6, 5),
            },
            compute: { cpuMillis: { request: 100 }, memoryMiB: { request: 128, limit: 256 } },
            stopGraceSeconds: 10,
        },
        members: memberNames(name, s.instances ?? FRONTEND_DEFAULTS.instances).map((member, i) => ({
            name: member,
            ordinal: i,
            files: [],
            hostPorts: s.publish ? Object.fromEntries(endpoints.map((e) => [e.name, e.port + INSTANCE_PORT_STRIDE * i])) : undefined,
        })),
        endpoints,
        spread: { hosts: "required", zones: "preferred" },
        maxUnavailable: 1,
    };
}
