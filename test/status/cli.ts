/**
 * npm run status -- <stack> [--json] [--watch [seconds]]
 *
 * Asks every member of a stack deployed on Docker by the harness what it is (Patroni's GET /patroni, the MySQL
 * supervisor's /member, through `docker exec`, since their agent ports are not published) and each HAProxy which
 * servers it routes to (its stats CSV on the published stats port), then prints one line per member.
 */
import { readState } from "../harness";
import { runChecked } from "../harness/process";
import { loadStackConfig } from "../harness/stackConfig";
import { ClusterFacts, renderStatusTable, statusRows, StatusRow } from "./status";

/** --watch refreshes at most this many times (an hour at the default interval), so it always ends. */
const MAX_REFRESHES = 1800;

async function agentReport(container: string, path: string): Promise<any> {
    try {
        return JSON.parse(await runChecked("docker", ["exec", container, "curl", "-sS", "--max-time", "2", `http://127.0.0.1:8008${path}`], 5000));
    } catch {
        return undefined;
    }
}

/** HAProxy backend → server → state from the stats CSV; empty when the proxy does not answer. */
export async function proxyStates(statsUrl: string): Promise<Record<string, Record<string, string>>> {
    try {
        const res = await fetch(`${statsUrl}/;csv`, { signal: AbortSignal.timeout(2000) });
        const [header, ...rows] = (await res.text()).trim().split("\n");
        const columns = header.replace(/^# /, "").split(",");
        const [px, sv, status] = ["pxname", "svname", "status"].map((c) => columns.indexOf(c));
        const states: Record<string, Record<string, string>> = {};
        for (const row of rows.map((r) => r.split(","))) {
            if (row[sv] !== "FRONTEND" && row[sv] !== "BACKEND") (states[row[px]] ??= {})[row[sv]] = row[status].split(" ")[0];
        }
        return states;
    } catch {
        return {};
    }
}

/** Everything the stack's members and proxies report now. */
export async function gatherStatus(stack: string): Promise<ClusterFacts[]> {
    const state = readState(stack);
    if (state.resources.length === 0) throw new Error(`stack ${stack} has not been deployed by the harness (run: npm run harness -- up ${stack})`);
    const { config } = loadStackConfig(stack, state.config);
    const prefix = `${config["hadb:target"] === "docker" ? `hadb-${stack}-` : ""}`;
    const address = config["hadb:publishAddress"];
    const published = config["hadb:publishFrontends"] === "true";
    const clusters = [
        { key: "postgres", cluster: "pg", engine: "postgres" as const, path: "/patroni", stats: config["hadb:postgresStatsPort"] },
        { key: "mysql", cluster: "mysql", engine: "mysql" as const, path: "/member", stats: config["hadb:mysqlStatsPort"] },
    ];
    return Promise.all(
        clusters
            .filter((c) => state.outputs[c.key])
            .map(async (c) => {
                const out = state.outputs[c.key] as { members: string[]; replicas?: string[] };
                const containers = [...out.members.map((n) => ({ n, fleet: false })), ...(out.replicas ?? []).map((n) => ({ n, fleet: true }))];
                const members = await Promise.all(containers.map(async ({ n, fleet }) => ({ name: n.slice(prefix.length), fleet, report: await agentReport(n, c.path) })));
                return { cluster: c.cluster, engine: c.engine, members, proxy: published ? await proxyStates(`http://${address}:${c.stats}`) : {} };
            }),
    );
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    const stack = args.find((a) => !a.startsWith("--") && !/^\d+$/.test(a));
    if (!stack) throw new Error("usage: npm run status -- <stack> [--json] [--watch [seconds]]");
    const watchAt = args.indexOf("--watch");
    const interval = watchAt >= 0 && /^\d+$/.test(args[watchAt + 1] ?? "") ? Number(args[watchAt + 1]) : 2;
    for (let i = 0; i < (watchAt >= 0 ? MAX_REFRESHES : 1); i++) {
        const rows: StatusRow[] = statusRows(await gatherStatus(stack));
        const text = args.includes("--json") ? JSON.stringify(rows, null, 2) + "\n" : renderStatusTable(stack, rows, new Date());
        process.stdout.write(watchAt >= 0 && !args.includes("--json") ? `\x1b[2J\x1b[H${text}` : text);
        if (watchAt >= 0) await new Promise((r) => setTimeout(r, interval * 1000));
    }
}

if (require.main === module) {
    main().then(
        () => process.exit(0),
        (err) => {
            console.error(`[status] ${err instanceof Error ? err.message : err}`);
            process.exit(1);
        },
    );
}
