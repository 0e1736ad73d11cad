import { describe, expect, it } from "vitest";
import { DockerTarget, EtcdCluster, EtcdClusterArgs, InvalidArgumentError, planEtcdCluster } from "../../components";
import { byType, declare, expectRefused } from "./helpers";

const ETCD = "hadb:etcd:EtcdCluster";

function etcd(args: Partial<EtcdClusterArgs>, name = "etcd") {
    return () => new EtcdCluster(name, { target: new DockerTarget("local"), ...args });
}

describe("etcd plan", () => {
    it("renders one member per ordinal with a shared initial cluster and its own advertised URLs", () => {
        const plan = planEtcdCluster("etcd", "dev", { members: 3, publishClientPortsFrom: 23790 });
        expect(plan.members.map((m) => m.name)).toEqual(["etcd-0", "etcd-1", "etcd-2"]);
        const [first, second] = plan.members;
        expect(first.env.ETCD_INITIAL_CLUSTER).toBe("etcd-0=http://etcd-0:2380,etcd-1=http://etcd-1:2380,etcd-2=http://etcd-2:2380");
        expect(second.env.ETCD_INITIAL_CLUSTER).toBe(first.env.ETCD_INITIAL_CLUSTER);
        expect(second.env.ETCD_NAME).toBe("etcd-1");
        expect(second.env.ETCD_ADVERTISE_CLIENT_URLS).toBe("http://etcd-1:2379");
        expect(second.env.ETCD_INITIAL_ADVERTISE_PEER_URLS).toBe("http://etcd-1:2380");
        expect(first.env.ETCD_INITIAL_CLUSTER_TOKEN).toBe("dev-etcd");
        expect(first.env.ETCD_INITIAL_CLUSTER_STATE).toBe("new");
        expect(plan.members.map((m) => m.ports.find((p) => p.name === "client")?.hostPort)).toEqual([23790, 23791, 23792]);
        expect(first.ports.find((p) => p.name === "peer")?.hostPort).toBeUndefined();
        expect(first.volumes).toEqual([{ name: "data", mountPath: "/var/lib/etcd" }]);
        expect(first.env.ETCD_DATA_DIR.toString().startsWith("/var/lib/etcd/")).toBe(true);
    });

    it("checks health with a quorum read and honours custom ports and timings", () => {
        const plan = planEtcdCluster("dcs", "prod", { members: 5, clientPort: 3379, peerPort: 3380, heartbeatIntervalMs: 200, electionTimeoutMs: 2000, clusterToken: "t1" });
        const m = plan.members[4];
        expect(m.name).toBe("dcs-4");
        expect(m.health.command).toEqual(["etcdctl", "--endpoints=http://127.0.0.1:3379", "--command-timeout=2s", "endpoint", "health"]);
        expect(m.env).toMatchObject({ ETCD_HEARTBEAT_INTERVAL: "200", ETCD_ELECTION_TIMEOUT: "2000", ETCD_INITIAL_CLUSTER_TOKEN: "t1", ETCD_LISTEN_CLIENT_URLS: "http://0.0.0.0:3379" });
        expect(m.ports.every((p) => p.hostPort === undefined)).toBe(true);
    });

    it("throws InvalidArgumentError from the pure planner too", () => {
        expect(() => planEtcdCluster("etcd", "dev", { members: 2 })).toThrow(InvalidArgumentError);
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
    it.each([
        ["subnet", "10.0.0.0/8"],
        ["subnet", "172.29.0.0"],
        ["publishAddress", "localhost"],
        ["namePrefix", "Hadb"],
    ] as const)("refuses %s = %s", async (argument, value) => {
        await expectRefused(() => new DockerTarget("local", { [argument]: value }), "hadb:docker:Target", argument, value);
    });
});
