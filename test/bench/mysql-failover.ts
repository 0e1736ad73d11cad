// Failover benchmark for the dev stack's Group Replication group: N rounds each of docker kill of the primary
// and a planned primary switch (group_replication_set_as_primary), with the e-commerce writer running through
// 127.0.0.1:6446. Prints every run and the medians. Usage: npm run bench:mysql -- [rounds=3]
import { down, up } from "../harness";
import { containers, waitFor } from "../live/support";
import { groupFormed, memberSql, memberStatuses, missingOrders, mysqlOrders, withMySql } from "../live/mysql-support";
import { OrderWriter } from "../live/writer";
import { median, runBenchmark } from "./stats";

const rounds = Number(process.argv[2] ?? 3);

async function main(): Promise<void> {
    await down("dev", () => {}, { destroyData: true });
    const t0 = Date.now();
    const { outputs } = await up("dev", { log: () => {} });
    const { rwUrl, members, adminUrl } = outputs.mysql as { rwUrl: string; members: string[]; adminUrl: string };
    const adminPassword = decodeURIComponent(new URL(adminUrl).password);
    const formed = () => waitFor("group formed", async () => groupFormed(await memberStatuses(members)), 240_000, 250);
    await formed();
    await waitFor("writable", () => withMySql(rwUrl, async (c) => (await c.query("SELECT 1"), true)), 60_000);
    console.log(`bootstrap (harness up -> group formed and writable): ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const results: Record<string, number[]> = { kill: [], switch: [] };
    for (let round = 1; round <= rounds; round++) {
        for (const kind of ["kill", "switch"] as const) {
            const statuses = await memberStatuses(members);
            const primary = members[statuses.findIndex((s) => s?.role === "PRIMARY")];
            const next = members[statuses.findIndex((s) => s?.role === "SECONDARY")];
            const writer = new OrderWriter(mysqlOrders(rwUrl));
            writer.start();
            await waitFor("writes flowing", async () => writer.acknowledged.length >= 20, 30_000);
            const oldServer = writer.lastServer;
            const at = Date.now();
            if (kind === "kill") await containers.kill(primary);
            else {
                const uuid = await memberSql(next, adminPassword, "SELECT @@server_uuid");
                await memberSql(primary, adminPassword, `SELECT group_replication_set_as_primary('${uuid}')`);
            }
            const seconds = await writer.waitForSuccessAfter(at, oldServer, 90_000);
            await new Promise((r) => setTimeout(r, 1500));
            await writer.stop();
            const lost = await missingOrders(rwUrl, writer.acknowledged);
            results[kind].push(seconds);
            console.log(`round ${round} ${kind}: ${seconds.toFixed(2)} s to the first write on the new primary, ${writer.acknowledged.length} acknowledged, ${lost.length} lost`);
            if (kind === "kill") await containers.start(primary);
            await formed();
        }
    }
    for (const [kind, values] of Object.entries(results)) console.log(`median ${kind}: ${median(values).toFixed(2)} s over ${values.length} runs`);
    await down("dev", () => {}, { destroyData: true });
}

runBenchmark(main);
