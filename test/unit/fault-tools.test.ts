import { describe, expect, it } from "vitest";
import { renderBarChart } from "../bench/chart";
import { scriptArguments } from "../bench/stats";
import { runBounded, runChecked } from "../harness/process";
import { overlappingWriters, onInstance } from "../live/faults";
import { leaderConfirms, PatroniMember } from "../live/postgres-support";

// The pure parts of the fault tests, the chaos run and the benchmark: what decides "two writers at once", how the
// scripts read their arguments, and the chart.
describe("fault tools", () => {
    const ack = (member: string, at: number) => ({ member, at });

    it("a clean hand-over is no overlap; acknowledgements that interleave are", () => {
        expect(overlappingWriters([ack("a", 0), ack("a", 100), ack("b", 20_000), ack("b", 20_100)])).toEqual([]);
        expect(overlappingWriters([ack("a", 0), ack("b", 150), ack("a", 300), ack("b", 450)])).toEqual([{ members: ["a", "b"], seconds: 0.15 }]);
        expect(overlappingWriters([ack("c", 10), ack("a", 0), ack("b", 5), ack("a", 20)])).toEqual([
            { members: ["a", "b"], seconds: 0 },
            { members: ["a", "c"], seconds: 0 },
        ]);
        expect(overlappingWriters([])).toEqual([]);
    });

    it("reads the rounds wherever they stand and --name value options, and refuses anything else", () => {
        const args = scriptArguments(["--engine", "postgres", "--profiles", "hadb-dev", "3"]);
        expect(args.rounds).toBe(3);
        expect(args.option("engine")).toBe("postgres");
        expect(args.option("seed")).toBeUndefined();
        expect(scriptArguments(["20", "--seed", "7"]).rounds).toBe(20);
        expect(scriptArguments([]).rounds).toBeUndefined();
        expect(() => scriptArguments(["three"])).toThrow(/unexpected argument three/);
    });

    it("addresses a front end's second instance 10 ports up, keeping the credentials", () => {
        expect(onInstance("postgresql://app:s%40cret@127.0.0.1:5000/app", 1)).toBe("postgresql://app:s%40cret@127.0.0.1:5010/app");
    });

    it("draws one bar per series and group, with whiskers, and skips missing values", () => {
        const svg = renderBarChart({
            title: "t <1>",
            groups: ["pg kill", "pg stop"],
            series: [
                { name: "hadb", values: [{ median: 20, min: 19, max: 21 }, { median: 2, min: 1, max: 3 }] },
                { name: "stock", values: [{ median: 40, min: 35, max: 45 }, undefined] },
            ],
        });
        expect(svg.startsWith("<svg")).toBe(true);
        expect(svg).toContain("t &lt;1&gt;");
        expect(svg.match(/<rect x="[\d.]+" y="[\d.]+" width="15"/g)).toHaveLength(3);
        expect(svg).toContain("pg kill, stock: 40.0 s (35.0–45.0)");
    });
});

// The live tests read members through `docker exec`, whose CLI exits 0 when a timeout's SIGTERM reaches it.
describe("bounded commands", () => {
    const trapsTerm = ["-c", "trap 'exit 0' TERM; sleep 10 & wait; sleep 10 & wait"];

    it("a command that outlives its bound is an error even when it exits 0 on the signal", async () => {
        const started = Date.now();
        await expect(runBounded("sh", trapsTerm, 300)).rejects.toThrow(/no answer within 0.3 s/);
        expect(Date.now() - started).toBeLessThan(4000);
    });

    it("exit codes, output and input pass through; runChecked turns a non-zero exit into an error with stderr", async () => {
        expect(await runBounded("sh", ["-c", "cat; echo oops >&2; exit 3"], 5000, "in")).toEqual({ stdout: "in", stderr: "oops\n", exitCode: 3 });
        expect(await runChecked("sh", ["-c", "echo ok"], 5000)).toBe("ok\n");
        await expect(runChecked("sh", ["-c", "echo 'ERROR: no' >&2; exit 1"], 5000)).rejects.toThrow(/exited 1:\nERROR: no$/);
        // A password handed to `docker exec` in the environment stays out of the message.
        const failed = await runChecked("env", ["MYSQL_PWD=s3cret", "sh", "-c", "exit 2"], 5000).catch((err: Error) => err.message);
        expect(failed).toMatch(/MYSQL_PWD=\*\*\* sh -c exit 2 exited 2/);
        expect(failed).not.toContain("s3cret");
        await expect(runBounded("no-such-command-here", [], 5000)).rejects.toThrow(/ENOENT/);
    });
});

// After a complete outage, Patroni's /cluster can still show the cluster as it was: the leader must confirm it.
describe("a healthy PostgreSQL cluster, confirmed by its leader", () => {
    const cluster: PatroniMember[] = [
        { name: "pg-0", role: "leader", state: "running" },
        { name: "pg-1", role: "sync_standby", state: "streaming", lag: 0 },
        { name: "pg-2", role: "replica", state: "streaming", lag: 0 },
    ];
    const streaming = (name: string, sync_state: string) => ({ application_name: name, state: "streaming", sync_state });

    it("the leader running as primary with the named synchronous standby streaming synchronously", () => {
        expect(leaderConfirms({ role: "primary", state: "running", replication: [streaming("pg-1", "sync"), streaming("pg-2", "async")] }, cluster)).toBe(true);
        expect(leaderConfirms({ role: "primary", state: "running", replication: [streaming("pg-1", "quorum")] }, cluster)).toBe(true);
    });

    it("not a leader that just restarted, nor one whose synchronous standby is not (yet) synchronous", () => {
        expect(leaderConfirms({ role: "replica", state: "running" }, cluster)).toBe(false);
        expect(leaderConfirms({ role: "primary", state: "starting" }, cluster)).toBe(false);
        expect(leaderConfirms({ role: "primary", state: "running", replication: [] }, cluster)).toBe(false);
        expect(leaderConfirms({ role: "primary", state: "running", replication: [streaming("pg-1", "async"), streaming("pg-2", "sync")] }, cluster)).toBe(false);
    });
});
