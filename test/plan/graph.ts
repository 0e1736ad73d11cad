import * as crypto from "crypto";
import { UNKNOWN } from "../harness/mockRun";
import { Goal } from "../harness/plan";
import { isSecretMarker, StackPlan } from "./record";

/** One resource as `npm run plan -- <stack> --json` prints it. */
export interface PlanEntry {
    readonly type: string;
    readonly name: string;
    /** The parent's name (the stack itself has none). */
    readonly parent?: string;
    /** Secrets as "[secret]"; values only known once deployed as "[unknown]". */
    readonly inputs: Record<string, unknown>;
}

const URN_NAME = (urn: string) => urn.split("::").pop()!;

/** What a reviewer may see of a value: secrets and unknowns by placeholder. */
export function publicValue(value: unknown): unknown {
    if (isSecretMarker(value)) return "[secret]";
    if (value === UNKNOWN) return "[unknown]";
    if (Array.isArray(value)) return value.map(publicValue);
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, publicValue(v)]));
    return value;
}

/** The plan's resources, parents before children and siblings by type and name, so the output is stable. */
export function planEntries(plan: StackPlan): PlanEntry[] {
    return orderedGoals(plan.goals).map(({ goal }) => ({
        type: goal.type,
        name: goal.name,
        ...(goal.parent ? { parent: URN_NAME(goal.parent) } : {}),
        inputs: publicValue(goal.inputs) as Record<string, unknown>,
    }));
}

/** Depth-first over the parent tree; the stack resource itself is left out. */
function orderedGoals(goals: readonly Goal[]): { goal: Goal; depth: number }[] {
    const urns = new Set(goals.map((g) => g.urn));
    const children = new Map<string, Goal[]>();
    for (const g of goals) {
        if (g.type === "pulumi:pulumi:Stack") continue;
        const parent = g.parent && urns.has(g.parent) && !g.parent.includes("::pulumi:pulumi:Stack::") ? g.parent : "";
        children.set(parent, [...(children.get(parent) ?? []), g]);
    }
    const out: { goal: Goal; depth: number }[] = [];
    const visit = (parent: string, depth: number) => {
        const sorted = [...(children.get(parent) ?? [])].sort((a, b) => (a.custom === b.custom ? 0 : a.custom ? 1 : -1) || a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
        for (const g of sorted) {
            out.push({ goal: g, depth });
            visit(g.urn, depth + 1);
        }
    };
    visit("", 0);
    return out;
}

/** Leaves of a value as `path: value` pairs (`ports[0].external: 5000`). */
export function leaves(value: unknown, path = ""): [string, unknown][] {
    if (Array.isArray(value)) return value.length ? value.flatMap((v, i) => leaves(v, `${path}[${i}]`)) : [[path, []]];
    if (value && typeof value === "object") {
        const entries = Object.entries(value).filter(([, v]) => v !== undefined);
        return entries.length ? entries.flatMap(([k, v]) => leaves(v, path ? `${path}.${k}` : k)) : [[path, {}]];
    }
    return [[path, value]];
}

/** A leaf for a line of text: long or multi-line strings (rendered files) by size and digest. */
export function showLeaf(value: unknown): string {
    if (typeof value === "string" && (value.includes("\n") || value.length > 100)) {
        const lines = value.split("\n").length;
        return `<text: ${lines} line${lines === 1 ? "" : "s"}, sha256 ${crypto.createHash("sha256").update(value).digest("hex").slice(0, 12)}>`;
    }
    return JSON.stringify(value);
}

/** The readable tree: each resource under its parent, with its inputs one leaf per line. */
export function planTree(plan: StackPlan): string {
    const lines: string[] = [];
    const ordered = orderedGoals(plan.goals);
    lines.push(`Plan of stack ${plan.stack}: ${ordered.length} resources (${ordered.filter((o) => o.goal.custom).length} custom)`);
    for (const { goal, depth } of ordered) {
        const indent = "  ".repeat(depth);
        lines.push(`${indent}${goal.custom ? "•" : "▸"} ${goal.type} ${goal.name}`);
        for (const [path, value] of leaves(publicValue(goal.inputs))) {
            if (path === "") continue;
            lines.push(`${indent}    ${path}: ${showLeaf(value)}`);
        }
    }
    return lines.join("\n");
}

const WORKLOADS = new Set(["docker:index/container:Container", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment"]);
const isComponent = (g: Goal) => g.type.startsWith("hadb:index:") && !g.type.endsWith("Target");
const mermaidId = (s: string) => s.replace(/[^A-Za-z0-9_]/g, "_");

/**
 * The topology as a Mermaid flowchart: one box per hadb component with its workloads (containers, StatefulSets),
 * the endpoints clients reach (published host ports, Services), and an arrow from each component to the ones
 * it depends on (a front end to its cluster, PostgreSQL to etcd).
 */
export function planMermaid(plan: StackPlan): string {
    const byUrn = new Map(plan.goals.map((g) => [g.urn, g]));
    const ownerOf = (g: Goal): Goal | undefined => {
        for (let p = g.parent ? byUrn.get(g.parent) : undefined; p; p = p.parent ? byUrn.get(p.parent) : undefined) if (isComponent(p)) return p;
        return undefined;
    };
    const lines = ["flowchart LR"];
    const components = plan.goals.filter(isComponent).sort((a, b) => a.name.localeCompare(b.name));
    for (const c of components) {
        lines.push(`  subgraph ${mermaidId(`c_${c.name}`)}["${c.type.replace("hadb:index:", "")} ${c.name}"]`);
        const members = plan.goals.filter((g) => WORKLOADS.has(g.type) && ownerOf(g) === c).sort((a, b) => a.name.localeCompare(b.name));
        for (const m of members) lines.push(`    ${mermaidId(`w_${m.name}`)}["${m.name}"]`);
        lines.push("  end");
    }
    for (const g of plan.goals) {
        const owner = ownerOf(g);
        if (!owner) continue;
        for (const label of endpointsOf(g)) {
            const id = mermaidId(`e_${label}`);
            lines.push(`  ${id}(["${label}"]) --> ${mermaidId(WORKLOADS.has(g.type) ? `w_${g.name}` : `c_${owner.name}`)}`);
        }
    }
    const edges = new Set<string>();
    // A front end starts without waiting for its cluster (it re-resolves members), so no dependency says where it
    // routes: the servers its haproxy.cfg names do.
    const memberOwner = new Map<string, Goal>();
    for (const g of plan.goals.filter((w) => WORKLOADS.has(w.type))) {
        const owner = ownerOf(g);
        if (owner) memberOwner.set(g.type === "docker:index/container:Container" ? (g.inputs.hostname ?? g.name) : (g.inputs.metadata?.name ?? g.name), owner);
    }
    for (const g of plan.goals) {
        const from = ownerOf(g);
        if (!from) continue;
        for (const [, text] of leaves(g.inputs)) {
            if (typeof text !== "string" || !text.includes("\n")) continue;
            for (const m of text.matchAll(/^\s*server \S+ ([^\s:]+):\d+/gm)) {
                const host = m[1].split(".")[0];
                const to = memberOwner.get(host) ?? memberOwner.get(host.replace(/-\d+$/, ""));
                if (to && to !== from) edges.add(`  ${mermaidId(`c_${from.name}`)} --> ${mermaidId(`c_${to.name}`)}`);
            }
        }
    }
    for (const g of plan.goals) {
        const from = ownerOf(g) ?? (isComponent(g) ? g : undefined);
        if (!from) continue;
        for (const dep of g.dependencies) {
            const d = byUrn.get(dep);
            const to = d && (isComponent(d) ? d : ownerOf(d));
            if (to && to !== from) edges.add(`  ${mermaidId(`c_${from.name}`)} --> ${mermaidId(`c_${to.name}`)}`);
        }
    }
    lines.push(...[...edges].sort());
    return lines.join("\n");
}

/** Client-facing addresses a resource declares: published host ports, non-headless Services' ports. */
function endpointsOf(g: Goal): string[] {
    if (g.type === "docker:index/container:Container") {
        return ((g.inputs.ports ?? []) as any[]).filter((p) => p.external).map((p) => `${p.ip ?? "0.0.0.0"}:${p.external}`);
    }
    if (g.type === "kubernetes:core/v1:Service" && g.inputs.spec?.clusterIP !== "None") {
        const name = g.inputs.metadata?.name ?? g.name;
        return ((g.inputs.spec?.ports ?? []) as any[]).map((p) => `${g.inputs.spec?.type ?? "ClusterIP"} ${name}:${p.port}`);
    }
    return [];
}

/**
 * The committed snapshot of a plan: the tree, less the image build contexts' digests, which hash file modes too
 * and so differ between checkouts made with different umasks (what the digest catches, the diff shows).
 */
export function snapshotText(plan: StackPlan): string {
    return planTree(plan).replace(/^(\s*build\.contextDigest: )"[0-9a-f]{64}"$/gm, '$1"(left out of snapshots)"') + "\n";
}
