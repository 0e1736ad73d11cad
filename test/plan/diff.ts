import { UNKNOWN } from "../harness/mockRun";
import { Change, Plan, render, Step, StepOp, textChange } from "../harness/plan";

/*
 * A plan diff is the harness's preview: the head program planned against the state a simulated `up` of the base
 * program leaves (test/harness: the engine's steps, with each replace-or-update decided by the provider schemas it
 * knows — Docker, random, Kubernetes — and preview's unknowns flowing to dependents). This module renders it.
 */

const OP_WORD: Record<StepOp, string> = { create: "create", same: "same", update: "update in place", replace: "replace", delete: "delete" };
const OP_SYMBOL: Record<StepOp, string> = { create: "+", same: "=", update: "~", replace: "±", delete: "-" };

/** A changed field for a reviewer: old → new, secrets only as changed, rendered files by their changed lines. */
export function changeText(c: Change): string {
    if (c.secret) return `${c.path}: changed (secret)`;
    const show = (v: unknown) => (v === UNKNOWN ? "(known after up)" : render(v));
    const long = (v: unknown) => typeof v === "string" && (v.includes("\n") || v.length > 70);
    let value: string;
    if (c.kind === "add") value = `(none) → ${show(c.new)}`;
    else if (c.kind === "delete") value = `${show(c.old)} → (none)`;
    else if (long(c.old) && long(c.new) && c.new !== UNKNOWN) value = textChange(c.old as string, c.new as string).replace(" => ", " → ");
    else if (Array.isArray(c.old) && Array.isArray(c.new)) value = listChange(c.old, c.new);
    else value = `${show(c.old)} → ${show(c.new)}`;
    return `${c.path}: ${value}${c.forcesReplace ? " (forces replacement)" : ""}`;
}

/** Two lists of different lengths (a member more): the counts and the items only one side has. */
function listChange(oldList: unknown[], newList: unknown[]): string {
    const key = (v: unknown) => JSON.stringify(v);
    const oldKeys = new Set(oldList.map(key));
    const newKeys = new Set(newList.map(key));
    const added = newList.filter((v) => !oldKeys.has(key(v))).map((v) => `+ ${render(v)}`);
    const removed = oldList.filter((v) => !newKeys.has(key(v))).map((v) => `- ${render(v)}`);
    return `${oldList.length} → ${newList.length} items${[...added, ...removed].length ? `: ${[...added, ...removed].join(", ")}` : ""}`;
}

function how(step: Step): string {
    if (step.op === "same") return "unchanged (ignoreChanges: applied online by the configurator)";
    if (step.op === "replace") return `replace (${step.mode})`;
    if (step.op === "delete" && step.reasons.length) return "delete (the replaced instance)";
    if (step.op === "delete" && step.old?.options.retainOnDelete) return "delete (retained: dropped from state only)";
    return OP_WORD[step.op];
}

/** Markdown for a pull-request comment: a summary line, a table of what changes, the changed fields per resource. */
export function diffMarkdown(stack: string, p: Plan, note?: string): string {
    // A resource whose only changes ignoreChanges keeps out (files the configurator applies online) is listed too:
    // pulumi up leaves it alone, and the reviewer should know the change still reaches the servers.
    const changed = p.steps.filter((s) => (s.op !== "same" || s.ignored?.length) && !(s.op === "delete" && s.reasons.length));
    const count = (op: StepOp) => changed.filter((s) => s.op === op).length;
    const same = p.steps.filter((s) => s.op === "same" && !s.ignored?.length).length;
    const lines = [`### Stack \`${stack}\``, ""];
    if (note) lines.push(note, "");
    if (!changed.length) {
        lines.push(`No changes: ${same} resources unchanged.`);
        return lines.join("\n");
    }
    const online = count("same") ? `, ${count("same")} changed online only` : "";
    lines.push(`**${count("create")} to create, ${count("update")} to update in place, ${count("replace")} to replace, ${count("delete")} to delete**${online}; ${same} unchanged.`, "");
    lines.push("| | Resource | Type | What `pulumi up` does |", "|---|---|---|---|");
    for (const s of changed) lines.push(`| ${OP_SYMBOL[s.op]} | \`${s.name}\` | \`${s.type}\` | ${how(s)}${s.error ? " **(fails at up)**" : ""} |`);
    const detailed = changed.filter((s) => s.changes.length || s.error || s.warnings.length || s.ignored?.length);
    if (detailed.length) {
        lines.push("", "<details><summary>Changed inputs</summary>", "", "```");
        for (const s of detailed) {
            lines.push(`${OP_SYMBOL[s.op]} ${s.name} (${s.type}): ${how(s)}`);
            for (const c of s.changes) lines.push(`    ${changeText(c)}`);
            if (s.ignored?.length) lines.push(`    ${s.ignored.join(", ")}: changed; ignoreChanges keeps the deployed value`);
            for (const w of s.warnings) lines.push(`    warning: ${w}`);
            if (s.error) lines.push(`    error at up: ${s.error}`);
        }
        lines.push("```", "", "</details>");
    }
    return lines.join("\n");
}
