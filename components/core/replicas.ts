import * as pulumi from "@pulumi/pulumi";
import { ClusterBackends, Engine } from "./backends";
import { ArgumentChecker } from "./errors";
import { memberNames, ServicePlan, Target } from "./plan";

/** One replica of a fleet: its member name and whether it serves analytics rather than the read-only pool. */
export interface FleetReplica {
    readonly name: string;
    readonly ordinal: number;
    readonly analytics: boolean;
}

/**
 * What a cluster offers a ReadReplicaFleet: how to plan replicas of it on its own target, and its backends. Each
 * engine plans its replicas its own way (Patroni members that never fail over; MySQL asynchronous replicas that
 * follow the group's primary), so the fleet component never knows which engine it serves.
 */
export interface ReplicaSource {
    readonly engine: Engine;
    /** The cluster's name (its plan's name). */
    readonly cluster: string;
    /** Names of the cluster's members, for `cascadeFrom`. */
    readonly memberNames: readonly string[];
    readonly target: Target;
    readonly backends: ClusterBackends;
    /** The cluster's members, in service before a replica starts. */
    readonly resources: readonly pulumi.Resource[];
    /** Whether replicas can stream from one of them instead of the primary. */
    readonly supportsCascade: boolean;
    plan(fleet: string, replicas: readonly FleetReplica[], cascadeFrom?: string): ServicePlan;
}

/**
 * Each cluster's ReplicaSource, kept beside the cluster rather than on it: every property of a component is an
 * output to Pulumi's component analyzer, and a source holds functions and Outputs no schema can describe.
 */
const SOURCES = new WeakMap<object, ReplicaSource>();

export function registerReplicaSource(cluster: pulumi.ComponentResource, source: ReplicaSource): void {
    SOURCES.set(cluster, source);
}

/** The fleet each source already has: one per cluster, so server ids and the proxy's pools stay one set. */
const FLEETS = new WeakMap<ReplicaSource, string>();

/** Records `fleet` as the source's fleet; a second fleet of one cluster is an InvalidArgumentError. */
export function claimFleet(source: ReplicaSource, fleet: string): void {
    const held = FLEETS.get(source);
    if (held !== undefined && held !== fleet) {
        new ArgumentChecker(`ReadReplicaFleet "${fleet}"`).fail(
            "source",
            source.cluster,
            `cluster "${source.cluster}" already has the fleet "${held}"`,
            `raise \`replicas\` (and \`analytics\`) of "${held}" instead of declaring a second fleet`,
        );
    }
    FLEETS.set(source, fleet);
}

/** The source a cluster registered; undefined for anything that is not a PostgresCluster or MySqlCluster. */
export function replicaSourceOf(cluster: unknown): ReplicaSource | undefined {
    return typeof cluster === "object" && cluster !== null ? SOURCES.get(cluster) : undefined;
}

/** The shape of a fleet, validated before anything is declared. */
export interface FleetSettings {
    /** Replicas in all, analytics ones included. */
    readonly replicas: number;
    /** How many of them serve the analytics endpoint instead of the read-only pool. @default 0 */
    readonly analytics?: number;
    /** Lag bound of the fleet's pools, in the engine's unit. */
    readonly maxLag?: number;
    /** A member of the source cluster the replicas stream from instead of the primary (PostgreSQL only). */
    readonly cascadeFrom?: string;
}

/** Replica names and roles: the analytics replicas are the last `analytics` ordinals. */
export function fleetReplicas(fleet: string, s: FleetSettings): FleetReplica[] {
    const analytics = s.analytics ?? 0;
    return memberNames(fleet, s.replicas).map((name, ordinal) => ({ name, ordinal, analytics: ordinal >= s.replicas - analytics }));
}

export function validateFleetSettings(fleet: string, source: Pick<ReplicaSource, "engine" | "cluster" | "memberNames" | "supportsCascade">, s: FleetSettings): void {
    const check = new ArgumentChecker(`ReadReplicaFleet "${fleet}"`);
    check.dnsLabel("name", fleet);
    if (fleet === source.cluster) check.fail("name", fleet, "it is the name of the cluster it replicates", `name the fleet after what it serves, e.g. "${source.cluster}-reads"`);
    check.integer("replicas", s.replicas, 1, 15, "use 1 or more; a fleet of 0 is no fleet, leave it out");
    const analytics = s.analytics ?? 0;
    check.integer("analytics", analytics, 0, s.replicas, `use at most \`replicas\` (${s.replicas}): analytics replicas are counted among them`);
    if (s.maxLag !== undefined) check.integer("maxLag", s.maxLag, 0, Number.MAX_SAFE_INTEGER, source.engine === "postgres" ? "give bytes of WAL, e.g. 1048576" : "give transactions, e.g. 100");
    if (s.cascadeFrom !== undefined) {
        if (!source.supportsCascade) check.fail("cascadeFrom", s.cascadeFrom, `${source.engine} fleets follow the group's primary`, "leave cascadeFrom out");
        check.oneOf("cascadeFrom", s.cascadeFrom, source.memberNames);
    }
}
