import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { down, up } from "../harness";
import { containers, liveEngine, report, waitFor, WITHOUT_FLEETS } from "./support";

// The dev stack's etcd cluster on real containers, reached only through ports published on 127.0.0.1.
const live = liveEngine();

const b64 = (s: string) => Buffer.from(s).toString("base64");

async function etcdCall(endpoint: string, path: string, body: unknown, timeoutMs = 3000): Promise<any> {
    const res = await fetch(`${endpoint}${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    const json: any = await res.json();
    if (!res.ok || json.error || json.code) throw new Error(`etcd ${path} via ${endpoint}: ${res.status} ${json.message ?? json.error ?? ""}`);
    return json;
}

const put = (endpoint: string, key: string, value: string) => etcdCall(endpoint, "/v3/kv/put", { key: b64(key), value: b64(value) });
async function get(endpoint: string, key: string): Promise<string | undefined> {
    const kv = (await etcdCall(endpoint, "/v3/kv/range", { key: b64(key) })).kvs?.[0];
    return kv ? Buffer.from(kv.value, "base64").toString() : undefined;
}

describe.skipIf(!live)("etcd cluster on the dev stack (live)", () => {
    let endpoints: string[];
    let members: string[];
    const written = new Map<string, string>();

    beforeAll(async () => {
        await down("dev", () => {}, { destroyData: true });
        const started = Date.now();
        const deployment = await up("dev", { config: WITHOUT_FLEETS, log: () => {} });
        ({ endpoints, members } = deployment.outputs.etcd);
        await waitFor("every etcd member healthy", async () => (await Promise.all(members.map(containers.state))).every((s) => s.Health?.Status === "healthy"), 90_000, 500);
        report("etcd dev stack: up to 3 healthy members", (Date.now() - started) / 1000);
    });

    afterAll(async () => {
        if (live) await down("dev", () => {}, { destroyData: true });
    });

    it("forms one cluster of three members with one leader", async () => {
        const statuses = await Promise.all(endpoints.map((e) => etcdCall(e, "/v3/maintenance/status", {})));
        expect(new Set(statuses.map((s) => s.header.cluster_id)).size).toBe(1);
        expect(new Set(statuses.map((s) => s.leader)).size).toBe(1);
        const list = await etcdCall(endpoints[0], "/v3/cluster/member/list", {});
        expect(list.members.map((m: any) => m.name).sort()).toEqual(["etcd-0", "etcd-1", "etcd-2"]);
    });

    it("reads through one member a key written through another", async () => {
        await put(endpoints[0], "/hadb/test/a", "written-via-0");
        written.set("/hadb/test/a", "written-via-0");
        expect(await get(endpoints[1], "/hadb/test/a")).toBe("written-via-0");
        expect(await get(endpoints[2], "/hadb/test/a")).toBe("written-via-0");
    });

    it("still accepts writes with one member stopped", async () => {
        await containers.stop(members[2]);
        const { seconds } = await waitFor("a write with one member down", async () => (await put(endpoints[0], "/hadb/test/b", "one-down"), true), 15_000);
        written.set("/hadb/test/b", "one-down");
        report("etcd: write accepted with 1 of 3 members stopped, after", seconds);
        expect(await get(endpoints[1], "/hadb/test/b")).toBe("one-down");
    });

    it("refuses writes within a bounded time once a second member is stopped (no quorum)", async () => {
        await containers.stop(members[1]);
        const started = Date.now();
        let refusal = "";
        try {
            await put(endpoints[0], "/hadb/test/c", "no-quorum");
        } catch (err) {
            refusal = (err as Error).message;
        }
        const seconds = (Date.now() - started) / 1000;
        report("etcd: write without quorum refused after", seconds);
        expect(refusal, "a write without quorum must not be acknowledged").not.toBe("");
        expect(seconds).toBeLessThan(10);
        // A linearizable read needs the quorum too.
        await expect(get(endpoints[0], "/hadb/test/a")).rejects.toThrow();
    });

    it("is healthy again after the members restart, with every acknowledged key intact", async () => {
        await Promise.all([containers.start(members[1]), containers.start(members[2])]);
        const { seconds } = await waitFor("a write after both members restarted", async () => (await put(endpoints[0], "/hadb/test/d", "recovered"), true), 60_000, 500);
        written.set("/hadb/test/d", "recovered");
        report("etcd: writes accepted again after restarting 2 members, after", seconds);
        await waitFor("all members healthy", async () => (await Promise.all(members.map(containers.state))).every((s) => s.Health?.Status === "healthy"), 60_000, 500);
        for (const endpoint of endpoints) {
            for (const [key, value] of written) expect(await get(endpoint, key), `${key} via ${endpoint}`).toBe(value);
        }
    });
});
