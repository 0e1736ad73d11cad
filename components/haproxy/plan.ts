import { ArgumentChecker } from "../core/errors";
import { MemberPlan, ServicePlan } from "../core/plan";
import { checkPortClashes, PortClaim } from "../core/ports";
import { DEFAULT_CHECK_TIMING, HaproxyModel, HealthCheckTiming, renderHaproxyConfig } from "./config";

export type FrontendMode = "postgres";

/** A database server behind the proxy: SQL on `port`, its role answered on `apiPort`. */
export interface FrontendBackend {
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly apiPort: number;
}

export interface FrontendSettings {
    /** What the backends are; decides how roles are checked. */
    readonly mode: FrontendMode;
    readonly backends: readonly FrontendBackend[];
    /** @default { readWrite: 5000, readOnly: 5001, stats: 7000 } (PostgreSQL) */
    readonly ports?: { readonly readWrite?: number; readonly readOnly?: number; readonly stats?: number };
    /**
     * Publish the ports on the host (Docker dev). Instance i publishes each port plus 10 × i.
     * @default false
     */
    readonly publish?: boolean;
    /** HAProxy instances; two remove the proxy as a single point of failure. @default 1 */
    readonly instances?: number;
    /** Replicas further behind than this many bytes leave the read-only endpoint. @default 1048576 */
    readonly maxReplicaLagBytes?: number;
    /** @default { intervalMs: 1000, fall: 2, rise: 1 } */
    readonly checks?: HealthCheckTiming;
}

const DEFAULT_PORTS = { postgres: { readWrite: 5000, readOnly: 5001, stats: 7000 } };
const INSTANCE_PORT_STRIDE = 10;
/** Docker's embedded DNS, which follows a container to its new address after it is recreated. */
const DOCKER_DNS = "127.0.0.11:53";

export function validateFrontendSettings(name: string, s: FrontendSettings): void {
    const check = new ArgumentChecker(`HaproxyFrontend "${name}"`);
    check.dnsLabel("name", name);
    check.oneOf("mode", s.mode, ["postgres"]);
    if (s.backends.length === 0) check.fail("backends", [], "there is nothing to route to", "pass the cluster's backends, e.g. `backends: pg.backends`");
    const instances = s.instances ?? 1;
    check.integer("instances", instances, 1, 3, "use 1, or 2 to remove the proxy as a single point of failure");
    check.integer("maxReplicaLagBytes", s.maxReplicaLagBytes ?? 1048576, 0, Number.MAX_SAFE_INTEGER);
    const timing = s.checks ?? DEFAULT_CHECK_TIMING;
    check.integer("checks.intervalMs", timing.intervalMs, 100, 60000);
    check.integer("checks.fall", timing.fall, 1, 10);
    check.integer("checks.rise", timing.rise, 1, 10);
    const ports = { ...DEFAULT_PORTS[s.mode], ...s.ports };
    const claims: PortClaim[] = [];
    for (const [key, port] of Object.entries(ports)) {
        claims.push({ argument: `ports.${key}`, port, scope: "instance" });
        if (s.publish) for (let i = 0; i < instances; i++) claims.push({ argument: `ports.${key}`, port: port + INSTANCE_PORT_STRIDE * i, scope: "host" });
    }
    checkPortClashes(check, claims);
}

/** The routing model: read-write to the leader only, read-only to replicas within the lag bound, else the leader. */
export function frontendModel(s: FrontendSettings): HaproxyModel {
    const ports = { ...DEFAULT_PORTS[s.mode], ...s.ports };
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
            // Patroni answers /primary with 200 only on the member holding the leader lock.
            { name: "primary", checkPath: "/primary", balance: "first", servers },
            // /replica?lag=N: a running replica, not tagged noloadbalance, at most N bytes behind.
            { name: "replicas", checkPath: `/replica?lag=${s.maxReplicaLagBytes ?? 1048576}`, balance: "roundrobin", servers },
        ],
    };
}

export const HAPROXY_CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg";

export function planFrontend(name: string, s: FrontendSettings): ServicePlan {
    validateFrontendSettings(name, s);
    const ports = { ...DEFAULT_PORTS[s.mode], ...s.ports };
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
