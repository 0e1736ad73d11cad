import * as pulumi from "@pulumi/pulumi";
import { BackendServer, ClusterBackends, clusterBackends } from "../core/backends";
import { ArgumentChecker, planOrFail } from "../core/errors";
import { Target } from "../core/plan";
import { claimFleet, FleetSettings, fleetReplicas, replicaSourceOf, validateFleetSettings } from "../core/replicas";

export interface ReadReplicaFleetArgs extends FleetSettings {
    /**
     * The cluster to replicate: a `PostgresCluster` (replicas are Patroni members tagged `nofailover` and
     * `nosync`, streaming from the leader or `cascadeFrom`) or a `MySqlCluster` (asynchronous GTID replicas that
     * follow the group's primary by themselves). The fleet runs on the cluster's target.
     */
    readonly source: pulumi.ComponentResource;
    /** Where the replicas run: must be the cluster's own target (the default). */
    readonly target?: Target;
    /**
     * Replicas further behind than this leave the read-only and analytics pools until they catch up: bytes of
     * WAL not yet replayed (PostgreSQL), transactions received but not yet applied (MySQL). A proxy's own
     * `maxReplicaLag` overrides it.
     * @default 1048576 (PostgreSQL), 100 (MySQL)
     */
    readonly maxLag?: number;
}

/**
 * Read replicas of a cluster as one declaration: `replicas` in all, the last `analytics` of them kept for
 * reporting on their own endpoint. Hand its `backends` to a HaproxyFrontend instead of the cluster's: the proxy
 * then spreads read-only traffic over the cluster's replicas and the fleet, routes around replicas past the lag
 * bound, and serves the analytics endpoint.
 *
 * @example
 * const reads = new ReadReplicaFleet("pg-reads", { source: pg, replicas: 2, analytics: 1 });
 * new HaproxyFrontend("pg-proxy", { target, backends: reads.backends, publish: true });
 */
export class ReadReplicaFleet extends pulumi.ComponentResource {
    /** Container or Pod names of the replicas. */
    readonly memberNames: pulumi.Output<string[]>;
    /** The cluster's backends with the fleet's replicas in the read-only and analytics pools. */
    readonly backends: ClusterBackends;

    constructor(name: string, args: ReadReplicaFleetArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:ReadReplicaFleet", name, {}, opts);
        const { source, plan, replicas } = planOrFail(this, () => {
            const component = `ReadReplicaFleet "${name}"`;
            const check: ArgumentChecker = new ArgumentChecker(component);
            const source = replicaSourceOf(args.source);
            if (!source) check.fail("source", typeof args.source, "it is not a PostgresCluster or MySqlCluster", "pass the cluster to replicate, e.g. `source: pg`");
            if (args.target && args.target !== source.target) {
                check.fail("target", args.target.kind, `it is not the target of cluster "${source.cluster}"`, "leave target out: a fleet runs where its cluster runs");
            }
            validateFleetSettings(name, source, args);
            claimFleet(source, name);
            const replicas = fleetReplicas(name, args);
            const plan = source.plan(name, replicas, args.cascadeFrom);
            source.target.checkPlan(plan, component);
            return { source, plan, replicas };
        });
        // After the cluster's members: a replica needs a primary to copy its data from.
        const deployed = source.target.deploy(this, plan, [...source.resources]);
        const servers = clusterBackends(source.engine, false, deployed.members, source.engine, "api").servers;
        const inPool = (analytics: boolean): BackendServer[] => servers.filter((_, i) => replicas[i].analytics === analytics);
        this.backends = { ...source.backends, readers: inPool(false), analytics: inPool(true), maxLag: args.maxLag };
        this.memberNames = pulumi.all(deployed.members.map((m) => m.resourceName));
        this.registerOutputs({ memberNames: this.memberNames });
    }
}
