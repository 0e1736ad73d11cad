// npm run harness -- up|outputs|down <stack> [key=value ...]
import { down, outputs, up } from "./index";
import { listStacks } from "./stackConfig";

async function main(argv: string[]): Promise<void> {
    const [command, stack, ...rest] = argv;
    if (!command || !stack || !["up", "outputs", "down"].includes(command)) {
        throw new Error(`usage: npm run harness -- up|outputs|down <stack> [hadb:key=value ...]; stacks: ${listStacks().join(", ")}`);
    }
    const config = Object.fromEntries(
        rest.map((kv) => {
            const at = kv.indexOf("=");
            if (at < 1) throw new Error(`config override ${JSON.stringify(kv)} is not key=value`);
            const raw = kv.slice(at + 1);
            return [kv.slice(0, at), /^-?\d+$/.test(raw) ? Number(raw) : raw === "true" ? true : raw === "false" ? false : raw];
        }),
    );
    if (command === "up") {
        const started = Date.now();
        await up(stack, { config });
        console.error(`[harness] stack ${stack} is up (${((Date.now() - started) / 1000).toFixed(1)} s); outputs: npm run harness -- outputs ${stack}`);
    } else if (command === "outputs") {
        process.stdout.write(JSON.stringify(outputs(stack), null, 2) + "\n");
    } else {
        const removed = await down(stack);
        console.error(`[harness] stack ${stack} is down (${removed} objects removed)`);
    }
}

main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    },
);
