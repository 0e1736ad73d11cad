/**
 * `npm run status`: every member of every cluster of a stack with its role, state, replication lag and the
 * endpoints that route to it now — like `patronictl list`, for both engines and their fleets. Pure: the CLI
 * gathers what the members and the proxies report, this turns it into rows and a table.
 */

/** What Patroni's GET /patroni says of one member (the fields used here). */
export interface PatroniReport {
    readonly role: string;
    readonly state: string;
    readonly xlog?: { readonly location?: number; readonly received_location?: number; readonly replayed_location?: number; readonly paused?: boolean };
    readonly tags?: Record<string, unknown>;
}

/** What hadb's MySQL supervisor says on /member (members and fleet replicas). */
export interface SupervisorReport {
    readonly role: string;
    readonly state: string;
    readonly applier_queue: number | null;
    readonly seconds_behind?: number | null;
    readonly analytics?: boolean;
    readonly source?: string | null;
}

/** One cluster as the CLI found it: each member's report (undefined: it did not answer) and the proxy's server states. */
export interface ClusterFacts {
    readonly cluster: string;
    readonly engine: "postgres" | "mysql";
    /** Member names in the cluster's own order, then the fleet's. */
    readonly members: readonly { readonly name: string; readonly fleet: boolean; readonly report?: PatroniReport | SupervisorReport }[];
    /** HAProxy backend → server → state ("UP", "DOWN", "MAINT"), from the stats CSV; empty when the proxy did not answer. */
    readonly proxy: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export interface StatusRow {
    readonly cluster: string;
    readonly member: string;
    /** "member", "read replica" or "analytics replica". */
    readonly kind: string;
    readonly role: string;
    readonly state: string;
    /** Bytes of WAL not yet replayed (PostgreSQL) or transactions not yet applied (MySQL); null when unknown. */
    readonly lag: number | null;
    readonly lagUnit: "bytes" | "transactions";
    /** Seconds behind the source (MySQL fleet replicas), when known. */
    readonly secondsBehind?: number | null;
    readonly note?: string;
    /** Endpoints whose backend has this server UP now. */
    readonly endpoints: readonly string[];
}

/** Each endpoint's backends in order of preference, as haproxy/plan.ts routes them: the first with a server up serves. */
const ROUTES: Record<string, readonly string[]> = { rw: ["primary"], ro: ["replicas", "primary"], analytics: ["analytics", "replicas", "primary"] };

/** The endpoints whose serving backend has `member` UP now (the read-only endpoint falls back to the primary). */
function routedTo(proxy: ClusterFacts["proxy"], member: string): string[] {
    const up = (backend: string) => Object.values(proxy[backend] ?? {}).some((state) => state === "UP");
    return Object.entries(ROUTES)
        // An endpoint exists where its own backend does (no analytics backend, no analytics endpoint).
        .filter(([, backends]) => backends[0] in proxy)
        .filter(([, backends]) => {
            const serving = backends.filter((b) => b in proxy).find(up);
            return serving !== undefined && proxy[serving][member] === "UP";
        })
        .map(([endpoint]) => endpoint);
}

export function statusRows(facts: readonly ClusterFacts[]): StatusRow[] {
    const rows: StatusRow[] = [];
    for (const c of facts) {
        if (c.engine === "postgres") {
            const reports = c.members.map((m) => m.report as PatroniReport | undefined);
            const leaderLsn = reports.find((r) => r?.role === "primary" || r?.role === "master")?.xlog?.location;
            c.members.forEach((m, i) => {
                const r = reports[i];
                const replayed = r?.xlog?.replayed_location;
                const isLeader = r?.role === "primary" || r?.role === "master";
                const lag = isLeader ? 0 : leaderLsn !== undefined && replayed !== undefined ? Math.max(0, leaderLsn - replayed) : null;
                const pool = r?.tags?.hadb_pool;
                rows.push({
                    cluster: c.cluster,
                    member: m.name,
                    kind: !m.fleet ? "member" : pool === "analytics" ? "analytics replica" : "read replica",
                    role: r ? (isLeader ? "leader" : r.role) : "unknown",
                    state: r?.state ?? "not answering",
                    lag,
                    lagUnit: "bytes",
                    note: r?.xlog?.paused ? "replay paused" : undefined,
                    endpoints: routedTo(c.proxy, m.name),
                });
            });
        } else {
            c.members.forEach((m) => {
                const r = m.report as SupervisorReport | undefined;
                rows.push({
                    cluster: c.cluster,
                    member: m.name,
                    kind: !m.fleet ? "member" : r?.analytics ? "analytics replica" : "read replica",
                    role: r?.role || "unknown",
                    state: r?.state ?? "not answering",
                    lag: r?.applier_queue ?? null,
                    lagUnit: "transactions",
                    secondsBehind: m.fleet ? (r?.seconds_behind ?? null) : undefined,
                    note: m.fleet && r?.source ? `from ${r.source}` : undefined,
                    endpoints: routedTo(c.proxy, m.name),
                });
            });
        }
    }
    return rows;
}

function lagText(r: StatusRow): string {
    if (r.lag === null) return "?";
    const unit = r.lagUnit === "bytes" ? " B" : " tx";
    const seconds = r.secondsBehind !== undefined && r.secondsBehind !== null ? ` (${r.secondsBehind.toFixed(1)} s)` : "";
    return `${r.lag}${unit}${seconds}`;
}

/** A fixed-width table, one line per member, like `patronictl list`. */
export function renderStatusTable(stack: string, rows: readonly StatusRow[], at: Date): string {
    const header = ["CLUSTER", "MEMBER", "KIND", "ROLE", "STATE", "LAG", "ROUTED FROM", "NOTE"];
    const cells = rows.map((r) => [r.cluster, r.member, r.kind, r.role, r.state, lagText(r), r.endpoints.join(",") || "-", r.note ?? ""]);
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
    return [`Stack ${stack} at ${at.toISOString()}`, line(header), ...cells.map(line), ""].join("\n");
}
