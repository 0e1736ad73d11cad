import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        reporters: ["verbose"],
        // Live tests drive real containers on one engine with 2 cores: one file at a time, everywhere.
        fileParallelism: false,
        projects: [
            {
                test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 60_000 },
            },
            {
                test: {
                    name: "live",
                    include: ["test/live/**/*.test.ts"],
                    testTimeout: 600_000,
                    hookTimeout: 900_000,
                    sequence: { concurrent: false },
                    env: { HADB_LIVE: "1" },
                },
            },
        ],
    },
});
