import * as pulumi from "@pulumi/pulumi";
import { MemberPlan, ServicePlan } from "../core/plan";
import {
    PATRONI_PATHS,
    PostgresPasswords,
    renderBootstrapSql,
    renderPatroniConfig,
    renderPostBootstrapScript,
    resolvePostgresSettings,
} from "./patroniConfig";
import { PostgresSettings, validatePostgresSettings } from "./settings";

/** The uid and gid of `postgres` in images/postgres, so uploaded files belong to it. */
export const POSTGRES_UID = "999";

export interface PostgresPlanContext {
    readonly dcsHosts: readonly string[];
    readonly clusterCidr: string;
    readonly passwords: pulumi.Input<PostgresPasswords>;
}

export function postgresMemberNames(name: string, members: number): string[] {
    return Array.from({ length: members }, (_, i) => `${name}-${i}`);
}

/** The Patroni cluster as a target-neutral plan. Secrets reach files only inside Outputs. */
export function planPostgresCluster(name: string, settings: PostgresSettings, ctx: PostgresPlanContext): ServicePlan {
    validatePostgresSettings(name, settings);
    const s = resolvePostgresSettings(settings);
    const passwords = pulumi.output(ctx.passwords);
    const file = (path: string, content: pulumi.Input<string>, mode = "0600") => ({ path, content, mode, owner: POSTGRES_UID });
    const members: MemberPlan[] = postgresMemberNames(name, s.members).map((member, i) => ({
        name: member,
        env: {},
        files: [
            file(
                PATRONI_PATHS.config,
                passwords.apply((p) =>
                    renderPatroniConfig(s, { scope: name, member, tags: s.memberTags?.[i] ?? {}, dcsHosts: ctx.dcsHosts, clusterCidr: ctx.clusterCidr }, p),
                ),
            ),
            file(PATRONI_PATHS.postBootstrap, renderPostBootstrapScript(s), "0700"),
            file(PATRONI_PATHS.bootstrapSql, passwords.apply((p) => renderBootstrapSql(s, p))),
            file(PATRONI_PATHS.schemaSql, s.bootstrapSql ?? ""),
        ],
        ports: [
            { name: "postgres", port: s.port },
            { name: "api", port: s.apiPort },
        ],
        volumes: [{ name: "data", mountPath: PATRONI_PATHS.dataDir }],
        // /health answers 200 only while PostgreSQL is up and running under Patroni.
        health: {
            command: ["curl", "-fsS", "-o", "/dev/null", `http://127.0.0.1:${s.apiPort}/health`],
            intervalSeconds: 2,
            timeoutSeconds: 2,
            retries: 3,
            startPeriodSeconds: 120,
        },
        restart: "unless-stopped",
    }));
    return { name, image: "postgres", members, labels: { "hadb.component": "postgres", "hadb.cluster": name } };
}
