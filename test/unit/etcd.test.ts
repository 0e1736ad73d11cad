import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DockerTarget, EtcdCluster, EtcdClusterArgs, InvalidArgumentError, PostgresCluster } from "../../components";
import { ServicePlan } from "../../components/core/plan";
import { planEtcdCluster } from "../../components/etcd/plan";
import { byType, declare, expectRefused } from "./helpers";

const ETCD = "hadb:index:EtcdCluster";

function etcd(args: Partial<EtcdClusterArgs>, name = "etcd") {
    return () => new EtcdCluster(name, { target: new DockerTarget("local"), ...args });
}

const hostOf = (m: string) => `${m}.net`;
const etcdConfig = (plan: ServicePlan, i: number) => parse(plan.members[i].files.find((f) => f.name === "etcd.yml")!.content as string);

describe("etcd plan", () => {
    it("renders one member per ordinal with a shared initial cluster and its own advertised URLs, at the target's addresses", () => {
        const plan = planEtcdCluster("etcd", { members: 3, publishClientPortsFrom: 23790 }, { stack: "dev", memberHost: hostOf });
        expect(plan.members.map((m) => m.name)).toEqual(["etcd-0", "etcd-1", "etcd-2"]);
        const [first, second] = [etcdConfig(plan, 0), etcdConfig(plan, 1)];
        expect(first["initial-cluster"]).toBe("etcd-0=http://etcd-0.net:2380,etcd-1=http://etcd-1.net:2380,etcd-2=http://etcd-2.net:2380");
        expect(second["initial-cluster"]).toBe(first["initial-cluster"]);
        expect(second.name).toBe("etcd-1");
        expect(second["advertise-client-urls"]).toBe("http://etcd-1.net:2379");
        expect(second["initial-advertise-peer-urls"]).toBe("http://etcd-1.net:2380");
        expect(first["initial-cluster-token"]).toBe("dev-etcd");
        expect(first["initial-cluster-state"]).toBe("new");
        expect(first["data-dir"].startsWith("/var/lib/etcd/")).toBe(true);
        expect(plan.members.map((m) => m.hostPorts?.client)).toEqual([23790, 23791, 23792]);
        expect(plan.template.volumes).toEqual([{ name: "data", mountPath: "/var/lib/etcd", sizeGiB: 1 }]);
        // Per-member files only: one template serves every member.
        expect(plan.template.files).toEqual([]);
        expect(plan.template.env).toEqual({});
    });

    it("checks readiness with a quorum read and honours custom ports and timings", () => {
        const plan = planEtcdCluster("dcs", { members: 5, clientPort: 3379, peerPort: 3380, heartbeatIntervalMs: 200, electionTimeoutMs: 2000, clusterToken: "t1" }, { stack: "prod", memberHost: hostOf });
        expect(plan.members[4].name).toBe("dcs-4");
        expect(plan.template.checks.readiness.command).toEqual(["hadb-etcd-ready", "3379"]);
        expect(plan.template.checks.liveness).toBeUndefined();
        expect(etcdConfig(plan, 4)).toMatchObject({ "heartbeat-interval": 200, "election-timeout": 2000, "initial-cluster-token": "t1", "listen-client-urls": "http://0.0.0.0:3379" });
        expect(plan.members.every((m) => m.hostPorts === undefined)).toBe(true);
        expect(plan.template.ports).toEqual([
            { name: "client", port: 3379, allow: ["members", "postgres"] },
            { name: "peer", port: 3380, allow: ["members"] },
        ]);
    });

    it("throws InvalidArgumentError from the pure planner too", () => {
        expect(() => planEtcdCluster("etcd", { members: 2 }, { stack: "dev", memberHost: hostOf })).toThrow(InvalidArgumentError);
    });
});

describe("EtcdCluster validation", () => {
    it.each([2, 4, 6])("refuses an even member count (%i) and suggests the odd one above", async (members) => {
        const message = await expectRefused(etcd({ members }), ETCD, "members", members);
        expect(message).toContain(`use ${members + 1}`);
    });

    it.each([0, 9, -1, 1.5])("refuses %s members", async (members) => {
        const message = await expectRefused(etcd({ members }), ETCD, "members", members);
        expect(message).toContain("odd number of members from 1 to 7");
    });

    it.each(["Etcd", "1etcd", "etcd_a", "etcd-", "a".repeat(41)])("refuses the name %s", async (name) => {
        const message = await expectRefused(etcd({}, name), ETCD, "name", name);
        expect(message).toContain("DNS label");
    });

    it("refuses a client port equal to the peer port", async () => {
        const message = await expectRefused(etcd({ clientPort: 2380 }), ETCD, "peerPort", 2380);
        expect(message).toContain("already taken by `clientPort`");
    });

    it("refuses an out-of-range port", async () => {
        await expectRefused(etcd({ peerPort: 70000 }), ETCD, "peerPort", 70000);
    });

    it("refuses a published range that runs past the last port", async () => {
        await expectRefused(etcd({ publishClientPortsFrom: 65534 }), ETCD, "publishClientPortsFrom", 65536);
    });

    it("refuses an election timeout under 5 heartbeats", async () => {
        const message = await expectRefused(etcd({ heartbeatIntervalMs: 300, electionTimeoutMs: 1000 }), ETCD, "electionTimeoutMs", 1000);
        expect(message).toContain("at least 5 × heartbeatIntervalMs (1500)");
    });

    it("refuses a cluster token with spaces", async () => {
        await expectRefused(etcd({ clusterToken: "my token" }), ETCD, "clusterToken", "my token");
    });

    it("accepts 1, 3, 5 and 7 members", async () => {
        for (const members of [1, 3, 5, 7]) {
            const { resources, error } = await declare(etcd({ members }));
            expect(error).toBeUndefined();
            expect(byType(resources, "docker:index/container:Container")).toHaveLength(members);
        }
    });
});

describe("DockerTarget validation", () => {
    it("refuses a second component whose members would take names another component holds", async () => {
        const { resources, error } = await declare(() => {
            const target = new DockerTarget("local");
            new EtcdCluster("pg-config", { target, members: 1 });
            new EtcdCluster("pg", { target, members: 1 });
            // PostgresCluster "pg" would run its configurator as member pg-config-0.
            new PostgresCluster("pg2", { target, etcdHosts: ["pg-0:2379"] });
            new EtcdCluster("pg2-config", { target, members: 1 });
        });
        expect((error as Error).message).toMatch(/EtcdCluster "pg2-config": argument `name` is "pg2-config-0": PostgresCluster "pg2" already declares the member "pg2-config-0"/);
        // Only the configurator holds the name: the refused cluster declared no container.
        expect(byType(resources, "docker:index/container:Container").filter((c) => c.inputs.name === "hadb-dev-pg2-config-0")).toHaveLength(1);
    });

    it.each([
        ["subnet", "10.0.0.0/8"],
        ["subnet", "172.29.0.0"],
        ["publishAddress", "localhost"],
        ["namePrefix", "Hadb"],
    ] as const)("refuses %s = %s", async (argument, value) => {
        await expectRefused(() => new DockerTarget("local", { [argument]: value }), "hadb:index:DockerTarget", argument, value);
    });
});
