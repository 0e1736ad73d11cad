import { join } from "path";
import { defineConfig } from "vitest/config";

// The stand-in's own proof runs on its own (the project's vitest.config.ts does not list test/aws):
// HADB_REQUIRE_LIVE=1 npx vitest run --config test/aws/standin/vitest.config.ts
export default defineConfig({
    // The repository root, so vitest's cache stays in its node_modules.
    root: join(__dirname, "../../.."),
    test: {
        include: ["test/aws/standin/host.live.test.ts"],
        reporters: ["verbose"],
        fileParallelism: false,
        testTimeout: 600_000,
        hookTimeout: 900_000,
        env: { HADB_LIVE: "1" },
    },
});
