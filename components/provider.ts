// The component package's plugin entry point (PulumiPlugin.yaml `main: dist/provider.js`): the Pulumi CLI runs it
// when a program in another language uses hadb's components, and it serves them to the engine over gRPC.
import { serve } from "./packageProvider";

serve().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
});
