import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderHaproxyConfig } from "../../components/haproxy/config";
import { frontendModel } from "../../components/haproxy/plan";
import { onlineSettings, renderMyCnf, renderSettingsCnf, resolveMySqlSettings } from "../../components/mysql/memberConfig";
import { renderBootstrapConfig, renderPatroniConfig, resolvePostgresSettings } from "../../components/postgres/patroniConfig";
import { manifests } from "../k8s/manifests";
import { runStack } from "../harness/mockRun";
import { LOCAL_IMAGE_CONFIG } from "../harness";
import { buildHostImage, HOST_IMAGE } from "../aws/standin/hosts";
import { liveEngine } from "./support";

// The servers' own validators, run inside the project's images on every configuration the dev stack renders
// and on variants of the renderers' settings.
const live = liveEngine();

type Files = Record<string, string>;

/** Runs a validator in a throwaway container with `files` in place. `hosts` resolve as they would on the cluster network. */
function validateInImage(image: string, files: Files, command: string, hosts: string[] = []): { ok: boolean; output: string } {
    const place = Object.entries(files).map(([path, content]) => `echo ${Buffer.from(content).toString("base64")} | base64 -d > ${path}`);
    const script = [...place, command].join(" && ");
    const addHosts = [...new Set(hosts)].flatMap((h) => ["--add-host", `${h}:127.0.0.1`]);
    const args = ["run", "--rm", "--network", "none", ...addHosts, "--entrypoint", "sh", image, "-c", script];
    const r = spawnSync("docker", args, { encoding: "utf8", timeout: 60_000 });
    // `error` is set when the timeout fired: the docker CLI may then still exit 0.
    return { ok: r.error === undefined && r.status === 0, output: `${r.stdout}${r.stderr}${r.error ?? ""}` };
}

const haproxyCheck = (cfg: string) => validateInImage("hadb/haproxy:local", { "/etc/hadb/haproxy.cfg": cfg }, "haproxy -c -f /etc/hadb/haproxy.cfg");
/**
 * Patroni's validator reads every .yml in /etc/hadb as Patroni does, and resolves and connects to the DCS hosts,
 * which exist only on the cluster's own network: they are pointed at a TCP listener inside the validator's
 * container, everything else is validated as is.
 */
function patroniCheck(ymls: Files) {
    const dcs: [string, string][] = Object.values(ymls).flatMap((y) => (parse(y).etcd3?.hosts ?? []).map((h: string) => h.split(":") as [string, string]));
    const listeners = [...new Set(dcs.map(([, port]) => port))]
        .map((port) => `{ python3 -m http.server --bind 127.0.0.1 ${Number(port)} >/dev/null 2>&1 & }`)
        .join(" && ");
    const command = `${listeners || "true"} && sleep 1 && patroni --validate-config /etc/hadb`;
    return validateInImage("hadb/postgres:local", ymls, command, dcs.map(([host]) => host));
}

/** mysqld checks every option, Group Replication's included once its plugin is loaded, and settings.cnf through !include. */
const mysqldCheck = (cnf: string, settings: string) =>
    validateInImage("hadb/mysql:local", { "/etc/hadb/my.cnf": cnf, "/etc/hadb/settings.cnf": settings }, "mysqld --defaults-file=/etc/hadb/my.cnf --validate-config");

/** Each member's files as it would find them in /etc/hadb, by member. */
async function memberFiles(stack: string): Promise<Record<string, Files>> {
    const { resources } = await runStack(stack, { config: LOCAL_IMAGE_CONFIG });
    const byMember: Record<string, Files> = {};
    for (const c of resources.filter((r) => r.type === "docker:index/container:Container")) {
        byMember[c.inputs.name] = Object.fromEntries((c.inputs.uploads ?? []).map((u: any) => [u.file, u.content]));
    }
    // On Kubernetes a Pod copies the shared files and its own (`<pod>.<file>`) from the ConfigMaps and Secrets.
    const maps = manifests(resources).filter((m) => m.kind === "ConfigMap" || m.kind === "Secret");
    for (const sts of manifests(resources).filter((m) => m.kind === "StatefulSet")) {
        const keys = Object.assign({}, ...maps.filter((m) => m.metadata.labels?.["hadb.io/cluster"] === sts.metadata.name).map((m) => ({ ...m.data, ...m.stringData })));
        for (let i = 0; i < sts.spec.replicas; i++) {
            const pod = `${sts.metadata.name}-${i}`;
            const files: Files = {};
            for (const [key, content] of Object.entries<string>(keys)) {
                const [owner, ...rest] = key.split(".");
                if (owner === "shared" || owner === pod) files[`/etc/hadb/${rest.join(".")}`] = content;
            }
            byMember[`k8s/${pod}`] = files;
        }
    }
    return byMember;
}

function validateMember(member: string, files: Files): { ok: boolean; output: string } | undefined {
    if (files["/etc/hadb/haproxy.cfg"]) return haproxyCheck(files["/etc/hadb/haproxy.cfg"]);
    if (files["/etc/hadb/patroni.yml"]) return patroniCheck(Object.fromEntries(Object.entries(files).filter(([p]) => p.endsWith(".yml"))));
    if (files["/etc/hadb/my.cnf"]) return mysqldCheck(files["/etc/hadb/my.cnf"], files["/etc/hadb/settings.cnf"] ?? "");
    return undefined;
}

describe.skipIf(!live)("rendered configuration passes the servers' own validators", () => {
    it.each(["dev", "staging"])("every haproxy.cfg, Patroni configuration and my.cnf of the %s stack", async (stack) => {
        const members = await memberFiles(stack);
        const checked: string[] = [];
        for (const [member, files] of Object.entries(members)) {
            const r = validateMember(member, files);
            if (!r) continue;
            checked.push(member);
            expect(r.ok, `${member}: ${r.output}`).toBe(true);
        }
        // Both proxies, three PostgreSQL and three MySQL members, and on dev each engine's two fleet replicas (two
        // proxy instances each and no fleets on staging).
        expect(checked.length, checked.join(", ")).toBe(stack === "dev" ? 12 : 10);
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
        const patroni = patroniCheck({ "/etc/hadb/patroni.yml": renderPatroniConfig(settings, ctx, pw), "/etc/hadb/bootstrap.yml": renderBootstrapConfig(settings) });
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
        const my = mysqldCheck(renderMyCnf(multi, mysqlCtx), renderSettingsCnf(onlineSettings(multi, mysqlCtx.members, mysqlCtx.memberHost)));
        expect(my.ok, my.output).toBe(true);
        const mysqlServers = mysqlCtx.members.map((m) => ({ name: m, host: mysqlCtx.memberHost(m), port: 3306, checkPort: 8008 }));
        const mysqlProxy = haproxyCheck(renderHaproxyConfig(frontendModel({ backends: { engine: "mysql", multiWriter: true, servers: mysqlServers } }, { nameservers: ["127.0.0.11:53"] })));
        expect(mysqlProxy.ok, mysqlProxy.output).toBe(true);
    });

    it("the validators do reject a broken configuration", () => {
        expect(haproxyCheck("frontend x\n    bind :5000\n    default_backend missing\n").ok).toBe(false);
        expect(patroniCheck({ "/etc/hadb/patroni.yml": "scope: x\nname: y\nrestapi: {listen: 'nonsense'}\n" }).ok).toBe(false);
        expect(mysqldCheck("[mysqld]\nno_such_option = 1\n", "").ok).toBe(false);
        // Group Replication's options are checked too once its plugin is in plugin_load_add, loose- or not, and
        // settings.cnf through the include.
        expect(mysqldCheck("[mysqld]\nplugin_load_add = group_replication.so\nloose-group_replication_consistency = BAD\n", "").ok).toBe(false);
        expect(mysqldCheck("[mysqld]\nplugin_load_add = group_replication.so\n!include /etc/hadb/settings.cnf\n", "[mysqld]\nloose-group_replication_consistency = BAD\n").ok).toBe(false);
    });
});

/** Runs `cloud-init schema` on each file in the stand-in host image (Debian's cloud-init), the files mounted read-only. */
function cloudInitSchema(files: Files): { ok: boolean; output: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hadb-userdata-"));
    try {
        for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
        const script = "for f in /userdata/*; do cloud-init schema --config-file $f || exit 1; done";
        const r = spawnSync("docker", ["run", "--rm", "--network", "none", "-v", `${dir}:/userdata:ro`, "--entrypoint", "sh", HOST_IMAGE, "-c", script], { encoding: "utf8", timeout: 120_000 });
        return { ok: r.error === undefined && r.status === 0, output: `${r.stdout}${r.stderr}${r.error ?? ""}` };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

describe.skipIf(!live)("every EC2 user data passes Debian's cloud-init schema check", () => {
    it("for each instance of the prod stack (run in the stand-in host image, never on this machine)", async () => {
        await buildHostImage();
        const prod = await runStack("prod");
        const userData = Object.fromEntries(prod.resources.filter((r) => r.type === "aws:ec2/instance:Instance").map((r) => [r.name, r.inputs.userData as string]));
        expect(Object.keys(userData)).toHaveLength(19);
        const result = cloudInitSchema(userData);
        expect(result.ok, result.output).toBe(true);
        expect(result.output.match(/Valid schema/g)).toHaveLength(19);
        // The check rejects what it must: an unknown encoding and a runcmd that is not a list.
        const rejected = cloudInitSchema({ broken: "#cloud-config\nwrite_files:\n  - path: /x\n    encoding: gzip+b64x\n    content: abc\nruncmd: 5\n" });
        expect(rejected.ok, rejected.output).toBe(false);
        expect(rejected.output).toMatch(/runcmd/);
    }, 900_000);
});
