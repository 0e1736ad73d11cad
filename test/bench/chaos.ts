// The chaos run: random faults from the fault matrix, one after another, on the dev stack (one engine at a
// time, two HAProxy instances), with the e-commerce writer running through both of them (a client listing both,
// as a libpq multi-host URL) and a commit probe asking every member directly, every ~100 ms, to commit.
// After each fault it waits for the cluster to be whole again and checks the invariants: no acknowledged write
// lost, never two members acknowledging writes over one stretch, every member's data identical.
//
// Usage: npm run chaos -- <rounds=10> [--engine postgres|mysql] [--faults kill-replica,...] [--seed N] [--out results]
// Writes <out>/chaos.json and chaos.md; exits 1 when an invariant broke.
import * as fs from "fs";
import * as path from "path";
import { down } from "../harness";
import { DeployedEngine, deployEngine, EngineName, engineStack, createProbeTable } from "../live/engines";
import { multiHostOrders, onInstance, overlappingWriters } from "../live/faults";
import { containers, sleep, waitFor } from "../live/support";
import { containerLogs } from "../k8s/standin/engine";
import { OrderWriter } from "../live/writer";
import { markdownTable, median, runBenchmark, scriptArguments } from "./stats";

const NETWORK = "hadb-dev";
const FAULTS = ["kill-primary", "stop-primary", "switchover", "kill-replica", "partition-primary", "kill-proxy", "outage", "kill-etcd-member"] as const;
type Fault = (typeof FAULTS)[number];

interface Round {
    readonly engine: EngineName;
    readonly round: number;
    readonly fault: Fault;
    readonly target: string;
    /** Longest time between two acknowledged writes from 5 s before the fault to the end of the round, seconds. */
    readonly writeGap: number;
    /** From the fault to every member back in its role, replicating, seconds. */
    readonly recovery: number;
    readonly acknowledged: number;
    readonly lost: number;
    /** Pairs of members that acknowledged probe commits over one stretch of time. */
    readonly twoWriters: number;
}

/** A small seeded generator (mulberry32), so a run can be repeated with its seed. */
function random(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/** Applies one fault and undoes it once it has had its effect; returns the container it hit. */
async function inflict(e: DeployedEngine, fault: Fault, writer: OrderWriter<unknown>, pick: <T>(xs: readonly T[]) => T): Promise<string> {
    const at = Date.now();
    const oldServer = writer.lastServer;
    const primary = await e.primary();
    const writesMoved = () => writer.waitForSuccessAfter(at, oldServer, 120_000);
    const writesGoOn = () => waitFor("writes going on", async () => writer.attempts.filter((a) => a.ok && a.at > at).length >= 20, 60_000, 100);
    switch (fault) {
        case "kill-primary":
            await containers.kill(primary);
            await writesMoved();
            await containers.start(primary);
            return primary;
        case "stop-primary":
            await containers.stop(primary, 30);
            await writesMoved();
            await containers.start(primary);
            return primary;
        case "switchover":
            await e.switchover();
            await writesMoved();
            return primary;
        case "kill-replica": {
            const replica = pick(e.members.filter((m) => m !== primary));
            await containers.kill(replica);
            await writesGoOn();
            await containers.start(replica);
            return replica;
        }
        case "partition-primary": {
            const address = await containers.disconnect(primary, NETWORK);
            try {
                await writesMoved();
            } finally {
                await containers.connect(primary, NETWORK, primary.replace(`${NETWORK}-`, ""), address);
            }
            return primary;
        }
        case "kill-proxy": {
            const proxy = pick(e.proxies);
            await containers.kill(proxy);
            await writesGoOn();
            await containers.start(proxy);
            return proxy;
        }
        case "outage":
            await Promise.all(e.members.map((m) => containers.kill(m)));
            await sleep(1000);
            for (const m of [...e.members].sort(() => pick([-1, 1]))) await containers.start(m);
            await writer.waitForSuccessAfter(at, undefined, 240_000);
            return "every member";
        case "kill-etcd-member": {
            const member = pick(e.dcs);
            await containers.kill(member);
            // Longer than a lease: losing one DCS member must not cost the leader its lock.
            await sleep(25_000);
            await containers.start(member);
            return member;
        }
    }
}

/** A round slower than this to be whole again, or one that fails, keeps logs (in <out>/chaos-logs) for a look afterwards. */
const SLOW_RECOVERY_S = 60;

/** The fault's target's log, or every member's when the fault hit them all (an outage) or the round failed. */
async function keepLogs(e: DeployedEngine, out: string, round: number, fault: Fault, containersToKeep: readonly string[], why: string): Promise<void> {
    const dir = path.join(out, "chaos-logs", `${e.engine}-round-${round}-${fault}`);
    fs.mkdirSync(dir, { recursive: true });
    for (const c of containersToKeep) fs.writeFileSync(path.join(dir, `${c}.log`), (await containerLogs(c, 2000)) + "\n");
    console.log(`${e.engine} round ${round}: ${why}; logs of ${containersToKeep.join(", ")} in ${dir}`);
}

async function oneRound(e: DeployedEngine, round: number, fault: Fault, pick: <T>(xs: readonly T[]) => T, out: string): Promise<Round> {
    const writer = new OrderWriter(multiHostOrders([e.orders(e.rwUrl), e.orders(onInstance(e.rwUrl, 1))]), 600_000);
    const probe = e.commitProbe().start();
    writer.start();
    let target: string | undefined;
    try {
        await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 60_000);
        const at = Date.now();
        target = await inflict(e, fault, writer, pick);
        await e.healthy(300_000);
        const everyContainer = [...e.proxies, ...e.dcs];
        await waitFor("every proxy and DCS member healthy", async () => (await Promise.all(everyContainer.map(containers.state))).every((s) => s.Running && (s.Health === undefined || s.Health.Status === "healthy")), 120_000, 500);
        const recovery = (Date.now() - at) / 1000;
        if (recovery > SLOW_RECOVERY_S) await keepLogs(e, out, round, fault, e.members.includes(target) ? [target] : e.members, `whole again only after ${recovery.toFixed(1)} s`);
        await sleep(1000);
        await writer.stop();
        const acks = await probe.stop();
        const lost = (await e.missing(writer.acknowledged)).length;
        await e.identical();
        return { engine: e.engine, round, fault, target, writeGap: writer.longestGap(at - 5000, Date.now()), recovery, acknowledged: writer.acknowledged.length, lost, twoWriters: overlappingWriters(acks).length };
    } catch (err) {
        await keepLogs(e, out, round, fault, [...e.members, ...e.proxies, ...e.dcs], `failed (${target ?? "before the fault"}): ${(err as Error).message}`);
        throw err;
    } finally {
        await writer.stop();
        await probe.stop();
    }
}

async function main(): Promise<void> {
    const args = scriptArguments();
    const rounds = args.rounds ?? 10;
    const engines = (args.option("engine") ?? "postgres,mysql").split(",") as EngineName[];
    const seed = Number(args.option("seed") ?? Date.now() % 100_000);
    const out = args.option("out") ?? "results";
    // --faults narrows the draw, to repeat one kind of fault (a slow recovery seen once, say).
    const chosen = (args.option("faults")?.split(",") ?? FAULTS) as Fault[];
    const unknown = chosen.filter((f) => !FAULTS.includes(f));
    if (unknown.length > 0) throw new Error(`--faults ${unknown.join(",")}: not a fault this run knows; use some of ${FAULTS.join(", ")}`);
    const next = random(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
    console.log(`chaos: ${rounds} rounds per engine (${engines.join(", ")}), seed ${seed}`);
    const started = Date.now();
    const results: Round[] = [];
    for (const engine of engines) {
        await down("dev", () => {}, { destroyData: true });
        const e = await deployEngine(engine, engineStack(engine));
        await createProbeTable(e);
        const faults = chosen.filter((f) => f !== "kill-etcd-member" || e.dcs.length > 0);
        if (faults.length === 0) throw new Error(`--faults ${chosen.join(",")}: none applies to ${engine} (it has no DCS of its own)`);
        for (let round = 1; round <= rounds; round++) {
            const r = await oneRound(e, round, pick(faults), pick, out);
            results.push(r);
            console.log(`${engine} round ${round} ${r.fault} (${r.target}): write gap ${r.writeGap.toFixed(2)} s, whole again after ${r.recovery.toFixed(1)} s, ${r.acknowledged} acknowledged, ${r.lost} lost, ${r.twoWriters} two-writer overlaps`);
        }
        await down("dev", () => {}, { destroyData: true });
    }
    const report = { date: new Date().toISOString(), seed, rounds, minutes: (Date.now() - started) / 60_000, results };
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, "chaos.json"), JSON.stringify(report, null, 2) + "\n");
    const table = chaosTable(results, report);
    fs.writeFileSync(path.join(out, "chaos.md"), table);
    console.log(table);
    if (results.some((r) => r.lost > 0 || r.twoWriters > 0)) throw new Error("an invariant broke: see the report");
}

function chaosTable(results: readonly Round[], meta: { date: string; seed: number; minutes: number }): string {
    const header = ["engine", "fault", "rounds", "write gap s (median, max)", "whole again s (median, max)", "acknowledged", "lost", "two-writer overlaps"];
    const keys = [...new Set(results.map((r) => `${r.engine} ${r.fault}`))].sort();
    const rows = keys.map((key) => {
        const rs = results.filter((r) => `${r.engine} ${r.fault}` === key);
        const fmt = (xs: number[]) => `${median(xs).toFixed(1)}, ${Math.max(...xs).toFixed(1)}`;
        const sum = (f: (r: Round) => number) => rs.reduce((n, r) => n + f(r), 0);
        return [...key.split(" "), String(rs.length), fmt(rs.map((r) => r.writeGap)), fmt(rs.map((r) => r.recovery)), String(sum((r) => r.acknowledged)), String(sum((r) => r.lost)), String(sum((r) => r.twoWriters))];
    });
    const total = (f: (r: Round) => number) => results.reduce((n, r) => n + f(r), 0);
    return markdownTable(
        `Chaos run ${meta.date.slice(0, 16)}Z, seed ${meta.seed}, ${results.length} faults in ${meta.minutes.toFixed(0)} min: ${total((r) => r.acknowledged)} writes acknowledged, ${total((r) => r.lost)} lost, ${total((r) => r.twoWriters)} two-writer overlaps.`,
        header,
        rows,
    );
}

runBenchmark(main);
