// Adds up vitest JSON reports into one closing line: "N passed, N failed, N skipped".
import { existsSync, readFileSync } from "fs";

let passed = 0, failed = 0, skipped = 0;
for (const file of process.argv.slice(2)) {
    if (!existsSync(file)) {
        console.log(`${file}: no report (the run did not finish)`);
        failed++;
        continue;
    }
    const report = JSON.parse(readFileSync(file, "utf8"));
    passed += report.numPassedTests;
    failed += report.numFailedTests + (report.numFailedTestSuites ?? 0);
    skipped += report.numPendingTests + report.numTodoTests;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
