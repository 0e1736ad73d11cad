import * as pulumi from "@pulumi/pulumi";
import { MemberPlan, ServicePlan } from "../core/plan";
import { MYSQL_PATHS, MySqlPasswords, renderMemberJson, renderMyCnf, resolveMySqlSettings } from "./memberConfig";
import { defaultGroupName, MySqlSettings, validateMySqlSettings } from "./settings";

export interface MySqlPlanContext {
    readonly stack: string;
    readonly clusterCidr: string;
    readonly passwords: pulumi.Input<MySqlPasswords>;
}

/** The group as a target-neutral plan: every member runs the same supervisor with its own identity. */
export function planMySqlCluster(name: string, settings: MySqlSettings, ctx: MySqlPlanContext): ServicePlan {
    validateMySqlSettings(name, settings);
    const s = resolveMySqlSettings(settings, defaultGroupName(ctx.stack, name));
    const names = Array.from({ length: s.members }, (_, i) => `${name}-${i}`);
    const passwords = pulumi.output(ctx.passwords);
    const members: MemberPlan[] = names.map((member, ordinal) => {
        const memberCtx = { member, ordinal, members: names, clusterCidr: ctx.clusterCidr };
        return {
            name: member,
            env: {},
            files: [
                { path: MYSQL_PATHS.myCnf, content: renderMyCnf(s, memberCtx), mode: "0644" },
                { path: MYSQL_PATHS.memberJson, content: passwords.apply((p) => renderMemberJson(s, memberCtx, p)), mode: "0600" },
            ],
            ports: [
                { name: "mysql", port: s.port },
                { name: "group", port: s.groupPort },
                { name: "api", port: s.agentPort },
            ],
            volumes: [{ name: "data", mountPath: "/var/lib/mysql" }],
            // /health answers once mysqld accepts connections; group membership is HAProxy's concern.
            health: {
                command: ["curl", "-fsS", "-o", "/dev/null", `http://127.0.0.1:${s.agentPort}/health`],
                intervalSeconds: 2,
                timeoutSeconds: 2,
                retries: 3,
                startPeriodSeconds: 120,
            },
            restart: "unless-stopped",
        };
    });
    return { name, image: "mysql", members, labels: { "hadb.component": "mysql", "hadb.cluster": name } };
}
