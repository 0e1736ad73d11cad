import { describe, expect, it } from "vitest";
import { DockerTarget, frontendModel, FrontendSettings, HaproxyFrontend, planFrontend, renderHaproxyConfig } from "../../components";
import { byType, declare, expectRefused } from "./helpers";

const FRONTEND = "hadb:haproxy:Frontend";
const backends = [0, 1, 2].map((i) => ({ name: `pg-${i}`, host: `pg-${i}`, port: 5432, apiPort: 8008 }));
const settings: FrontendSettings = { mode: "postgres", backends, publish: true };

function section(config: string, header: string): string {
    const start = config.indexOf(`\n${header}\n`) + 1;
    expect(start, `section ${header}`).toBeGreaterThan(0);
    const end = config.indexOf("\n\n", start);
    return config.slice(start, end);
}

describe("HAProxy configuration for PostgreSQL", () => {
    const config = renderHaproxyConfig(frontendModel({ ...settings, maxReplicaLag: 5000, checks: { intervalMs: 500, fall: 2, rise: 1 } }));

    it("routes the read-write port only to the Patroni leader, checked through the REST API", () => {
        expect(section(config, "frontend read_write")).toContain("bind :5000");
        const primary = section(config, "backend primary");
        expect(primary).toContain("http-check send meth OPTIONS uri /primary");
        expect(primary).toContain("http-check expect status 200");
        for (const b of backends) expect(primary).toContain(`server ${b.name} ${b.host}:5432 check port 8008`);
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
        expect(section(config, "resolvers cluster")).toContain("nameserver dns 127.0.0.11:53");
        expect(section(config, "frontend stats")).toContain("bind :7000");
    });

    it("publishes each instance on its own host ports", () => {
        const plan = planFrontend("pg-proxy", { ...settings, instances: 2 });
        expect(plan.members.map((m) => m.ports.map((p) => p.hostPort))).toEqual([
            [5000, 5001, 7000],
            [5010, 5011, 7010],
        ]);
    });
});

describe("HaproxyFrontend", () => {
    const frontend = (s: Partial<FrontendSettings>) => () => new HaproxyFrontend("pg-proxy", { target: new DockerTarget("local"), ...settings, ...s });

    it("declares one container per instance with the rendered configuration uploaded", async () => {
        const { resources, error } = await declare(frontend({ instances: 2 }));
        expect(error).toBeUndefined();
        const containers = byType(resources, "docker:index/container:Container");
        expect(containers.map((c) => c.inputs.name)).toEqual(["hadb-dev-pg-proxy-0", "hadb-dev-pg-proxy-1"]);
        expect(containers[0].inputs.uploads[0].file).toBe("/usr/local/etc/haproxy/haproxy.cfg");
        expect(containers[0].inputs.uploads[0].content).toContain("backend primary");
        expect(containers[1].inputs.ports.map((p: any) => `${p.ip}:${p.external}`)).toEqual(["127.0.0.1:5010", "127.0.0.1:5011", "127.0.0.1:7010"]);
    });

    it("refuses clashing ports, instance counts and an empty backend list", async () => {
        await expectRefused(frontend({ ports: { readWrite: 5001 } }), FRONTEND, "ports.readOnly", 5001);
        await expectRefused(frontend({ ports: { readWrite: 5000, readOnly: 5010 }, instances: 2 }), FRONTEND, "ports.readOnly", 5010);
        await expectRefused(frontend({ instances: 0 }), FRONTEND, "instances", 0);
        await expectRefused(frontend({ instances: 4 }), FRONTEND, "instances", 4);
        await expectRefused(frontend({ backends: [] }), FRONTEND, "backends", []);
        await expectRefused(frontend({ mode: "redis" as never }), FRONTEND, "mode", "redis");
    });
});
