// What the fault tests of both engines assert about the same fault (faults.ts inflicts and measures it; this file
// imports vitest, so the benchmark and chaos scripts stay free of it).
import { expect } from "vitest";
import type { FrontendLoss, ReadsThroughLoss } from "./faults";
import { report } from "./support";

/** Reads went on through the read-only endpoint while a replica was lost, none on a primary. `what`: engine and port. */
export function expectReadsSurvivedReplicaLoss(what: string, seen: ReadsThroughLoss): void {
    report(`${what}: longest gap between reads while a replica was killed (${seen.reads} reads, ${seen.errors.length} failed: ${seen.errors.slice(0, 3).join("; ") || "none"})`, seen.gap);
    expect(seen.errors.filter((e) => e.includes("primary"))).toEqual([]);
    expect(seen.readsAfterKill).toBeGreaterThan(20);
    // A refused connection marks the server down at once and is redispatched, so no read waits longer than one
    // check interval (500 ms in the dev stack).
    expect(seen.gap).toBeLessThanOrEqual(0.5);
}

/** A writer listing both front-end instances carried on through the second when the first was killed. */
export function expectWritesSurvivedFrontendLoss(what: string, seen: FrontendLoss): void {
    report(`${what}: first HAProxy instance killed -> first acknowledged write through the second (${seen.afterKill} after the kill, endpoints used ${seen.endpointsUsed.join(", ")})`, seen.firstWrite);
    report(`${what}: longest write gap across the HAProxy instance loss`, seen.gap);
    expect(seen.endpointsUsed).toEqual([0, 1]);
}
