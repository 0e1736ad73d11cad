// The component package's plugin: started by plugin.js (PulumiPlugin.yaml's `main`) when a program in another
// language uses hadb's components, it serves them to the engine over gRPC.
import { serve } from "./packageProvider";

serve().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
});
