import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DockerTarget, EtcdCluster, HaproxyFrontend, MySqlCluster, PostgresCluster, ReadReplicaFleet } from "../../components";
import { byType, declare, expectRefused } from "./helpers";

const CONTAINER = "docker:index/container:Container";
const FLEET = "hadb:index:ReadReplicaFleet";
const upload = (c: { inputs: Record<string, any> }, file: string): string => c.inputs.uploads.find((u: { file: string }) => u.file === `/etc/hadb/${file}`)?.content;

/** The HAProxy backends of a rendered haproxy.cfg: name → server names. */
function backends(cfg: string): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    let current = "";
    for (const line of cfg.split("\n")) {
        const b = line.match(/^backend (\S+)/);
        if (b) out[(current = b[1])] = [];
        const s = line.match(/^\s+server (\S+)/);
        if (s && current) out[current].push(s[1]);
    }
    return out;
}

describe("ReadReplicaFleet on Docker", () => {
    it("PostgreSQL: Patroni members of the same cluster tagged nofailover and nosync, after the cluster's members, in the read-only and analytics pools", async () => {
        let proxyCfg = "";
        const { resources, error } = await declare(() => {
            const target = new DockerTarget("local");
            const pg = new PostgresCluster("pg", { target, members: 3 });
            const reads = new ReadReplicaFleet("pg-reads", { source: pg, replicas: 3, analytics: 1, cascadeFrom: "pg-1", maxLag: 4096 });
            new HaproxyFrontend("pg-proxy", { target, backends: reads.backends });
        });
        expect(error).toBeUndefined();
        const fleet = byType(resources, FLEET)[0];
        const replicas = byType(resources, CONTAINER).filter((c) => c.parent === fleet.urn);
        expect(replicas.map((c) => c.name)).toEqual(["pg-reads-0", "pg-reads-1", "pg-reads-2"]);
        for (const [i, c] of replicas.entries()) {
            const patroni = parse(upload(c, "patroni.yml"));
            expect(patroni.scope).toBe("pg");
            expect(patroni.name).toBe(`pg-reads-${i}`);
            expect(patroni.tags).toMatchObject({ nofailover: true, nosync: true, noloadbalance: false, replicatefrom: "pg-1", hadb_fleet: "pg-reads", hadb_pool: i === 2 ? "analytics" : "read-only" });
            // A fleet member never bootstraps a cluster: only bootstrap.yml, which Patroni's schema requires.
            expect(upload(c, "bootstrap.yml")).toContain("dcs:");
            expect(upload(c, "post-bootstrap.sh")).toBeUndefined();
            expect(upload(c, "bootstrap.sql")).toBeUndefined();
            // Created only after the cluster's members are in service, then one after another.
            expect(c.dependencies.map((d) => d.split("::").pop())).toContain(i === 0 ? "pg-2" : `pg-reads-${i - 1}`);
        }
        proxyCfg = upload(byType(resources, CONTAINER).find((c) => c.name === "pg-proxy-0")!, "haproxy.cfg");
        expect(backends(proxyCfg)).toEqual({
            primary: ["pg-0", "pg-1", "pg-2"],
            replicas: ["pg-0", "pg-1", "pg-2", "pg-reads-0", "pg-reads-1"],
            analytics: ["pg-reads-2"],
        });
        expect(proxyCfg).toContain("http-check send meth OPTIONS uri /replica?lag=4096");
        expect(proxyCfg).toMatch(/frontend analytics\n\s+bind :5002\n\s+use_backend analytics if \{ nbsrv\(analytics\) gt 0 \}\n\s+use_backend replicas if \{ nbsrv\(replicas\) gt 0 \}\n\s+default_backend primary/);
    });

    it("MySQL: asynchronous replicas with their own server ids, super_read_only, the group as their managed source", async () => {
        const { resources, error } = await declare(() => {
            const target = new DockerTarget("local");
            const mysql = new MySqlCluster("mysql", { target, members: 3 });
            const reads = new ReadReplicaFleet("mysql-reads", { source: mysql, replicas: 2, analytics: 1 });
            new HaproxyFrontend("mysql-proxy", { target, backends: reads.backends });
        });
        expect(error).toBeUndefined();
        const fleet = byType(resources, FLEET)[0];
        const replicas = byType(resources, CONTAINER).filter((c) => c.parent === fleet.urn);
        expect(replicas.map((c) => c.name)).toEqual(["mysql-reads-0", "mysql-reads-1"]);
        const group = byType(resources, CONTAINER).find((c) => c.name === "mysql-0")!;
        const groupName = upload(group, "my.cnf").match(/group_replication_group_name = (\S+)/)![1];
        for (const [i, c] of replicas.entries()) {
            const cnf = upload(c, "my.cnf");
            expect(cnf).toContain(`server_id = ${1001 + i}`);
            expect(cnf).toContain("super_read_only = ON");
            expect(cnf).toContain(`report_host = mysql-reads-${i}`);
            const member = JSON.parse(upload(c, "member.json"));
            expect(member.members).toEqual(["mysql-0", "mysql-1", "mysql-2"]);
            expect(member.self).toBe(`mysql-reads-${i}`);
            expect(member.replica).toEqual({ groupName, analytics: i === 1 });
            // The schema comes with the clone: no application.json.
            expect(upload(c, "application.json")).toBeUndefined();
        }
        const cfg = upload(byType(resources, CONTAINER).find((c) => c.name === "mysql-proxy-0")!, "haproxy.cfg");
        expect(backends(cfg).analytics).toEqual(["mysql-reads-1"]);
        expect(backends(cfg).replicas).toEqual(["mysql-0", "mysql-1", "mysql-2", "mysql-reads-0"]);
        expect(cfg).toContain("bind :6448");
    });

    it("a proxy without analytics replicas serves no analytics port and refuses one given", async () => {
        const { resources } = await declare(() => {
            const target = new DockerTarget("local");
            const pg = new PostgresCluster("pg", { target, members: 2 });
            const reads = new ReadReplicaFleet("pg-reads", { source: pg, replicas: 1 });
            new HaproxyFrontend("pg-proxy", { target, backends: reads.backends });
        });
        expect(upload(byType(resources, CONTAINER).find((c) => c.name === "pg-proxy-0")!, "haproxy.cfg")).not.toContain("analytics");
        await expectRefused(
            () => {
                const target = new DockerTarget("local");
                const pg = new PostgresCluster("pg", { target, members: 2 });
                new HaproxyFrontend("pg-proxy", { target, backends: pg.backends, ports: { analytics: 5002 } });
            },
            "hadb:index:HaproxyFrontend",
            "ports.analytics",
            5002,
        );
    });
});

describe("ReadReplicaFleet refuses bad arguments before any replica exists", () => {
    const withPg = (args: Record<string, unknown>) => () => {
        const target = new DockerTarget("local");
        const pg = new PostgresCluster("pg", { target, members: 2 });
        new ReadReplicaFleet("pg-reads", { source: pg, replicas: 2, ...args });
    };
    it.each([
        ["replicas", { replicas: 0 }, 0],
        ["replicas", { replicas: 1.5 }, 1.5],
        ["analytics", { analytics: 3 }, 3],
        ["analytics", { analytics: -1 }, -1],
        ["maxLag", { maxLag: -1 }, -1],
        ["cascadeFrom", { cascadeFrom: "pg-9" }, "pg-9"],
    ])("%s = %j", async (argument, args, value) => {
        await expectRefused(withPg(args), FLEET, argument, value);
    });

    it("a source that is not a PostgreSQL or MySQL cluster", async () => {
        await expectRefused(
            () => {
                const target = new DockerTarget("local");
                const etcd = new EtcdCluster("etcd", { target, members: 1 });
                new ReadReplicaFleet("reads", { source: etcd, replicas: 1 });
            },
            FLEET,
            "source",
            "object",
        );
    });

    it("a second fleet of one cluster (their server ids and pools would collide)", async () => {
        const { resources, error } = await declare(() => {
            const target = new DockerTarget("local");
            const mysql = new MySqlCluster("mysql", { target, members: 3 });
            new ReadReplicaFleet("mysql-reads", { source: mysql, replicas: 1 });
            new ReadReplicaFleet("mysql-more", { source: mysql, replicas: 1 });
        });
        expect((error as Error).message).toMatch(/^ReadReplicaFleet "mysql-more": argument `source` is "mysql": cluster "mysql" already has the fleet "mysql-reads"\. Fix: raise/);
        const second = resources.find((r) => r.type === FLEET && r.name === "mysql-more")!;
        expect(resources.filter((r) => r.parent === second.urn)).toEqual([]);
    });

    it("cascadeFrom on a MySQL group, and a target other than the cluster's", async () => {
        await expectRefused(
            () => {
                const target = new DockerTarget("local");
                const mysql = new MySqlCluster("mysql", { target, members: 3 });
                new ReadReplicaFleet("mysql-reads", { source: mysql, replicas: 1, cascadeFrom: "mysql-1" });
            },
            FLEET,
            "cascadeFrom",
            "mysql-1",
        );
        await expectRefused(
            () => {
                const target = new DockerTarget("local");
                const pg = new PostgresCluster("pg", { target, members: 2 });
                new ReadReplicaFleet("pg-reads", { source: pg, replicas: 1, target: new DockerTarget("other", { subnet: "172.30.0.0/24", namePrefix: "other" }) });
            },
            FLEET,
            "target",
            "docker",
        );
    });
});
