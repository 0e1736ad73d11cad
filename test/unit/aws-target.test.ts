import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { AwsTarget, EtcdCluster, HaproxyFrontend, MySqlCluster, NlbFrontend, PostgresCluster } from "../../components";
import { readUserData } from "../../components/targets/awsHost";
import { AddressBook, AwsSubnet, AwsTargetArgs, ingressRules, validateAwsTargetArgs } from "../../components/targets/awsPlan";
import { dockerRunArgs, memberContainer } from "../../components/targets/memberContainer";
import { AwsFacts, AWS_RULES, awsViolations } from "../aws/invariants";
import { RecordedResource, runStack, StackRun } from "../harness/mockRun";
import { byType, declare } from "./helpers";

const SUBNETS: AwsSubnet[] = [
    { id: "subnet-0a1b2c3d4e5f60001", cidr: "10.20.1.0/24", zone: "eu-west-1a" },
    { id: "subnet-0a1b2c3d4e5f60002", cidr: "10.20.2.0/24", zone: "eu-west-1b" },
    { id: "subnet-0a1b2c3d4e5f60003", cidr: "10.20.3.0/24", zone: "eu-west-1c" },
];
const ARGS: AwsTargetArgs = { vpcId: "vpc-0a1b2c3d4e5f60000", subnets: SUBNETS, clientCidrs: ["10.20.64.0/18"] };

function facts(resources: RecordedResource[]): AwsFacts {
    return {
        resources,
        subnets: SUBNETS,
        secrets: byType(resources, "random:index/randomPassword:RandomPassword").map((r) => r.state.result as string),
        clientCidrs: ARGS.clientCidrs!,
        clientSecurityGroupIds: [],
    };
}

const clone = (resources: RecordedResource[]): RecordedResource[] => JSON.parse(JSON.stringify(resources));
const named = (resources: RecordedResource[], type: string, name: string) => resources.find((r) => r.type === type && r.name === name)!;

describe("AwsTarget on the prod stack (mocks)", () => {
    let run: StackRun;
    beforeAll(async () => {
        run = await runStack("prod");
    }, 120_000);

    it("declares one instance per member of every service: 19 hosts, 13 data volumes, two internal NLBs", () => {
        const members = byType(run.resources, "aws:ec2/instance:Instance").map((i) => i.name).sort();
        expect(members).toEqual(
            ["etcd-0", "etcd-1", "etcd-2", "mysql-0", "mysql-1", "mysql-2", "mysql-config-0", "mysql-proxy-0", "mysql-proxy-1", "mysql-reads-0", "mysql-reads-1",
             "pg-0", "pg-1", "pg-2", "pg-config-0", "pg-proxy-0", "pg-proxy-1", "pg-reads-0", "pg-reads-1"].sort(),
        );
        expect(byType(run.resources, "aws:ebs/volume:Volume")).toHaveLength(13);
        const nlbs = byType(run.resources, "aws:lb/loadBalancer:LoadBalancer");
        expect(nlbs.map((n) => [n.inputs.internal, n.inputs.loadBalancerType, n.inputs.enableCrossZoneLoadBalancing, n.inputs.subnets.length])).toEqual([
            [true, "network", true, 3],
            [true, "network", true, 3],
        ]);
        const counts: Record<string, number> = {};
        for (const r of run.resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
        console.log(`[aws] prod stack: ${run.resources.length} resources: ${Object.entries(counts).map(([t, n]) => `${t.split(":").pop()} ${n}`).join(", ")}`);
    });

    it("keeps every rule: zones, addresses, security groups, IMDSv2, encryption, secrets, names, health checks", () => {
        expect(awsViolations(facts(run.resources))).toEqual([]);
    });

    // Each rule must notice the mistake it exists for.
    const breakages: [string, (r: RecordedResource[]) => void][] = [
        ["every instance runs one member on its own network interface", (r) => (named(r, "aws:ec2/instance:Instance", "pg-1").inputs.tags["hadb:member"] = "pg-0")],
        ["members of a service are in distinct zones while there are zones left", (r) => (named(r, "aws:ec2/networkInterface:NetworkInterface", "pg-1-nic").inputs.subnetId = SUBNETS[0].id)],
        ["each data volume is in its instance's zone", (r) => (named(r, "aws:ebs/volume:Volume", "pg-2-data").inputs.availabilityZone = "eu-west-1a")],
        ["fixed private IPs are inside their subnet's usable range and unique", (r) => (named(r, "aws:ec2/networkInterface:NetworkInterface", "pg-0-nic").inputs.privateIps = ["10.20.1.2"])],
        ["fixed private IPs are inside their subnet's usable range and unique", (r) => (named(r, "aws:ec2/networkInterface:NetworkInterface", "etcd-0-nic").inputs.privateIps = named(r, "aws:ec2/networkInterface:NetworkInterface", "pg-0-nic").inputs.privateIps)],
        ["no ingress from the whole Internet, and only from hadb's groups or the named clients", (r) => {
            const rule = byType(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")[0];
            Object.assign(rule.inputs, { referencedSecurityGroupId: undefined, cidrIpv4: "0.0.0.0/0" });
        }],
        ["no ingress from the whole Internet, and only from hadb's groups or the named clients", (r) => {
            const rule = byType(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")[0];
            Object.assign(rule.inputs, { referencedSecurityGroupId: "sg-0ffffffffffffffff" });
        }],
        ["IMDSv2 only, no public address, no SSH key", (r) => (named(r, "aws:ec2/instance:Instance", "etcd-0").inputs.metadataOptions.httpTokens = "optional")],
        ["IMDSv2 only, no public address, no SSH key", (r) => (named(r, "aws:ec2/instance:Instance", "etcd-0").inputs.keyName = "admin")],
        ["disks are encrypted", (r) => (named(r, "aws:ebs/volume:Volume", "mysql-0-data").inputs.encrypted = false)],
        ["no secret in user data, which stays within 16 KB", (r) => {
            const instance = named(r, "aws:ec2/instance:Instance", "pg-0");
            const secret = byType(r, "random:index/randomPassword:RandomPassword")[0].state.result;
            instance.inputs.userData = instance.inputs.userData.replace("runcmd:", `bootcmd:\n  - echo ${secret}\nruncmd:`);
        }],
        ["files parameters holding secrets are SecureStrings", (r) => (named(r, "aws:ssm/parameter:Parameter", "pg-0-patroni.yml").inputs.type = "String")],
        ["instance roles read only their own parameters", (r) => {
            const policy = byType(r, "aws:iam/rolePolicy:RolePolicy")[0];
            const doc = JSON.parse(policy.inputs.policy);
            doc.Statement[0].Resource = ["arn:aws:ssm:eu-west-1:123456789012:parameter/*"];
            policy.inputs.policy = JSON.stringify(doc);
        }],
        ["names within AWS's limits", (r) => (byType(r, "aws:lb/targetGroup:TargetGroup")[0].inputs.name = "hadb-production-postgres-proxy-5000")],
        ["health checks and idle timeouts within AWS's ranges", (r) => (byType(r, "aws:lb/targetGroup:TargetGroup")[0].inputs.healthCheck.interval = 1)],
        ["health checks and idle timeouts within AWS's ranges", (r) => (byType(r, "aws:lb/listener:Listener")[0].inputs.tcpIdleTimeoutSeconds = 10)],
    ];
    it.each(breakages)("the rule “%s” notices its violation", (rule, breakIt) => {
        const broken = clone(run.resources);
        breakIt(broken);
        expect(AWS_RULES[rule](facts(broken)).length, rule).toBeGreaterThan(0);
    });

    it("member ports admit exactly the services the plan names: etcd peers only from etcd, Group Replication only from the group", () => {
        const rules = byType(run.resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
        const into = (group: string, port: number) =>
            rules.filter((r) => r.inputs.securityGroupId === `${group}-members-id` && r.inputs.fromPort === port).map((r) => r.inputs.referencedSecurityGroupId ?? r.inputs.cidrIpv4).sort();
        expect(into("etcd", 2380)).toEqual(["etcd-members-id"]);
        expect(into("etcd", 2379)).toEqual(["etcd-members-id", "pg-members-id", "pg-reads-members-id"]);
        expect(into("mysql", 33061)).toEqual(["mysql-members-id"]);
        // PostgreSQL: members, the fleet, proxies and configurators (by kind, as on Kubernetes), the named client range.
        expect(into("pg", 5432)).toEqual(["10.20.64.0/18", "mysql-config-members-id", "mysql-proxy-members-id", "pg-config-members-id", "pg-members-id", "pg-proxy-members-id", "pg-reads-members-id"].sort());
        // The proxies' endpoints: their own NLB and the client range, nothing else.
        expect(into("pg-proxy", 5000)).toEqual(["10.20.64.0/18", "pg-proxy-balancer-id"]);
    });

    it("every member's host runs it with the Docker target's own container arguments, its secrets read from SSM", () => {
        const pg0 = named(run.resources, "aws:ec2/instance:Instance", "pg-0");
        const { document } = readUserData(pg0.inputs.userData);
        expect(document.image).toBe("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hadb-prod/postgres:latest");
        expect(document.run).toContain("--network");
        expect(document.run.slice(document.run.indexOf("--network"), document.run.indexOf("--network") + 2)).toEqual(["--network", "host"]);
        // The member's own patroni.yml (passwords inside) is a SecureString, named with its version so a change replaces the host.
        const patroni = document.files.find((f) => f.name === "patroni.yml")!;
        expect(patroni).toMatchObject({ parameter: "/hadb-prod/pg/pg-0/patroni.yml", version: 1 });
        expect(patroni.content).toBeUndefined();
        // Files the servers take online are read at boot without a version: changing them never replaces a host.
        const online = document.files.filter((f) => f.parameter && f.version === undefined).map((f) => f.name);
        expect(online).toContain("bootstrap.sql");
        expect(document.volumes).toEqual([{ name: "data", device: expect.stringMatching(/^\/dev\/disk\/by-id\/nvme-Amazon_Elastic_Block_Store_vol[0-9a-f]{17}$/), directory: "/var/lib/hadb/pg-0/data" }]);
        expect(document.readyParameter).toBe("/hadb-prod/pg/ready/pg-0");
    });

    it("rolls one member at a time: each instance waits for the one before it, and the NLB targets fixed IPs that survive replacement", () => {
        const instances = byType(run.resources, "aws:ec2/instance:Instance");
        for (const service of ["etcd", "pg", "mysql"]) {
            for (const i of [1, 2]) {
                const previous = named(run.resources, "aws:ec2/instance:Instance", `${service}-${i - 1}`);
                expect(named(run.resources, "aws:ec2/instance:Instance", `${service}-${i}`).dependencies, `${service}-${i}`).toContain(previous.urn);
            }
        }
        for (const i of instances) {
            expect(i.options?.deleteBeforeReplace, i.name).toBe(true);
            expect(i.inputs.userDataReplaceOnChange, i.name).toBe(true);
            expect(i.options?.ignoreChanges, i.name).toContain("ami");
        }
        const targets = byType(run.resources, "aws:lb/targetGroupAttachment:TargetGroupAttachment").filter((a) => a.name.startsWith("pg-proxy-read-write"));
        const ips = ["pg-proxy-0", "pg-proxy-1"].map((m) => named(run.resources, "aws:ec2/networkInterface:NetworkInterface", `${m}-nic`).inputs.privateIps[0]);
        expect(targets.map((t) => t.inputs.targetId).sort()).toEqual(ips.sort());
        // Data outlives members: volumes are retained.
        for (const v of byType(run.resources, "aws:ebs/volume:Volume")) expect(v.options?.retainOnDelete, v.name).toBe(true);
    });

    it("exports the NLB endpoints as secret URLs", () => {
        const outputs = run.outputs as { postgres: { rwUrl: string } };
        expect(outputs.postgres.rwUrl).toMatch(/^postgresql:\/\/app:.+@internal-hadb-prod-pg-proxy-0123456789\.elb\.eu-west-1\.amazonaws\.com:5000\/app$/);
    });
});

describe("AwsTarget arguments", () => {
    const refused: [string, Partial<AwsTargetArgs>, string][] = [
        ["two zones", { subnets: SUBNETS.slice(0, 2) }, "subnets"],
        ["two subnets in one zone", { subnets: [...SUBNETS, { ...SUBNETS[0], id: "subnet-0a1b2c3d4e5f60009", cidr: "10.20.9.0/24" }] }, "subnets"],
        ["a bad VPC id", { vpcId: "vpc-xyz" }, "vpcId"],
        ["a bad subnet CIDR", { subnets: [{ ...SUBNETS[0], cidr: "10.20.1.0/30" }, SUBNETS[1], SUBNETS[2]] }, "subnets"],
        ["clients from everywhere", { clientCidrs: ["0.0.0.0/0"] }, "clientCidrs"],
        ["io2 without IOPS", { volumes: { type: "io2" } }, "volumes.iops"],
        ["gp3 IOPS out of range", { volumes: { iops: 100 } }, "volumes.iops"],
        ["a pinned address outside the member's subnet", { addresses: { "pg-1": "10.20.1.50" } }, "addresses.pg-1"],
        ["an idle timeout below the NLB's minimum", { idleTimeoutSeconds: 30 }, "idleTimeoutSeconds"],
        ["a long name prefix", { namePrefix: "production-shop" }, "namePrefix"],
        ["an unknown kind of instance", { instanceTypes: { redis: "m6i.large" } as never }, "instanceTypes.redis"],
    ];
    it.each(refused)("refuses %s, naming the argument and the fix", (_what, change, argument) => {
        expect(() => validateAwsTargetArgs("aws", { ...ARGS, ...change })).toThrow(new RegExp(`argument \`${argument.replace(".", "\\.")}\`.*Fix: `));
    });

    it("accepts one zone when told it is a development account", () => {
        expect(() => validateAwsTargetArgs("aws", { ...ARGS, subnets: SUBNETS.slice(0, 1), allowSingleZone: true })).not.toThrow();
    });

    it("refuses bad arguments as a ResourceError under the target, before any child", async () => {
        const { resources, error } = await declare(() => new AwsTarget("aws", { ...ARGS, subnets: SUBNETS.slice(0, 1) }));
        expect(error).toBeInstanceOf(pulumi.ResourceError);
        expect((error as Error).message).toContain("allowSingleZone: true");
        const target = resources.find((r) => r.type === "hadb:index:AwsTarget")!;
        expect(resources.filter((r) => r.parent === target.urn)).toEqual([]);
    });

    it("refuses a component whose load balancer or target group names AWS would refuse, before any child", async () => {
        const { resources, error } = await declare(() => {
            const target = new AwsTarget("aws", ARGS);
            const etcd = new EtcdCluster("etcd", { target });
            const pg = new PostgresCluster("pg", { target, etcdHosts: etcd.hosts, members: 3 });
            new HaproxyFrontend("orders-primary-proxy", { target, backends: pg.backends });
        });
        expect(error).toBeInstanceOf(pulumi.ResourceError);
        expect((error as Error).message).toMatch(/target group name "hadb-dev-orders-primary-proxy-5000" would be 34 characters, above AWS's 32.*Fix: /);
        const proxy = resources.find((r) => r.type === "hadb:index:HaproxyFrontend")!;
        expect(resources.filter((r) => r.parent === proxy.urn)).toEqual([]);
    });
});

describe("AWS addresses and rules (pure)", () => {
    it("places member i in subnet i mod n at an address that depends on its name only", () => {
        const a = new AddressBook(SUBNETS, 16, {});
        const b = new AddressBook(SUBNETS, 16, {});
        b.place("mysql-0"); // another service placed first changes nothing for pg, barring a collision
        expect(["pg-0", "pg-1", "pg-2", "pg-3"].map((m) => a.place(m).subnet.zone)).toEqual(["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1a"]);
        expect(a.place("pg-1").ip).toBe(b.place("pg-1").ip);
        expect(a.place("pg-1").ip).toMatch(/^10\.20\.2\.(\d+)$/);
        expect(Number(a.place("pg-1").ip.split(".")[3])).toBeGreaterThanOrEqual(16);
        expect(new AddressBook(SUBNETS, 16, { "pg-1": "10.20.2.99" }).place("pg-1").ip).toBe("10.20.2.99");
    });

    it("gives every member of a full /27 its own address and says so when the subnet is full", () => {
        const small = [{ ...SUBNETS[0], cidr: "10.20.1.0/27" }];
        const book = new AddressBook(small, 16, {});
        const ips = Array.from({ length: 15 }, (_, i) => book.place(`m${i}-0`).ip);
        expect(new Set(ips).size).toBe(15);
        expect(() => book.place("m15-0")).toThrow(/no free address/);
    });

    it("produces each rule between two services once, when the later one is deployed", () => {
        const etcd = { name: "etcd", component: "etcd" as const, ports: [{ name: "client", port: 2379, allow: ["members", "postgres"] as const }], loadBalanced: false };
        const pg = { name: "pg", component: "postgres" as const, ports: [{ name: "postgres", port: 5432, allow: ["members", "clients"] as const }], loadBalanced: false };
        const rules = [...ingressRules([], etcd, { securityGroupIds: [], cidrs: [] }), ...ingressRules([etcd], pg, { securityGroupIds: ["sg-0a1b2c3d4e5f60000"], cidrs: ["10.1.0.0/16"] })];
        expect(rules).toEqual([
            { service: "etcd", port: 2379, from: { service: "etcd" } },
            { service: "pg", port: 5432, from: { service: "pg" } },
            { service: "pg", port: 5432, from: { securityGroupId: "sg-0a1b2c3d4e5f60000" } },
            { service: "pg", port: 5432, from: { cidr: "10.1.0.0/16" } },
            { service: "etcd", port: 2379, from: { service: "pg" } },
        ]);
    });
});

describe("memberContainer: one definition for a Docker container and an EC2 host's docker run", () => {
    it("runs a member on a host with the Docker target's entrypoint, arguments, health check and mounts", async () => {
        const dev = await runStack("dev");
        const prod = await runStack("prod");
        for (const member of ["etcd-1", "pg-1", "mysql-1", "pg-proxy-0", "pg-config-0"]) {
            const container = named(dev.resources, "docker:index/container:Container", member).inputs;
            const run = readUserData(named(prod.resources, "aws:ec2/instance:Instance", member).inputs.userData).document.run;
            const after = (flag: string) => run[run.indexOf(flag) + 1];
            const image = run.findIndex((a) => a.startsWith("123456789012.dkr.ecr."));
            // Same program and arguments: the entrypoint's first word as --entrypoint, the rest after the image.
            const program = run.includes("--entrypoint") ? [after("--entrypoint"), ...run.slice(image + 1)] : run.slice(image + 1);
            expect(program, member).toEqual([...(container.entrypoints ?? []), ...(container.command ?? [])]);
            const withoutTimeout = (cmd: string) => cmd.replace(/--max-time \d+ /, "");
            expect(withoutTimeout(after("--health-cmd")), member).toBe(withoutTimeout(container.healthcheck.tests.slice(1).join(" ")));
            const mounts = run.filter((_a, i) => run[i - 1] === "--volume");
            expect(mounts[0], member).toBe(`/etc/hadb-host/${member}/files:/etc/hadb:ro`);
            expect(mounts.slice(1).map((v) => v.split(":")[1]).sort(), member).toEqual((container.volumes ?? []).map((v: { containerPath: string }) => v.containerPath).sort());
            expect(run.slice(run.indexOf("--network"), run.indexOf("--network") + 2)).toEqual(["--network", "host"]);
        }
    }, 120_000);

    it("quotes health commands for the shell Docker runs them with, and keeps the environment", async () => {
        const c = memberContainer(
            {
                name: "x",
                component: "haproxy",
                image: "haproxy",
                template: {
                    env: { A: "b c" },
                    entrypoint: ["/bin/prog", "--flag"],
                    args: ["arg"],
                    files: [],
                    ports: [],
                    volumes: [],
                    checks: { readiness: { command: ["sh", "-c", "test -f '/tmp/ready'"], periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 3 } },
                    compute: { cpuMillis: { request: 1 }, memoryMiB: { request: 1, limit: 1 } },
                    stopGraceSeconds: 5,
                },
                members: [{ name: "x-0", ordinal: 0, files: [] }],
                endpoints: [],
                spread: { hosts: "required", zones: "preferred" },
                maxUnavailable: 1,
            },
            { name: "x-0", ordinal: 0, files: [] },
        );
        const args = await new Promise<string[]>((resolve) => dockerRunArgs(c, "img", { filesDir: "/f", volumesDir: "/v" }).apply(resolve));
        expect(args[args.indexOf("--health-cmd") + 1]).toBe("sh -c 'test -f '\\''/tmp/ready'\\'''");
        expect(args.slice(args.indexOf("--entrypoint"))).toEqual(["--entrypoint", "/bin/prog", "img", "--flag", "arg"]);
        expect(args.slice(args.indexOf("--env"), args.indexOf("--env") + 2)).toEqual(["--env", "A=b c"]);
    });
});

describe("nlb-direct: an NLB straight at the members (hadb:awsFrontend)", () => {
    it("replaces the HAProxy tier by target groups of the members' fixed IPs checked on their role paths, keeping every rule", async () => {
        const run = await runStack("prod", { config: { "hadb:awsFrontend": "nlb-direct" } });
        expect(awsViolations(facts(run.resources))).toEqual([]);
        expect(byType(run.resources, "aws:ec2/instance:Instance").filter((i) => i.name.includes("proxy"))).toEqual([]);
        const group = named(run.resources, "aws:lb/targetGroup:TargetGroup", "pg-nlb-read-write").inputs;
        expect(group).toMatchObject({ port: 5432, targetType: "ip", healthCheck: { protocol: "HTTP", port: "8008", path: "/primary", matcher: "200", interval: 5, healthyThreshold: 2, unhealthyThreshold: 2 }, targetHealthStates: [{ enableUnhealthyConnectionTermination: true }] });
        const ro = byType(run.resources, "aws:lb/targetGroupAttachment:TargetGroupAttachment").filter((a) => a.name.startsWith("pg-nlb-read-only-")).map((a) => a.name.replace("pg-nlb-read-only-", ""));
        // Read-only: members and the read replica; the analytics replica only behind the analytics endpoint.
        expect(ro.sort()).toEqual(["pg-0", "pg-1", "pg-2", "pg-reads-0"]);
        expect(byType(run.resources, "aws:lb/targetGroupAttachment:TargetGroupAttachment").filter((a) => a.name.startsWith("pg-nlb-analytics-")).map((a) => a.name)).toEqual(["pg-nlb-analytics-pg-reads-1"]);
        // The members admit the NLB's group on SQL and on the role-check port, and nothing new from elsewhere.
        const fromNlb = byType(run.resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").filter((r) => r.inputs.referencedSecurityGroupId === "pg-nlb-balancer-id");
        expect(fromNlb.map((r) => `${r.inputs.securityGroupId}:${r.inputs.fromPort}`).sort()).toEqual(["pg-members-id:5432", "pg-members-id:8008", "pg-reads-members-id:5432", "pg-reads-members-id:8008"]);
        expect((run.outputs as { postgres: { analyticsUrl: string } }).postgres.analyticsUrl).toMatch(/pg-nlb-0123456789\.elb\.eu-west-1\.amazonaws\.com:5002\/app$/);
        expect((run.outputs as { postgres: { rwUrl: string } }).postgres.rwUrl).toMatch(/@internal-hadb-prod-pg-nlb-0123456789\.elb\.eu-west-1\.amazonaws\.com:5000\/app$/);
    }, 120_000);

    it("is refused off AWS and for multi-primary groups, naming the fix", async () => {
        await expect(runStack("dev", { config: { "hadb:awsFrontend": "nlb-direct" } })).rejects.toThrow(/hadb:awsFrontend.*Fix: use "haproxy", or "nlb-direct" with target aws/);
        const { error } = await declare(() => {
            const target = new AwsTarget("aws", ARGS);
            const mysql = new MySqlCluster("mysql", { target, members: 3, mode: "multi-primary" });
            new NlbFrontend("mysql-nlb", { target, backends: mysql.backends });
        });
        expect(error).toBeInstanceOf(pulumi.ResourceError);
        expect((error as Error).message).toMatch(/argument `backends`.*multi-primary.*Fix: use HaproxyFrontend/);
    }, 120_000);
});
