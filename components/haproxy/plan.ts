import { ArgumentChecker } from "../core/errors";
import { DeployedMember, MemberPlan, ServicePlan } from "../core/plan";
import { checkPortClashes, PortClaim } from "../core/ports";
import { DEFAULT_CHECK_TIMING, HaproxyModel, HealthCheckTiming, renderHaproxyConfig } from "./config";

/** What is behind the proxy: Patroni answers role checks for PostgreSQL, hadb's member supervisor for MySQL. */
export type FrontendMode = "postgres" | "mysql";

/** A database server behind the proxy: SQL on `port`, its role answered on `apiPort`. */
export interface FrontendBackend {
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly apiPort: number;
}

/** A cluster's deployed members as backends: `sqlPort` names the member port clients connect to. */
export function frontendBackends(members: readonly DeployedMember[], sqlPort: string): FrontendBackend[] {
    return members.map((m) => ({ name: m.name, host: m.host, port: m.ports[sqlPort], apiPort: m.ports.api }));
}

export interface FrontendSettings {
    /** What the backends are; decides how roles are checked. */
    readonly mode: FrontendMode;
    readonly backends: readonly FrontendBackend[];
    /** @default PostgreSQL { readWrite: 5000, readOnly: 5001, stats: 7000 }; MySQL { readWrite: 6446, readOnly: 6447, stats: 7001 } */
    readonly ports?: { readonly readWrite?: number; readonly readOnly?: number; readonly stats?: number };
    /**
     * Publish the ports on the host (Docker dev). Instance i publishes each port plus 10 × i.
     * @default false
     */
    readonly publish?: boolean;
    /** HAProxy instances; two remove the proxy as a single point of failure. @default 1 */
    readonly instances?: number;
    /**
     * Replicas further behind than this leave the read-only endpoint: bytes of WAL for PostgreSQL,
     * transactions waiting in the applier queue for MySQL.
     * @default 1048576 (PostgreSQL), 100 (MySQL)
     */
    readonly maxReplicaLag?: number;
    /** Every qualifying server takes writes (MySQL multi-primary) instead of the first one. @default false */
    readonly multiWriter?: boolean;
    /** @default { intervalMs: 1000, fall: 2, rise: 1 } */
    readonly checks?: HealthCheckTiming;
}

const DEFAULT_PORTS = { postgres: { readWrite: 5000, readOnly: 5001, stats: 7000 }, mysql: { readWrite: 6446, readOnly: 6447, stats: 7001 } };
const DEFAULT_MAX_LAG = { postgres: 1048576, mysql: 100 };
const INSTANCE_PORT_STRIDE = 10;
/** Docker's embedded DNS, which follows a container to its new address after it is recreated. */
const DOCKER_DNS = "127.0.0.11:53";

/** The mode's default ports with the caller's overrides. */
function frontendPorts(s: FrontendSettings): { readWrite: number; readOnly: number; stats: number } {
    return { ...DEFAULT_PORTS[s.mode], ...s.ports };
}

export function validateFrontendSettings(name: string, s: FrontendSettings): void {
    const check = new ArgumentChecker(`HaproxyFrontend "${name}"`);
    check.dnsLabel("name", name);
    check.oneOf("mode", s.mode, ["postgres", "mysql"]);
    if (s.backends.length === 0) check.fail("backends", [], "there is nothing to route to", "pass the cluster's backends, e.g. `backends: pg.backends`");
    const instances = s.instances ?? 1;
    check.integer("instances", instances, 1, 3, "use 1, or 2 to remove the proxy as a single point of failure");
    check.integer("maxReplicaLag", s.maxReplicaLag ?? DEFAULT_MAX_LAG[s.mode], 0, Number.MAX_SAFE_INTEGER);
    if (s.multiWriter && s.mode !== "mysql") check.fail("multiWriter", true, "only MySQL multi-primary groups accept writes on every member", "leave it out");
    const timing = s.checks ?? DEFAULT_CHECK_TIMING;
    check.integer("checks.intervalMs", timing.intervalMs, 100, 60000);
    check.integer("checks.fall", timing.fall, 1, 10);
    check.integer("checks.rise", timing.rise, 1, 10);
    const ports = frontendPorts(s);
    const claims: PortClaim[] = [];
    for (const [key, port] of Object.entries(ports)) {
        claims.push({ argument: `ports.${key}`, port, scope: "instance" });
        if (s.publish) for (let i = 0; i < instances; i++) claims.push({ argument: `ports.${key}`, port: port + INSTANCE_PORT_STRIDE * i, scope: "host" });
    }
    checkPortClashes(check, claims);
}

/**
 * The routing model: read-write to the primary only (every ONLINE member in multi-primary), read-only to
 * replicas within the lag bound, else the primary. Both agents answer the same paths.
 */
export function frontendModel(s: FrontendSettings): HaproxyModel {
    const ports = frontendPorts(s);
    const servers = s.backends.map((b) => ({ name: b.name, host: b.host, port: b.port, checkPort: b.apiPort }));
    return {
        statsPort: ports.stats,
        timing: s.checks ?? DEFAULT_CHECK_TIMING,
        resolver: DOCKER_DNS,
        routes: [
            { name: "read_write", port: ports.readWrite, backend: "primary" },
            { name: "read_only", port: ports.readOnly, backend: "replicas", fallback: "primary" },
        ],
        backends: [
            // /primary answers 200 only on the member holding Patroni's leader lock, or on an ONLINE MySQL
            // primary with super_read_only off.
            { name: "primary", checkPath: "/primary", balance: s.multiWriter ? "roundrobin" : "first", servers },
            // /replica?lag=N: a streaming replica (not tagged noloadbalance) at most N bytes behind, or an ONLINE
            // MySQL secondary with super_read_only on and at most N transactions in its applier queue.
            { name: "replicas", checkPath: `/replica?lag=${s.maxReplicaLag ?? DEFAULT_MAX_LAG[s.mode]}`, balance: "roundrobin", servers },
        ],
    };
}

export const HAPROXY_CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg";

export function planFrontend(name: string, s: FrontendSettings): ServicePlan {
    validateFrontendSettings(name, s);
    const ports = frontendPorts(s);
    const config = renderHaproxyConfig(frontendModel(s));
    const members: MemberPlan[] = Array.from({ length: s.instances ?? 1 }, (_, i) => ({
        name: `${name}-${i}`,
        env: {},
        files: [{ path: HAPROXY_CONFIG_PATH, content: config, mode: "0644" }],
        ports: Object.entries(ports).map(([key, port]) => ({ name: key, port, hostPort: s.publish ? port + INSTANCE_PORT_STRIDE * i : undefined })),
        volumes: [],
        health: { command: ["curl", "-fsS", "-o", "/dev/null", `http://127.0.0.1:${ports.stats}/`], intervalSeconds: 2, timeoutSeconds: 2, retries: 3, startPeriodSeconds: 5 },
        restart: "unless-stopped",
    }));
    return { name, image: "haproxy", members, labels: { "hadb.component": "haproxy", "hadb.cluster": name } };
}
