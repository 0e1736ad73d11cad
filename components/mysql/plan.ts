import * as pulumi from "@pulumi/pulumi";
import { httpCheck, memberNames, ServicePlan } from "../core/plan";
import { FleetReplica } from "../core/replicas";
import {
    MYSQL_FILES,
    MySqlPasswords,
    onlineSettings,
    renderApplicationJson,
    renderMemberJson,
    renderMyCnf,
    renderSettingsCnf,
    resolveMySqlSettings,
    SETTINGS_CNF,
} from "./memberConfig";
import { defaultGroupName, MySqlSettings, validateMySqlSettings } from "./settings";

export interface MySqlPlanContext {
    readonly stack: string;
    /** The address of a member, as the target decides it. */
    readonly memberHost: (member: string) => string;
    readonly clusterRanges: pulumi.Input<string[]>;
    readonly passwords: pulumi.Input<MySqlPasswords>;
}

/** The group as a target-neutral plan: every member runs the same supervisor with its own identity. */
export function planMySqlCluster(name: string, settings: MySqlSettings, ctx: MySqlPlanContext): ServicePlan {
    validateMySqlSettings(name, settings);
    const s = resolveMySqlSettings(settings, defaultGroupName(ctx.stack, name));
    const names = memberNames(name, s.members);
    const passwords = pulumi.output(ctx.passwords);
    const ranges = pulumi.output(ctx.clusterRanges);
    return {
        name,
        component: "mysql",
        image: "mysql",
        template: {
            env: {},
            files: [
                // Read as a member first starts; the configurator applies later changes with SET PERSIST.
                { name: SETTINGS_CNF, content: renderSettingsCnf(onlineSettings(s, names, ctx.memberHost)), mode: "0644", secret: false, appliedOnline: true },
                // Used once, by the primary that creates the application schema; a rotated password is set by the configurator.
                { name: MYSQL_FILES.applicationJson, content: passwords.apply((p) => renderApplicationJson(s, p)), mode: "0600", secret: true, appliedOnline: true },
            ],
            ports: [
                { name: "mysql", port: s.port, allow: ["members", "replicas", "haproxy", "clients", "configurator"] },
                { name: "group", port: s.groupPort, allow: ["members"] },
                { name: "api", port: s.agentPort, allow: ["members", "haproxy"] },
            ],
            volumes: [{ name: "data", mountPath: "/var/lib/mysql", sizeGiB: s.storageGiB }],
            checks: {
                // The supervisor answers once mysqld accepts connections; a clone may take long before that.
                startup: httpCheck(s.agentPort, "/health", 5, 360),
                // ONLINE in the group, or no group anywhere yet (founding, complete outage): a rollout moves on only then.
                readiness: httpCheck(s.agentPort, "/ready", 2, 3),
            },
            compute: { cpuMillis: { request: 500 }, memoryMiB: { request: 1024, limit: 2048 } },
            stopGraceSeconds: 60,
        },
        members: names.map((member, ordinal) => {
            const files = ranges.apply((clusterRanges) => ({ member, ordinal, members: names, memberHost: ctx.memberHost, clusterRanges }));
            return {
                name: member,
                ordinal,
                files: [
                    { name: MYSQL_FILES.myCnf, content: files.apply((c) => renderMyCnf(s, c)), mode: "0644", secret: false },
                    // Only its member list changes with a scale-out or -in, which a running member does not need: the
                    // supervisor waits, after an outage, for the group it last saw rather than this list.
                    { name: MYSQL_FILES.memberJson, content: pulumi.all([passwords, files]).apply(([p, c]) => renderMemberJson(s, c, p)), mode: "0600", secret: true, appliedOnline: true },
                ],
            };
        }),
        endpoints: [],
        spread: { hosts: "required", zones: "preferred" },
        maxUnavailable: 1,
    };
}

/**
 * A read-replica fleet of the group: asynchronous GTID replicas run by the same supervisor, which clones each one
 * from a member once and then replicates with MySQL's asynchronous connection failover, the group registered as
 * a managed source, so a replica follows the group's primary after a failover by itself. super_read_only on.
 */
export function planMySqlReplicas(cluster: string, settings: MySqlSettings, fleet: string, replicas: readonly FleetReplica[], ctx: MySqlPlanContext & { replicaHost: (m: string) => string }): ServicePlan {
    const group = planMySqlCluster(cluster, settings, ctx);
    const s = resolveMySqlSettings(settings, defaultGroupName(ctx.stack, cluster));
    const names = group.members.map((m) => m.name);
    const passwords = pulumi.output(ctx.passwords);
    return {
        ...group,
        name: fleet,
        template: {
            ...group.template,
            // The application schema comes with the clone; only the server settings apply.
            files: group.template.files.filter((f) => f.name === SETTINGS_CNF),
            ports: [
                { name: "mysql", port: s.port, allow: ["members", "haproxy", "clients"] },
                { name: "api", port: s.agentPort, allow: ["haproxy"] },
            ],
            checks: {
                ...group.template.checks,
                // Cloned and replicating from the group (the supervisor's /ready in replica mode).
                readiness: httpCheck(s.agentPort, "/ready", 2, 3),
            },
        },
        members: replicas.map((r) => {
            const files = pulumi
                .output(ctx.clusterRanges)
                .apply((clusterRanges) => ({ member: r.name, ordinal: r.ordinal, members: names, memberHost: ctx.memberHost, clusterRanges, replica: { host: ctx.replicaHost(r.name), analytics: r.analytics } }));
            return {
                name: r.name,
                ordinal: r.ordinal,
                files: [
                    { name: MYSQL_FILES.myCnf, content: files.apply((c) => renderMyCnf(s, c)), mode: "0644", secret: false },
                    { name: MYSQL_FILES.memberJson, content: pulumi.all([passwords, files]).apply(([p, c]) => renderMemberJson(s, c, p)), mode: "0600", secret: true },
                ],
            };
        }),
        replicaOf: cluster,
    };
}
