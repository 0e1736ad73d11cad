// npm run harness -- preview|up|outputs|down <stack> [hadb:key=value ...] [--destroy-data]
import { down, outputs, preview, up } from "./index";
import { listStacks, parseOverrides } from "./stackConfig";

const USAGE = "usage: npm run harness -- preview|up|outputs|down <stack> [hadb:key=value ...]; down takes --destroy-data to remove retained volumes too";

async function main(argv: string[]): Promise<void> {
    const flags = argv.filter((a) => a.startsWith("--"));
    const [command, stack, ...rest] = argv.filter((a) => !a.startsWith("--"));
    if (!command || !stack || !["preview", "up", "outputs", "down"].includes(command)) throw new Error(`${USAGE}; stacks: ${listStacks().join(", ")}`);
    const unknownFlag = flags.find((f) => !(command === "down" && f === "--destroy-data"));
    if (unknownFlag) throw new Error(`unknown option ${unknownFlag}; ${USAGE}`);
    const config = parseOverrides(rest);
    if (command === "preview") {
        const plan = await preview(stack, { config });
        process.stdout.write(`Previewing update (${stack}):\n${plan.text}\n`);
    } else if (command === "up") {
        const started = Date.now();
        await up(stack, { config });
        console.error(`[harness] stack ${stack} is up (${((Date.now() - started) / 1000).toFixed(1)} s); outputs: npm run harness -- outputs ${stack}`);
    } else if (command === "outputs") {
        process.stdout.write(JSON.stringify(outputs(stack), null, 2) + "\n");
    } else {
        const removed = await down(stack, { destroyData: flags.includes("--destroy-data") });
        console.error(`[harness] stack ${stack} is down (${removed} objects removed)`);
    }
}

main(process.argv.slice(2)).then(
    () => process.stdout.write("", () => process.exit(0)),
    (err) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    },
);
