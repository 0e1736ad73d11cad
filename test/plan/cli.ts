// npm run plan -- <stack>|--all [--json|--mermaid] [--diff <git-ref>] [hadb:key=value ...]
// The stack program under Pulumi mocks with the stack's config: no Pulumi CLI, backend or credentials.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { listStacks, parseOverrides, PROJECT_ROOT } from "../harness/stackConfig";
import { EMPTY_STATE, HarnessState, preview, simulateUp } from "../harness";
import { diffMarkdown } from "./diff";
import { planEntries, planMermaid, planTree } from "./graph";
import { recordPlan, snapshotPath } from "./record";

const USAGE = "usage: npm run plan -- <stack>|--all [--json | --mermaid | --diff <git-ref>] [hadb:key=value ...]; npm run plan -- --update-snapshots";
/** The internal mode a diff runs the base checkout's program in: a simulated up, its state written to a file. */
const SIMULATE = "--simulate-up";

interface Args {
    stacks: string[];
    format: "tree" | "json" | "mermaid";
    diff?: string;
    overrides: Record<string, string | number | boolean>;
    /** Write each stack's tree to test/plan/snapshots (what the unit test compares with). */
    snapshots: boolean;
}

function parseArgs(argv: string[]): Args {
    const positional: string[] = [];
    let format: Args["format"] = "tree";
    let diff: string | undefined;
    let all = false;
    let snapshots = false;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--json") format = "json";
        else if (a === "--mermaid") format = "mermaid";
        else if (a === "--all") all = true;
        else if (a === "--update-snapshots") snapshots = all = true;
        else if (a === "--diff") {
            diff = argv[++i];
            if (!diff || diff.startsWith("--")) throw new Error(`--diff needs a git ref (a branch, tag or commit); ${USAGE}`);
        } else if (a.startsWith("--")) throw new Error(`unknown option ${a}; ${USAGE}`);
        else positional.push(a);
    }
    const stack = all ? undefined : positional[0];
    const rest = all ? positional : positional.slice(1);
    if (diff && rest.length) throw new Error("--diff compares commits: put config changes in the Pulumi.<stack>.yaml of the working tree instead of passing overrides");
    if (!all && !stack) throw new Error(`${USAGE}; stacks: ${listStacks().join(", ")}`);
    if (diff && format !== "tree") throw new Error(`--diff prints markdown; it does not combine with --${format}`);
    const stacks = all ? listStacks().sort() : [stack!];
    for (const s of stacks) if (!listStacks().includes(s)) throw new Error(`no stack ${s}: pick one of ${listStacks().join(", ")}`);
    return { stacks, format, diff, snapshots, overrides: parseOverrides(rest) };
}

/** The ref's files in a temporary folder (git archive: the repository itself is not touched), sharing node_modules. */
function checkout(ref: string): { dir: string; commit: string } {
    const commit = execFileSync("git", ["rev-parse", "--verify", `${ref}^{commit}`], { cwd: PROJECT_ROOT, encoding: "utf8" }).trim();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hadb-plan-"));
    const archive = spawnSync("sh", ["-c", `git archive ${commit} | tar -x --no-same-permissions -C "${dir}"`], { cwd: PROJECT_ROOT, encoding: "utf8" });
    if (archive.status !== 0) throw new Error(`git archive ${ref} failed: ${archive.stderr}`);
    fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(dir, "node_modules"));
    return { dir, commit };
}

/**
 * The state a `pulumi up` of the stack at `root` would leave, from a simulated up in a child process (one Pulumi
 * runtime per process). Its passwords are the mocks' own, never a real stack's.
 */
function deployedState(root: string, stack: string): HarnessState | undefined {
    if (!fs.existsSync(path.join(root, `Pulumi.${stack}.yaml`))) return undefined;
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "hadb-plan-state-")), "state.json");
    try {
        const run = spawnSync(process.execPath, [...process.execArgv, __filename, SIMULATE, stack, root, file], { encoding: "utf8" });
        if (run.status !== 0) throw new Error(`the program at the base ref failed for stack ${stack}:\n${run.stderr}`);
        return JSON.parse(fs.readFileSync(file, "utf8")) as HarnessState;
    } finally {
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
}

async function main(argv: string[]): Promise<void> {
    if (argv[0] === SIMULATE) {
        const [, stack, root, file] = argv;
        const { state } = await simulateUp(stack, { root, stackImages: true });
        // As if deployed from this checkout's folder, as CI deploys both commits: image build contexts are absolute.
        fs.writeFileSync(file, JSON.stringify(state, (_k, v) => (typeof v === "string" && v.startsWith(root + "/") ? PROJECT_ROOT + v.slice(root.length) : v)), { mode: 0o600 });
        return;
    }
    const args = parseArgs(argv);
    if (args.diff) {
        const { dir, commit } = checkout(args.diff);
        try {
            const sections = [`## hadb plan: this change against \`${args.diff}\` (${commit.slice(0, 12)})`, ""];
            for (const stack of args.stacks) {
                const state = deployedState(dir, stack);
                const note = state ? undefined : `A new stack: \`${args.diff}\` has no Pulumi.${stack}.yaml.`;
                const plan = await preview(stack, { state: state ?? EMPTY_STATE, stackImages: true });
                sections.push(diffMarkdown(stack, plan, note), "");
            }
            sections.push(`<sub>Generated by \`npm run plan -- ${argv.join(" ")}\`: each stack's program run under Pulumi mocks at both commits, diffed with the providers' replace rules as hadb's harness models them. No Pulumi CLI, backend or credentials.</sub>`);
            process.stdout.write(sections.join("\n") + "\n");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
        return;
    }
    if (args.snapshots) {
        for (const stack of args.stacks) {
            const file = snapshotPath(stack);
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.writeFileSync(file, planTree(await recordPlan(stack)) + "\n");
            console.error(`[plan] wrote ${path.relative(PROJECT_ROOT, file)}`);
        }
        return;
    }
    if (args.stacks.length > 1 && args.format !== "tree") throw new Error(`--${args.format} takes one stack`);
    for (const stack of args.stacks) {
        const plan = await recordPlan(stack, { config: args.overrides });
        if (args.format === "json") process.stdout.write(JSON.stringify(planEntries(plan), null, 2) + "\n");
        else if (args.format === "mermaid") process.stdout.write(planMermaid(plan) + "\n");
        else {
            process.stdout.write(planTree(plan) + "\n");
            console.error(`[plan] stack ${stack}: program under mocks in ${(plan.millis / 1000).toFixed(2)} s`);
        }
    }
}

main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    },
);
