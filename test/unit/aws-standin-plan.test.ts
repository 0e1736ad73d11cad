import { describe, expect, it } from "vitest";
import { admitted, cidrContains, instanceIdOf, localImageOf, PlannedHost, plannedHosts } from "../aws/standin/apply";
import { mockId, runStack } from "../harness/mockRun";
import { ConfigValues } from "../harness/stackConfig";

// The pure half of the AWS stand-in (test/aws/standin/apply.ts): which hosts a prod run becomes, in which order
// they may start, and which connections their security groups admit. test/live/aws-standin.test.ts boots them.
const SUBNETS = ["subnet-0000000000000a001 10.78.1.0/24 eu-west-1a", "subnet-0000000000000a002 10.78.2.0/24 eu-west-1b", "subnet-0000000000000a003 10.78.3.0/24 eu-west-1c"];
const config = (engine: string): ConfigValues => ({
    "hadb:engine": engine,
    // An array (structured config): loadStackConfig passes it on as JSON; ConfigValues does not type arrays.
    "hadb:awsSubnets": SUBNETS as unknown as string,
    "hadb:awsClientCidrs": "10.78.0.0/16",
    "hadb:postgresReadReplicas": 0,
    "hadb:postgresAnalyticsReplicas": 0,
    "hadb:mysqlReadReplicas": 0,
    "hadb:mysqlAnalyticsReplicas": 0,
    "hadb:haproxyInstances": 2,
});

const TEST_PROCESS = "10.78.0.1";

describe("the AWS stand-in's plan of a prod run", () => {
    it("gives each PostgreSQL host its NIC's IP, its attached volumes, its image and the instances it waits for", async () => {
        const hosts = plannedHosts(await runStack("prod", { config: config("postgres") }));
        const by = (m: string) => hosts.find((h) => h.member === m)!;
        expect(hosts.map((h) => h.member)).toEqual(["etcd-0", "pg-proxy-0", "etcd-1", "pg-proxy-1", "etcd-2", "pg-0", "pg-1", "pg-2", "pg-config-0"]);
        // The chain of each service, the clusters after the etcd they use, the configurator after every member.
        expect(Object.fromEntries(hosts.map((h) => [h.member, [...h.after].sort()]))).toEqual({
            "etcd-0": [],
            "pg-proxy-0": [],
            "etcd-1": ["etcd-0"],
            "pg-proxy-1": ["pg-proxy-0"],
            "etcd-2": ["etcd-1"],
            "pg-0": ["etcd-0", "etcd-1", "etcd-2"],
            "pg-1": ["etcd-0", "etcd-1", "etcd-2", "pg-0"],
            "pg-2": ["etcd-0", "etcd-1", "etcd-2", "pg-1"],
            "pg-config-0": ["etcd-0", "etcd-1", "etcd-2", "pg-0", "pg-1", "pg-2"],
        });
        for (const h of hosts) expect(SUBNETS.some((s) => cidrContains(s.split(" ")[1], h.ip)), h.ip).toBe(true);
        expect(by("pg-0").volumeIds).toEqual([mockId("aws:ebs/volume:Volume", "pg-0-data")]);
        expect(by("pg-proxy-0").volumeIds).toEqual([]);
        expect(by("pg-0").image).toEqual({ local: "hadb/postgres:local", ref: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hadb-prod/postgres:latest" });
        expect(by("etcd-1").readyParameter).toBe("/hadb-prod/etcd/ready/etcd-1");
    });

    it("admits exactly the paths the clusters use through the security groups", async () => {
        const hosts = plannedHosts(await runStack("prod", { config: config("postgres") }));
        const by = (m: string) => hosts.find((h) => h.member === m)!;
        const from = (h: PlannedHost) => h.ip;
        // Patroni to etcd, members to each other, proxies' role checks and connections, the configurator, clients to the proxies.
        expect(admitted(by("etcd-2"), 2379, from(by("pg-1")))).toBe(true);
        expect(admitted(by("etcd-2"), 2380, from(by("etcd-0")))).toBe(true);
        expect(admitted(by("pg-1"), 5432, from(by("pg-0")))).toBe(true);
        expect(admitted(by("pg-1"), 8008, from(by("pg-proxy-1")))).toBe(true);
        expect(admitted(by("pg-2"), 8008, from(by("pg-config-0")))).toBe(true);
        expect(admitted(by("pg-proxy-0"), 5000, TEST_PROCESS)).toBe(true);
        expect(admitted(by("pg-proxy-0"), 5001, TEST_PROCESS)).toBe(true);
        // Not admitted: clients to Patroni's API or etcd, a proxy to etcd.
        expect(admitted(by("pg-0"), 8008, TEST_PROCESS)).toBe(false);
        expect(admitted(by("etcd-0"), 2379, TEST_PROCESS)).toBe(false);
        expect(admitted(by("etcd-0"), 2379, from(by("pg-proxy-0")))).toBe(false);
    });

    it("admits Group Replication's paths for the MySQL hosts", async () => {
        const hosts = plannedHosts(await runStack("prod", { config: config("mysql") }));
        const by = (m: string) => hosts.find((h) => h.member === m)!;
        expect(hosts.map((h) => h.member)).toEqual(["mysql-0", "mysql-proxy-0", "mysql-1", "mysql-proxy-1", "mysql-2", "mysql-config-0"]);
        expect(admitted(by("mysql-2"), 33061, by("mysql-0").ip)).toBe(true);
        expect(admitted(by("mysql-2"), 8008, by("mysql-proxy-0").ip)).toBe(true);
        expect(admitted(by("mysql-1"), 3306, by("mysql-config-0").ip)).toBe(true);
        expect(admitted(by("mysql-proxy-1"), 6446, TEST_PROCESS)).toBe(true);
        expect(admitted(by("mysql-1"), 33061, TEST_PROCESS)).toBe(false);
    });

    it("names instances as AWS does, a new ID per replacement, and maps image references to local images", () => {
        expect(instanceIdOf("pg-0", 0)).toBe(mockId("aws:ec2/instance:Instance", "pg-0"));
        const ids = [0, 1, 2].map((g) => instanceIdOf("pg-0", g));
        expect(new Set(ids).size).toBe(3);
        for (const id of ids) expect(id).toMatch(/^i-[0-9a-f]{17}$/);
        expect(localImageOf("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hadb-prod/haproxy:latest")).toBe("hadb/haproxy:local");
        expect(() => localImageOf("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hadb-prod/haproxy@sha256:0123")).toThrow(/digest/);
    });
});
