import { describe, expect, it } from "vitest";
import { runStack } from "../harness/mockRun";
import { byType } from "./helpers";

const CONTAINER = "docker:index/container:Container";

describe("dev stack program", () => {
    it.each([true, false])("runs without error (preview=%s)", async (preview) => {
        const run = await runStack("dev", { preview });
        expect(byType(run.resources, "hadb:index:EtcdCluster")).toHaveLength(1);
        expect(byType(run.resources, "hadb:index:PostgresCluster")).toHaveLength(1);
        expect(byType(run.resources, "hadb:index:MySqlCluster")).toHaveLength(1);
        expect(byType(run.resources, "hadb:index:HaproxyFrontend").map((r) => r.name)).toEqual(["pg-proxy", "mysql-proxy"]);
    });

    it("declares one network, an image per server kind, and a container per member with its volume", async () => {
        const { resources } = await runStack("dev");
        const containers = byType(resources, CONTAINER);
        const volumes = byType(resources, "docker:index/volume:Volume");
        const [network] = byType(resources, "docker:index/network:Network");
        const images = byType(resources, "docker:index/image:Image");
        const target = byType(resources, "hadb:index:DockerTarget")[0];

        expect(containers.map((c) => c.inputs.name).sort()).toEqual(
            [
                ...["etcd-0", "etcd-1", "etcd-2", "mysql-0", "mysql-1", "mysql-2", "mysql-config-0", "mysql-proxy-0", "mysql-reads-0", "mysql-reads-1"],
                ...["pg-0", "pg-1", "pg-2", "pg-config-0", "pg-proxy-0", "pg-reads-0", "pg-reads-1"],
            ].map((n) => `hadb-dev-${n}`),
        );
        expect(volumes.map((v) => v.inputs.name).sort()).toEqual(
            ["etcd-0", "etcd-1", "etcd-2", "mysql-0", "mysql-1", "mysql-2", "mysql-reads-0", "mysql-reads-1", "pg-0", "pg-1", "pg-2", "pg-reads-0", "pg-reads-1"].map(
                (n) => `hadb-dev-${n}-data`,
            ),
        );
        expect(images.map((i) => i.inputs.imageName).sort()).toEqual(["hadb/etcd:local", "hadb/haproxy:local", "hadb/mysql:local", "hadb/postgres:local"]);
        expect(images.every((i) => i.inputs.skipPush === true)).toBe(true);
        expect(images.map((i) => i.inputs.build.args.BASE_IMAGE).sort()).toEqual(["debian:sid-slim", "debian:trixie-slim", "debian:trixie-slim", "debian:trixie-slim"]);
        expect(network.inputs.ipamConfigs).toEqual([{ subnet: "172.29.0.0/24" }]);
        expect(network.parent).toBe(target.urn);

        const provider = byType(resources, "pulumi:providers:docker");
        expect(provider.map((p) => p.parent)).toEqual([target.urn]);
        for (const c of containers) {
            const member = c.inputs.name.replace("hadb-dev-", "");
            const image = images.find((i) => i.inputs.imageName === c.inputs.image)!;
            expect(c.dependencies).toEqual(expect.arrayContaining([image.urn, network.urn]));
            // Every child carries the target's provider, whichever component declared it.
            expect(c.provider, c.name).toBe(`${provider[0].urn}::${provider[0].name}-id`);
            expect(c.inputs.networksAdvanced).toEqual([{ name: "hadb-dev", aliases: [member] }]);
            expect(c.inputs.healthcheck.tests[0]).toBe("CMD");
            expect(c.inputs.restart).toBe("unless-stopped");
            const volume = volumes.find((v) => v.inputs.name === `hadb-dev-${member}-data`);
            if (volume) expect(c.dependencies).toContain(volume.urn);
        }
    });

    it("publishes only on 127.0.0.1: etcd clients and the two HAProxy frontends", async () => {
        const { resources } = await runStack("dev");
        const published = byType(resources, CONTAINER).flatMap((c) => (c.inputs.ports ?? []).map((p: any) => ({ container: c.inputs.name, ...p })));
        expect(published.every((p) => p.ip === "127.0.0.1")).toBe(true);
        expect(published.map((p) => `${p.container}:${p.external}->${p.internal}`).sort()).toEqual([
            "hadb-dev-etcd-0:23790->2379",
            "hadb-dev-etcd-1:23791->2379",
            "hadb-dev-etcd-2:23792->2379",
            "hadb-dev-mysql-proxy-0:6446->6446",
            "hadb-dev-mysql-proxy-0:6447->6447",
            "hadb-dev-mysql-proxy-0:6448->6448",
            "hadb-dev-mysql-proxy-0:7001->7001",
            "hadb-dev-pg-proxy-0:5000->5000",
            "hadb-dev-pg-proxy-0:5001->5001",
            "hadb-dev-pg-proxy-0:5002->5002",
            "hadb-dev-pg-proxy-0:7000->7000",
        ]);
    });

    it("exports exactly the documented outputs", async () => {
        const { outputs } = await runStack("dev");
        expect(Object.keys(outputs).sort()).toEqual(["etcd", "mysql", "postgres"]);
        expect(outputs.etcd).toEqual({
            endpoints: ["http://127.0.0.1:23790", "http://127.0.0.1:23791", "http://127.0.0.1:23792"],
            members: ["hadb-dev-etcd-0", "hadb-dev-etcd-1", "hadb-dev-etcd-2"],
        });
        const pg = outputs.postgres as Record<string, any>;
        expect(Object.keys(pg).sort()).toEqual(["analyticsUrl", "members", "replicas", "roUrl", "rwUrl", "superuserUrl"]);
        expect(pg.analyticsUrl).toMatch(/^postgresql:\/\/app:[A-Za-z0-9]{32}@127\.0\.0\.1:5002\/app$/);
        expect(pg.replicas).toEqual(["hadb-dev-pg-reads-0", "hadb-dev-pg-reads-1"]);
        expect(pg.rwUrl).toMatch(/^postgresql:\/\/app:[A-Za-z0-9]{32}@127\.0\.0\.1:5000\/app$/);
        expect(pg.roUrl).toMatch(/^postgresql:\/\/app:[A-Za-z0-9]{32}@127\.0\.0\.1:5001\/app$/);
        expect(pg.superuserUrl).toMatch(/^postgresql:\/\/postgres:[A-Za-z0-9]{32}@127\.0\.0\.1:5000\/postgres$/);
        expect(pg.members).toEqual(["hadb-dev-pg-0", "hadb-dev-pg-1", "hadb-dev-pg-2"]);
        const my = outputs.mysql as Record<string, any>;
        expect(Object.keys(my).sort()).toEqual(["adminUrl", "analyticsUrl", "members", "replicas", "roUrl", "rwUrl"]);
        expect(my.analyticsUrl).toMatch(/^mysql:\/\/app:[A-Za-z0-9]{32}@127\.0\.0\.1:6448\/app$/);
        expect(my.replicas).toEqual(["hadb-dev-mysql-reads-0", "hadb-dev-mysql-reads-1"]);
        expect(my.rwUrl).toMatch(/^mysql:\/\/app:[A-Za-z0-9]{32}@127\.0\.0\.1:6446\/app$/);
        expect(my.roUrl).toMatch(/^mysql:\/\/app:[A-Za-z0-9]{32}@127\.0\.0\.1:6447\/app$/);
        expect(my.adminUrl).toMatch(/^mysql:\/\/admin:[A-Za-z0-9]{32}@127\.0\.0\.1:6446\/$/);
        expect(my.members).toEqual(["hadb-dev-mysql-0", "hadb-dev-mysql-1", "hadb-dev-mysql-2"]);
    });

    it("uses the dev timing profile, synchronous replication and the e-commerce schema from Pulumi.dev.yaml", async () => {
        const { resources } = await runStack("dev");
        const uploads = byType(resources, CONTAINER).find((c) => c.inputs.name === "hadb-dev-pg-0")!.inputs.uploads;
        const config = uploads.find((u: any) => u.file === "/etc/hadb/bootstrap.yml").content;
        expect(config).toMatch(/loop_wait: 1\n/);
        expect(config).toMatch(/synchronous_mode: true\n/);
        expect(uploads.find((u: any) => u.file === "/etc/hadb/schema.sql").content).toMatch(/CREATE TABLE IF NOT EXISTS order_items/);
    });

    it("follows stack config: member counts and base image", async () => {
        const { resources } = await runStack("dev", { config: { "hadb:etcdMembers": 5, "hadb:postgresMembers": 2, "hadb:baseImageTrixie": "hadb-base:trixie" } });
        const names = byType(resources, CONTAINER).map((c) => c.inputs.name);
        expect(names.filter((n) => n.includes("etcd"))).toHaveLength(5);
        expect(names.filter((n) => /pg-\d$/.test(n))).toHaveLength(2);
        expect(byType(resources, "docker:index/image:Image").find((i) => i.inputs.imageName === "hadb/postgres:local")!.inputs.build.args.BASE_IMAGE).toBe("hadb-base:trixie");
    });

    it("fails on an unknown preset with the config key named", async () => {
        await expect(runStack("dev", { config: { "hadb:preset": "cloud" } })).rejects.toThrow(/hadb:preset.*"cloud".*Fix: use one of standard/);
    });
});

describe("the ecommerce-ha preset", () => {
    const upload = (resources: Awaited<ReturnType<typeof runStack>>["resources"], container: string, file: string): string =>
        byType(resources, CONTAINER)
            .find((c) => c.name === container)!
            .inputs.uploads.find((u: { file: string }) => u.file === `/etc/hadb/${file}`)?.content;

    it("creates the shop's schema on each engine: orders with a status domain and updated_at, order_items, the read indexes", async () => {
        const { resources } = await runStack("dev");
        const pg = upload(resources, "pg-0", "schema.sql");
        expect(pg).toMatch(/status text NOT NULL DEFAULT 'pending' CHECK \(status IN \('pending', 'processing', 'shipped', 'delivered'\)\)/);
        expect(pg).toContain("total_amount numeric(10,2)");
        expect(pg).toContain("CREATE TRIGGER orders_touch BEFORE UPDATE ON orders");
        for (const index of ["orders (user_id, created_at)", "orders (status)", "order_items (order_id)"]) expect(pg).toContain(index);
        const mysql = JSON.parse(upload(resources, "mysql-0", "application.json")).bootstrapSql as string;
        expect(mysql).toContain("status enum('pending', 'processing', 'shipped', 'delivered') NOT NULL DEFAULT 'pending'");
        expect(mysql).toContain("ON UPDATE CURRENT_TIMESTAMP(6)");
        for (const index of ["orders_user_created (user_id, created_at)", "orders_status (status)", "order_items_order (order_id)"]) expect(mysql).toContain(index);
    });

    it("the stack's own bootstrap SQL runs after the schema", async () => {
        const { resources } = await runStack("dev", { config: { "hadb:postgresBootstrapSql": "INSERT INTO orders (user_id) VALUES (1);" } });
        const pg = upload(resources, "pg-0", "schema.sql");
        expect(pg.indexOf("INSERT INTO orders")).toBeGreaterThan(pg.indexOf("CREATE TABLE IF NOT EXISTS orders"));
    });

    it.each([
        ["postgres", ["etcd", "postgres"], "hadb:index:MySqlCluster"],
        ["mysql", ["mysql"], "hadb:index:PostgresCluster"],
    ])("hadb:engine %s deploys only that engine", async (engine, outputs, absent) => {
        const run = await runStack("dev", { config: { "hadb:engine": engine } });
        expect(Object.keys(run.outputs).sort()).toEqual(outputs);
        expect(byType(run.resources, absent)).toEqual([]);
    });

    it("refuses an engine it does not know, naming the fix", async () => {
        await expect(runStack("dev", { config: { "hadb:engine": "oracle" } })).rejects.toThrow(/`hadb:engine` is "oracle".*Fix: use one of postgres, mysql, both/);
    });
});
