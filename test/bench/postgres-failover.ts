// Failover benchmark for the dev stack: N rounds each of docker kill, docker stop and a planned switchover of
// the leader, with the e-commerce writer running through 127.0.0.1:5000. Prints every run and the medians.
// Usage: npm run bench:postgres -- [rounds=3]
import { down, up } from "../harness";
import { containers, waitFor } from "../live/support";
import { healthyCluster, leaderOf, missingOrders, patroniCluster, postgresOrders, switchover, withClient } from "../live/postgres-support";
import { OrderWriter } from "../live/writer";
import { median, runBenchmark } from "./stats";

const rounds = Number(process.argv[2] ?? 3);

async function main(): Promise<void> {
    await down("dev", () => {}, { destroyData: true });
    const t0 = Date.now();
    const { outputs } = await up("dev", { log: () => {} });
    const { rwUrl, members } = outputs.postgres as { rwUrl: string; members: string[] };
    const containerOf = (member: string) => members.find((c) => c.endsWith(`-${member}`))!;
    const healthy = () => waitFor("healthy cluster", async () => healthyCluster(await patroniCluster(members), members.length, 1), 180_000, 250);
    await healthy();
    await waitFor("writable", () => withClient(rwUrl, async (c) => (await c.query("SELECT 1")).rowCount === 1), 60_000);
    const bootstrap = (Date.now() - t0) / 1000;
    console.log(`bootstrap (harness up -> replicated and writable): ${bootstrap.toFixed(1)} s`);

    const results: Record<string, number[]> = { kill: [], stop: [], switchover: [] };
    for (let round = 1; round <= rounds; round++) {
        for (const kind of ["kill", "stop", "switchover"] as const) {
            const cluster = await patroniCluster(members);
            const leader = leaderOf(cluster)!.name;
            const writer = new OrderWriter(postgresOrders(rwUrl));
            writer.start();
            await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 30_000);
            const oldServer = writer.lastServer;
            const at = Date.now();
            if (kind === "kill") await containers.kill(containerOf(leader));
            else if (kind === "stop") await containers.stop(containerOf(leader));
            else await switchover(containerOf(leader), leader, cluster.find((m) => m.role === "sync_standby")!.name);
            await writer.waitForSuccessAfter(at, oldServer, 90_000);
            await new Promise((r) => setTimeout(r, 1500));
            await writer.stop();
            // Kill: time to the first write on the new leader. Stop and switchover: the longest write gap.
            const seconds = kind === "kill" ? writer.firstSuccessAfter(at, oldServer)! : writer.longestGap(at - 5000, Date.now());
            const lost = await missingOrders(rwUrl, writer.acknowledged);
            results[kind].push(seconds);
            console.log(`round ${round} ${kind}: ${seconds.toFixed(2)} s, ${writer.acknowledged.length} acknowledged, ${lost.length} lost`);
            if (kind !== "switchover") await containers.start(containerOf(leader));
            await healthy();
        }
    }
    for (const [kind, values] of Object.entries(results)) console.log(`median ${kind}: ${median(values).toFixed(2)} s over ${values.length} runs`);
    await down("dev", () => {}, { destroyData: true });
}

runBenchmark(main);
