import { beforeAll, describe, expect, it } from "vitest";
import { HarnessState, preview, simulatedProvider, simulateUp } from "../harness/index";
import { UNKNOWN } from "../harness/mockRun";
import { formatPlan, Goal, pathCovers, plan, Planner, previewOutputs, StateResource, Step } from "../harness/plan";
import { CONTAINER, goDurationString, IMAGE, NETWORK, parseGoDuration, RANDOM_PASSWORD, readBack, VOLUME } from "../harness/schema";

const urn = (type: string, name: string) => `urn:pulumi:dev::hadb::${type}::${name}`;

function goal(type: string, name: string, inputs: Record<string, any>, extra: Partial<Goal> = {}): Goal {
    return {
        urn: urn(type, name),
        type,
        name,
        custom: true,
        inputs,
        secretPaths: [],
        dependencies: [],
        propertyDependencies: {},
        ...extra,
        options: { replaceOnChanges: [], ignoreChanges: [], ...extra.options },
    };
}

/** The state an `up` of this goal would have left: outputs as the provider reads them back. */
function deployed(g: Goal, computed: Record<string, any> = {}): StateResource {
    return { ...g, id: `${g.name}-id`, outputs: { ...readBack(g.type, g.inputs), ...computed } };
}

const HEALTH = { tests: ["CMD", "true"], interval: "2s", timeout: "2s", retries: 3, startPeriod: "2m0s", startInterval: "0s" };

function container(name: string, extra: Record<string, any> = {}, opts: Partial<Goal> = {}): Goal {
    return goal(CONTAINER, name, { name: `hadb-dev-${name}`, image: "sha256:aaa", envs: ["A=1"], restart: "unless-stopped", healthcheck: HEALTH, ...extra }, opts);
}

/** The step a registration got (a create-before-delete replacement also has a delete of the old instance at the end). */
const only = (p: { steps: readonly Step[] }, name: string) => {
    const registrations = p.steps.filter((s) => s.name === name && s.goal);
    const found = registrations.length ? registrations : p.steps.filter((s) => s.name === name);
    expect(found, name).toHaveLength(1);
    return found[0];
};

describe("harness plan: one resource", () => {
    it("unchanged inputs are `same`", () => {
        const c = container("pg-0");
        expect(only(plan([deployed(c)], [c]), "pg-0").op).toBe("same");
    });

    it("a new resource is `create`", () => {
        expect(only(plan([], [container("pg-0")]), "pg-0").op).toBe("create");
    });

    it("a restart-policy change is an in-place update", () => {
        const c = container("pg-0");
        const step = only(plan([deployed(c)], [container("pg-0", { restart: "always" })]), "pg-0");
        expect(step.op).toBe("update");
        expect(step.changes).toEqual([expect.objectContaining({ path: "restart", old: "unless-stopped", new: "always", forcesReplace: false })]);
    });

    it("an env change replaces a container delete-before-replace, as pulumi-docker asks for containers", () => {
        const c = container("pg-0");
        const step = only(plan([deployed(c)], [container("pg-0", { envs: ["A=2"] })]), "pg-0");
        expect(step.op).toBe("replace");
        expect(step.mode).toBe("delete-before-replace");
        expect(step.changes).toEqual([expect.objectContaining({ path: "envs[0]", forcesReplace: true })]);
        expect(step.reasons.join()).toMatch(/provider replaces containers delete-before-replace/);
        expect(step.error).toBeUndefined();
    });

    it("a create-before-delete replace of a container with a fixed name collides (pulumi-docker#1356)", () => {
        const old = container("pg-0", {}, { options: { deleteBeforeReplace: false, replaceOnChanges: [], ignoreChanges: [] } });
        const next = container("pg-0", { envs: ["A=2"] }, { options: { deleteBeforeReplace: false, replaceOnChanges: [], ignoreChanges: [] } });
        const step = only(plan([deployed(old)], [next]), "pg-0");
        expect(step.mode).toBe("create-before-delete");
        expect(step.error).toMatch(/Conflict\. The container name "\/hadb-dev-pg-0" is already in use; pulumi-docker#1356/);
    });

    it("a create-before-delete replace with a new name still collides on a host port", () => {
        const ports = [{ internal: 5432, external: 5000, ip: "127.0.0.1", protocol: "tcp" }];
        const cbd = { options: { deleteBeforeReplace: false, replaceOnChanges: [], ignoreChanges: [] } };
        const step = only(plan([deployed(container("proxy", { ports }, cbd))], [container("proxy", { ports, name: "hadb-dev-proxy-b" }, cbd)]), "proxy");
        expect(step.error).toMatch(/still binds 127\.0\.0\.1:5000\/tcp.*port is already allocated/);
    });

    it("a healthcheck change is an update the provider only stores, unless replaceOnChanges lists it", () => {
        const c = container("pg-0");
        const changed = { healthcheck: { ...HEALTH, interval: "5s" } };
        const step = only(plan([deployed(c)], [container("pg-0", changed)]), "pg-0");
        expect(step.op).toBe("update");
        expect(step.changes.map((ch) => ch.path)).toEqual(["healthcheck.interval"]);
        const forced = only(plan([deployed(c)], [container("pg-0", changed, { options: { replaceOnChanges: ["healthcheck"], ignoreChanges: [] } })]), "pg-0");
        expect(forced.op).toBe("replace");
        expect(forced.changes[0].forcesReplace).toBe(true);
    });

    it("compares with the durations the provider read back: \"120s\" is stored as \"2m0s\", a spurious update", () => {
        expect(goDurationString(parseGoDuration("120s"))).toBe("2m0s");
        expect(goDurationString(parseGoDuration("90s"))).toBe("1m30s");
        expect(goDurationString(parseGoDuration("3600s"))).toBe("1h0m0s");
        expect(goDurationString(parseGoDuration("500ms"))).toBe("500ms");
        const c = container("pg-0", { healthcheck: { ...HEALTH, startPeriod: "120s" } });
        const step = only(plan([deployed(c)], [c]), "pg-0");
        expect(step.op).toBe("update");
        expect(step.changes).toEqual([expect.objectContaining({ path: "healthcheck.startPeriod", old: "2m0s", new: "120s", forcesReplace: false })]);
    });

    it("ignoreChanges keeps the old value of a listed path", () => {
        const c = container("pg-0");
        const step = only(plan([deployed(c)], [container("pg-0", { envs: ["A=2"] }, { options: { ignoreChanges: ["envs"], replaceOnChanges: [] } })]), "pg-0");
        expect(step.op).toBe("same");
        expect(step.inputs!.envs).toEqual(["A=1"]);
    });

    it("shows secret inputs as [secret]", () => {
        const c = container("pg-0", { uploads: [{ file: "/etc/hadb/p.yml", content: "pw: a" }] }, { secretPaths: ["uploads[0].content"] });
        const next = container("pg-0", { uploads: [{ file: "/etc/hadb/p.yml", content: "pw: b" }] }, { secretPaths: ["uploads[0].content"] });
        const text = formatPlan(plan([deployed(c)], [next]));
        expect(text).toContain("~ uploads[0].content: [secret] => [secret]  (forces replacement)");
        expect(text).not.toContain("pw:");
    });

    it("refuses an empty upload at create time, as the provider does (preview passes)", () => {
        const step = only(plan([], [container("pg-0", { uploads: [{ file: "/etc/hadb/schema.sql", content: "" }] })]), "pg-0");
        expect(step.error).toMatch(/uploads\[0\] \(\/etc\/hadb\/schema\.sql\): error with upload content: one of 'content', 'content_base64', or 'source' must be set/);
    });

    it("a RandomPassword whose inputs change is replaced: a new value", () => {
        const p = goal(RANDOM_PASSWORD, "pg-app-password", { length: 32, special: false });
        const step = only(plan([deployed(p, { result: "x" })], [goal(RANDOM_PASSWORD, "pg-app-password", { length: 40, special: false })]), "pg-app-password");
        expect(step).toMatchObject({ op: "replace", mode: "create-before-delete" });
        expect(previewOutputs(step).result).toBe(UNKNOWN);
    });

    it("a protected resource is neither replaced nor deleted", () => {
        const prot = { options: { protect: true, replaceOnChanges: [], ignoreChanges: [] } };
        const c = container("pg-0", {}, prot);
        expect(only(plan([deployed(c)], [container("pg-0", { envs: ["A=2"] }, prot)]), "pg-0").error).toMatch(/marked for protection/);
        expect(plan([deployed(c)], []).steps[0]).toMatchObject({ op: "delete", error: expect.stringMatching(/marked for protection/) });
    });

    it("matches property paths with wildcards", () => {
        expect(pathCovers("healthcheck", "healthcheck.interval")).toBe(true);
        expect(pathCovers("uploads[*].content", "uploads[3].content")).toBe(true);
        expect(pathCovers("healthcheck.interval", "healthcheck")).toBe(false);
        expect(pathCovers("*", "envs[0]")).toBe(true);
    });
});

describe("harness plan: resources that depend on each other", () => {
    const net = goal(NETWORK, "local-network", { name: "hadb-dev", ipamConfigs: [{ subnet: "172.29.0.0/24" }] });
    const vol = goal(VOLUME, "pg-0-data", { name: "hadb-dev-pg-0-data" }, { options: { retainOnDelete: true, replaceOnChanges: [], ignoreChanges: [] } });
    const image = goal(IMAGE, "local-postgres-image", { imageName: "hadb/postgres:local", build: { context: "/x", contextDigest: "d1" }, skipPush: true });
    const dbr = { deleteBeforeReplace: true, replaceOnChanges: [], ignoreChanges: [] };
    const member = (n: number, dependsOn: string[]) =>
        container(`pg-${n}`, { networksAdvanced: [{ name: "hadb-dev", aliases: [`pg-${n}`] }], volumes: n === 0 ? [{ volumeName: "hadb-dev-pg-0-data", containerPath: "/data" }] : undefined }, {
            dependencies: [net.urn, image.urn, ...(n === 0 ? [vol.urn] : []), ...dependsOn],
            propertyDependencies: { networksAdvanced: [net.urn], image: [image.urn], ...(n === 0 ? { volumes: [vol.urn] } : {}) },
            options: dbr,
        });
    const pg0 = member(0, []);
    const pg1 = member(1, [pg0.urn]);
    // A container that only waits for the network (dependsOn), taking no property from it.
    const waiter = container("waiter", {}, { dependencies: [net.urn], options: dbr });
    const old = [deployed(net), deployed(vol), deployed(image, { repoDigest: "sha256:aaa" }), deployed(pg0), deployed(pg1), deployed(waiter)];

    it("a delete-before-replace cascades to property dependents, deleted first in its chain; dependsOn-only dependents are untouched", () => {
        const newNet = goal(NETWORK, "local-network", { name: "hadb-dev", ipamConfigs: [{ subnet: "172.30.0.0/24" }] });
        const p = plan(old, [newNet, vol, image, pg0, pg1, waiter]);
        const netStep = only(p, "local-network");
        expect(netStep).toMatchObject({ op: "replace", mode: "delete-before-replace" });
        expect(netStep.reasons.join()).toMatch(/explicitly named object delete-before-replace/);
        // Reverse dependency order: pg-1 (which waits for pg-0) goes first.
        expect(netStep.dependentDeletes.map((d) => d.name)).toEqual(["pg-1", "pg-0"]);
        expect(only(p, "pg-0")).toMatchObject({ op: "replace", alreadyDeleted: true });
        expect(only(p, "pg-1")).toMatchObject({ op: "replace", alreadyDeleted: true });
        expect(only(p, "waiter").op).toBe("same");
        expect(formatPlan(p)).toMatch(/- +docker:index\/container:Container pg-1 \(deleted first, in local-network's delete-before-replace chain\)/);
    });

    it("a replaced member does not cascade to the next member, which only dependsOn it", () => {
        const p = plan(old, [net, vol, image, { ...pg0, inputs: { ...pg0.inputs, envs: ["A=2"] } }, pg1, waiter]);
        expect(only(p, "pg-0")).toMatchObject({ op: "replace", dependentDeletes: [] });
        expect(only(p, "pg-1").op).toBe("same");
    });

    it("an image rebuild is an update; its new ID replaces the containers that use it", () => {
        const rebuilt = goal(IMAGE, "local-postgres-image", { ...image.inputs, build: { ...image.inputs.build, contextDigest: "d2" } });
        const planner = new Planner(old);
        planner.register(net);
        planner.register(vol);
        const imageStep = planner.register(rebuilt);
        expect(imageStep).toMatchObject({ op: "update", changes: [expect.objectContaining({ path: "build.contextDigest", forcesReplace: false })] });
        // In a preview the rebuilt image's ID is unknown; the program passes it on to each container's `image`.
        const digest = previewOutputs(imageStep).repoDigest;
        expect(digest).toBe(UNKNOWN);
        const step0 = planner.register({ ...pg0, inputs: { ...pg0.inputs, image: digest } });
        expect(step0).toMatchObject({ op: "replace", mode: "delete-before-replace", dependentDeletes: [] });
        expect(step0.changes).toEqual([expect.objectContaining({ path: "image", new: UNKNOWN, forcesReplace: true })]);
        // At up the build answers with the new local image ID: the same replace.
        expect(planner.register({ ...pg1, inputs: { ...pg1.inputs, image: "sha256:bbb" } }).op).toBe("replace");
        expect(planner.register(waiter).op).toBe("same");
    });

    it("reads retainOnDelete from the OLD state, for a replacement and for a delete", () => {
        const renamed = (retain: boolean) => goal(VOLUME, "pg-0-data", { name: "hadb-dev-pg-0-data-2" }, { options: { retainOnDelete: retain, replaceOnChanges: [], ignoreChanges: [] } });
        const notRetained = deployed(goal(VOLUME, "pg-0-data", { name: "hadb-dev-pg-0-data" }));
        // Turning retainOnDelete on in the same up does not protect the old volume.
        expect(only(plan([notRetained], [renamed(true)]), "pg-0-data")).toMatchObject({ op: "replace", mode: "delete-before-replace", retained: false });
        expect(only(plan([deployed(vol)], [renamed(false)]), "pg-0-data")).toMatchObject({ op: "replace", retained: true });
        const gone = plan([deployed(vol)], []).steps[0];
        expect(gone).toMatchObject({ op: "delete", retained: true });
        expect(formatPlan({ steps: [gone] })).toMatch(/- +docker:index\/volume:Volume pg-0-data \(retained: dropped from state only\)/);
    });

    it("a volume replacement deletes the container mounting it first", () => {
        const p = plan(old, [net, goal(VOLUME, "pg-0-data", { name: "hadb-dev-pg-0-data-2" }, { options: vol.options }), image, pg0, pg1, waiter]);
        expect(only(p, "pg-0-data").dependentDeletes.map((d) => d.name)).toEqual(["pg-0"]);
    });

    it("deletes what is no longer declared at the end, dependents first; a volume still mounted fails after 30 s", () => {
        const p = plan(old, [net, image, pg1, waiter]);
        expect(p.steps.filter((s) => s.op === "delete").map((s) => s.name)).toEqual(["pg-0", "pg-0-data"]);
        const plainVolume = deployed(goal(VOLUME, "v", { name: "hadb-dev-v" }));
        const user = container("user", { volumes: [{ volumeName: "hadb-dev-v", containerPath: "/d" }] });
        expect(only(plan([plainVolume, deployed(user)], [user]), "v")).toMatchObject({ op: "delete", error: expect.stringMatching(/still in use by hadb-dev-user.*30 s/) });
    });
});

describe("harness plan: the dev stack program", () => {
    let deployedState: HarnessState;
    beforeAll(async () => {
        deployedState = (await simulateUp("dev")).state;
    }, 120_000);

    const changed = (steps: readonly Step[]) => steps.filter((s) => s.op !== "same");
    const print = (title: string, text: string) => console.log(`--- ${title}\n${text}`);

    it("records the options the engine plans with", () => {
        const byName = new Map(deployedState.resources.map((r) => [r.name, r]));
        expect(byName.get("pg-0")!.options.deleteBeforeReplace).toBe(true);
        expect(byName.get("pg-0-data")!.options.retainOnDelete).toBe(true);
        expect(byName.get("pg-1")!.propertyDependencies.networksAdvanced).toEqual([byName.get("local-network")!.urn]);
        expect(byName.get("pg-1")!.dependencies).toContain(byName.get("pg-0")!.urn);
        expect(byName.get("local-postgres-image")!.inputs.build.contextDigest).toMatch(/^[0-9a-f]{64}$/);
        expect(byName.get("pg-0")!.secretPaths.length).toBeGreaterThan(0);
        expect(byName.get("pg-0")!.secretPaths.every((p) => /^uploads\[\d+\]\.content$/.test(p))).toBe(true);
        expect(byName.get("pg-0")!.options.ignoreChanges.length).toBeGreaterThan(0);
        expect(byName.get("pg-0")!.options.replaceOnChanges).toEqual(["healthcheck"]);
    });

    it("a second plan with unchanged config is all `same`", async () => {
        const p = await preview("dev", { state: deployedState });
        expect(changed(p.steps)).toEqual([]);
        expect(p.steps.length).toBe(deployedState.resources.length);
    });

    it("hadb:postgresTiming: the members' changed settings file is ignored (applied online); only the configurator is replaced", async () => {
        const p = await preview("dev", { state: deployedState, config: { "hadb:postgresTiming": "production" } });
        print("hadb:postgresTiming=production", p.text);
        expect(changed(p.steps).map((s) => [s.op, s.mode, s.name])).toEqual([["replace", "delete-before-replace", "pg-config-0"]]);
        for (const name of ["pg-0", "pg-1", "pg-2"]) {
            const member = only(p, name);
            expect(member.op).toBe("same");
            expect(member.ignored!.length).toBe(1);
        }
    });

    it("hadb:postgresBootstrapSql is read only at founding: no member is replaced", async () => {
        const p = await preview("dev", { state: deployedState, config: { "hadb:postgresBootstrapSql": "SELECT 1;" } });
        expect(changed(p.steps)).toEqual([]);
    });

    it("a rebuilt PostgreSQL image replaces each member delete-before-replace, one chain each (no cascade)", async () => {
        const p = await preview("dev", { state: deployedState, config: { "hadb:baseImageTrixie": "hadb-base:trixie-next" } });
        print("hadb:baseImageTrixie=hadb-base:trixie-next", p.text);
        const pg = changed(p.steps).filter((s) => /^pg-\d$/.test(s.name));
        expect(pg.map((s) => [s.op, s.mode, s.name])).toEqual([
            ["replace", "delete-before-replace", "pg-0"],
            ["replace", "delete-before-replace", "pg-1"],
            ["replace", "delete-before-replace", "pg-2"],
        ]);
        for (const s of pg) expect(s.dependentDeletes).toEqual([]);
    });

    it("hadb:networkSubnet replaces the network delete-before-replace: every container is deleted first, in its chain", async () => {
        const p = await preview("dev", { state: deployedState, config: { "hadb:networkSubnet": "172.30.0.0/24" } });
        const network = only(p, "local-network");
        expect(network).toMatchObject({ op: "replace", mode: "delete-before-replace" });
        const containers = deployedState.resources.filter((r) => r.type === CONTAINER).map((r) => r.name);
        expect(network.dependentDeletes.map((d) => d.name).sort()).toEqual([...containers].sort());
        expect(changed(p.steps).filter((s) => s.type === CONTAINER).every((s) => s.op === "replace" && s.alreadyDeleted)).toBe(true);
    });

    it("hadb:postgresMembers 3 → 5: two new members with their volumes, and what else changes", async () => {
        const p = await preview("dev", { state: deployedState, config: { "hadb:postgresMembers": 5 } });
        print("hadb:postgresMembers=5", p.text);
        const steps = changed(p.steps);
        expect(steps.filter((s) => s.op === "create").map((s) => s.name)).toEqual(["pg-3-data", "pg-4-data", "pg-3", "pg-4"]);
        // The proxy lists every member (a new haproxy.cfg), and the configurator's declaration names them.
        expect(steps.filter((s) => s.op === "replace").map((s) => s.name)).toEqual(["pg-proxy-0", "pg-config-0"]);
        expect(steps.filter((s) => s.op === "delete")).toEqual([]);
    });

    it("a changed build context rebuilds the image and replaces the members that run it", async () => {
        // The state of an up from before an edit under images/etcd: another digest, another image ID in the containers.
        const built = deployedState.resources.find((r) => r.name === "local-etcd-image")!.outputs.repoDigest;
        const stale = {
            ...deployedState,
            resources: deployedState.resources.map((r) => {
                if (r.name === "local-etcd-image") return { ...r, inputs: { ...r.inputs, build: { ...r.inputs.build, contextDigest: "before" } }, outputs: { ...r.outputs, repoDigest: "sha256:before" } };
                if (r.inputs.image === built) return { ...r, inputs: { ...r.inputs, image: "sha256:before" }, outputs: { ...r.outputs, image: "sha256:before" } };
                return r;
            }),
        };
        const p = await preview("dev", { state: stale });
        expect(changed(p.steps).map((s) => `${s.op} ${s.name}`)).toEqual(["update local-etcd-image", "replace etcd-0", "replace etcd-1", "replace etcd-2"]);
        // Carried out, the build's new ID replaces the same three.
        const { plan: carried } = await simulateUp("dev", { state: stale });
        expect(changed(carried.steps).map((s) => `${s.op} ${s.name}`)).toEqual(["update local-etcd-image", "replace etcd-0", "replace etcd-1", "replace etcd-2"]);
    });

    it("a failed step cancels the rest of the up; the state keeps what was done", async () => {
        const sim = simulatedProvider();
        const performed: string[] = [];
        let saved: HarnessState | undefined;
        const failing = {
            ...sim,
            create: async (g: Goal, inputs: Record<string, any>) => {
                performed.push(g.name);
                if (g.name === "pg-1") throw new Error("container failed to be in healthy state");
                return sim.create(g, inputs);
            },
        };
        await expect(simulateUp("dev", { provider: failing, persist: (s) => (saved = s) })).rejects.toThrow(/healthy state/);
        // The MySQL side runs beside PostgreSQL's chain; within the chain nothing follows the failed member.
        expect(performed.filter((n) => /^pg-\d$/.test(n))).toEqual(["pg-0", "pg-1"]);
        const names = saved!.resources.map((r) => r.name);
        expect(names).toContain("pg-0");
        expect(names).not.toContain("pg-1");
        expect(names).not.toContain("pg-2");
    });

    it("removing members deletes their containers; their retained volumes stay in Docker", async () => {
        const p = await preview("dev", { state: deployedState, config: { "hadb:mysqlMembers": 3, "hadb:etcdMembers": 1 } });
        const deletes = changed(p.steps).filter((s) => s.op === "delete");
        expect(deletes.map((s) => [s.name, s.retained])).toEqual([
            ["etcd-2", false],
            ["etcd-1", false],
            ["etcd-2-data", true],
            ["etcd-1-data", true],
        ]);
    });
});
