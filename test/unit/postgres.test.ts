import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DockerTarget, EtcdCluster, PostgresCluster, PostgresClusterArgs } from "../../components";
import {
    dynamicConfig,
    pgHba,
    renderBootstrapConfig,
    renderBootstrapSql,
    renderConfiguratorDeclaration,
    renderPatroniConfig,
    renderPostBootstrapScript,
    resolvePostgresSettings,
} from "../../components/postgres/patroniConfig";
import { recordMocks } from "../harness/mockRun";
import { byType, declare, expectRefused } from "./helpers";

const PG = "hadb:index:PostgresCluster";
const passwords = { superuser: "su-pw", replication: "repl-pw", app: "app'pw", restApi: "api-pw" };
const ctx = { scope: "pg", member: "pg-1", host: "pg-1.net", tags: {}, dcsHosts: ["etcd-0:2379", "etcd-1:2379"], clusterRanges: ["172.29.0.0/24"] };

function pg(args: Partial<PostgresClusterArgs>, name = "pg") {
    return () => new PostgresCluster(name, { target: new DockerTarget("local"), ...args });
}

describe("Patroni configuration", () => {
    it("renders a member's identity, DCS, timing and replication settings", () => {
        const settings = resolvePostgresSettings({ timingProfile: "dev" });
        // Patroni merges every .yml in /etc/hadb: the member's own file and the shared bootstrap.yml.
        const config = parse(renderPatroniConfig(settings, ctx, passwords));
        config.bootstrap = { ...config.bootstrap, ...parse(renderBootstrapConfig(settings)).bootstrap };
        expect(config).toMatchObject({
            scope: "pg",
            name: "pg-1",
            etcd3: { hosts: ["etcd-0:2379", "etcd-1:2379"] },
            restapi: { listen: "0.0.0.0:8008", connect_address: "pg-1.net:8008", authentication: { username: "patroni", password: "api-pw" } },
            postgresql: { listen: "0.0.0.0:5432", connect_address: "pg-1.net:5432", data_dir: "/var/lib/postgresql/data/pg17", bin_dir: "/usr/lib/postgresql/17/bin" },
            watchdog: { mode: "off" },
            tags: { nofailover: false, noloadbalance: false, nosync: false },
        });
        expect(config.bootstrap.dcs).toMatchObject({
            ttl: 20,
            loop_wait: 1,
            retry_timeout: 5,
            maximum_lag_on_failover: 1048576,
            synchronous_mode: true,
            synchronous_mode_strict: false,
            synchronous_node_count: 1,
            failsafe_mode: true,
            postgresql: { use_pg_rewind: true, use_slots: true },
        });
        expect(config.bootstrap.dcs.postgresql.parameters).toMatchObject({ wal_level: "replica", wal_log_hints: "on" });
        expect(config.bootstrap.initdb).toContain("data-checksums");
        expect(config.postgresql.authentication.superuser).toEqual({ username: "postgres", password: "su-pw" });
        expect(config.postgresql.authentication.replication).toEqual({ username: "replicator", password: "repl-pw" });
    });

    it("maps synchronous modes, tags, custom timing and pass-through parameters", () => {
        const settings = resolvePostgresSettings({ synchronousMode: "strict", synchronousStandbys: 2, members: 5, timing: { ttl: 40, loopWait: 10, retryTimeout: 15 }, parameters: { work_mem: "64MB" } });
        const strict = dynamicConfig(settings);
        expect(strict).toMatchObject({ synchronous_mode: true, synchronous_mode_strict: true, synchronous_node_count: 2, ttl: 40, loop_wait: 10, retry_timeout: 15 });
        expect(strict.postgresql.parameters.work_mem).toBe("64MB");
        // The member's own file carries no dynamic configuration: changing it must not replace members.
        const member = parse(renderPatroniConfig(settings, { ...ctx, tags: { nofailover: true, noloadbalance: true } }, passwords));
        expect(member.tags).toMatchObject({ nofailover: true, noloadbalance: true });
        expect(member.bootstrap.dcs).toBeUndefined();
        expect(parse(renderPatroniConfig(resolvePostgresSettings({ timingProfile: "patroni-defaults", parameters: { work_mem: "1GB" } }), ctx, passwords))).toEqual(
            parse(renderPatroniConfig(resolvePostgresSettings({}), ctx, passwords)),
        );
        expect(dynamicConfig(resolvePostgresSettings({ synchronousMode: "off" }))).toMatchObject({ synchronous_mode: false, synchronous_mode_strict: false });
    });

    it("declares to the configurator the dynamic configuration, every member's REST API and the application role", () => {
        const settings = resolvePostgresSettings({ timingProfile: "dev", parameters: { work_mem: "8MB" } });
        const declaration = JSON.parse(renderConfiguratorDeclaration(settings, ["pg-0.net", "pg-1.net"], passwords, 8090));
        expect(declaration).toEqual({
            members: ["http://pg-0.net:8008", "http://pg-1.net:8008"],
            restApi: { username: "patroni", password: "api-pw" },
            dynamic: dynamicConfig(settings),
            sql: { superuser: "postgres", superuserPassword: "su-pw" },
            app: { user: "app", password: "app'pw", database: "app" },
            port: 8090,
        });
    });

    it("limits pg_hba to the target's ranges and the member itself", () => {
        const hba = pgHba(resolvePostgresSettings({}), ["172.29.0.0/24", "10.8.0.0/16"]);
        const addresses = hba.filter((l) => l.startsWith("host")).map((l) => l.split(/\s+/)[3]);
        expect(new Set(addresses)).toEqual(new Set(["172.29.0.0/24", "10.8.0.0/16", "127.0.0.1/32"]));
        expect(hba.every((l) => l.startsWith("local") || l.endsWith("scram-sha-256"))).toBe(true);
        expect(hba.join("\n")).not.toMatch(/0\.0\.0\.0|trust/);
    });

    it("creates the application role and database once, quoting the password", () => {
        const sql = renderBootstrapSql(resolvePostgresSettings({ appUser: "shop", databaseName: "orders" }), passwords);
        expect(sql).toContain("CREATE ROLE shop LOGIN PASSWORD 'app''pw';");
        expect(sql).toContain("CREATE DATABASE orders OWNER shop;");
        const script = renderPostBootstrapScript(resolvePostgresSettings({ appUser: "shop", databaseName: "orders" }));
        expect(script).toContain("-d orders -c 'SET ROLE shop' -f /etc/hadb/schema.sql");
        expect(script.startsWith("#!/bin/sh\n")).toBe(true);
    });
});

describe("PostgresCluster resources", () => {
    it("creates its own 3-member etcd, four generated secrets and a container per member that waits for etcd", async () => {
        const { resources, error } = await declare(pg({ bootstrapSql: "CREATE TABLE t (id int);" }));
        expect(error).toBeUndefined();
        const cluster = byType(resources, PG)[0];
        const etcd = byType(resources, "hadb:index:EtcdCluster")[0];
        expect(etcd.parent).toBe(cluster.urn);
        expect(byType(resources, "random:index/randomPassword:RandomPassword").map((r) => r.name).sort()).toEqual([
            "pg-app-password",
            "pg-replication-password",
            "pg-restapi-password",
            "pg-superuser-password",
        ]);
        const containers = byType(resources, "docker:index/container:Container").filter((c) => c.parent === cluster.urn);
        expect(containers.map((m) => m.inputs.name)).toEqual(["hadb-dev-pg-0", "hadb-dev-pg-1", "hadb-dev-pg-2", "hadb-dev-pg-config-0"]);
        const members = containers.slice(0, 3);
        expect(containers[3].dependencies).toEqual(expect.arrayContaining(members.map((m) => m.urn)));
        expect(containers[3].inputs.entrypoints).toEqual(["hadb-pg-configurator"]);
        const etcdContainers = resources.filter((r) => r.parent === etcd.urn && r.type === "docker:index/container:Container");
        // The first member waits for etcd (depending on the component means depending on each of its containers);
        // each later one waits for the member before it, so changes roll one member at a time.
        expect(members[0].dependencies).toEqual(expect.arrayContaining(etcdContainers.map((c) => c.urn)));
        expect(members[1].dependencies).toContain(members[0].urn);
        expect(members[2].dependencies).toContain(members[1].urn);
        expect(members[2].dependencies).not.toContain(members[0].urn);
        for (const m of members) {
            expect(m.inputs.healthcheck.tests).toEqual(["CMD", "hadb-pg-ready", "8008"]);
            expect(m.inputs.ports ?? []).toEqual([]);
        }
        expect(etcdContainers).toHaveLength(3);
    });

    it("keeps every password a secret: uploads are secret inputs and no plain input holds a password", async () => {
        const { resources } = await declare(pg({ passwords: { superuser: "S3cret-super", app: "S3cret-app" } }));
        const member = byType(resources, "docker:index/container:Container").find((c) => c.inputs.name === "hadb-dev-pg-0")!;
        expect(member.secretInputs).toContain("uploads");
        const plain = JSON.stringify(Object.fromEntries(Object.entries(member.inputs).filter(([k]) => !member.secretInputs.includes(k))));
        expect(plain).not.toMatch(/S3cret/);
        const config = parse(member.inputs.uploads.find((u: any) => u.file === "/etc/hadb/patroni.yml").content);
        expect(config.postgresql.authentication.superuser.password).toBe("S3cret-super");
        // No schema given: no schema.sql (the provider refuses an empty upload).
        // Files read only when the cluster is created come first, each in ignoreChanges by its position.
        expect(member.inputs.uploads.map((u: any) => [u.file, u.permissions, u.owner])).toEqual([
            ["/etc/hadb/bootstrap.yml", "0600", "999"],
            ["/etc/hadb/bootstrap.sql", "0600", "999"],
            ["/etc/hadb/post-bootstrap.sh", "0700", "999"],
            ["/etc/hadb/patroni.yml", "0600", "999"],
        ]);
        expect(member.options!.ignoreChanges).toEqual(["uploads[0].content", "uploads[1].content"]);
    });

    it("places the schema only when there is one, and never uploads an empty file", async () => {
        for (const bootstrapSql of [undefined, "", "  \n"]) {
            const { resources } = await declare(pg({ bootstrapSql }));
            const uploads = byType(resources, "docker:index/container:Container").flatMap((c) => c.inputs.uploads ?? []);
            expect(uploads.some((u: any) => u.file.endsWith("schema.sql"))).toBe(false);
            expect(uploads.every((u: any) => u.content.length > 0)).toBe(true);
        }
        const { resources } = await declare(pg({ bootstrapSql: "CREATE TABLE t (id int);" }));
        const member = byType(resources, "docker:index/container:Container").find((c) => c.inputs.name === "hadb-dev-pg-0")!;
        expect(member.inputs.uploads.find((u: any) => u.file === "/etc/hadb/schema.sql").content).toContain("CREATE TABLE t");
    });

    it("uses a given etcd cluster instead of creating one, and starts after it", async () => {
        const { resources } = await declare(() => {
            const target = new DockerTarget("local");
            const etcd = new EtcdCluster("dcs", { target });
            new PostgresCluster("pg", { target, etcdHosts: etcd.hosts, members: 2 }, { dependsOn: [etcd] });
        });
        expect(byType(resources, "hadb:index:EtcdCluster").map((r) => r.name)).toEqual(["dcs"]);
        const member = byType(resources, "docker:index/container:Container").find((c) => c.inputs.name === "hadb-dev-pg-1")!;
        const config = parse(member.inputs.uploads.find((u: any) => u.file === "/etc/hadb/patroni.yml").content);
        expect(config.etcd3.hosts).toEqual(["dcs-0:2379", "dcs-1:2379", "dcs-2:2379"]);
    });

    it("exports connection URLs as secrets", async () => {
        const recorder = await recordMocks("dev");
        const { program } = await import("../../stacks/program");
        const outputs = program();
        for (const key of ["rwUrl", "roUrl", "analyticsUrl", "superuserUrl"] as const) {
            expect(await pulumi.isSecret(outputs.postgres![key]!), key).toBe(true);
        }
        for (const key of ["rwUrl", "roUrl", "analyticsUrl", "adminUrl"] as const) {
            expect(await pulumi.isSecret(outputs.mysql![key]!), key).toBe(true);
        }
        expect(await pulumi.isSecret(outputs.postgres!.members)).toBe(false);
        await recorder.settled();
    });
});

describe("PostgresCluster validation", () => {
    it("refuses a single member", async () => {
        const message = await expectRefused(pg({ members: 1 }), PG, "members", 1);
        expect(message).toContain("at least 2 members");
    });

    it("refuses a ttl too small for loop_wait and retry_timeout", async () => {
        const message = await expectRefused(pg({ timing: { ttl: 20, loopWait: 10, retryTimeout: 10 } }), PG, "timing.ttl", 20);
        expect(message).toContain("loopWait + 2 × retryTimeout ≤ ttl (10 + 2 × 10 = 30)");
        expect(message).toContain("raise ttl to 30");
    });

    it("refuses a ttl below Patroni 4's floor of 20 s", async () => {
        await expectRefused(pg({ timing: { ttl: 10, loopWait: 1, retryTimeout: 3 } }), PG, "timing.ttl", 10);
    });

    it("refuses an unknown synchronous mode and an unknown timing profile", async () => {
        await expectRefused(pg({ synchronousMode: "quorum" as never }), PG, "synchronousMode", "quorum");
        await expectRefused(pg({ timingProfile: "fast" as never }), PG, "timingProfile", "fast");
    });

    it("refuses as many synchronous standbys as members", async () => {
        const message = await expectRefused(pg({ members: 3, synchronousStandbys: 3 }), PG, "synchronousStandbys", 3);
        expect(message).toContain("from 1 to members - 1 (2)");
    });

    it("refuses the SQL port on the REST API port", async () => {
        await expectRefused(pg({ port: 8008 }), PG, "apiPort", 8008);
    });

    it("refuses an unsupported PostgreSQL version", async () => {
        const message = await expectRefused(pg({ version: 15 }), PG, "version", 15);
        expect(message).toContain("use 17");
    });

    it("refuses bad identifiers, shared role names, managed parameters and a cluster nobody can take over", async () => {
        await expectRefused(pg({ databaseName: "my-db" }), PG, "databaseName", "my-db");
        await expectRefused(pg({ appUser: "postgres" }), PG, "appUser", "postgres");
        await expectRefused(pg({ parameters: { port: "6432" } }), PG, "parameters.port", "6432");
        await expectRefused(pg({ members: 2, memberTags: [{}, { nofailover: true }] }), PG, "memberTags", [{}, { nofailover: true }]);
        await expectRefused(pg({}, "PG"), PG, "name", "PG");
    });
});
