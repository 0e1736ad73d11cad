// Which front end to choose on AWS: the write unavailability after a hard kill of the primary, measured in the
// same rounds through two front ends of the same cluster. One is hadb's HAProxy tier as the prod stack runs it
// (role checks every 1 s, 2 to fall, sessions cut when a server leaves its role). The other is an HAProxy that
// behaves like an NLB pointed straight at the members' role checks ("nlb-direct"): HTTP checks every 5 s, 2 to
// change state (the NLB's fastest), fail open (no member healthy → every member gets traffic), and no session cut.
// Usage: npm run bench:frontends -- [rounds=3]   (the dev stack on Docker, both engines, no fleets)
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { down, up } from "../harness";
import { healthyCluster, leaderOf, missingOrders as missingPostgres, patroniCluster, postgresOrders } from "../live/postgres-support";
import { groupFormed, memberStatuses, missingOrders as missingMySql, mysqlOrders } from "../live/mysql-support";
import { containers, waitFor } from "../live/support";
import { OrderWriter } from "../live/writer";
import { median, runBenchmark } from "./stats";

const rounds = Number(process.argv[2] ?? 3);
const NLB_LIKE = "hadb-dev-nlb-like";
const PORTS = { postgres: 5100, mysql: 6500 };

/** haproxy.cfg of the NLB-like front end: each member twice, checked, and as an unchecked backup (fail open). */
export function nlbLikeConfig(postgres: string[], mysql: string[]): string {
    const listen = (name: string, port: number, members: string[], dbPort: number) =>
        [
            `listen ${name}`,
            `  bind :${port}`,
            "  option httpchk GET /primary",
            "  option allbackups",
            "  default-server inter 5s fall 2 rise 2",
            ...members.map((m) => `  server ${m} ${m}:${dbPort} check port 8008`),
            ...members.map((m) => `  server ${m}-open ${m}:${dbPort} backup`),
        ].join("\n");
    return [
        "global\n  log stdout format raw local0",
        "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30m\n  timeout server 30m",
        listen("postgres", PORTS.postgres, postgres, 5432),
        listen("mysql", PORTS.mysql, mysql, 3306),
        "",
    ].join("\n\n");
}

const removeNlbLike = () => execFileSync("docker", ["rm", "-f", NLB_LIKE], { timeout: 60_000, stdio: "ignore" });

const withPort = (url: string, port: number) => url.replace(/@127\.0\.0\.1:\d+\//, `@127.0.0.1:${port}/`);

async function startNlbLike(network: string, postgres: string[], mysql: string[]): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hadb-nlb-like-"));
    fs.writeFileSync(path.join(dir, "haproxy.cfg"), nlbLikeConfig(postgres, mysql));
    fs.chmodSync(dir, 0o755);
    removeNlbLike();
    execFileSync("docker", [
        "run", "-d", "--name", NLB_LIKE, "--network", network, "--label", "hadb.stack=dev",
        "-p", `127.0.0.1:${PORTS.postgres}:${PORTS.postgres}`, "-p", `127.0.0.1:${PORTS.mysql}:${PORTS.mysql}`,
        "-v", `${dir}:/etc/hadb:ro`, "hadb/haproxy:local",
    ], { timeout: 60_000 });
}

/** First acknowledged write after the kill, and the last failed one: fail open makes writes alternate in between. */
type Recovery = { first: number; settled: number; failed: number };
type Round = { hadb: Recovery; nlb: Recovery; acknowledged: number; lost: number };

function recovery(writer: OrderWriter<unknown>, since: number, oldServer: string | undefined): Recovery {
    const after = writer.attempts.filter((a) => a.at > since);
    const lastFailure = after.filter((a) => !a.ok).at(-1);
    return { first: writer.firstSuccessAfter(since, oldServer)!, settled: lastFailure ? (lastFailure.at - since) / 1000 : 0, failed: after.filter((a) => !a.ok).length };
}

/** Writes are settled once the last 30 attempts all succeeded. */
const settledWriter = (writer: OrderWriter<unknown>) => writer.attempts.length >= 30 && writer.attempts.slice(-30).every((a) => a.ok);

async function killRound(kind: "postgres" | "mysql", rwUrl: string, victim: string, lost: (acknowledged: number[]) => Promise<number>): Promise<Round> {
    const writer = (url: string): OrderWriter<unknown> => (kind === "postgres" ? new OrderWriter(postgresOrders(url)) : new OrderWriter(mysqlOrders(url))) as OrderWriter<unknown>;
    const writers = { hadb: writer(rwUrl), nlb: writer(withPort(rwUrl, PORTS[kind])) };
    for (const w of Object.values(writers)) w.start();
    await waitFor("writes flowing through both front ends", async () => writers.hadb.acknowledged.length >= 20 && writers.nlb.acknowledged.length >= 20, 60_000);
    const old = { hadb: writers.hadb.lastServer, nlb: writers.nlb.lastServer };
    const at = Date.now();
    await containers.kill(victim);
    await writers.hadb.waitForSuccessAfter(at, old.hadb, 120_000);
    await writers.nlb.waitForSuccessAfter(at, old.nlb, 120_000);
    await waitFor("writes settled through both front ends", async () => settledWriter(writers.hadb) && settledWriter(writers.nlb), 120_000, 200);
    for (const w of Object.values(writers)) await w.stop();
    const acknowledged = [...writers.hadb.acknowledged, ...writers.nlb.acknowledged];
    return { hadb: recovery(writers.hadb, at, old.hadb), nlb: recovery(writers.nlb, at, old.nlb), acknowledged: acknowledged.length, lost: await lost(acknowledged) };
}

const describe = (r: Round) =>
    `hadb first ${r.hadb.first.toFixed(2)} s, settled ${r.hadb.settled.toFixed(2)} s (${r.hadb.failed} failed); nlb-like first ${r.nlb.first.toFixed(2)} s, settled ${r.nlb.settled.toFixed(2)} s (${r.nlb.failed} failed); ${r.acknowledged} acknowledged, ${r.lost} lost`;

async function main(): Promise<void> {
    await down("dev", () => {}, { destroyData: true });
    const config = { "hadb:postgresReadReplicas": 0, "hadb:postgresAnalyticsReplicas": 0, "hadb:mysqlReadReplicas": 0, "hadb:mysqlAnalyticsReplicas": 0, "hadb:haproxyCheckIntervalMs": 1000 };
    const { outputs } = await up("dev", { log: () => {}, config });
    const pg = outputs.postgres as { rwUrl: string; members: string[] };
    const my = outputs.mysql as { rwUrl: string; members: string[] };
    const names = (containersOf: string[]) => containersOf.map((c) => c.replace(/^hadb-dev-/, ""));
    await startNlbLike("hadb-dev", names(pg.members), names(my.members));
    const results: Record<"postgres" | "mysql", Round[]> = { postgres: [], mysql: [] };
    for (let round = 1; round <= rounds; round++) {
        const cluster = await patroniCluster(pg.members);
        const leader = pg.members.find((c) => c.endsWith(`-${leaderOf(cluster)!.name}`))!;
        const r = await killRound("postgres", pg.rwUrl, leader, async (acked) => (await missingPostgres(pg.rwUrl, acked)).length);
        results.postgres.push(r);
        console.log(`round ${round} postgres kill: ${describe(r)}`);
        await containers.start(leader);
        await waitFor("PostgreSQL healthy", async () => healthyCluster(await patroniCluster(pg.members), pg.members.length, 1), 180_000, 250);

        const statuses = await memberStatuses(my.members);
        const primary = my.members[statuses.findIndex((s) => s?.role === "PRIMARY")];
        const m = await killRound("mysql", my.rwUrl, primary, async (acked) => (await missingMySql(my.rwUrl, acked)).length);
        results.mysql.push(m);
        console.log(`round ${round} mysql kill: ${describe(m)}`);
        await containers.start(primary);
        await waitFor("MySQL group whole", async () => groupFormed(await memberStatuses(my.members)), 240_000, 500);
    }
    console.log("\n| engine | front end | first write after the kill | writes failing until | failed attempts | lost |\n|---|---|---|---|---|---|");
    const range = (v: number[]) => `${median(v).toFixed(1)} s (${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)})`;
    for (const [engine, rs] of Object.entries(results)) {
        for (const [label, key] of [["hadb HAProxy tier (1 s checks, fall 2)", "hadb"], ["NLB-like (5 s checks, 2 to change, fail open)", "nlb"]] as const) {
            const rec = rs.map((r) => r[key]);
            console.log(`| ${engine} | ${label} | ${range(rec.map((x) => x.first))} | ${range(rec.map((x) => x.settled))} | ${median(rec.map((x) => x.failed))} | ${rs.reduce((a, r) => a + r.lost, 0)} |`);
        }
        const ratio = median(rs.map((r) => r.nlb.settled)) / median(rs.map((r) => r.hadb.settled));
        console.log(`| ${engine} | NLB-like : hadb (writes failing until) | | ${ratio.toFixed(2)} | | |`);
    }
    removeNlbLike();
    await down("dev", () => {}, { destroyData: true });
}

runBenchmark(main);
