import * as pulumi from "@pulumi/pulumi";
import { FilePlan, httpCheck, MemberTemplate, memberNames, PortPlan, ServicePlan } from "../core/plan";
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
    ResolvedMySqlSettings,
    MySqlMemberContext,
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

/** What every member runs with, group member or fleet replica: the supervisor image, its checks and data volume. */
function mysqlTemplate(s: ResolvedMySqlSettings, files: FilePlan[], ports: PortPlan[]): MemberTemplate {
    return {
        env: {},
        files,
        ports,
        volumes: [{ name: "data", mountPath: "/var/lib/mysql", sizeGiB: s.storageGiB }],
        checks: {
            // The supervisor answers once mysqld accepts connections; a clone may take long before that.
            startup: httpCheck(s.agentPort, "/health", 5, 360),
            // A member: ONLINE in the group, or no group anywhere yet (founding, complete outage). A fleet replica:
            // cloned and replicating from the group. A rollout moves on only then.
            readiness: httpCheck(s.agentPort, "/ready", 2, 3),
        },
        compute: { cpuMillis: { request: 500 }, memoryMiB: { request: 1024, limit: 2048 } },
        stopGraceSeconds: 60,
    };
}

/** settings.cnf: the server settings a member or replica first starts with. */
function settingsFile(s: ResolvedMySqlSettings, names: readonly string[], memberHost: (m: string) => string, appliedOnline: boolean): FilePlan {
    return { name: SETTINGS_CNF, content: renderSettingsCnf(onlineSettings(s, names, memberHost)), mode: "0644", secret: false, appliedOnline };
}

/** A member's (or replica's) my.cnf and member.json. */
function identityFiles(s: ResolvedMySqlSettings, ctx: MySqlPlanContext, member: Omit<MySqlMemberContext, "clusterRanges" | "memberHost">, memberJsonOnline: boolean): FilePlan[] {
    const files = pulumi.output(ctx.clusterRanges).apply((clusterRanges): MySqlMemberContext => ({ ...member, memberHost: ctx.memberHost, clusterRanges }));
    return [
        { name: MYSQL_FILES.myCnf, content: files.apply((c) => renderMyCnf(s, c)), mode: "0644", secret: false },
        {
            name: MYSQL_FILES.memberJson,
            content: pulumi.all([ctx.passwords, files]).apply(([p, c]) => renderMemberJson(s, c, p)),
            mode: "0600",
            secret: true,
            appliedOnline: memberJsonOnline,
        },
    ];
}

/** The group as a target-neutral plan: every member runs the same supervisor with its own identity. */
export function planMySqlCluster(name: string, settings: MySqlSettings, ctx: MySqlPlanContext): ServicePlan {
    validateMySqlSettings(name, settings);
    const s = resolveMySqlSettings(settings, defaultGroupName(ctx.stack, name));
    const names = memberNames(name, s.members);
    const passwords = pulumi.output(ctx.passwords);
    return {
        name,
        component: "mysql",
        image: "mysql",
        template: mysqlTemplate(
            s,
            [
                // Read as a member first starts; the configurator applies later changes with SET PERSIST.
                settingsFile(s, names, ctx.memberHost, true),
                // Used once, by the primary that creates the application schema; a rotated password is set by the configurator.
                { name: MYSQL_FILES.applicationJson, content: passwords.apply((p) => renderApplicationJson(s, p)), mode: "0600", secret: true, appliedOnline: true },
            ],
            [
                { name: "mysql", port: s.port, allow: ["members", "replicas", "haproxy", "clients", "configurator"] },
                { name: "group", port: s.groupPort, allow: ["members"] },
                { name: "api", port: s.agentPort, allow: ["members", "haproxy"] },
            ],
        ),
        // Only its member list changes member.json with a scale-out or -in, which a running member does not need:
        // the supervisor waits, after an outage, for the group it last saw rather than this list.
        members: names.map((member, ordinal) => ({ name: member, ordinal, files: identityFiles(s, ctx, { member, ordinal, members: names }, true) })),
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
    const s = resolveMySqlSettings(settings, defaultGroupName(ctx.stack, cluster));
    const names = memberNames(cluster, s.members);
    return {
        name: fleet,
        component: "mysql",
        image: "mysql",
        // The application schema comes with the clone. The configurator does not manage replicas, so a changed
        // server setting rolls them (settings.cnf is not applied online here).
        template: mysqlTemplate(
            s,
            [settingsFile(s, names, ctx.memberHost, false)],
            [
                { name: "mysql", port: s.port, allow: ["haproxy", "clients"] },
                { name: "api", port: s.agentPort, allow: ["haproxy"] },
            ],
        ),
        members: replicas.map((r) => ({
            name: r.name,
            ordinal: r.ordinal,
            files: identityFiles(s, ctx, { member: r.name, ordinal: r.ordinal, members: names, replica: { host: ctx.replicaHost(r.name), analytics: r.analytics } }, false),
        })),
        endpoints: [],
        spread: { hosts: "required", zones: "preferred" },
        maxUnavailable: 1,
        replicaOf: cluster,
    };
}
