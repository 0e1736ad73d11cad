import { describe, expect, it } from "vitest";
import { ClusterBackends, DockerTarget, FrontendSettings, HaproxyFrontend } from "../../components";
import { renderHaproxyConfig } from "../../components/haproxy/config";
import { frontendModel, planFrontend } from "../../components/haproxy/plan";
import { byType, declare, expectRefused } from "./helpers";

const FRONTEND = "hadb:index:HaproxyFrontend";
const servers = [0, 1, 2].map((i) => ({ name: `pg-${i}`, host: `pg-${i}`, port: 5432, checkPort: 8008 }));
const backends: ClusterBackends = { engine: "postgres", multiWriter: false, servers };
const settings: FrontendSettings = { backends, publish: true, instances: 1 };

function section(config: string, header: string): string {
    const start = config.indexOf(`\n${header}\n`) + 1;
    expect(start, `section ${header}`).toBeGreaterThan(0);
    const end = config.indexOf("\n\n", start);
    return config.slice(start, end);
}

describe("HAProxy configuration for PostgreSQL", () => {
    const config = renderHaproxyConfig(frontendModel({ ...settings, maxReplicaLag: 5000, checks: { intervalMs: 500, fall: 2, rise: 1 } }, { nameservers: ["127.0.0.11:53"] }));

    it("routes the read-write port only to the Patroni leader, checked through the REST API", () => {
        expect(section(config, "frontend read_write")).toContain("bind :5000");
        const primary = section(config, "backend primary");
        expect(primary).toContain("http-check send meth OPTIONS uri /primary");
        expect(primary).toContain("http-check expect status 200");
        for (const b of servers) expect(primary).toContain(`server ${b.name} ${b.host}:5432 check port 8008`);
    });

    it("routes the read-only port to replicas within the lag bound and falls back to the leader", () => {
        const ro = section(config, "frontend read_only");
        expect(ro).toContain("bind :5001");
        expect(ro).toContain("use_backend replicas if { nbsrv(replicas) gt 0 }");
        expect(ro).toContain("default_backend primary");
        expect(section(config, "backend replicas")).toContain("uri /replica?lag=5000");
        expect(section(config, "backend replicas")).toContain("balance roundrobin");
    });

    it("checks fast, cuts sessions on servers marked down and follows members through DNS", () => {
        const defaults = section(config, "backend primary").split("\n").find((l) => l.includes("default-server"))!;
        expect(defaults).toContain("inter 500ms");
        expect(defaults).toContain("fall 2");
        expect(defaults).toContain("rise 1");
        expect(defaults).toContain("on-marked-down shutdown-sessions");
        expect(defaults).toContain("resolvers cluster");
        expect(section(config, "resolvers cluster")).toContain("nameserver dns0 127.0.0.11:53");
        expect(section(config, "frontend stats")).toContain("bind :7000");
    });

    it("renders HAProxy's plain checks when fastDown is off, as the hand-written configurations the benchmark compares with", () => {
        const plain = renderHaproxyConfig(frontendModel({ ...settings, checks: { intervalMs: 3000, fall: 3, rise: 2, fastDown: false } }));
        const defaults = section(plain, "backend primary").split("\n").find((l) => l.includes("default-server"))!;
        expect(defaults).toContain("inter 3000ms fall 3 rise 2 on-marked-down shutdown-sessions");
        expect(defaults).not.toContain("fastinter");
        expect(defaults).not.toContain("observe layer4");
        const fast = section(config, "backend primary").split("\n").find((l) => l.includes("default-server"))!;
        expect(fast).toContain("fastinter 250ms");
        expect(fast).toContain("observe layer4 error-limit 1 on-error mark-down");
    });

    it("uses the Pod's own resolvers when the target names no nameserver, and none when addresses are fixed", () => {
        const k8s = renderHaproxyConfig(frontendModel(settings, { nameservers: [] }));
        expect(section(k8s, "resolvers cluster")).toContain("parse-resolv-conf");
        const fixed = renderHaproxyConfig(frontendModel(settings));
        expect(fixed).not.toContain("resolvers");
    });

    it("publishes each instance on its own host ports, with IANA port names", () => {
        const plan = planFrontend("pg-proxy", { ...settings, instances: 2 });
        expect(plan.members.map((m) => m.hostPorts)).toEqual([
            { "read-write": 5000, "read-only": 5001, stats: 7000 },
            { "read-write": 5010, "read-only": 5011, stats: 7010 },
        ]);
        expect(plan.endpoints).toEqual([
            { name: "read-write", port: 5000 },
            { name: "read-only", port: 5001 },
            { name: "stats", port: 7000 },
        ]);
        expect(plan.template.ports.every((p) => p.allow.join() === "clients")).toBe(true);
    });
});

describe("HaproxyFrontend", () => {
    const frontend = (s: Partial<FrontendSettings>) => () => new HaproxyFrontend("pg-proxy", { target: new DockerTarget("local"), ...settings, ...s });

    it("declares one container per instance with the rendered configuration uploaded", async () => {
        const { resources, error } = await declare(frontend({ instances: 2 }));
        expect(error).toBeUndefined();
        const containers = byType(resources, "docker:index/container:Container");
        expect(containers.map((c) => c.inputs.name)).toEqual(["hadb-dev-pg-proxy-0", "hadb-dev-pg-proxy-1"]);
        expect(containers[0].inputs.uploads[0].file).toBe("/etc/hadb/haproxy.cfg");
        expect(containers[0].inputs.uploads[0].content).toContain("backend primary");
        expect(containers[1].inputs.ports.map((p: any) => `${p.ip}:${p.external}`)).toEqual(["127.0.0.1:5010", "127.0.0.1:5011", "127.0.0.1:7010"]);
    });

    it("refuses clashing ports, instance counts and an empty backend list", async () => {
        await expectRefused(frontend({ ports: { readWrite: 5001 } }), FRONTEND, "ports.readOnly", 5001);
        await expectRefused(frontend({ ports: { readWrite: 5000, readOnly: 5010 }, instances: 2 }), FRONTEND, "ports.readOnly", 5010);
        await expectRefused(frontend({ instances: 0 }), FRONTEND, "instances", 0);
        await expectRefused(frontend({ instances: 6 }), FRONTEND, "instances", 6);
        await expectRefused(frontend({ backends: { ...backends, servers: [] } }), FRONTEND, "backends.servers", []);
        await expectRefused(frontend({ backends: { ...backends, engine: "redis" as never } }), FRONTEND, "backends.engine", "redis");
        await expectRefused(frontend({ backends: { ...backends, multiWriter: true } }), FRONTEND, "backends.multiWriter", true);
    });

    it("exposes each endpoint inside the network and, when published, on 127.0.0.1", async () => {
        let proxy: HaproxyFrontend | undefined;
        const { error } = await declare(() => (proxy = frontend({ instances: 2 })()));
        expect(error).toBeUndefined();
        const rw = await new Promise((resolve) => proxy!.readWrite.apply(resolve));
        expect(rw).toEqual({
            internal: [
                { host: "pg-proxy-0", port: 5000 },
                { host: "pg-proxy-1", port: 5000 },
            ],
            external: [
                { host: "127.0.0.1", port: 5000 },
                { host: "127.0.0.1", port: 5010 },
            ],
        });
    });
});
