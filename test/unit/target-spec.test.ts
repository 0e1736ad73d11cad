import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { DockerTarget, EtcdCluster, HaproxyFrontend, MySqlCluster, PostgresCluster, TargetSpec } from "../../components";
import { byType, declare, expectRefused } from "./helpers";

const LOCAL: TargetSpec = { name: "local", docker: { publishAddress: "127.0.0.1" } };

/** Asserts a ResourceError under the component whose message contains every fragment, with no child declared. */
async function expectRefusal(build: () => unknown, componentType: string, fragments: string[]): Promise<string> {
    const { resources, error } = await declare(build);
    expect(error).toBeInstanceOf(pulumi.ResourceError);
    const message = (error as Error).message;
    for (const f of fragments) expect(message).toContain(f);
    expect(message).toMatch(/Fix: .+/);
    const component = resources.find((r) => r.type === componentType)!;
    expect(component, `${componentType} itself is registered`).toBeDefined();
    expect(resources.filter((r) => r.parent === component.urn)).toEqual([]);
    return message;
}

describe("targetSpec: placing components with plain data", () => {
    it("declares one shared target per spec, beside the components, used by a cluster and its proxy", async () => {
        const { resources, error } = await declare(() => {
            const pg = new PostgresCluster("pg", { targetSpec: LOCAL, members: 2 });
            new HaproxyFrontend("pg-proxy", { targetSpec: { docker: { publishAddress: "127.0.0.1" }, name: "local" }, backends: pg.backends, instances: 1 });
            new MySqlCluster("mysql", { targetSpec: LOCAL });
        });
        expect(error).toBeUndefined();
        const targets = byType(resources, "hadb:index:DockerTarget");
        expect(targets.map((t) => t.name)).toEqual(["local"]);
        expect(targets[0].parent).toBeUndefined();
        expect(byType(resources, "docker:index/network:Network")).toHaveLength(1);
        // Each image is built once, whichever component asked first.
        expect(byType(resources, "docker:index/image:Image").map((i) => i.name).sort()).toEqual(["local-etcd-image", "local-haproxy-image", "local-mysql-image", "local-postgres-image"]);
        const networks = new Set(byType(resources, "docker:index/container:Container").map((c) => c.inputs.networksAdvanced[0].name));
        expect([...networks]).toEqual(["hadb-dev"]);
    });

    it("places a component on Kubernetes from a spec, and keeps different specs apart by name", async () => {
        const { resources, error } = await declare(() => {
            new EtcdCluster("etcd", { targetSpec: { kubernetes: { namespace: "db" } } });
            new EtcdCluster("etcd-local", { targetSpec: { docker: {} } });
        });
        expect(error).toBeUndefined();
        expect(byType(resources, "hadb:index:KubernetesTarget").map((t) => t.name)).toEqual(["kubernetes"]);
        expect(byType(resources, "hadb:index:DockerTarget").map((t) => t.name)).toEqual(["docker"]);
        expect(byType(resources, "kubernetes:apps/v1:StatefulSet")[0].inputs.metadata.namespace).toBe("db");
    });

    it("shares a target within one program run only", async () => {
        for (let run = 0; run < 2; run++) {
            const { resources } = await declare(() => new EtcdCluster("etcd", { targetSpec: LOCAL, members: 1 }));
            expect(byType(resources, "hadb:index:DockerTarget"), `run ${run}`).toHaveLength(1);
        }
    });

    it("refuses both target and targetSpec, and neither, naming both", async () => {
        const both = await expectRefusal(() => new EtcdCluster("etcd", { target: new DockerTarget("local"), targetSpec: LOCAL }), "hadb:index:EtcdCluster", [
            "`targetSpec`",
            "`target` is given too",
        ]);
        expect(both).toContain('EtcdCluster "etcd"');
        await expectRefusal(() => new PostgresCluster("pg", {}), "hadb:index:PostgresCluster", ["`target` is missing", "`targetSpec`"]);
        await expectRefusal(() => new MySqlCluster("mysql", {}), "hadb:index:MySqlCluster", ["`target` is missing", "`targetSpec`"]);
    });

    it("refuses plain data as a target object", async () => {
        const plain = { kind: "docker", clusterRanges: ["172.29.0.0/24"] };
        await expectRefused(() => new EtcdCluster("etcd", { target: plain as never }), "hadb:index:EtcdCluster", "target", plain);
    });

    it("refuses a spec naming both or neither kind of target, with the target's own checks under targetSpec", async () => {
        await expectRefusal(() => new EtcdCluster("etcd", { targetSpec: { docker: {}, kubernetes: {} } }), "hadb:index:EtcdCluster", ["`targetSpec`", "names `docker` and `kubernetes`"]);
        await expectRefusal(() => new EtcdCluster("etcd", { targetSpec: { name: "x" } }), "hadb:index:EtcdCluster", ["`targetSpec`", "none of `docker`, `kubernetes` and `aws`"]);
        await expectRefused(() => new EtcdCluster("etcd", { targetSpec: { aws: { vpcId: "vpc-1", subnets: [] } } }), "hadb:index:EtcdCluster", "targetSpec.aws.vpcId", "vpc-1");
        await expectRefused(() => new EtcdCluster("etcd", { targetSpec: { docker: { subnet: "10.0.0.0/8" } } }), "hadb:index:EtcdCluster", "targetSpec.docker.subnet", "10.0.0.0/8");
        await expectRefused(
            () => new EtcdCluster("etcd", { targetSpec: { kubernetes: { frontendServiceType: "LoadBalancer" } } }),
            "hadb:index:EtcdCluster",
            "targetSpec.kubernetes.clientCidrs",
            [],
        );
        await expectRefused(() => new EtcdCluster("etcd", { targetSpec: { name: "Local", docker: {} } }), "hadb:index:EtcdCluster", "targetSpec.name", "Local");
    });

    it("refuses a second, different spec under a name already declared", async () => {
        let second: unknown;
        const { error } = await declare(() => {
            new EtcdCluster("etcd", { targetSpec: LOCAL, members: 1 });
            try {
                new EtcdCluster("etcd2", { targetSpec: { name: "local", docker: { subnet: "172.30.0.0/24" } }, members: 1 });
            } catch (err) {
                second = err;
            }
        });
        expect(error).toBeUndefined();
        expect(second).toBeInstanceOf(pulumi.ResourceError);
        expect((second as Error).message).toMatch(/`targetSpec.name` is "local": another component of this deployment declared the target "local" from a different spec/);
    });

    it("plans only with a target object", () => {
        expect(() => EtcdCluster.plan("etcd", { targetSpec: LOCAL })).toThrow(/`target`.*planning without declaring anything needs a target object/);
    });
});
