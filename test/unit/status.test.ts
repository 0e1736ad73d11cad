import { describe, expect, it } from "vitest";
import { ClusterFacts, renderStatusTable, statusRows } from "../status/status";

const pg: ClusterFacts = {
    cluster: "pg",
    engine: "postgres",
    members: [
        { name: "pg-0", fleet: false, report: { role: "primary", state: "running", xlog: { location: 5_000_000 } } },
        { name: "pg-1", fleet: false, report: { role: "replica", state: "streaming", xlog: { received_location: 5_000_000, replayed_location: 5_000_000 } } },
        { name: "pg-2", fleet: false },
        {
            name: "pg-reads-0",
            fleet: true,
            report: { role: "replica", state: "streaming", xlog: { received_location: 5_000_000, replayed_location: 1_000_000, paused: true }, tags: { hadb_pool: "read-only" } },
        },
        { name: "pg-reads-1", fleet: true, report: { role: "replica", state: "streaming", xlog: { replayed_location: 5_000_000 }, tags: { hadb_pool: "analytics" } } },
    ],
    proxy: {
        primary: { "pg-0": "UP", "pg-1": "DOWN", "pg-2": "DOWN" },
        replicas: { "pg-0": "DOWN", "pg-1": "UP", "pg-2": "DOWN", "pg-reads-0": "DOWN" },
        analytics: { "pg-reads-1": "UP" },
    },
};

const mysql: ClusterFacts = {
    cluster: "mysql",
    engine: "mysql",
    members: [
        { name: "mysql-0", fleet: false, report: { role: "PRIMARY", state: "ONLINE", applier_queue: 0 } },
        { name: "mysql-reads-0", fleet: true, report: { role: "REPLICA", state: "APPLIER_STOPPED", applier_queue: 150, seconds_behind: 4.25, analytics: false, source: "mysql-0" } },
    ],
    proxy: { primary: { "mysql-0": "UP" }, replicas: { "mysql-0": "DOWN", "mysql-reads-0": "DOWN" } },
};

describe("npm run status: rows from what members and proxies report", () => {
    it("PostgreSQL lag is the WAL a member has not replayed, measured against the leader; a paused replay says so", () => {
        const rows = statusRows([pg]);
        expect(rows.map((r) => [r.member, r.kind, r.role, r.lag])).toEqual([
            ["pg-0", "member", "leader", 0],
            ["pg-1", "member", "replica", 0],
            ["pg-2", "member", "unknown", null],
            ["pg-reads-0", "read replica", "replica", 4_000_000],
            ["pg-reads-1", "analytics replica", "replica", 0],
        ]);
        expect(rows[2].state).toBe("not answering");
        expect(rows[3].note).toBe("replay paused");
    });

    it("names the endpoints whose backend has the server UP now", () => {
        const rows = statusRows([pg]);
        expect(Object.fromEntries(rows.map((r) => [r.member, r.endpoints]))).toEqual({
            "pg-0": ["rw"],
            "pg-1": ["ro"],
            "pg-2": [],
            "pg-reads-0": [],
            "pg-reads-1": ["analytics"],
        });
    });

    it("follows each endpoint's fallbacks: with no replica up, the read-only and analytics endpoints route to the primary", async () => {
        const down: ClusterFacts = { ...pg, proxy: { primary: { "pg-0": "UP", "pg-1": "DOWN" }, replicas: { "pg-1": "DOWN", "pg-reads-0": "DOWN" }, analytics: { "pg-reads-1": "DOWN" } } };
        expect(statusRows([down]).find((r) => r.member === "pg-0")!.endpoints).toEqual(["rw", "ro", "analytics"]);
        // A proxy without an analytics backend serves no analytics endpoint.
        const noAnalytics: ClusterFacts = { ...pg, proxy: { primary: { "pg-0": "UP" }, replicas: { "pg-1": "UP" } } };
        expect(statusRows([noAnalytics]).find((r) => r.member === "pg-1")!.endpoints).toEqual(["ro"]);
    });

    it("MySQL lag is transactions not yet applied, with seconds behind and the source for fleet replicas", () => {
        const [member, replica] = statusRows([mysql]);
        // No replica is UP in the read-only pool, so the read-only endpoint falls back to the primary.
        expect(member).toMatchObject({ role: "PRIMARY", lag: 0, lagUnit: "transactions", endpoints: ["rw", "ro"] });
        expect(replica).toMatchObject({ kind: "read replica", role: "REPLICA", state: "APPLIER_STOPPED", lag: 150, secondsBehind: 4.25, note: "from mysql-0", endpoints: [] });
    });

    it("renders one aligned line per member", () => {
        const table = renderStatusTable("dev", statusRows([pg, mysql]), new Date("2026-11-30T00:00:00Z"));
        const lines = table.trim().split("\n");
        expect(lines[0]).toBe("Stack dev at 2026-11-30T00:00:00.000Z");
        expect(lines[1]).toMatch(/^CLUSTER\s+MEMBER\s+KIND\s+ROLE\s+STATE\s+LAG\s+ROUTED FROM\s+NOTE$/);
        expect(lines).toHaveLength(2 + 7);
        expect(lines.find((l) => l.includes("mysql-reads-0"))).toMatch(/150 tx \(4\.[23] s\)\s+-\s+from mysql-0$/);
    });
});
