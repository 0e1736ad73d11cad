import * as pulumi from "@pulumi/pulumi";
import { ClusterBackends } from "../core/backends";
import { ArgumentChecker, planOrFail } from "../core/errors";
import { DeployedEndpoint } from "../core/plan";
import { DEFAULT_MAX_LAG, FRONTEND_ENDPOINTS } from "../haproxy/plan";
import { AwsTarget, DirectRoute } from "../targets/aws";

export interface NlbFrontendArgs {
    /** The AwsTarget the cluster runs on. */
    readonly target: AwsTarget;
    /** The cluster's backends (`pg.backends`, or a ReadReplicaFleet's, whose readers join the read-only endpoint). */
    readonly backends: ClusterBackends;
    /** @default PostgreSQL { readWrite: 5000, readOnly: 5001, analytics: 5002 }; MySQL { readWrite: 6446, readOnly: 6447, analytics: 6448 } */
    readonly ports?: { readonly readWrite?: number; readonly readOnly?: number; readonly analytics?: number };
    /** The read-only endpoint's lag bound, in the engine's unit. @default the fleet's, else 1048576 bytes (PostgreSQL) or 100 transactions (MySQL) */
    readonly maxReplicaLag?: number;
}

const DEFAULT_PORTS = { postgres: { readWrite: 5000, readOnly: 5001, analytics: 5002 }, mysql: { readWrite: 6446, readOnly: 6447, analytics: 6448 } } as const;

/**
 * The endpoints of a direct load balancer: read-write to the member answering `/primary`, read-only to the replicas
 * answering `/replica?lag=N`, analytics (when the backends have analytics replicas) to those alone.
 */
export function directRoutes(name: string, args: Omit<NlbFrontendArgs, "target">): DirectRoute[] {
    const check = new ArgumentChecker(`NlbFrontend "${name}"`);
    const ports = { ...DEFAULT_PORTS[args.backends.engine], ...args.ports };
    check.port("ports.readWrite", ports.readWrite);
    check.port("ports.readOnly", ports.readOnly);
    check.port("ports.analytics", ports.analytics);
    if (new Set([ports.readWrite, ports.readOnly, ports.analytics]).size < 3) check.fail("ports", ports, "two endpoints share a port", "give each endpoint its own port");
    if (args.backends.multiWriter) {
        check.fail("backends", "multi-primary", "an NLB cannot tell which members of a multi-primary group are ONLINE writers any better than HAProxy, and it fails open", "use HaproxyFrontend for multi-primary MySQL");
    }
    const lag = args.maxReplicaLag ?? args.backends.maxLag ?? DEFAULT_MAX_LAG[args.backends.engine];
    check.integer("maxReplicaLag", lag, 0, Number.MAX_SAFE_INTEGER);
    return [
        { name: FRONTEND_ENDPOINTS.readWrite, port: ports.readWrite, servers: args.backends.servers, checkPath: "/primary" },
        { name: FRONTEND_ENDPOINTS.readOnly, port: ports.readOnly, servers: [...args.backends.servers, ...(args.backends.readers ?? [])], checkPath: `/replica?lag=${lag}` },
        ...(args.backends.analytics?.length ? [{ name: FRONTEND_ENDPOINTS.analytics, port: ports.analytics, servers: args.backends.analytics, checkPath: `/replica?lag=${lag}` }] : []),
    ];
}

/**
 * "nlb-direct" on AWS: an internal Network Load Balancer straight at a cluster's members, without a proxy tier.
 * Cheaper than two HAProxy instances, but slower and less strict: the NLB's health checks are at best every 5 s,
 * 2 to change state, and it fails open (no healthy target → traffic to every target), so a failover takes about
 * 10 s longer and writes meanwhile can reach a member that is not the primary (they fail there, nothing is
 * lost). Measured against HaproxyFrontend in README "Production on AWS".
 *
 * @example
 * const rw = new NlbFrontend("pg-nlb", { target: aws, backends: pg.backends });
 */
export class NlbFrontend extends pulumi.ComponentResource {
    /** The primary, through the NLB. */
    readonly readWrite: pulumi.Output<DeployedEndpoint>;
    /** Replicas within the lag bound, through the NLB. */
    readonly readOnly: pulumi.Output<DeployedEndpoint>;
    /** The analytics replicas, when the backends have some (a ReadReplicaFleet's with `analytics`). */
    readonly analytics?: pulumi.Output<DeployedEndpoint>;

    constructor(name: string, args: NlbFrontendArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:NlbFrontend", name, {}, opts);
        const routes = planOrFail(this, () => {
            if (!(args.target instanceof AwsTarget)) {
                new ArgumentChecker(`NlbFrontend "${name}"`).fail("target", (args.target as { kind?: string } | undefined)?.kind, "an NLB exists only on AWS", "pass the AwsTarget the cluster runs on, or use HaproxyFrontend elsewhere");
            }
            const r = directRoutes(name, args);
            args.target.checkDirectLoadBalancer(name, r.map((route) => route.port), `NlbFrontend "${name}"`);
            return r;
        });
        const endpoints = args.target.directLoadBalancer(this, name, routes);
        this.readWrite = endpoints[FRONTEND_ENDPOINTS.readWrite];
        this.readOnly = endpoints[FRONTEND_ENDPOINTS.readOnly];
        this.analytics = endpoints[FRONTEND_ENDPOINTS.analytics];
        this.registerOutputs({ readWrite: this.readWrite, readOnly: this.readOnly, analytics: this.analytics });
    }
}
