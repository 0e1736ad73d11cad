// npm run standin -- up|down|status <stack> [hadb:key=value ...]
import { applyStack, down, dockerStatus } from "../standin";
import { listStacks, parseOverrides } from "../../harness/stackConfig";

async function main(argv: string[]): Promise<void> {
    const [command, stack, ...rest] = argv;
    if (!command || !stack || !["up", "down", "status"].includes(command)) {
        throw new Error(`usage: npm run standin -- up|down|status <stack> [hadb:key=value ...]; stacks: ${listStacks().join(", ")}`);
    }
    if (command === "down") {
        console.error(`[standin] stack ${stack} is down (${await down(stack, (l) => console.error(`[standin] ${l}`))} objects removed)`);
        return;
    }
    if (command === "status") {
        process.stdout.write(JSON.stringify(await dockerStatus(stack), null, 2) + "\n");
        return;
    }
    const started = Date.now();
    const s = await applyStack(stack, parseOverrides(rest), { log: (l) => console.error(`[standin] ${l}`) });
    console.error(`[standin] stack ${stack} is up (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    process.stdout.write(JSON.stringify(await dockerStatus(stack), null, 2) + "\n");
    // This process is the cluster's control plane (controllers, kubelets, endpoints): it runs until Ctrl-C.
    // Without it the containers keep running but nothing restarts or reschedules them.
    console.error("[standin] control plane running; Ctrl-C stops it (the Pods stay until `npm run standin -- down " + stack + "`)");
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    s.cluster.stop();
}

main(process.argv.slice(2)).then(
    () => process.stdout.write("", () => process.exit(0)),
    (err) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    },
);
