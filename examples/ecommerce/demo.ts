/**
 * pulumi stack output --json --show-secrets | npx tsx examples/ecommerce/demo.ts [postgres|mysql]
 *
 * Places a few orders through the stack's read-write endpoint, then reads the user's orders from a replica and
 * the 30-day revenue from the analytics replica, printing which server answered each read.
 */
import { shopFromStackOutputs } from "./shop";

async function main(): Promise<void> {
    const engine = (process.argv[2] ?? "postgres") as "postgres" | "mysql";
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const shop = shopFromStackOutputs(JSON.parse(Buffer.concat(chunks).toString("utf8")), engine);
    try {
        const userId = 1 + Math.floor(Math.random() * 1000);
        for (let i = 0; i < 3; i++) {
            const id = await shop.createOrder(userId, [
                { productId: 101, quantity: 1, price: 19.99 },
                { productId: 202, quantity: 2 + i, price: 4.5 },
            ]);
            console.log(`order ${id} for user ${userId}: committed on the primary`);
        }
        // A replica may be a moment behind the primary: the history shows what it has applied so far.
        const history = await shop.getUserOrders(userId);
        console.log(`user ${userId}'s orders, from replica ${history.server}:`, history.rows);
        const report = await shop.getOrderAnalytics();
        console.log(`30-day revenue, from analytics replica ${report.server}:`, report.rows);
    } finally {
        await shop.close();
    }
}

main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
});
