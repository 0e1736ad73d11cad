// The failover benchmark: hadb's timing profiles against the stock configuration users would otherwise run, in
// one run on one machine. For each engine and profile, N rounds each of a hard kill, a graceful stop and a
// planned switchover of the primary, with the e-commerce writer running through HAProxy's read-write port;
// what is measured is the write unavailability the writer saw (the longest time between two acknowledged
// writes around the fault) and the acknowledged writes lost (must be 0).
//
// Usage: npm run bench -- [rounds=3] [--engine postgres|mysql] [--profiles hadb-dev,hadb-production,stock] [--out results]
// Writes <out>/bench.json, bench.md and bench.svg.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { down } from "../harness";
import type { ConfigValues } from "../harness/stackConfig";
import { deployEngine, DeployedEngine, EngineName, engineStack } from "../live/engines";
import { containers, sleep, waitFor } from "../live/support";
import { OrderWriter } from "../live/writer";
import { renderBarChart } from "./chart";
import { markdownTable, median, runBenchmark, scriptArguments } from "./stats";

/** What each profile sets on the dev stack. */
export const PROFILES: Record<string, { readonly label: string; readonly config: ConfigValues }> = {
    "hadb-dev": {
        label: "hadb dev (Patroni 20/1/5, GR expel 0, HAProxy 500 ms × 2)",
        config: { "hadb:postgresTiming": "dev", "hadb:mysqlTiming": "dev", "hadb:haproxyCheckIntervalMs": 500, "hadb:haproxyCheckFall": 2, "hadb:haproxyCheckRise": 1, "hadb:haproxyFastDown": true },
    },
    "hadb-production": {
        label: "hadb production (Patroni 20/5/5, GR expel 5, HAProxy 1 s × 2)",
        config: { "hadb:postgresTiming": "production", "hadb:mysqlTiming": "production", "hadb:haproxyCheckIntervalMs": 1000, "hadb:haproxyCheckFall": 2, "hadb:haproxyCheckRise": 1, "hadb:haproxyFastDown": true },
    },
    stock: {
        label: "stock (Patroni 30/10/10, GR defaults, HAProxy inter 3s fall 3 rise 2)",
        config: { "hadb:postgresTiming": "patroni-defaults", "hadb:mysqlTiming": "mysql-defaults", "hadb:haproxyCheckIntervalMs": 3000, "hadb:haproxyCheckFall": 3, "hadb:haproxyCheckRise": 2, "hadb:haproxyFastDown": false },
    },
};
export const FAULTS = ["kill", "stop", "switchover"] as const;
export type Fault = (typeof FAULTS)[number];

export interface Measured {
    readonly engine: EngineName;
    readonly profile: string;
    readonly fault: Fault;
    /** Write unavailability of each round, seconds. */
    readonly seconds: number[];
    readonly acknowledged: number[];
    readonly lost: number[];
}

/** One fault under the writer: the longest gap between acknowledged writes around it, and what was lost. */
async function failOnce(e: DeployedEngine, fault: Fault): Promise<{ seconds: number; acknowledged: number; lost: number }> {
    const primary = await e.primary();
    const writer = new OrderWriter(e.orders(e.rwUrl), 240_000);
    writer.start();
    try {
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 30_000);
        const oldServer = writer.lastServer;
        const at = Date.now();
        if (fault === "kill") await containers.kill(primary);
        else if (fault === "stop") await containers.stop(primary, 30);
        else await e.switchover();
        await writer.waitForSuccessAfter(at, oldServer, 180_000);
        await sleep(1500);
        await writer.stop();
        const lost = await e.missing(writer.acknowledged);
        return { seconds: writer.longestGap(at - 5000, Date.now()), acknowledged: writer.acknowledged.length, lost: lost.length };
    } finally {
        await writer.stop();
        if (fault !== "switchover") await containers.start(primary);
        await e.healthy(240_000);
    }
}

async function main(): Promise<void> {
    const args = scriptArguments();
    const rounds = args.rounds ?? 3;
    const engines = (args.option("engine") ?? "postgres,mysql").split(",") as EngineName[];
    const profiles = (args.option("profiles") ?? Object.keys(PROFILES).join(",")).split(",");
    const out = args.option("out") ?? "results";
    for (const p of profiles) if (!PROFILES[p]) throw new Error(`--profiles: unknown profile ${p}; known: ${Object.keys(PROFILES).join(", ")}`);
    const started = Date.now();
    const results: Measured[] = [];
    for (const engine of engines) {
        await down("dev", () => {}, { destroyData: true });
        for (const profile of profiles) {
            // The same running stack, changed to the next profile by `up` (the configurators apply the timing online).
            const e = await deployEngine(engine, engineStack(engine, PROFILES[profile].config));
            for (const fault of FAULTS) results.push({ engine, profile, fault, seconds: [], acknowledged: [], lost: [] });
            for (let round = 1; round <= rounds; round++) {
                for (const fault of FAULTS) {
                    const r = await failOnce(e, fault);
                    const m = results.find((x) => x.engine === engine && x.profile === profile && x.fault === fault)!;
                    m.seconds.push(r.seconds);
                    m.acknowledged.push(r.acknowledged);
                    m.lost.push(r.lost);
                    console.log(`${engine} ${profile} round ${round} ${fault}: writes unavailable ${r.seconds.toFixed(2)} s, ${r.acknowledged} acknowledged, ${r.lost} lost`);
                }
            }
        }
        await down("dev", () => {}, { destroyData: true });
    }
    const report = { date: new Date().toISOString(), machine: `${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Docker`, rounds, minutes: (Date.now() - started) / 60_000, profiles: Object.fromEntries(profiles.map((p) => [p, PROFILES[p].label])), results };
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, "bench.json"), JSON.stringify(report, null, 2) + "\n");
    fs.writeFileSync(path.join(out, "bench.md"), benchTable(results, profiles, report));
    fs.writeFileSync(path.join(out, "bench.svg"), benchChart(results, profiles));
    console.log(benchTable(results, profiles, report));
}

const cell = (v: number[]) => (v.length ? `${median(v).toFixed(1)} (${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)})` : "–");

/** The markdown table: medians (min–max) per profile and the stock : hadb ratios. */
export function benchTable(results: readonly Measured[], profiles: readonly string[], meta: { date: string; machine: string; rounds: number; minutes: number }): string {
    const hadb = profiles.filter((p) => p !== "stock");
    const withStock = profiles.includes("stock");
    const header = ["engine", "fault", ...profiles.map((p) => `${p} s`), ...(withStock ? hadb.map((p) => `stock : ${p}`) : []), "lost"];
    const rows = [...new Set(results.map((r) => r.engine))].flatMap((engine) =>
        FAULTS.map((fault) => {
            const of = (p: string) => results.find((r) => r.engine === engine && r.fault === fault && r.profile === p);
            const ratios = withStock ? hadb.map((p) => `${(median(of("stock")!.seconds) / median(of(p)!.seconds)).toFixed(1)}×`) : [];
            const lost = results.filter((r) => r.engine === engine && r.fault === fault).reduce((n, r) => n + r.lost.reduce((a, b) => a + b, 0), 0);
            return [engine, fault, ...profiles.map((p) => cell(of(p)?.seconds ?? [])), ...ratios, String(lost)];
        }),
    );
    return markdownTable(
        `Write unavailability in seconds (median, min–max over ${meta.rounds} rounds), ${meta.date.slice(0, 10)}, ${meta.machine}; run took ${meta.minutes.toFixed(0)} min.`,
        header,
        rows,
    );
}

function benchChart(results: readonly Measured[], profiles: readonly string[]): string {
    const groups = [...new Set(results.map((r) => r.engine))].flatMap((engine) => FAULTS.map((fault) => ({ engine, fault })));
    return renderBarChart({
        title: "Write unavailability after a primary failure (seconds, median with min–max)",
        groups: groups.map((g) => `${g.engine} ${g.fault}`),
        series: profiles.map((p) => ({
            name: p,
            values: groups.map((g) => {
                const s = results.find((r) => r.engine === g.engine && r.fault === g.fault && r.profile === p)?.seconds ?? [];
                return s.length ? { median: median(s), min: Math.min(...s), max: Math.max(...s) } : undefined;
            }),
        })),
    });
}

runBenchmark(main);
