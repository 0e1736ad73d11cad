import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { DockerTarget, PostgresCluster } from "../../components";
import { runStack } from "../harness/mockRun";
import { PROJECT_ROOT } from "../harness/stackConfig";
import { byType, declare } from "./helpers";

// What a real `pulumi up` with @pulumi/docker needs from the program, read from the provider's source
// (../shared/design/docker-provider-fidelity.md): each rule here is one that the provider enforces or a
// behaviour users rely on for a change to roll one member at a time.
describe("DockerTarget and a real pulumi up", () => {
    it("builds with the classic builder explicitly (the provider's default is BuildKit)", async () => {
        const { resources } = await runStack("dev");
        for (const image of byType(resources, "docker:index/image:Image")) expect(image.inputs.build.builderVersion, image.name).toBe("BuilderV1");
    });

    it("every member gives up on a name lookup after 1 s and one retry (a cut-off member must notice within its bounds)", async () => {
        const { resources } = await runStack("dev");
        const all = byType(resources, "docker:index/container:Container");
        expect(all.length).toBeGreaterThan(10);
        for (const c of all) expect(c.inputs.dnsOpts, c.name).toEqual(["timeout:1", "attempts:2"]);
    });

    it("keeps data volumes: no labels (a changed label would replace them), retained on delete unless destroyData", async () => {
        const { resources } = await runStack("dev");
        const volumes = byType(resources, "docker:index/volume:Volume");
        // etcd, PostgreSQL and MySQL members, and each engine's two fleet replicas.
        expect(volumes.length).toBe(13);
        for (const v of volumes) {
            expect(Object.keys(v.inputs).sort(), v.name).toEqual(["name"]);
            expect(v.options!.retainOnDelete, v.name).toBe(true);
        }
        const throwaway = await declare(() => new PostgresCluster("pg", { target: new DockerTarget("local", { destroyData: true }), members: 2 }));
        expect(byType(throwaway.resources, "docker:index/volume:Volume").every((v) => v.options!.retainOnDelete === false)).toBe(true);
    });

    it("replaces a member delete-before-replace, gracefully, and only once the one before it is ready", async () => {
        const { resources } = await runStack("dev");
        const members = byType(resources, "docker:index/container:Container").filter((c) => /-\d$/.test(c.inputs.name) && !c.inputs.name.includes("config"));
        for (const c of members) {
            expect(c.options!.deleteBeforeReplace, c.name).toBe(true);
            expect(c.inputs.destroyGraceSeconds, c.name).toBe(c.inputs.stopTimeout);
            expect(c.inputs.destroyGraceSeconds, c.name).toBeGreaterThanOrEqual(10);
            expect(c.inputs.wait, c.name).toBe(true);
            // The provider stores a changed health check without applying it.
            expect(c.options!.replaceOnChanges, c.name).toEqual(["healthcheck"]);
            // Durations in the form the provider reads back, so a second up sees no change.
            for (const field of ["interval", "timeout", "startPeriod"]) expect(c.inputs.healthcheck[field], `${c.name} ${field}`).toMatch(/^(\d+h)?(\d+m)?\d+s$/);
            // Never an empty upload (the provider refuses one).
            expect(c.inputs.uploads.every((u: any) => typeof u.content === "string" && u.content.length > 0), c.name).toBe(true);
        }
        const chained = (cluster: string) => members.filter((c) => new RegExp(`^${cluster}-\\d$`).test(c.name));
        for (const cluster of ["etcd", "pg", "mysql"]) {
            expect(chained(cluster), cluster).toHaveLength(3);
            const [first, ...rest] = chained(cluster);
            rest.forEach((c, i) => expect(c.dependencies, c.name).toContain((i === 0 ? first : rest[i - 1]).urn));
        }
    });

    it("prepares the machine from debootstrap's own default mirror unless DEBIAN_MIRROR names another", () => {
        const script = fs.readFileSync(path.join(PROJECT_ROOT, "scripts", "prepare-machine.sh"), "utf8");
        expect(script).not.toMatch(/https?:\/\//);
        expect(script).toContain('${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"}');
    });
});
