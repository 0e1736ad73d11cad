import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../harness/stackConfig";

// Pulumi's own component analyzer (what `pulumi package add` uses to serve hadb to Python, Go, .NET, Java and
// YAML programs) must accept every component's public arguments and outputs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Analyzer } = require("@pulumi/pulumi/provider/experimental/analyzer");

const COMPONENTS = ["EtcdCluster", "PostgresCluster", "MySqlCluster", "HaproxyFrontend", "DockerTarget", "KubernetesTarget"];

describe("component schema", () => {
    it("Pulumi's component analyzer accepts every component's arguments and outputs", () => {
        const analyzer = new Analyzer(PROJECT_ROOT, "hadb", { name: "hadb", main: "components/index.ts" }, new Set(COMPONENTS));
        const { components } = analyzer.analyze();
        expect(Object.keys(components).sort()).toEqual([...COMPONENTS].sort());
        for (const name of COMPONENTS) {
            const inputs = Object.keys(components[name].inputs);
            const outputs = Object.keys(components[name].outputs);
            console.log(`[schema] ${name}: ${inputs.length} inputs, ${outputs.length} outputs`);
            // Clusters and proxies are placed by a target; targets are not.
            expect(inputs.includes("target"), name).toBe(!name.endsWith("Target"));
            // ... or, from any language, by a plain-data spec of one.
            expect(inputs.includes("targetSpec"), name).toBe(!name.endsWith("Target"));
            expect(outputs.length, name).toBeGreaterThan(0);
        }
    }, 300_000);
});
