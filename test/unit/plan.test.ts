import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { HarnessState, preview, simulateUp } from "../harness";
import { joinPath, runStack } from "../harness/mockRun";
import { Plan } from "../harness/plan";
import { RANDOM_PASSWORD } from "../harness/schema";
import { listStacks, PROJECT_ROOT } from "../harness/stackConfig";
import { diffMarkdown } from "../plan/diff";
import { planEntries, planMermaid, planTree, publicValue, snapshotText } from "../plan/graph";
import { maskSecrets, recordPlan, snapshotPath } from "../plan/record";

const STACKS = listStacks().sort();

/** Every password a run generated: none may appear in anything the plan tool prints. */
function passwordsOf(values: Record<string, any>[]): string[] {
    const found = values.map((v) => v.result).filter((r): r is string => typeof r === "string" && r.length >= 16);
    expect(found.length, "the run generated passwords to look for").toBeGreaterThan(0);
    return found;
}

const changedSteps = (p: Plan) =>
    Object.fromEntries(
        p.steps
            .filter((s) => s.op !== "same" || s.ignored?.length)
            .map((s) => [s.name, s.op === "replace" ? `replace/${s.mode}` : s.op === "same" ? "same/online" : s.op])
            .sort(([a], [b]) => a.localeCompare(b)),
    );

describe("npm run plan: the stack's resource graph without a Pulumi CLI", () => {
    it.each(STACKS)("the %s stack's plan matches its reviewed snapshot (regenerate: npm run plan:snapshots)", async (stack) => {
        const plan = await recordPlan(stack);
        console.log(`[measure] plan of stack ${stack} under mocks (${plan.goals.length} resources): ${(plan.millis / 1000).toFixed(2)} s`);
        expect(snapshotText(plan)).toBe(fs.readFileSync(snapshotPath(stack), "utf8"));
    });

    it.each(STACKS)("%s: tree, JSON and Mermaid show no generated password; secrets read [secret]", async (stack) => {
        const key = "plan-test-key";
        const run = await runStack(stack, { preview: true, randomSeed: key });
        const passwords = passwordsOf(run.resources.filter((r) => r.type === RANDOM_PASSWORD).map((r) => r.state));
        const plan = await recordPlan(stack, { key });
        const outputs = [planTree(plan), JSON.stringify(planEntries(plan)), planMermaid(plan)];
        for (const out of outputs) for (const p of passwords) expect(out.includes(p), `a password in the plan of ${stack}`).toBe(false);
        expect(outputs[0]).toContain('"[secret]"');
    });

    it("masks a secret under a key with dots, and fails closed on a path that does not resolve", () => {
        const inputs = { stringData: { "patroni.yml": "hunter2-secret" }, data: { other: "x" }, kept: 1 };
        const exact = publicValue(maskSecrets(inputs, [joinPath("stringData", "patroni.yml")], "k"));
        expect(exact).toEqual({ stringData: { "patroni.yml": "[secret]" }, data: { other: "x" }, kept: 1 });
        // An unquoted path (stringData.patroni.yml is three segments) masks what it can reach: all of stringData.
        expect(JSON.stringify(publicValue(maskSecrets(inputs, ["stringData.patroni.yml"], "k")))).not.toContain("hunter2");
    });

    it("a Kubernetes Secret's data and stringData are secret whether or not the program marked them (the provider does)", async () => {
        const plan = await recordPlan("staging");
        const secrets = plan.goals.filter((g) => g.type === "kubernetes:core/v1:Secret");
        expect(secrets.length).toBeGreaterThan(0);
        for (const g of secrets) for (const k of ["data", "stringData"]) if (k in g.inputs) expect(g.secretPaths, g.name).toContain(k);
    });

    it("--json is one { type, name, parent, inputs } per resource, parents by name", async () => {
        const plan = await recordPlan("dev");
        const entries = planEntries(plan);
        expect(entries).toHaveLength(plan.goals.length);
        const names = new Set(entries.map((e) => e.name));
        for (const e of entries) {
            expect(Object.keys(e).sort()).toEqual(e.parent ? ["inputs", "name", "parent", "type"] : ["inputs", "name", "type"]);
            if (e.parent) expect(names.has(e.parent), `${e.name}'s parent ${e.parent}`).toBe(true);
        }
        expect(entries.find((e) => e.name === "pg-0")).toMatchObject({ type: "docker:index/container:Container", parent: "pg" });
    });

    it("--mermaid draws each component with its members, the endpoints and who routes to whom", async () => {
        const dev = planMermaid(await recordPlan("dev"));
        expect(dev.split("\n")[0]).toBe("flowchart LR");
        expect(dev).toContain('subgraph c_pg["PostgresCluster pg"]');
        expect(dev).toMatch(/w_pg_0\["pg-0"\]/);
        expect(dev).toContain('e_127_0_0_1_5000(["127.0.0.1:5000"]) --> w_pg_proxy_0');
        for (const edge of ["c_pg_proxy --> c_pg", "c_mysql_proxy --> c_mysql", "c_pg --> c_etcd"]) expect(dev).toContain(edge);
        expect(dev.match(/subgraph/g)?.length).toBe(dev.match(/^ {2}end$/gm)?.length);
        const k8s = planMermaid(await recordPlan("staging"));
        expect(k8s).toContain('(["ClusterIP pg-proxy-read-write:5000"]) --> c_pg_proxy');
        expect(k8s).toContain("c_pg_proxy --> c_pg");
    });
});

describe("npm run plan -- --diff: what a change does to a deployed stack", () => {
    let deployed: { state: HarnessState } | undefined;
    const base = async () => (deployed ??= await simulateUp("dev", { stackImages: true }));

    it("one more PostgreSQL member: its volume and container are created, the proxy and configurator replaced, the members untouched", async () => {
        const { state } = await base();
        const p = await preview("dev", { state, stackImages: true, config: { "hadb:postgresMembers": 4 } });
        // Patroni members find each other through etcd: the existing members' files do not change at all.
        expect(changedSteps(p)).toEqual({
            "pg-3": "create",
            "pg-3-data": "create",
            "pg-config-0": "replace/delete-before-replace",
            "pg-proxy-0": "replace/delete-before-replace",
        });
        const md = diffMarkdown("dev", p);
        expect(md).toContain("**2 to create, 0 to update in place, 2 to replace, 0 to delete**; 50 unchanged.");
        expect(md).toContain('server pg-3 pg-3:5432 check port 8008');
        for (const pw of passwordsOf(state.resources.filter((r) => r.type === RANDOM_PASSWORD).map((r) => r.outputs))) expect(md.includes(pw)).toBe(false);
    });

    it("a changed PostgreSQL parameter reaches only the configurator: its declaration is secret, shown as changed", async () => {
        const { state } = await base();
        const p = await preview("dev", { state, stackImages: true, config: { "hadb:postgresParameters": "work_mem=8MB" } });
        // The members' bootstrap.yml is appliedOnline: pulumi up keeps it, the configurator patches Patroni.
        expect(changedSteps(p)).toEqual({
            "pg-0": "same/online",
            "pg-1": "same/online",
            "pg-2": "same/online",
            "pg-reads-0": "same/online",
            "pg-reads-1": "same/online",
            "pg-config-0": "replace/delete-before-replace",
        });
        const md = diffMarkdown("dev", p);
        expect(md).toContain("uploads[0].content: changed (secret)");
        expect(md).not.toContain("work_mem");
    });

    it("a renamed component: its resources are deleted and created under the new name, and the host-port collision is flagged", async () => {
        const { state } = await base();
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "hadb-plan-rename-"));
        try {
            for (const f of ["Pulumi.yaml", "Pulumi.dev.yaml", "components", "images", "node_modules"]) fs.symlinkSync(path.join(PROJECT_ROOT, f), path.join(root, f));
            fs.cpSync(path.join(PROJECT_ROOT, "stacks"), path.join(root, "stacks"), { recursive: true });
            const preset = path.join(root, "stacks", "presets", "standard.ts");
            fs.writeFileSync(preset, fs.readFileSync(preset, "utf8").replace('frontDoor("mysql-proxy"', 'frontDoor("shop-proxy"'));
            const p = await preview("dev", { state, stackImages: true, root });
            expect(changedSteps(p)).toEqual({ "mysql-proxy": "delete", "mysql-proxy-0": "delete", "shop-proxy": "create", "shop-proxy-0": "create" });
            const md = diffMarkdown("dev", p);
            expect(md).toMatch(/\| \+ \| `shop-proxy-0` \| `docker:index\/container:Container` \| create \*\*\(fails at up\)\*\* \|/);
            expect(md).toContain("127.0.0.1:6446");
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("the CLI diffs every stack against a git ref and exits 0; no change reads as no change", () => {
        const started = Date.now();
        const run = spawnSync(process.execPath, ["--import", "tsx", "test/plan/cli.ts", "--all", "--diff", "HEAD"], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 170_000 });
        console.log(`[measure] npm run plan -- --all --diff HEAD: ${((Date.now() - started) / 1000).toFixed(2)} s`);
        expect(run.status, run.stderr).toBe(0);
        for (const stack of STACKS) expect(run.stdout).toContain(`### Stack \`${stack}\``);
        // Against HEAD, a clean checkout (CI's) has nothing to show: the base ran in another folder and process.
        const clean = spawnSync("git", ["status", "--porcelain"], { cwd: PROJECT_ROOT, encoding: "utf8" }).stdout.trim() === "";
        if (clean) for (const stack of STACKS) expect(run.stdout).toMatch(new RegExp(`### Stack \`${stack}\`\\n\\nNo changes: \\d+ resources unchanged\\.`));
        else console.log("[plan] the working tree has changes: the no-change assertion runs on a clean checkout only");
        const bad = spawnSync(process.execPath, ["--import", "tsx", "test/plan/cli.ts", "dev", "--diff", "no-such-ref-here"], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60_000 });
        expect(bad.status).not.toBe(0);
    }, 240_000);
});
