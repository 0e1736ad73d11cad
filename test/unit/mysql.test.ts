import { describe, expect, it } from "vitest";
import { DockerTarget, MySqlCluster, MySqlClusterArgs } from "../../components";
import { renderHaproxyConfig } from "../../components/haproxy/config";
import { frontendModel } from "../../components/haproxy/plan";
import {
    onlineSettings,
    renderApplicationJson,
    renderConfiguratorDeclaration,
    renderMemberJson,
    renderMyCnf,
    renderSettingsCnf,
    resolveMySqlSettings,
} from "../../components/mysql/memberConfig";
import { defaultGroupName, resolveGroupTiming } from "../../components/mysql/settings";
import { byType, declare, expectRefused } from "./helpers";

const MYSQL = "hadb:index:MySqlCluster";
const ctx = { member: "mysql-1", ordinal: 1, members: ["mysql-0", "mysql-1", "mysql-2"], memberHost: (m: string) => `${m}.net`, clusterRanges: ["172.29.0.0/24", "10.1.0.0/16"] };
const group = "0b1f5c2e-1111-5222-8333-444455556666";

function cnf(text: string): Record<string, string> {
    return Object.fromEntries(
        text
            .split("\n")
            .filter((l) => l.includes(" = "))
            .map((l) => l.split(" = ") as [string, string]),
    );
}

function mysqlCluster(args: Partial<MySqlClusterArgs>, name = "mysql") {
    return () => new MySqlCluster(name, { target: new DockerTarget("local"), ...args });
}

describe("MySQL member configuration", () => {
    /** my.cnf with the settings.cnf it includes, as mysqld reads them. */
    const memberCnf = (settings: Parameters<typeof resolveMySqlSettings>[0]) => {
        const s = resolveMySqlSettings(settings, group);
        return renderMyCnf(s, ctx) + renderSettingsCnf(onlineSettings(s, ctx.members, ctx.memberHost));
    };

    it("renders a single-primary member with its identity, the group and the failure handling", () => {
        expect(renderMyCnf(resolveMySqlSettings({}, group), ctx)).toContain("!include /etc/hadb/settings.cnf");
        const c = cnf(memberCnf({ timingProfile: "dev" }));
        expect(c).toMatchObject({
            server_id: "2",
            report_host: "mysql-1.net",
            gtid_mode: "ON",
            enforce_gtid_consistency: "ON",
            "loose-group_replication_group_name": group,
            "loose-group_replication_start_on_boot": "OFF",
            "loose-group_replication_bootstrap_group": "OFF",
            "loose-group_replication_local_address": "mysql-1.net:33061",
            "loose-group_replication_group_seeds": "mysql-0.net:33061,mysql-1.net:33061,mysql-2.net:33061",
            "loose-group_replication_ip_allowlist": "172.29.0.0/24,10.1.0.0/16,127.0.0.1/32",
            "loose-group_replication_single_primary_mode": "ON",
            "loose-group_replication_enforce_update_everywhere_checks": "OFF",
            "loose-group_replication_consistency": "BEFORE_ON_PRIMARY_FAILOVER",
            "loose-group_replication_member_expel_timeout": "0",
            "loose-group_replication_unreachable_majority_timeout": "5",
            "loose-group_replication_exit_state_action": "ABORT_SERVER",
        });
        expect(renderMyCnf(resolveMySqlSettings({}, group), ctx)).toContain("plugin_load_add = mysql_clone.so");
        // Explicit values replace the profile's one by one.
        const custom = cnf(memberCnf({ timingProfile: "dev", timing: { memberExpelTimeout: 3 } }));
        expect(custom["loose-group_replication_member_expel_timeout"]).toBe("3");
        expect(custom["loose-group_replication_unreachable_majority_timeout"]).toBe("5");
    });

    it("switches both mode settings for multi-primary and passes server settings through", () => {
        const c = cnf(memberCnf({ mode: "multi-primary", serverSettings: { innodb_buffer_pool_size: "256M" } }));
        expect(c["loose-group_replication_single_primary_mode"]).toBe("OFF");
        expect(c["loose-group_replication_enforce_update_everywhere_checks"]).toBe("ON");
        expect(c.innodb_buffer_pool_size).toBe("256M");
    });

    it("gives the member supervisor its identity, peers and accounts, and the application's apart", () => {
        const s = resolveMySqlSettings({ bootstrapSql: "CREATE TABLE t (id int primary key);" }, group);
        const json = JSON.parse(renderMemberJson(s, ctx, { admin: "a", replication: "r", monitor: "m", app: "p" }));
        expect(json).toEqual({
            member: "mysql-1",
            self: "mysql-1.net",
            members: ["mysql-0.net", "mysql-1.net", "mysql-2.net"],
            port: 3306,
            agentPort: 8008,
            clusterRanges: ["172.29.0.0/24", "10.1.0.0/16"],
            users: {
                admin: { name: "admin", password: "a" },
                replication: { name: "repl", password: "r" },
                monitor: { name: "monitor", password: "m" },
            },
        });
        // A rotated application password must not restart members: it lives in its own file.
        expect(JSON.parse(renderApplicationJson(s, { app: "p" }))).toEqual({ database: "app", bootstrapSql: "CREATE TABLE t (id int primary key);", users: { app: { name: "app", password: "p" } } });
    });

    it("declares to the configurator every online setting, the members and the application account", () => {
        const declaration = JSON.parse(
            renderConfiguratorDeclaration(resolveMySqlSettings({ timingProfile: "dev", serverSettings: { max_connections: "500" } }, group), ctx, { admin: "a", replication: "r", monitor: "m", app: "p" }, 8090),
        );
        expect(declaration).toMatchObject({
            members: ["mysql-0.net", "mysql-1.net", "mysql-2.net"],
            port: 3306,
            admin: { user: "admin", password: "a" },
            app: { user: "app", password: "p", database: "app" },
            clusterRanges: ctx.clusterRanges,
            statusPort: 8090,
        });
        expect(declaration.settings).toEqual({
            group_replication_group_seeds: "mysql-0.net:33061,mysql-1.net:33061,mysql-2.net:33061",
            group_replication_consistency: "BEFORE_ON_PRIMARY_FAILOVER",
            group_replication_member_expel_timeout: 0,
            group_replication_unreachable_majority_timeout: 5,
            group_replication_autorejoin_tries: 0,
            group_replication_exit_state_action: "ABORT_SERVER",
            max_connections: "500",
        });
    });

    it("gives the configurator the reboot decision and the replication account only when the stack makes it", () => {
        const passwords = { admin: "a", replication: "r", monitor: "m", app: "p" };
        const without = JSON.parse(renderConfiguratorDeclaration(resolveMySqlSettings({}, group), ctx, passwords, 8090));
        expect(without.rebootFromMajority).toBeUndefined();
        expect(without.replication).toBeUndefined();
        const decided = JSON.parse(renderConfiguratorDeclaration(resolveMySqlSettings({ rebootFromMajority: true }, group), ctx, passwords, 8090));
        expect(decided).toMatchObject({ rebootFromMajority: true, replication: { user: "repl", password: "r" } });
    });

    it("starts every member and replica with super_read_only on: only Group Replication makes a primary writable", () => {
        const cnf = renderMyCnf(resolveMySqlSettings({}, group), ctx);
        expect(cnf).toMatch(/^super_read_only = ON$/m);
        expect(cnf).toMatch(/^read_only = ON$/m);
    });

    it("has MySQL's own failure handling as the mysql-defaults profile, for comparison", () => {
        expect(resolveGroupTiming({ timingProfile: "mysql-defaults" })).toEqual({ memberExpelTimeout: 5, unreachableMajorityTimeout: 0, autorejoinTries: 3, exitStateAction: "READ_ONLY" });
    });

    it("derives a stable, well-formed group name per stack and cluster", () => {
        expect(defaultGroupName("dev", "mysql")).toBe(defaultGroupName("dev", "mysql"));
        expect(defaultGroupName("dev", "mysql")).not.toBe(defaultGroupName("prod", "mysql"));
        expect(defaultGroupName("dev", "mysql")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });

    it("routes HAProxy's MySQL ports by asking each member's supervisor", () => {
        const servers = ctx.members.map((m) => ({ name: m, host: m, port: 3306, checkPort: 8008 }));
        const single = renderHaproxyConfig(frontendModel({ backends: { engine: "mysql", multiWriter: false, servers } }));
        expect(single).toContain("bind :6446");
        expect(single).toContain("bind :6447");
        expect(single).toContain("bind :7001");
        expect(single).toContain("uri /replica?lag=100");
        expect(single).toMatch(/backend primary\n    balance first/);
        const multi = renderHaproxyConfig(frontendModel({ backends: { engine: "mysql", multiWriter: true, servers } }));
        expect(multi).toMatch(/backend primary\n    balance roundrobin/);
    });
});

describe("MySqlCluster resources", () => {
    it("declares a container and a volume per member, four generated secrets, uploads as secrets", async () => {
        const { resources, error } = await declare(mysqlCluster({ passwords: { admin: "Adm1n-secret" } }));
        expect(error).toBeUndefined();
        const all = byType(resources, "docker:index/container:Container");
        expect(all.map((c) => c.inputs.name)).toEqual(["hadb-dev-mysql-0", "hadb-dev-mysql-1", "hadb-dev-mysql-2", "hadb-dev-mysql-config-0"]);
        const configurator = all[3];
        expect(configurator.inputs.entrypoints).toEqual(["hadb-mysql-configurator"]);
        expect(configurator.secretInputs).toContain("uploads");
        // It starts after every member and is ready only once the group matches the declaration.
        expect(configurator.dependencies).toEqual(expect.arrayContaining(all.slice(0, 3).map((c) => c.urn)));
        expect(configurator.inputs.healthcheck.tests.at(-1)).toBe("http://127.0.0.1:8090/ready");
        const containers = all.slice(0, 3);
        expect(byType(resources, "random:index/randomPassword:RandomPassword")).toHaveLength(3);
        for (const c of containers) {
            expect(c.secretInputs).toContain("uploads");
            const plain = JSON.stringify(Object.fromEntries(Object.entries(c.inputs).filter(([k]) => !c.secretInputs.includes(k))));
            expect(plain).not.toContain("Adm1n-secret");
            // Files taken online first, each in ignoreChanges by its position: a change to them replaces no member.
            expect(c.inputs.uploads.map((u: any) => [u.file, u.permissions])).toEqual([
                ["/etc/hadb/settings.cnf", "0644"],
                ["/etc/hadb/application.json", "0600"],
                ["/etc/hadb/member.json", "0600"],
                ["/etc/hadb/my.cnf", "0644"],
            ]);
            expect(c.options!.ignoreChanges).toEqual(["uploads[0].content", "uploads[1].content", "uploads[2].content"]);
            expect(c.inputs.image).toBe("hadb/mysql:local");
            expect(c.inputs.uploads.every((u: any) => u.owner === "999" && u.group === "999")).toBe(true);
        }
        expect(byType(resources, "docker:index/image:Image")[0].inputs.build.args.BASE_IMAGE).toBe("debian:sid-slim");
    });
});

describe("MySqlCluster validation", () => {
    it.each([2, 10])("refuses %i members, saying why", async (members) => {
        const message = await expectRefused(mysqlCluster({ members }), MYSQL, "members", members);
        expect(message).toContain("at least 3 members to keep a majority");
    });

    it("refuses multi-primary with SERIALIZABLE isolation or cascading foreign keys", async () => {
        await expectRefused(mysqlCluster({ mode: "multi-primary", serverSettings: { transaction_isolation: "SERIALIZABLE" } }), MYSQL, "serverSettings.transaction_isolation", "SERIALIZABLE");
        await expectRefused(
            mysqlCluster({ mode: "multi-primary", bootstrapSql: "CREATE TABLE c (p int, FOREIGN KEY (p) REFERENCES p(id) ON DELETE CASCADE);" }),
            MYSQL,
            "bootstrapSql",
            "ON DELETE/UPDATE CASCADE",
        );
    });

    it("refuses an unknown consistency level, a bad group name and clashing ports", async () => {
        await expectRefused(mysqlCluster({ consistency: "STRONG" as never }), MYSQL, "consistency", "STRONG");
        await expectRefused(mysqlCluster({ groupName: "not-a-uuid" }), MYSQL, "groupName", "not-a-uuid");
        await expectRefused(mysqlCluster({ groupPort: 3306 }), MYSQL, "groupPort", 3306);
        await expectRefused(mysqlCluster({ agentPort: 33061 }), MYSQL, "agentPort", 33061);
    });

    it("refuses settings hadb manages, an unknown mode and shared account names", async () => {
        await expectRefused(mysqlCluster({ serverSettings: { server_id: "9" } }), MYSQL, "serverSettings.server_id", "9");
        await expectRefused(mysqlCluster({ serverSettings: { "loose-group_replication_bootstrap_group": "ON" } }), MYSQL, "serverSettings.loose-group_replication_bootstrap_group", "ON");
        await expectRefused(mysqlCluster({ mode: "ring" as never }), MYSQL, "mode", "ring");
        await expectRefused(mysqlCluster({ appUser: "admin" }), MYSQL, "appUser", "admin");
    });
});
