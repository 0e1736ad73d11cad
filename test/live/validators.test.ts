import { spawnSync } from "child_process";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderHaproxyConfig } from "../../components/haproxy/config";
import { frontendModel } from "../../components/haproxy/plan";
import { renderMyCnf, resolveMySqlSettings } from "../../components/mysql/memberConfig";
import { renderPatroniConfig, resolvePostgresSettings } from "../../components/postgres/patroniConfig";
import { runStack } from "../harness/mockRun";
import { LOCAL_IMAGE_CONFIG } from "../harness";
import { liveEngine } from "./support";

// The servers' own validators, run inside the project's images on every configuration the dev stack renders
// and on variants of the renderers' settings.
const live = liveEngine();

/** Runs a validator on `content` in a throwaway container. `hosts` resolve as they would on the cluster network. */
function validateInImage(image: string, file: string, command: string, content: string, hosts: string[] = []): { ok: boolean; output: string } {
    const script = `cat > ${file} && { ${command}; }`;
    const addHosts = [...new Set(hosts)].flatMap((h) => ["--add-host", `${h}:127.0.0.1`]);
    const args = ["run", "--rm", "-i", "--network", "none", ...addHosts, "--entrypoint", "sh", image, "-c", script];
    const r = spawnSync("docker", args, { input: content, encoding: "utf8", timeout: 60_000 });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

const haproxyCheck = (cfg: string) => validateInImage("hadb/haproxy:local", "/tmp/haproxy.cfg", "haproxy -c -f /tmp/haproxy.cfg", cfg);
/**
 * Patroni's validator resolves and connects to the DCS hosts, which exist only on the cluster's own network:
 * they are pointed at a TCP listener inside the validator's container, everything else is validated as is.
 */
function patroniCheck(yml: string) {
    const config = parse(yml);
    const dcs: [string, string][] = (config.etcd3?.hosts ?? []).map((h: string) => h.split(":") as [string, string]);
    const listeners = [...new Set(dcs.map(([, port]) => port))]
        .map((port) => `python3 -m http.server --bind 127.0.0.1 ${Number(port)} >/dev/null 2>&1 &`)
        .join(" ");
    const command = `${listeners} sleep 1; patroni --validate-config /tmp/patroni.yml`;
    return validateInImage("hadb/postgres:local", "/tmp/patroni.yml", command, yml, dcs.map(([host]) => host));
}

/** mysqld checks every option, Group Replication's included once its plugin is loaded from the file. */
const mysqldCheck = (cnf: string) => validateInImage("hadb/mysql:local", "/tmp/my.cnf", "mysqld --defaults-file=/tmp/my.cnf --validate-config", cnf);

describe.skipIf(!live)("rendered configuration passes the servers' own validators", () => {
    it("every haproxy.cfg, patroni.yml and my.cnf of the dev stack", async () => {
        const { resources } = await runStack("dev", { config: LOCAL_IMAGE_CONFIG });
        const uploads = resources.filter((r) => r.type === "docker:index/container:Container").flatMap((c) => (c.inputs.uploads ?? []).map((u: any) => ({ container: c.inputs.name, ...u })));
        const haproxy = uploads.filter((u) => u.file.endsWith("haproxy.cfg"));
        const patroni = uploads.filter((u) => u.file.endsWith("patroni.yml"));
        const mycnf = uploads.filter((u) => u.file.endsWith("my.cnf"));
        expect(haproxy).toHaveLength(2);
        expect(patroni).toHaveLength(3);
        expect(mycnf).toHaveLength(3);
        for (const u of mycnf) {
            const r = mysqldCheck(u.content);
            expect(r.ok, `${u.container}: ${r.output}`).toBe(true);
        }
        for (const u of haproxy) {
            const r = haproxyCheck(u.content);
            expect(r.ok, `${u.container}: ${r.output}`).toBe(true);
        }
        for (const u of patroni) {
            const r = patroniCheck(u.content);
            expect(r.ok, `${u.container}: ${r.output}`).toBe(true);
        }
    });

    it("variants: strict synchronous mode, custom timing, tags, pass-through parameters, two proxy instances, multi-primary MySQL", () => {
        const pw = { superuser: "a", replication: "b", app: "c", restApi: "d" };
        const ctx = {
            scope: "orders",
            member: "orders-4",
            host: "orders-4.orders.shop.svc.cluster.local",
            tags: { nofailover: true, noloadbalance: true },
            dcsHosts: ["dcs-0:2379"],
            clusterRanges: ["10.42.0.0/16", "10.43.0.0/16"],
        };
        const settings = resolvePostgresSettings({
            members: 5,
            synchronousMode: "strict",
            synchronousStandbys: 2,
            timingProfile: "patroni-defaults",
            usePgRewind: false,
            parameters: { shared_buffers: "256MB", log_min_duration_statement: "500" },
        });
        const patroni = patroniCheck(renderPatroniConfig(settings, ctx, pw));
        expect(patroni.ok, patroni.output).toBe(true);
        const servers = [0, 1, 2, 3, 4].map((i) => ({ name: `orders-${i}`, host: `orders-${i}.orders.shop.svc.cluster.local`, port: 6432, checkPort: 8009 }));
        const backends = { engine: "postgres" as const, multiWriter: false, servers };
        // On Kubernetes HAProxy re-resolves members through the Pod's resolv.conf.
        const haproxy = haproxyCheck(
            renderHaproxyConfig(frontendModel({ backends, instances: 2, maxReplicaLag: 0, checks: { intervalMs: 2000, fall: 3, rise: 2 } }, { nameservers: [] })),
        );
        expect(haproxy.ok, haproxy.output).toBe(true);
        const mysqlCtx = {
            member: "db-4",
            ordinal: 4,
            members: ["db-0", "db-1", "db-2", "db-3", "db-4"],
            memberHost: (m: string) => `${m}.db.shop.svc.cluster.local`,
            clusterRanges: ["10.42.0.0/16", "10.43.0.0/16"],
        };
        const multi = resolveMySqlSettings(
            { members: 5, mode: "multi-primary", consistency: "BEFORE_AND_AFTER", timingProfile: "production", serverSettings: { innodb_buffer_pool_size: "64M", max_connections: "300" } },
            "0b1f5c2e-1111-5222-8333-444455556666",
        );
        const my = mysqldCheck(renderMyCnf(multi, mysqlCtx));
        expect(my.ok, my.output).toBe(true);
        const mysqlServers = mysqlCtx.members.map((m) => ({ name: m, host: mysqlCtx.memberHost(m), port: 3306, checkPort: 8008 }));
        const mysqlProxy = haproxyCheck(renderHaproxyConfig(frontendModel({ backends: { engine: "mysql", multiWriter: true, servers: mysqlServers } }, { nameservers: ["127.0.0.11:53"] })));
        expect(mysqlProxy.ok, mysqlProxy.output).toBe(true);
    });

    it("the validators do reject a broken configuration", () => {
        expect(haproxyCheck("frontend x\n    bind :5000\n    default_backend missing\n").ok).toBe(false);
        expect(patroniCheck("scope: x\nname: y\nrestapi: {listen: 'nonsense'}\n").ok).toBe(false);
        expect(mysqldCheck("[mysqld]\nno_such_option = 1\n").ok).toBe(false);
        // Group Replication's options are checked too once its plugin is in plugin_load_add, loose- or not.
        expect(mysqldCheck("[mysqld]\nplugin_load_add = group_replication.so\nloose-group_replication_consistency = BAD\n").ok).toBe(false);
    });
});
