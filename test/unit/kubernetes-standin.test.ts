import { describe, expect, it } from "vitest";
import { runStack } from "../harness/mockRun";
import { checkRun } from "../k8s/standin";
import { parseBytes, parseMillicores, restrictedViolations } from "../k8s/standin/objects";
import {
    containerUser,
    DEFAULT_NODES,
    HeadlessService,
    nextBackoffSeconds,
    PlacedPod,
    podDnsConfig,
    podDnsNames,
    probeCommand,
    readinessHealthcheck,
    ReplicaState,
    rollingUpdateStep,
    schedule,
} from "../k8s/standin/pods";
import { proxyConfig } from "../k8s/standin/proxy";
import { ownershipPass, projectedVolume, tarTree, volumeSetupScript } from "../k8s/standin/volumes";

const stsOf = (resources: Awaited<ReturnType<typeof runStack>>["resources"], name: string) => resources.find((r) => r.type === "kubernetes:apps/v1:StatefulSet" && r.name === name)!;

describe("Kubernetes stand-in: what it accepts and refuses", () => {
    it("implements every field the staging stack registers", async () => {
        const { resources } = await runStack("staging");
        const kinds = checkRun(resources).map((m) => m.kind);
        expect(new Set(kinds)).toEqual(new Set(["Namespace", "ConfigMap", "Secret", "Service", "StatefulSet", "PodDisruptionBudget", "NetworkPolicy"]));
    });

    it("refuses a field it does not implement, naming its path", async () => {
        const { resources } = await runStack("staging");
        const pg = stsOf(resources, "pg");
        pg.inputs.spec.template.spec.hostNetwork = true;
        expect(() => checkRun(resources)).toThrow(/StatefulSet hadb\/pg: sets `spec\.template\.spec\.hostNetwork`, which the Kubernetes stand-in does not implement/);
        delete pg.inputs.spec.template.spec.hostNetwork;
        pg.inputs.spec.template.spec.containers[0].lifecycle = { preStop: { exec: { command: ["true"] } } };
        expect(() => checkRun(resources)).toThrow(/sets `spec\.template\.spec\.containers\[0\]\.lifecycle`/);
        delete pg.inputs.spec.template.spec.containers[0].lifecycle;
        pg.inputs.spec.template.spec.containers[0].startupProbe.httpGet.scheme = "HTTPS";
        expect(() => checkRun(resources)).toThrow(/sets `spec\.template\.spec\.containers\[0\]\.startupProbe\.httpGet\.scheme`/);
    });

    it("refuses values naming behaviour it lacks: a registry push, a cloud load balancer, an unknown storage class", async () => {
        await expect(runStack("staging", { config: { "hadb:kubernetesRegistry": "registry.example.com/hadb" } }).then((r) => checkRun(r.resources))).rejects.toThrow(
            /docker\.Image .* there is no registry here/,
        );
        const { resources } = await runStack("staging");
        const service = resources.find((r) => r.type === "kubernetes:core/v1:Service" && r.name === "pg-proxy-read-write")!;
        service.inputs.spec.type = "LoadBalancer";
        expect(() => checkRun(resources)).toThrow(/Service hadb\/pg-proxy-read-write: spec\.type LoadBalancer: no cloud load balancer here/);
        await expect(runStack("staging", { config: { "hadb:kubernetesStorageClass": "gp3" } }).then((r) => checkRun(r.resources))).rejects.toThrow(/storageClassName gp3 does not exist here/);
    });

    it("checks Pod Security restricted as admission would", async () => {
        const { resources } = await runStack("staging");
        const spec = structuredClone(stsOf(resources, "pg").inputs.spec.template.spec);
        expect(restrictedViolations(spec)).toEqual([]);
        delete spec.initContainers[0].securityContext.allowPrivilegeEscalation;
        spec.containers[0].securityContext.capabilities = { drop: ["NET_RAW"] };
        expect(restrictedViolations(spec)).toEqual([
            "container place-files must set securityContext.allowPrivilegeEscalation=false",
            'container postgres must set securityContext.capabilities.drop=["ALL"]',
        ]);
    });

    it("reads quantities and users as the kubelet does", () => {
        expect(parseBytes("2048Mi")).toBe(2048 * 2 ** 20);
        expect(parseBytes("10Gi")).toBe(10 * 2 ** 30);
        expect(parseBytes("500M")).toBe(5e8);
        expect(parseMillicores("500m")).toBe(500);
        expect(parseMillicores("2")).toBe(2000);
        const pod = { securityContext: { runAsNonRoot: true, runAsUser: 999, runAsGroup: 999 } };
        expect(containerUser({}, pod, "", "c")).toBe("999:999");
        expect(() => containerUser({}, { securityContext: { runAsNonRoot: true } }, "postgres", "c")).toThrow(/non-numeric user \(postgres\)/);
        expect(() => containerUser({}, { securityContext: { runAsNonRoot: true } }, "", "c")).toThrow(/runs as root/);
    });
});

describe("Kubernetes stand-in: projected volumes and fsGroup ownership", () => {
    const data = (entries: Record<string, string>) => Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, Buffer.from(v)]));
    const sources = [
        {
            kind: "configMap",
            name: "files",
            data: data({ "shared.a.conf": "a", "pg-0.b.yml": "b" }),
            items: [
                { key: "shared.a.conf", path: "shared/a.conf", mode: 0o440 },
                { key: "pg-0.b.yml", path: "pg-0/b.yml", mode: 0o600 },
            ],
        },
        { kind: "secret", name: "secret", data: data({ "shared.c": "c", "shared.d": "d" }), items: [{ key: "shared.c", path: "shared/c", mode: 0o400 }, { key: "shared.d", path: "shared/d" }] },
    ];

    it("lays files out as AtomicWriter does, root-owned with the fsGroup, group-readable", () => {
        const v = projectedVolume(sources, undefined, 999, "2026_01_02_03_04_05.1", "test");
        const by = Object.fromEntries(v.entries.map((e) => [e.path, e]));
        const ts = "..2026_01_02_03_04_05.1";
        const mode = (p: string) => by[p].mode.toString(8);
        expect(Object.keys(by).sort()).toEqual(
            ["..data", ts, `${ts}/pg-0`, `${ts}/pg-0/b.yml`, `${ts}/shared`, `${ts}/shared/a.conf`, `${ts}/shared/c`, `${ts}/shared/d`, "pg-0", "shared"].sort(),
        );
        expect([mode(`${ts}/shared/a.conf`), mode(`${ts}/shared/c`), mode(`${ts}/pg-0/b.yml`), mode(`${ts}/shared/d`)]).toEqual(["440", "440", "640", "644"]);
        expect(mode(ts)).toBe("2755");
        expect(v.entries.every((e) => e.uid === 0 && e.gid === 999)).toBe(true);
        expect(by["..data"]).toMatchObject({ kind: "symlink", target: ts });
        expect(by["shared"]).toMatchObject({ kind: "symlink", target: "..data/shared" });
        expect(v.rootMode.toString(8)).toBe("3777");
    });

    it("without an fsGroup keeps the items' modes and root ownership", () => {
        const v = projectedVolume(sources, 0o640, undefined, "t", "test");
        const files = v.entries.filter((e) => e.kind === "file");
        expect(files.map((e) => e.mode.toString(8))).toEqual(["600", "440", "400", "640"]);
        expect(v.entries.every((e) => e.gid === 0)).toBe(true);
        expect(v.rootMode.toString(8)).toBe("1777");
    });

    it("refuses a missing object or key, as the Pod would wait in ContainerCreating", () => {
        expect(() => projectedVolume([{ ...sources[0], data: undefined }], undefined, 999, "t", "pod")).toThrow(/configMap "files" does not exist/);
        expect(() => projectedVolume([{ ...sources[0], items: [{ key: "nope", path: "x" }] }], undefined, 999, "t", "pod")).toThrow(/has no key "nope"/);
        expect(() => projectedVolume([{ ...sources[0], items: [{ key: "shared.a.conf", path: "../x" }] }], undefined, 999, "t", "pod")).toThrow(/not a valid projected path/);
    });

    it("applies kubelet's ownership masks: read-write volumes ug+rw, directories also ug+x and setgid", () => {
        expect(ownershipPass(0o600, "file", false).toString(8)).toBe("660");
        expect(ownershipPass(0o700, "dir", false).toString(8)).toBe("2770");
        expect(ownershipPass(0o777, "dir", false).toString(8)).toBe("2777");
        expect(ownershipPass(0o400, "file", true).toString(8)).toBe("440");
        expect(ownershipPass(0o777, "symlink", true).toString(8)).toBe("777");
        const script = volumeSetupScript(
            [
                { dir: "/v/config", kind: "memoryEmptyDir", provision: false, policy: "Always" },
                { dir: "/v/data", kind: "claim", provision: true, policy: "Always" },
                { dir: "/v/other", kind: "claim", provision: false, policy: "OnRootMismatch" },
            ],
            999,
        );
        expect(script).toContain("chmod 1777 '/v/config'\nwalk '/v/config'");
        expect(script).toContain("chmod 755 '/v/data'\nmkdir -m 700 '/v/data/lost+found'\nwalk '/v/data'");
        expect(script).toContain("root_matches '/v/other' || walk '/v/other'");
    });

    it("writes a tar with the modes, owners and symlinks given", () => {
        const tar = tarTree([
            { path: "..t", kind: "dir", mode: 0o2755, uid: 0, gid: 999 },
            { path: "..data", kind: "symlink", mode: 0o777, uid: 0, gid: 999, target: "..t" },
        ]);
        expect(tar.subarray(0, 4).toString()).toBe("..t/");
        expect(tar.subarray(100, 107).toString()).toBe("0002755");
        expect(tar.subarray(116, 123).toString()).toBe("0001747");
        expect(String.fromCharCode(tar[512 + 156])).toBe("2");
        expect(tar.subarray(512 + 157, 512 + 160).toString()).toBe("..t");
    });
});

describe("Kubernetes stand-in: DNS, scheduling, probes, rollouts", () => {
    const pod = { namespace: "hadb", hostname: "pg-0", subdomain: "pg", labels: { "hadb.io/cluster": "pg", "hadb.io/component": "postgres" } };

    it("gives a Pod the names cluster DNS would: its own through its subdomain, and every headless Service selecting it", () => {
        const services: HeadlessService[] = [
            { namespace: "hadb", name: "pg", selector: { "hadb.io/cluster": "pg" } },
            { namespace: "hadb", name: "all-postgres", selector: { "hadb.io/component": "postgres" } },
            { namespace: "hadb", name: "mysql", selector: { "hadb.io/cluster": "mysql" } },
            { namespace: "other", name: "pg", selector: { "hadb.io/cluster": "pg" } },
        ];
        expect(podDnsNames(pod, services)).toEqual(["pg-0.pg.hadb.svc.cluster.local", "pg.hadb.svc.cluster.local", "all-postgres.hadb.svc.cluster.local"]);
        expect(podDnsConfig("hadb")).toEqual({ search: ["hadb.svc.cluster.local", "svc.cluster.local", "cluster.local"], options: ["ndots:5"] });
        // The Pod's dnsConfig options are merged in; one it names replaces the generated one.
        expect(podDnsConfig("hadb", undefined, { options: [{ name: "timeout", value: "1" }, { name: "ndots", value: "2" }, { name: "rotate" }] }).options).toEqual(["ndots:2", "timeout:1", "rotate"]);
    });

    it("places Pods with required anti-affinity one per node and leaves a fourth Pending", () => {
        const spec = { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: "pg" } }, topologyKey: "kubernetes.io/hostname" }] } } };
        const placed: PlacedPod[] = [];
        for (let i = 0; i < 3; i++) {
            const where = schedule({ namespace: "hadb", labels: { app: "pg" }, spec }, placed, DEFAULT_NODES);
            placed.push({ namespace: "hadb", labels: { app: "pg" }, spec, node: where.node! });
        }
        expect(new Set(placed.map((p) => p.node)).size).toBe(3);
        expect(schedule({ namespace: "hadb", labels: { app: "pg" }, spec }, placed, DEFAULT_NODES)).toMatchObject({ reason: expect.stringMatching(/^0\/3 nodes are available: .*pod anti-affinity/) });
        expect(schedule({ namespace: "other", labels: { app: "pg" }, spec }, placed, DEFAULT_NODES).node).toBeDefined();
    });

    it("turns probes into commands on the Pod IP and readiness into a Docker health check", () => {
        const container = { ports: [{ name: "api", containerPort: 8008 }], readinessProbe: { httpGet: { port: "api", path: "/readiness?lag=1" }, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 4 } };
        expect(probeCommand(container.readinessProbe, container, "172.30.0.5", "t")).toEqual(["curl", "-fsS", "-o", "/dev/null", "--max-time", "3", "http://172.30.0.5:8008/readiness?lag=1"]);
        expect(readinessHealthcheck(container.readinessProbe, container, "172.30.0.5", "t")).toMatchObject({ Interval: 2e9, Timeout: 3e9, Retries: 4 });
        expect(readinessHealthcheck(undefined, container, "172.30.0.5", "t")).toEqual({ Test: ["NONE"] });
        expect(probeCommand({ exec: { command: ["hadb-etcd-ready", "2379"] } }, container, "ip", "t")).toEqual(["hadb-etcd-ready", "2379"]);
    });

    it("backs off restarts 10 s doubling to 5 minutes", () => {
        const delays: number[] = [];
        let d: number | undefined;
        for (let i = 0; i < 7; i++) delays.push((d = nextBackoffSeconds(d)));
        expect(delays).toEqual([10, 20, 40, 80, 160, 300, 300]);
    });

    it("rolls a StatefulSet from the highest ordinal down, each next Pod only after the previous is Running and Ready", () => {
        const replicas: ReplicaState[] = [0, 1, 2].map(() => ({ revision: "old", terminating: false, healthy: true }));
        const order: number[] = [];
        for (let guard = 0; guard < 20; guard++) {
            const step = rollingUpdateStep(replicas, "new");
            if (step.kind === "done") break;
            if (step.kind === "delete") {
                order.push(step.ordinal);
                replicas[step.ordinal] = { revision: "new", terminating: false, healthy: false };
                // Not ready yet: the controller waits on this very Pod.
                expect(rollingUpdateStep(replicas, "new")).toEqual({ kind: "wait", ordinal: step.ordinal });
                replicas[step.ordinal] = { revision: "new", terminating: false, healthy: true };
            }
        }
        expect(order).toEqual([2, 1, 0]);
        expect(rollingUpdateStep(replicas, "new")).toEqual({ kind: "done" });
        // An unhealthy Pod that is already updated, or a missing one, holds the rollout; a partition stops it.
        expect(rollingUpdateStep([{ revision: "old", terminating: false, healthy: true }, undefined], "new")).toEqual({ kind: "wait", ordinal: 1 });
        expect(rollingUpdateStep([{ revision: "old", terminating: false, healthy: true }, { revision: "new", terminating: false, healthy: true }], "new", 1)).toEqual({ kind: "done" });
        expect(rollingUpdateStep([{ revision: "old", terminating: true, healthy: false }], "new")).toEqual({ kind: "wait", ordinal: 0 });
    });

    it("proxies a Service to its ready endpoints only, checked with their readiness probe", () => {
        const service = { metadata: { namespace: "hadb", name: "pg-proxy-read-write" }, spec: { ports: [{ name: "read-write", port: 5000, targetPort: "read-write" }] } };
        const containers = [{ ports: [{ name: "read-write", containerPort: 5000 }, { name: "stats", containerPort: 7000 }], readinessProbe: { httpGet: { path: "/", port: 7000 }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 } }];
        const cfg = proxyConfig(service, [
            { pod: "pg-proxy-0", ip: "172.30.0.7", containers },
            { pod: "pg-proxy-1", ip: "172.30.0.8", containers },
        ]);
        expect(cfg).toContain("bind :5000");
        expect(cfg).toContain("http-check send meth GET uri /");
        expect(cfg).toContain("server pg-proxy-0 172.30.0.7:5000 check port 7000 inter 2s fall 3 rise 1");
        expect(cfg).toContain("server pg-proxy-1 172.30.0.8:5000 check port 7000 inter 2s fall 3 rise 1");
        expect(proxyConfig(service, [])).not.toContain("    server ");
        expect(() => proxyConfig(service, [{ pod: "x", ip: "1", containers: [{ ports: [] }] }])).toThrow(/targetPort "read-write" is no port of Pod x/);
    });
});
