import * as pulumi from "@pulumi/pulumi";
import { FilePlan, httpCheck, MemberTemplate, memberNames, ServicePlan } from "../core/plan";
import { FleetReplica } from "../core/replicas";
import {
    PATRONI_FILES,
    POSTGRES_PATHS,
    PostgresPasswords,
    renderBootstrapConfig,
    renderBootstrapSql,
    renderPatroniConfig,
    renderPostBootstrapScript,
    resolvePostgresSettings,
    ResolvedPostgresSettings,
    MemberContext,
} from "./patroniConfig";
import { PatroniTags, PostgresSettings, validatePostgresSettings } from "./settings";

export interface PostgresPlanContext {
    /** etcd `host:port` pairs. */
    readonly dcsHosts: readonly string[];
    /** The address of a member, as the target decides it. */
    readonly memberHost: (member: string) => string;
    readonly clusterRanges: pulumi.Input<string[]>;
    readonly passwords: pulumi.Input<PostgresPasswords>;
}

/** A member's own patroni.yml: its identity, address and tags, with the passwords inside a secret Output. */
function patroniFile(s: ResolvedPostgresSettings, ctx: PostgresPlanContext, member: Omit<MemberContext, "dcsHosts" | "clusterRanges" | "host">): FilePlan {
    const content = pulumi
        .all([ctx.passwords, ctx.clusterRanges])
        .apply(([p, clusterRanges]) => renderPatroniConfig(s, { ...member, host: ctx.memberHost(member.member), dcsHosts: ctx.dcsHosts, clusterRanges }, p));
    return { name: PATRONI_FILES.config, content, mode: "0600", secret: true };
}

/** bootstrap.yml: read when the cluster is created; the configurator applies later changes through Patroni's REST API. */
function bootstrapConfigFile(s: ResolvedPostgresSettings): FilePlan {
    return { name: PATRONI_FILES.bootstrapConfig, content: renderBootstrapConfig(s), mode: "0600", secret: false, appliedOnline: true };
}

/** What every Patroni member runs with, cluster member or fleet replica; `files` are the shared ones. */
function patroniTemplate(s: ResolvedPostgresSettings, files: FilePlan[]): MemberTemplate {
    return {
        env: {},
        files,
        ports: [
            { name: "postgres", port: s.port, allow: ["members", "replicas", "haproxy", "clients", "configurator"] },
            // `source`: a fleet member's API answers the cluster's leader (failsafe mode, leader races).
            { name: "api", port: s.apiPort, allow: ["members", "replicas", "source", "haproxy", "configurator"] },
        ],
        volumes: [{ name: "data", mountPath: POSTGRES_PATHS.dataDir, sizeGiB: s.storageGiB }],
        checks: {
            // Patroni's REST API answers at once; a replica may then copy the leader's data for a long time.
            startup: httpCheck(s.apiPort, "/liveness", 5, 360),
            // The leader, or a replica streaming from it, or any running member while the cluster has no leader
            // (members coming back onto their data one by one): images/postgres/hadb-pg-ready. A rollout moves on
            // only then, so the member just replaced can take over from the next one it stops.
            readiness: { command: ["hadb-pg-ready", String(s.apiPort)], periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 3 },
            // Patroni's own loop is alive; says nothing about roles, so it never kills a member mid-recovery.
            liveness: httpCheck(s.apiPort, "/liveness", 10, 6, 5),
        },
        compute: { cpuMillis: { request: 500 }, memoryMiB: { request: 1024, limit: 2048 } },
        // A stopping leader checkpoints and hands its lock over before it exits.
        stopGraceSeconds: 60,
    };
}

/** The Patroni cluster as a target-neutral plan. Secrets reach files only inside Outputs. */
export function planPostgresCluster(name: string, settings: PostgresSettings, ctx: PostgresPlanContext): ServicePlan {
    validatePostgresSettings(name, settings);
    const s = resolvePostgresSettings(settings);
    const passwords = pulumi.output(ctx.passwords);
    const shared: FilePlan[] = [
        bootstrapConfigFile(s),
        { name: PATRONI_FILES.postBootstrap, content: renderPostBootstrapScript(s), mode: "0700", secret: false },
        // Run once, when the cluster is created: a rotated application password is set by the configurator, and a
        // changed schema is the application's own migration, so neither restarts a member.
        { name: PATRONI_FILES.bootstrapSql, content: passwords.apply((p) => renderBootstrapSql(s, p)), mode: "0600", secret: true, appliedOnline: true },
    ];
    if (s.bootstrapSql?.trim()) shared.push({ name: PATRONI_FILES.schemaSql, content: s.bootstrapSql, mode: "0600", secret: false, appliedOnline: true });
    return {
        name,
        component: "postgres",
        image: "postgres",
        template: patroniTemplate(s, shared),
        members: memberNames(name, s.members).map((member, ordinal) => ({
            name: member,
            ordinal,
            files: [patroniFile(s, ctx, { scope: name, member, tags: s.memberTags?.[ordinal] ?? {} })],
        })),
        endpoints: [],
        spread: { hosts: "required", zones: "preferred" },
        maxUnavailable: 1,
    };
}

/**
 * A read-replica fleet of a Patroni cluster: more members of the same cluster (same scope and DCS) that are never
 * promoted and never synchronous standbys, so they add read capacity without changing failover or commit
 * latency. They clone from the leader (or `cascadeFrom`) when they first start, like any Patroni replica.
 */
export function planPostgresReplicas(cluster: string, settings: PostgresSettings, fleet: string, replicas: readonly FleetReplica[], ctx: PostgresPlanContext, cascadeFrom?: string): ServicePlan {
    const s = resolvePostgresSettings(settings);
    const tags: PatroniTags = { nofailover: true, nosync: true, noloadbalance: false };
    return {
        name: fleet,
        component: "postgres",
        image: "postgres",
        // A member tagged nofailover never initialises a cluster, but Patroni's configuration schema requires
        // bootstrap.dcs; the post-bootstrap script and SQL it would never run stay out.
        template: patroniTemplate(s, [bootstrapConfigFile(s)]),
        members: replicas.map((r) => ({
            name: r.name,
            ordinal: r.ordinal,
            files: [patroniFile(s, ctx, { scope: cluster, member: r.name, tags, fleet: { name: fleet, analytics: r.analytics, replicatefrom: cascadeFrom } })],
        })),
        endpoints: [],
        spread: { hosts: "required", zones: "preferred" },
        maxUnavailable: 1,
        replicaOf: cluster,
    };
}
