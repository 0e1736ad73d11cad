// npm run plan -- <stack>|--all [--json|--mermaid] [--diff <git-ref>] [hadb:key=value ...]
// The stack program under Pulumi mocks with the stack's config: no Pulumi CLI, backend or credentials.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { listStacks, parseOverrides, PROJECT_ROOT } from "../harness/stackConfig";
import { EMPTY_STATE, HarnessState, preview, simulateUp } from "../harness";
import { diffMarkdown } from "./diff";
import { planEntries, planMermaid, planTree, snapshotText } from "./graph";
import { recordPlan, snapshotPath } from "./record";

const USAGE = "usage: npm run plan -- <stack>|--all [--json | --mermaid | --diff <git-ref>] [hadb:key=value ...]; npm run plan -- --update-snapshots";
/** The internal mode a diff runs the base checkout's program in: a simulated up, its state written to a file. */
const SIMULATE = "--simulate-up";

interface Args {
    stacks: string[];
    all: boolean;
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
    return { stacks, all, format, diff, snapshots, overrides: parseOverrides(rest) };
}

/** A temporary folder by its real path (on macOS the temp folder sits behind a symlink, and Node reports real paths). */
const tempDir = (prefix: string) => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));

/** The ref's files in a temporary folder (git archive: the repository itself is not touched), sharing node_modules. */
function checkout(ref: string): { dir: string; commit: string } {
    const commit = execFileSync("git", ["rev-parse", "--verify", `${ref}^{commit}`], { cwd: PROJECT_ROOT, encoding: "utf8" }).trim();
    const dir = tempDir("hadb-plan-");
    try {
        const tar = path.join(dir, ".base.tar");
        execFileSync("git", ["archive", "-o", tar, commit], { cwd: PROJECT_ROOT });
        // The process umask, as a clone gets it: the image build contexts' digests include file modes.
        execFileSync("tar", ["-x", "--no-same-permissions", "-f", tar, "-C", dir]);
        fs.rmSync(tar);
        fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(dir, "node_modules"));
        return { dir, commit };
    } catch (err) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
    }
}

/**
 * The state a `pulumi up` of the stack at `root` would leave, from a simulated up in a child process (one Pulumi
 * runtime per process). Its passwords are the mocks' own, never a real stack's.
 */
function deployedState(root: string, stack: string): HarnessState | undefined {
    if (!fs.existsSync(path.join(root, `Pulumi.${stack}.yaml`))) return undefined;
    const file = path.join(tempDir("hadb-plan-state-"), "state.json");
    try {
        const run = spawnSync(process.execPath, [...process.execArgv, __filename, SIMULATE, stack, root, file], { encoding: "utf8" });
        if (run.status !== 0) throw new BaseFailure(`${run.stderr.trim().split("\n").pop() ?? `exit code ${run.status}`}`);
        return JSON.parse(fs.readFileSync(file, "utf8")) as HarnessState;
    } finally {
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
}

/** The base commit's program failed (it runs with this checkout's node_modules, which may not suit it). */
class BaseFailure extends Error {}

/** One stack's section of the comment: its diff, or why there is none. */
async function stackSection(stack: string, base: { dir: string; ref: string }): Promise<string> {
    const atHead = listStacks().includes(stack);
    if (!atHead) return `### Stack \`${stack}\`\n\nRemoved by this change (no Pulumi.${stack}.yaml): its resources stay deployed until \`pulumi destroy\` is run on it.`;
    let state: HarnessState | undefined;
    try {
        state = deployedState(base.dir, stack);
    } catch (err) {
        if (!(err instanceof BaseFailure)) throw err;
        return `### Stack \`${stack}\`\n\nThe program at \`${base.ref}\` could not be planned (it runs with this change's dependencies): ${err.message}`;
    }
    const note = state ? undefined : `A new stack: \`${base.ref}\` has no Pulumi.${stack}.yaml.`;
    return diffMarkdown(stack, await preview(stack, { state: state ?? EMPTY_STATE, stackImages: true }), note);
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
            // With --all, the stacks of both commits: a removed stack is said to be removed.
            const stacks = args.all ? [...new Set([...args.stacks, ...listStacks(dir)])].sort() : args.stacks;
            for (const stack of stacks) sections.push(await stackSection(stack, { dir, ref: args.diff }), "");
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
            fs.writeFileSync(file, snapshotText(await recordPlan(stack)));
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

// The Pulumi runtime keeps handles open, so the process is ended explicitly — once stdout has drained (a pipe
// takes 64 KiB at a time, and process.exit would drop the rest).
main(process.argv.slice(2)).then(
    () => process.stdout.write("", () => process.exit(0)),
    (err) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    },
);
