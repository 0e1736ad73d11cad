import { describe, expect, it } from "vitest";
import { runStack } from "../harness/mockRun";
import { byType } from "./helpers";

describe("dev stack program", () => {
    it.each([true, false])("runs without error (preview=%s)", async (preview) => {
        const run = await runStack("dev", { preview });
        expect(byType(run.resources, "hadb:etcd:EtcdCluster")).toHaveLength(1);
    });

    it("declares one network, one etcd image and a container plus a data volume per etcd member", async () => {
        const { resources } = await runStack("dev");
        const containers = byType(resources, "docker:index/container:Container");
        const volumes = byType(resources, "docker:index/volume:Volume");
        const [network] = byType(resources, "docker:index/network:Network");
        const images = byType(resources, "docker:index/image:Image");
        const etcd = byType(resources, "hadb:etcd:EtcdCluster")[0];
        const target = byType(resources, "hadb:docker:Target")[0];

        expect(containers.map((c) => c.inputs.name)).toEqual(["hadb-dev-etcd-0", "hadb-dev-etcd-1", "hadb-dev-etcd-2"]);
        expect(volumes.map((v) => v.inputs.name)).toEqual(["hadb-dev-etcd-0-data", "hadb-dev-etcd-1-data", "hadb-dev-etcd-2-data"]);
        expect(images.map((i) => i.inputs.imageName)).toEqual(["hadb/etcd:local"]);
        expect(images[0].inputs.skipPush).toBe(true);
        expect(images[0].inputs.build.args).toEqual({ BASE_IMAGE: "debian:trixie-slim" });
        expect(network.inputs.ipamConfigs).toEqual([{ subnet: "172.29.0.0/24" }]);

        // Children hang under their component; containers wait for their image, network and volume.
        expect(network.parent).toBe(target.urn);
        expect(images[0].parent).toBe(target.urn);
        for (const [i, c] of containers.entries()) {
            expect(c.parent).toBe(etcd.urn);
            expect(c.dependencies).toEqual(expect.arrayContaining([images[0].urn, network.urn, volumes[i].urn]));
            expect(c.inputs.networksAdvanced).toEqual([{ name: "hadb-dev", aliases: [`etcd-${i}`] }]);
            expect(c.inputs.volumes).toEqual([{ volumeName: `hadb-dev-etcd-${i}-data`, containerPath: "/var/lib/etcd" }]);
            expect(c.inputs.healthcheck.tests[0]).toBe("CMD");
            expect(c.inputs.restart).toBe("unless-stopped");
        }
    });

    it("publishes only on 127.0.0.1 and only the client ports", async () => {
        const { resources } = await runStack("dev");
        const ports = byType(resources, "docker:index/container:Container").flatMap((c) => c.inputs.ports ?? []);
        expect(ports).toEqual([23790, 23791, 23792].map((external) => ({ internal: 2379, external, ip: "127.0.0.1", protocol: "tcp" })));
    });

    it("exports the published etcd endpoints and member names", async () => {
        const { outputs } = await runStack("dev");
        expect(outputs).toEqual({
            etcd: {
                endpoints: ["http://127.0.0.1:23790", "http://127.0.0.1:23791", "http://127.0.0.1:23792"],
                members: ["hadb-dev-etcd-0", "hadb-dev-etcd-1", "hadb-dev-etcd-2"],
            },
        });
    });

    it("follows stack config: member count and base image", async () => {
        const { resources } = await runStack("dev", { config: { "hadb:etcdMembers": 5, "hadb:baseImageTrixie": "hadb-base:trixie" } });
        expect(byType(resources, "docker:index/container:Container")).toHaveLength(5);
        expect(byType(resources, "docker:index/image:Image")[0].inputs.build.args.BASE_IMAGE).toBe("hadb-base:trixie");
    });

    it("fails on an unknown preset with the config key named", async () => {
        await expect(runStack("dev", { config: { "hadb:preset": "cloud" } })).rejects.toThrow(/hadb:preset.*"cloud".*Fix: use one of local/);
    });
});
