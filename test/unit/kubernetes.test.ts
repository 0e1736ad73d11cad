import * as k8s from "@pulumi/kubernetes";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { EtcdCluster, HaproxyFrontend, KubernetesTarget, KubernetesTargetArgs, MySqlCluster, PostgresCluster, ReadReplicaFleet } from "../../components";
import { RecordedResource, reveal, runStack } from "../harness/mockRun";
import { checkManifests, configuredSecrets, generatedSecrets, ManifestLike, Rule, RULES, Violation } from "../k8s/invariants";
import { applied, manifests } from "../k8s/manifests";
import { renderStack } from "../k8s/render";
import { byType, declare, expectRefused } from "./helpers";

const TARGET = "hadb:index:KubernetesTarget";
const PROVIDER = "pulumi:providers:kubernetes";
const COMPONENT_TYPES = ["hadb:index:EtcdCluster", "hadb:index:PostgresCluster", "hadb:index:MySqlCluster", "hadb:index:HaproxyFrontend", "hadb:index:ReadReplicaFleet"];
/** Auto-named ConfigMaps and Secrets get a suffix from the provider (a content hash under mocks). */
const AUTO_SUFFIX = /-[0-9a-f]{8}$/;

type Obj = Record<string, any>;

const label = (m: Obj) => `${m.kind}/${m.metadata.name.replace(AUTO_SUFFIX, "-*")}`;

/** The value of a file key (`<pod>.<file>`, `shared.<file>`) in whichever ConfigMap or Secret holds it. */
function fileContent(objects: readonly Obj[], key: string): string {
    const holder = objects.find((o) => (o.kind === "ConfigMap" || o.kind === "Secret") && key in { ...o.data, ...o.stringData });
    expect(holder, `a ConfigMap or Secret holds ${key}`).toBeDefined();
    return { ...holder!.data, ...holder!.stringData }[key];
}

function holderOf(objects: readonly Obj[], key: string): Obj {
    const holder = objects.find((o) => (o.kind === "ConfigMap" || o.kind === "Secret") && key in { ...o.data, ...o.stringData });
    if (!holder) throw new Error(`no ConfigMap or Secret holds ${key}`);
    return holder;
}

/** The object of `kind` named `name`, or auto-named from it (`name-<suffix>`). */
function get(objects: readonly Obj[], kind: string, name: string): Obj {
    const o = objects.find((x) => x.kind === kind && (x.metadata.name === name || (AUTO_SUFFIX.test(x.metadata.name) && x.metadata.name.replace(AUTO_SUFFIX, "") === name)));
    if (!o) throw new Error(`no ${kind}/${name}`);
    return o;
}

const podSpec = (sts: Obj) => sts.spec.template.spec;
const mainContainer = (sts: Obj) => podSpec(sts).containers[0];
const initContainer = (sts: Obj) => podSpec(sts).initContainers[0];
const projectedItems = (sts: Obj): Obj[] => podSpec(sts).volumes.flatMap((v: Obj) => (v.projected?.sources ?? []).flatMap((s: Obj) => (s.configMap ?? s.secret).items));

/**
 * Every Kubernetes object carries the target's provider explicitly, and sits under the component that declared
 * it (the Namespace under the target).
 */
function expectProviderAndParents(resources: RecordedResource[], provider?: RecordedResource) {
    const providers = byType(resources, PROVIDER);
    const expected = provider ?? providers[0];
    expect(expected, "a kubernetes provider").toBeDefined();
    if (!provider) expect(providers).toHaveLength(1);
    const target = byType(resources, TARGET)[0];
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    for (const m of manifests(resources)) {
        expect(m.resource.provider, `${label(m)} provider`).toBe(`${expected.urn}::${expected.name}-id`);
        const parent = byUrn.get(m.resource.parent ?? "");
        if (m.kind === "Namespace") expect(parent?.urn).toBe(target.urn);
        else expect(COMPONENT_TYPES, `${label(m)} parent`).toContain(parent?.type);
    }
}

/** Per StatefulSet: its headless Service and NetworkPolicy of the same name, and a PDB exactly when it has 2+ replicas. */
function expectCompanions(objects: readonly Obj[], statefulSet: string) {
    const sts = get(objects, "StatefulSet", statefulSet);
    const headless = get(objects, "Service", statefulSet);
    expect(sts.spec.serviceName).toBe(statefulSet);
    expect(headless.spec).toMatchObject({ clusterIP: "None", publishNotReadyAddresses: true, selector: sts.spec.selector.matchLabels });
    expect(get(objects, "NetworkPolicy", statefulSet).spec.podSelector).toEqual(sts.spec.selector);
    const pdb = objects.find((o) => o.kind === "PodDisruptionBudget" && o.metadata.name === statefulSet);
    if (sts.spec.replicas >= 2) expect(pdb?.spec.selector).toEqual(sts.spec.selector);
    else expect(pdb).toBeUndefined();
}

/** Each member's own files: `<pod>.<file>` keys, projected at `<pod>/<file>`, copied by $POD_NAME. */
function expectPerMemberFiles(objects: readonly Obj[], statefulSet: string, file: string) {
    const sts = get(objects, "StatefulSet", statefulSet);
    const items = projectedItems(sts);
    for (let i = 0; i < sts.spec.replicas; i++) {
        const pod = `${statefulSet}-${i}`;
        expect(fileContent(objects, `${pod}.${file}`)).toBeTruthy();
        expect(items).toContainEqual(expect.objectContaining({ key: `${pod}.${file}`, path: `${pod}/${file}` }));
    }
    expect(initContainer(sts).command.join(" ")).toContain(`$POD_NAME/${file}`);
    expect(initContainer(sts).env).toContainEqual({ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } });
}

async function onKubernetes(build: (target: KubernetesTarget) => unknown, args: KubernetesTargetArgs = {}) {
    let built: unknown;
    const { resources, error } = await declare(() => {
        built = build(new KubernetesTarget("k8s", args));
    });
    expect(error).toBeUndefined();
    const list = manifests(resources);
    return { resources, list, objects: list.map((m) => applied(m, false) as Obj), built };
}

function violationsOf(list: readonly ManifestLike[], resources: RecordedResource[], configured: string[] = []): Violation[] {
    return checkManifests(list, [...configured, ...generatedSecrets(resources), ...configuredSecrets(list)]);
}

describe("components on the Kubernetes target", () => {
    it("EtcdCluster: a StatefulSet with its headless Service, per-member files in a ConfigMap, a PDB and a NetworkPolicy", async () => {
        const { resources, list, objects } = await onKubernetes((target) => new EtcdCluster("etcd", { target, members: 3 }));
        expect(list.map(label).sort()).toEqual(["ConfigMap/etcd-files-*", "Namespace/hadb", "NetworkPolicy/etcd", "PodDisruptionBudget/etcd", "Service/etcd", "StatefulSet/etcd"]);
        expectProviderAndParents(resources);
        expectCompanions(objects, "etcd");
        expectPerMemberFiles(objects, "etcd", "etcd.yml");
        const member1 = parse(fileContent(objects, "etcd-1.etcd.yml"));
        expect(member1["initial-cluster"]).toBe(
            "etcd-0=http://etcd-0.etcd.hadb.svc.cluster.local:2380,etcd-1=http://etcd-1.etcd.hadb.svc.cluster.local:2380,etcd-2=http://etcd-2.etcd.hadb.svc.cluster.local:2380",
        );
        expect(member1["advertise-client-urls"]).toBe("http://etcd-1.etcd.hadb.svc.cluster.local:2379");
        expect(violationsOf(list, resources)).toEqual([]);
    });

    it("EtcdCluster of one member: no PDB, and still every invariant", async () => {
        const { resources, list, objects } = await onKubernetes((target) => new EtcdCluster("dcs", { target, members: 1 }));
        expect(list.filter((m) => m.kind === "PodDisruptionBudget")).toEqual([]);
        expectCompanions(objects, "dcs");
        expect(violationsOf(list, resources)).toEqual([]);
    });

    it("ReadReplicaFleet: its own StatefulSet, labelled as a replica of the cluster, whose NetworkPolicy admits it", async () => {
        const { resources, list, objects } = await onKubernetes((target) => {
            const pg = new PostgresCluster("pg", { target, members: 3 });
            const reads = new ReadReplicaFleet("pg-reads", { source: pg, replicas: 2, analytics: 1 });
            new HaproxyFrontend("pg-proxy", { target, backends: reads.backends });
            const mysql = new MySqlCluster("mysql", { target, members: 3 });
            new ReadReplicaFleet("mysql-reads", { source: mysql, replicas: 1 });
        });
        expectProviderAndParents(resources);
        for (const [fleet, cluster, ports] of [["pg-reads", "pg", [5432, 8008]], ["mysql-reads", "mysql", [3306]]] as const) {
            expectCompanions(objects, fleet);
            const sts = get(objects, "StatefulSet", fleet);
            expect(sts.spec.template.metadata.labels["hadb.io/replica-of"]).toBe(cluster);
            const admitted = get(objects, "NetworkPolicy", cluster).spec.ingress.filter((rule: Obj) =>
                rule.from.some((peer: Obj) => peer.podSelector?.matchLabels?.["hadb.io/replica-of"] === cluster),
            );
            expect(admitted.flatMap((rule: Obj) => rule.ports.map((p: Obj) => p.port)).sort()).toEqual([...ports].sort());
        }
        // The other way: the cluster's members reach a Patroni fleet member's API (failsafe mode asks every member).
        const fromSource = get(objects, "NetworkPolicy", "pg-reads").spec.ingress.filter((rule: Obj) =>
            rule.from.some((peer: Obj) => peer.podSelector?.matchLabels?.["hadb.io/cluster"] === "pg" && peer.podSelector?.matchLabels?.["hadb.io/component"] === "postgres"),
        );
        expect(fromSource.flatMap((rule: Obj) => rule.ports.map((p: Obj) => p.port))).toEqual([8008]);
        for (const policy of objects.filter((o) => o.kind === "NetworkPolicy")) for (const rule of policy.spec.ingress) expect(rule.from.length, policy.metadata.name).toBeGreaterThan(0);
        expectPerMemberFiles(objects, "pg-reads", "patroni.yml");
        const analytics = parse(fileContent(objects, "pg-reads-1.patroni.yml"));
        expect(analytics.restapi.connect_address).toBe("pg-reads-1.pg-reads.hadb.svc.cluster.local:8008");
        expect(analytics.tags).toMatchObject({ nofailover: true, nosync: true, hadb_pool: "analytics" });
        // The analytics endpoint is a Service of the proxy, like the others.
        expect(get(objects, "Service", "pg-proxy-analytics").spec.ports).toEqual([expect.objectContaining({ port: 5002 })]);
        expect(violationsOf(list, resources)).toEqual([]);
    });

    it("PostgresCluster: Patroni's members and its own etcd, member configs with passwords in a Secret only", async () => {
        const given = "given-superuser-password-0123";
        const { resources, list, objects } = await onKubernetes((target) => new PostgresCluster("pg", { target, members: 3, passwords: { superuser: given } }));
        expect(list.map(label)).toEqual(
            expect.arrayContaining([
                "StatefulSet/pg",
                "Service/pg",
                "PodDisruptionBudget/pg",
                "NetworkPolicy/pg",
                "StatefulSet/pg-etcd",
                "Service/pg-etcd",
                "PodDisruptionBudget/pg-etcd",
                "NetworkPolicy/pg-etcd",
            ]),
        );
        expectProviderAndParents(resources);
        for (const sts of objects.filter((o) => o.kind === "StatefulSet")) expectCompanions(objects, sts.metadata.name);
        expectPerMemberFiles(objects, "pg", "patroni.yml");
        expectPerMemberFiles(objects, "pg-etcd", "etcd.yml");
        expect(holderOf(objects, "pg-1.patroni.yml").kind).toBe("Secret");
        const patroni = parse(fileContent(objects, "pg-1.patroni.yml"));
        expect(patroni.name).toBe("pg-1");
        expect(patroni.restapi.connect_address).toBe("pg-1.pg.hadb.svc.cluster.local:8008");
        expect(patroni.postgresql.connect_address).toBe("pg-1.pg.hadb.svc.cluster.local:5432");
        expect(patroni.etcd3.hosts).toEqual([0, 1, 2].map((i) => `pg-etcd-${i}.pg-etcd.hadb.svc.cluster.local:2379`));
        expect(JSON.stringify(objects.filter((o) => o.kind === "Secret"))).toContain(given);
        // A given password is found in the Secret files, where no RandomPassword records it.
        expect(configuredSecrets(list)).toContain(given);
        expect(generatedSecrets(resources)).not.toContain(given);
        expect(violationsOf(list, resources, [given])).toEqual([]);
    });

    it("MySqlCluster: members find each other at their Pod DNS names; member.json with passwords in a Secret", async () => {
        const { resources, list, objects } = await onKubernetes((target) => new MySqlCluster("mysql", { target, members: 3 }));
        expect(list.map(label)).toEqual(expect.arrayContaining(["StatefulSet/mysql", "Service/mysql", "PodDisruptionBudget/mysql", "NetworkPolicy/mysql"]));
        expectProviderAndParents(resources);
        for (const sts of objects.filter((o) => o.kind === "StatefulSet")) expectCompanions(objects, sts.metadata.name);
        expectPerMemberFiles(objects, "mysql", "my.cnf");
        expectPerMemberFiles(objects, "mysql", "member.json");
        expect(holderOf(objects, "mysql-1.member.json").kind).toBe("Secret");
        const hosts = [0, 1, 2].map((i) => `mysql-${i}.mysql.hadb.svc.cluster.local`);
        const myCnf = fileContent(objects, "mysql-1.my.cnf");
        expect(myCnf).toMatch(/report_host\s*=\s*mysql-1\.mysql\.hadb\.svc\.cluster\.local\b/);
        expect(myCnf).toContain(`mysql-1.mysql.hadb.svc.cluster.local:33061`);
        const files = JSON.stringify(objects.filter((o) => o.kind === "ConfigMap" || o.kind === "Secret"));
        expect(files).toContain(`group_seeds = ${hosts.map((h) => `${h}:33061`).join(",")}`);
        const member = JSON.parse(fileContent(objects, "mysql-1.member.json"));
        expect(member.self).toBe(hosts[1]);
        expect(member.members).toEqual(hosts);
        expect(violationsOf(list, resources)).toEqual([]);
    });

    it("HaproxyFrontend: a StatefulSet of instances and a Service per endpoint targeting the named container port", async () => {
        const { resources, list, objects, built } = await onKubernetes((target) => {
            const pg = new PostgresCluster("pg", { target, members: 3 });
            return new HaproxyFrontend("pg-proxy", { target, backends: pg.backends });
        });
        expect(list.map(label)).toEqual(
            expect.arrayContaining([
                "StatefulSet/pg-proxy",
                "Service/pg-proxy",
                "Service/pg-proxy-read-write",
                "Service/pg-proxy-read-only",
                "Service/pg-proxy-stats",
                "ConfigMap/pg-proxy-files-*",
                "PodDisruptionBudget/pg-proxy",
                "NetworkPolicy/pg-proxy",
            ]),
        );
        expectProviderAndParents(resources);
        expectCompanions(objects, "pg-proxy");
        const sts = get(objects, "StatefulSet", "pg-proxy");
        expect(sts.spec.replicas).toBe(2);
        const ports = mainContainer(sts).ports.map((p: Obj) => `${p.name}:${p.containerPort}`);
        expect(ports).toEqual(["read-write:5000", "read-only:5001", "stats:7000"]);
        for (const [endpoint, port] of [["read-write", 5000], ["read-only", 5001], ["stats", 7000]] as const) {
            const svc = get(objects, "Service", `pg-proxy-${endpoint}`);
            expect(svc.spec).toEqual({ type: "ClusterIP", selector: sts.spec.selector.matchLabels, ports: [{ name: endpoint, port, targetPort: endpoint, protocol: "TCP" }] });
        }
        const config = fileContent(objects, "shared.haproxy.cfg");
        for (const i of [0, 1, 2]) expect(config).toContain(`server pg-${i} pg-${i}.pg.hadb.svc.cluster.local:5432 check port 8008`);
        expect(config).toContain("parse-resolv-conf");
        const proxy = built as HaproxyFrontend;
        expect(await reveal(proxy.readWrite)).toEqual({ internal: [{ host: "pg-proxy-read-write.hadb.svc.cluster.local", port: 5000 }], external: [] });
        expect(violationsOf(list, resources)).toEqual([]);
    });

    it("HaproxyFrontend for MySQL with one instance: no PDB; routes to the group members' DNS names", async () => {
        const { resources, list, objects } = await onKubernetes((target) => {
            const mysql = new MySqlCluster("mysql", { target, members: 3 });
            return new HaproxyFrontend("mysql-proxy", { target, backends: mysql.backends, instances: 1 });
        });
        expectCompanions(objects, "mysql-proxy");
        expect(list.map(label)).toEqual(expect.arrayContaining(["Service/mysql-proxy-read-write", "Service/mysql-proxy-read-only", "Service/mysql-proxy-stats"]));
        const config = fileContent(objects, "shared.haproxy.cfg");
        for (const i of [0, 1, 2]) expect(config).toMatch(new RegExp(`server mysql-${i} mysql-${i}\\.mysql\\.hadb\\.svc\\.cluster\\.local:3306 .*check`));
        expect(violationsOf(list, resources)).toEqual([]);
    });

    it("honours namespace, namePrefix, cluster domain, storage class, pull secrets, host spread and a registry", async () => {
        const args: KubernetesTargetArgs = {
            namespace: "shop-db",
            namePrefix: "shop-",
            clusterDomain: "example.internal",
            storageClass: "fast-ssd",
            imagePullSecrets: ["regcred"],
            requireHostSpread: false,
            registry: "registry.example.com/hadb",
        };
        const { resources, list, objects } = await onKubernetes((target) => {
            const pg = new PostgresCluster("pg", { target, members: 3 });
            return new HaproxyFrontend("pg-proxy", { target, backends: pg.backends });
        }, args);
        expect(get(objects, "Namespace", "shop-db").metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
        expect(objects.filter((o) => o.kind !== "Namespace").every((o) => o.metadata.namespace === "shop-db")).toBe(true);
        const sts = get(objects, "StatefulSet", "shop-pg");
        expectCompanions(objects, "shop-pg");
        expectPerMemberFiles(objects, "shop-pg", "patroni.yml");
        expect(parse(fileContent(objects, "shop-pg-2.patroni.yml")).postgresql.connect_address).toBe("shop-pg-2.shop-pg.shop-db.svc.example.internal:5432");
        expect(fileContent(objects, "shared.haproxy.cfg")).toContain("server pg-0 shop-pg-0.shop-pg.shop-db.svc.example.internal:5432");
        expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBe("fast-ssd");
        expect(podSpec(sts).imagePullSecrets).toEqual([{ name: "regcred" }]);
        expect(podSpec(sts).affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
        expect(podSpec(sts).affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
        expect(mainContainer(sts).image).toBe("registry.example.com/hadb/hadb-postgres:latest");
        expect(byType(resources, "docker:index/image:Image").map((i) => i.inputs.imageName).sort()).toEqual(
            expect.arrayContaining(["registry.example.com/hadb/hadb-etcd:latest", "registry.example.com/hadb/hadb-haproxy:latest", "registry.example.com/hadb/hadb-postgres:latest"]),
        );
        expectProviderAndParents(resources);
        expect(violationsOf(list, resources)).toEqual([]);
    });

    // A target given a provider must not deploy to the current kubeconfig context instead.
    it.each(["provider", "providers"] as const)("uses a provider given to the target in `%s` for every object, and creates none of its own", async (option) => {
        let given: k8s.Provider | undefined;
        const { resources, error } = await declare(() => {
            given = new k8s.Provider("given", { context: "prod" });
            const target = new KubernetesTarget("k8s", {}, option === "provider" ? { provider: given } : { providers: [given] });
            new EtcdCluster("etcd", { target, members: 3 });
        });
        expect(error).toBeUndefined();
        expect(given).toBeDefined();
        const providers = byType(resources, PROVIDER);
        expect(providers.map((p) => p.name)).toEqual(["given"]);
        expectProviderAndParents(resources, providers[0]);
    });

    // PostgresCluster "pg" runs its configurator as "pg-config"; an EtcdCluster named "pg-config" declares objects of
    // the same kinds and names under other URNs, which the API server refuses at apply time. Refusing the second
    // component up front, or keeping the names apart, are both correct.
    it("never declares two objects of one kind under one name (a cluster's configurator and a component of that name)", async () => {
        const { resources, error } = await declare(() => {
            const target = new KubernetesTarget("k8s");
            new PostgresCluster("pg", { target, members: 3, etcdHosts: ["etcd-0.etcd.hadb.svc.cluster.local:2379"] });
            new EtcdCluster("pg-config", { target, members: 3 });
        });
        if (error === undefined) expect(checkManifests(manifests(resources), generatedSecrets(resources)).filter((v) => v.rule === "unique-name")).toEqual([]);
        else expect((error as Error).message).toMatch(/pg-config/);
    });

    it("exposes the endpoints through LoadBalancer Services when asked", async () => {
        const { objects, built } = await onKubernetes(
            (target) => {
                const pg = new PostgresCluster("pg", { target, members: 3 });
                return new HaproxyFrontend("pg-proxy", { target, backends: pg.backends });
            },
            { frontendServiceType: "LoadBalancer", clientCidrs: ["203.0.113.0/24"] },
        );
        for (const endpoint of ["read-write", "read-only", "stats"]) expect(get(objects, "Service", `pg-proxy-${endpoint}`).spec.type).toBe("LoadBalancer");
        expect(get(objects, "Service", "pg-proxy").spec.clusterIP).toBe("None");
        expect(((await reveal((built as HaproxyFrontend).readWrite)) as Obj).internal).toEqual([{ host: "pg-proxy-read-write.hadb.svc.cluster.local", port: 5000 }]);
    });
});

describe("KubernetesTarget validation", () => {
    it.each([
        ["namespace", "Hadb"],
        ["namespace", "a".repeat(64)],
        ["namespace", "db_prod"],
        ["podCidrs", "10.0.0.0"],
        ["podCidrs", "10.0.0.0/8,172.16.0.0/12"],
        ["registry", "https://registry.example.com/hadb"],
        ["registry", "Registry.example.com"],
        ["frontendServiceType", "NodePort"],
        ["namePrefix", "Shop-"],
        ["namePrefix", "a-very-long-name-prefix-"],
    ] as const)("refuses %s = %s before declaring any child", async (argument, value) => {
        const args: KubernetesTargetArgs = argument === "podCidrs" ? { podCidrs: [value] } : { [argument]: value };
        const message = await expectRefused(() => new KubernetesTarget("k8s", args), TARGET, argument, value);
        expect(message).toMatch(/^KubernetesTarget "k8s": argument/);
    });

    it("refuses a target name that is not a DNS label", async () => {
        await expectRefused(() => new KubernetesTarget("K8s"), TARGET, "name", "K8s");
    });

    it("refuses LoadBalancer endpoints without the client ranges they admit, and a range that is the whole Internet", async () => {
        const message = await expectRefused(() => new KubernetesTarget("k8s", { frontendServiceType: "LoadBalancer" }), TARGET, "clientCidrs", []);
        expect(message).toContain("list the ranges your clients connect from");
        await expectRefused(() => new KubernetesTarget("k8s", { frontendServiceType: "LoadBalancer", clientCidrs: ["0.0.0.0/0"] }), TARGET, "clientCidrs", "0.0.0.0/0");
    });

    it.each([
        ["EtcdCluster", (target: KubernetesTarget, name: string) => new EtcdCluster(name, { target, members: 3 }), "hadb:index:EtcdCluster"],
        ["MySqlCluster", (target: KubernetesTarget, name: string) => new MySqlCluster(name, { target, members: 3 }), "hadb:index:MySqlCluster"],
    ] as const)("refuses a %s whose StatefulSet name (namePrefix + name) exceeds 52 characters, naming the fix", async (_kind, build, type) => {
        const prefix = "p".repeat(20);
        const name = "c".repeat(33);
        const message = await expectRefused(() => build(new KubernetesTarget("k8s", { namePrefix: prefix }), name), type, "name", prefix + name);
        expect(message).toContain("52");
        expect(message).toMatch(/Fix: shorten the component name or the target's namePrefix/);
    });

    it("accepts a StatefulSet name of exactly 52 characters", async () => {
        const { error, resources } = await declare(() => new EtcdCluster("c".repeat(32), { target: new KubernetesTarget("k8s", { namePrefix: "p".repeat(20) }), members: 1 }));
        expect(error).toBeUndefined();
        const [sts] = manifests(resources).filter((m) => m.kind === "StatefulSet");
        expect(sts.metadata.name).toHaveLength(52);
        expect(checkManifests(manifests(resources), [])).toEqual([]);
    });
});

describe("the staging stack", () => {
    it("every Pod gives up on a name lookup after 1 s and one retry, merged into its generated resolv.conf", async () => {
        const run = await runStack("staging");
        const sets = manifests(run.resources).filter((m) => m.kind === "StatefulSet").map((m) => applied(m, false) as Obj);
        expect(sets.length).toBeGreaterThan(3);
        for (const sts of sets) expect(podSpec(sts).dnsConfig, sts.metadata.name).toEqual({ options: [{ name: "timeout", value: "1" }, { name: "attempts", value: "2" }] });
    });

    it("registers only objects that pass every invariant", async () => {
        const run = await runStack("staging");
        const list = manifests(run.resources);
        const perKind: Record<string, number> = {};
        for (const m of list) perKind[m.kind] = (perKind[m.kind] ?? 0) + 1;
        console.log(`[k8s] ${list.length} objects: ${Object.entries(perKind).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join(", ")}`);
        expect(perKind).toMatchObject({ Namespace: 1 });
        for (const kind of ["StatefulSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "NetworkPolicy"]) expect(perKind[kind], kind).toBeGreaterThan(0);
        for (const sts of list.filter((m) => m.kind === "StatefulSet")) expectCompanions(list, sts.metadata.name);
        expectProviderAndParents(run.resources);
        expect(generatedSecrets(run.resources).length).toBeGreaterThanOrEqual(8);
        // Every generated password is also found in the Secret files, so given ones would be too.
        expect(configuredSecrets(list)).toEqual(expect.arrayContaining(generatedSecrets(run.resources)));
        expect(violationsOf(list, run.resources)).toEqual([]);
    });

    it.each([
        ["5 etcd members, 5 PostgreSQL and 5 MySQL members, one HAProxy instance, no host spread", { "hadb:etcdMembers": 5, "hadb:postgresMembers": 5, "hadb:mysqlMembers": 5, "hadb:haproxyInstances": 1, "hadb:kubernetesRequireHostSpread": false }],
        ["another namespace, a storage class and a registry", { "hadb:kubernetesNamespace": "shop", "hadb:kubernetesStorageClass": "fast", "hadb:kubernetesRegistry": "registry.example.com/hadb" }],
        ["MySQL multi-primary", { "hadb:mysqlMode": "multi-primary" }],
    ])("passes every invariant with %s", async (_what, config) => {
        const run = await runStack("staging", { config });
        expect(violationsOf(manifests(run.resources), run.resources)).toEqual([]);
    });

    // Clients of a LoadBalancer are outside the cluster; the NetworkPolicy admits the endpoints only from Pods.
    it("passes every invariant with LoadBalancer endpoints (external clients can reach them)", async () => {
        const run = await runStack("staging", { config: { "hadb:kubernetesFrontendServiceType": "LoadBalancer", "hadb:kubernetesClientCidrs": "203.0.113.0/24,198.51.100.0/24" } });
        expect(violationsOf(manifests(run.resources), run.resources)).toEqual([]);
    });
});

describe("each invariant catches what it is for", () => {
    let base: Obj[] = [];
    let secrets: string[] = [];

    beforeAll(async () => {
        const run = await runStack("staging");
        base = manifests(run.resources).map((m) => applied(m, false) as Obj);
        secrets = generatedSecrets(run.resources);
    }, 60_000);

    const sts = (o: Obj[], name: string) => get(o, "StatefulSet", name);
    const remove = (o: Obj[], kind: string, name: string) => o.splice(o.indexOf(get(o, kind, name)), 1);
    const memberItem = (o: Obj[], key: string) => {
        const source = podSpec(sts(o, key.split(".")[0].replace(/-\d+$/, ""))).volumes.flatMap((v: Obj) => v.projected?.sources ?? []).find((s: Obj) => (s.configMap ?? s.secret).items.some((i: Obj) => i.key === key));
        const items: Obj[] = (source.configMap ?? source.secret).items;
        return { items, index: items.findIndex((i) => i.key === key) };
    };

    const CASES: [string, Rule, (o: Obj[]) => void][] = [
        ["a ConfigMap value that is not a string", "schema", (o) => (holderOf(o, "etcd-0.etcd.yml").data["etcd-0.etcd.yml"] = 42)],
        ["replicas given as a string", "schema", (o) => (sts(o, "pg").spec.replicas = "3")],
        ["an imagePullPolicy outside its enum", "schema", (o) => (mainContainer(sts(o, "etcd")).imagePullPolicy = "Sometimes")],
        ["a memory request that is not a quantity", "schema", (o) => (mainContainer(sts(o, "pg")).resources.requests.memory = "1 GB")],
        ["a request above its limit", "schema", (o) => (mainContainer(sts(o, "mysql")).resources.requests.memory = "64Gi")],
        ["an httpGet probe port of 70000", "schema", (o) => (mainContainer(sts(o, "pg")).startupProbe.httpGet.port = 70000)],
        ["a negative replica count", "schema", (o) => (sts(o, "pg-proxy").spec.replicas = -1)],
        ["a Deployment, a kind hadb does not declare", "schema-kind", (o) => o.push({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "extra", namespace: "hadb" }, spec: {} })],
        ["a PodDisruptionBudget in policy/v1beta1", "schema-kind", (o) => (get(o, "PodDisruptionBudget", "pg").apiVersion = "policy/v1beta1")],
        ["a misspelt probe field in a container", "unknown-field", (o) => (mainContainer(sts(o, "pg")).livenessprobe = mainContainer(sts(o, "pg")).livenessProbe)],
        ["an unknown field in a projected item", "unknown-field", (o) => (projectedItems(sts(o, "etcd"))[0].permissions = "0440")],
        ["an unknown field in metadata", "unknown-field", (o) => (get(o, "Service", "pg").metadata.label = { a: "b" })],
        ["an unknown top-level field", "unknown-field", (o) => (get(o, "NetworkPolicy", "mysql").rules = [])],
        ["a second ConfigMap under an existing name", "unique-name", (o) => o.push({ ...structuredClone(holderOf(o, "shared.haproxy.cfg")), data: {} })],
        ["a NetworkPolicy declared twice", "unique-name", (o) => o.push(structuredClone(get(o, "NetworkPolicy", "etcd")))],
        ["a StatefulSet name of 53 characters", "name", (o) => (sts(o, "mysql-proxy").metadata.name = "m".repeat(53))],
        ["a Service name of 64 characters", "name", (o) => (get(o, "Service", "pg-proxy-read-write").metadata.name = "s".repeat(64))],
        ["a Service name starting with a digit", "name", (o) => (get(o, "Service", "pg-proxy-stats").metadata.name = "7stats")],
        ["an upper-case PodDisruptionBudget name", "name", (o) => (get(o, "PodDisruptionBudget", "pg").metadata.name = "PG")],
        ["a container name with an underscore", "name", (o) => (mainContainer(sts(o, "pg")).name = "post_gres")],
        ["every object in a namespace the stack does not create", "namespace", (o) => o.filter((x) => x.kind !== "Namespace").forEach((x) => (x.metadata.namespace = "elsewhere"))],
        ["a label key with a space", "label-syntax", (o) => (holderOf(o, "etcd-0.etcd.yml").metadata.labels["hadb.io/bad key"] = "x")],
        ["a label value of 64 characters", "label-syntax", (o) => (get(o, "NetworkPolicy", "etcd").metadata.labels["hadb.io/note"] = "v".repeat(64))],
        ["a selector term with a bad value", "label-syntax", (o) => (get(o, "NetworkPolicy", "pg").spec.ingress[0].from.push({ podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["-bad-"] }] } }))],
        ["a StatefulSet selector that misses its template", "selector-match", (o) => (sts(o, "pg").spec.selector.matchLabels["hadb.io/cluster"] = "pg-other")],
        ["the headless Service missing", "headless-service", (o) => remove(o, "Service", "pg")],
        ["a governing Service with a cluster IP", "headless-service", (o) => delete get(o, "Service", "mysql").spec.clusterIP],
        ["serviceName naming an endpoint Service", "headless-service", (o) => (sts(o, "pg-proxy").spec.serviceName = "pg-proxy-read-write")],
        ["publishNotReadyAddresses false", "publish-not-ready", (o) => (get(o, "Service", "etcd").spec.publishNotReadyAddresses = false)],
        ["no PDB for a 3-member StatefulSet", "pdb", (o) => remove(o, "PodDisruptionBudget", "pg")],
        ["a PDB selecting both proxies", "pdb", (o) => (get(o, "PodDisruptionBudget", "pg-proxy").spec.selector = { matchLabels: { "hadb.io/component": "haproxy" } })],
        ["a PDB with both minAvailable and maxUnavailable", "pdb", (o) => (get(o, "PodDisruptionBudget", "mysql").spec.minAvailable = 2)],
        ["an endpoint Service selecting nothing", "service-selects-workload", (o) => (get(o, "Service", "pg-proxy-read-write").spec.selector["hadb.io/cluster"] = "nothing")],
        ["a targetPort naming no container port", "service-target-port", (o) => (get(o, "Service", "pg-proxy-read-only").spec.ports[0].targetPort = "read-olny")],
        ["a targetPort number no container exposes", "service-target-port", (o) => (get(o, "Service", "mysql").spec.ports[0].targetPort = 3307)],
        ["a port name of 16 characters", "port-name", (o) => (mainContainer(sts(o, "pg")).ports.find((p: Obj) => p.name === "api").name = "patroni-rest-api")],
        ["an upper-case port name", "port-name", (o) => (mainContainer(sts(o, "etcd")).ports.find((p: Obj) => p.name === "peer").name = "Peer")],
        ["a port name with a double '-'", "port-name", (o) => (mainContainer(sts(o, "mysql")).ports.find((p: Obj) => p.name === "group").name = "group--rep")],
        ["a port name used twice", "port-name", (o) => (mainContainer(sts(o, "pg")).ports.find((p: Obj) => p.name === "postgres").name = "api")],
        ["a dangling volumeMount", "volume-mount", (o) => mainContainer(sts(o, "pg")).volumeMounts.push({ name: "scratch", mountPath: "/scratch" })],
        ["a volumeClaimTemplate nobody mounts", "volume-mount", (o) => sts(o, "etcd").spec.volumeClaimTemplates.push({ ...structuredClone(sts(o, "etcd").spec.volumeClaimTemplates[0]), metadata: { name: "logs" } })],
        ["a shared file's key missing from its ConfigMap", "projected-source", (o) => delete holderOf(o, "shared.haproxy.cfg").data["shared.haproxy.cfg"]],
        [
            "a projected Secret that does not exist",
            "projected-source",
            (o) => (podSpec(sts(o, "mysql")).volumes.flatMap((v: Obj) => v.projected?.sources ?? []).find((s: Obj) => s.secret).secret.name = "mysql-secret-files-gone"),
        ],
        [
            "a missing per-member key",
            "per-member-identity",
            (o) => {
                const holder = holderOf(o, "pg-2.patroni.yml");
                delete (holder.stringData ?? holder.data)["pg-2.patroni.yml"];
            },
        ],
        [
            "a member's projected item missing",
            "per-member-identity",
            (o) => {
                const { items, index } = memberItem(o, "etcd-1.etcd.yml");
                items.splice(index, 1);
            },
        ],
        ["one replica more than there are member files", "per-member-identity", (o) => (sts(o, "mysql").spec.replicas = 4)],
        ["an init container copying one fixed member's file", "per-member-identity", (o) => (initContainer(sts(o, "pg")).command[2] = initContainer(sts(o, "pg")).command[2].replaceAll("$POD_NAME", "pg-0"))],
        ["POD_NAME not from the downward API", "per-member-identity", (o) => (initContainer(sts(o, "etcd")).env = [{ name: "POD_NAME", value: "etcd-0" }])],
        [
            "runAsNonRoot removed from the Pod and the init container",
            "pod-security",
            (o) => {
                delete podSpec(sts(o, "pg")).securityContext.runAsNonRoot;
                delete initContainer(sts(o, "pg")).securityContext.runAsNonRoot;
            },
        ],
        ["runAsUser 0 on a container", "pod-security", (o) => (mainContainer(sts(o, "mysql")).securityContext = { ...mainContainer(sts(o, "mysql")).securityContext, runAsUser: 0 })],
        ["allowPrivilegeEscalation on the init container", "pod-security", (o) => (initContainer(sts(o, "etcd")).securityContext = { ...initContainer(sts(o, "etcd")).securityContext, allowPrivilegeEscalation: true })],
        ["capabilities not dropped", "pod-security", (o) => (mainContainer(sts(o, "pg-proxy")).securityContext = { ...mainContainer(sts(o, "pg-proxy")).securityContext, capabilities: { drop: ["NET_RAW"] } })],
        [
            "no seccomp profile anywhere",
            "pod-security",
            (o) => {
                delete podSpec(sts(o, "pg")).securityContext.seccompProfile;
                for (const c of [mainContainer(sts(o, "pg")), initContainer(sts(o, "pg"))]) c.securityContext = { ...c.securityContext, seccompProfile: undefined };
            },
        ],
        ["a hostPath volume", "pod-security", (o) => podSpec(sts(o, "mysql")).volumes.push({ name: "host", hostPath: { path: "/var/run" } })],
        ["hostNetwork", "pod-security", (o) => (podSpec(sts(o, "etcd")).hostNetwork = true)],
        ["a Namespace that does not enforce restricted", "pod-security", (o) => delete get(o, "Namespace", "hadb").metadata.labels["pod-security.kubernetes.io/enforce"]],
        ["a service account token mounted", "service-account-token", (o) => delete podSpec(sts(o, "pg")).automountServiceAccountToken],
        ["a liveness probe on /primary", "liveness-role-check", (o) => (mainContainer(sts(o, "pg")).livenessProbe.httpGet.path = "/primary")],
        ["a liveness probe on /replica with a lag bound", "liveness-role-check", (o) => (mainContainer(sts(o, "pg")).livenessProbe.httpGet.path = "/replica?lag=1048576")],
        ["a liveness probe on MySQL's /ready", "liveness-role-check", (o) => (mainContainer(sts(o, "mysql")).livenessProbe = { httpGet: { path: "/ready", port: 8008 }, periodSeconds: 10 })],
        ["podManagementPolicy OrderedReady", "pod-management-policy", (o) => (sts(o, "mysql").spec.podManagementPolicy = "OrderedReady")],
        ["podManagementPolicy left to its default", "pod-management-policy", (o) => delete sts(o, "etcd").spec.podManagementPolicy],
        ["volume claims deleted on scale-down", "pvc-retention", (o) => (sts(o, "pg").spec.persistentVolumeClaimRetentionPolicy.whenScaled = "Delete")],
        ["volume claims deleted with the StatefulSet", "pvc-retention", (o) => (sts(o, "etcd").spec.persistentVolumeClaimRetentionPolicy.whenDeleted = "Delete")],
        ["a StatefulSet without a NetworkPolicy", "network-policy", (o) => remove(o, "NetworkPolicy", "pg")],
        ["a NetworkPolicy admitting a port no container exposes", "network-policy", (o) => get(o, "NetworkPolicy", "etcd").spec.ingress[0].ports.push({ protocol: "TCP", port: 9999 })],
        ["a NetworkPolicy rule without ports", "network-policy", (o) => delete get(o, "NetworkPolicy", "mysql").spec.ingress[0].ports],
        ["a NetworkPolicy selecting every Pod", "network-policy", (o) => (get(o, "NetworkPolicy", "mysql-proxy").spec.podSelector = {})],
        ["a LoadBalancer endpoint behind a Pods-only NetworkPolicy", "external-access", (o) => (get(o, "Service", "pg-proxy-read-write").spec.type = "LoadBalancer")],
        ["a password planted in a ConfigMap", "secret-leak", (o) => (holderOf(o, "shared.haproxy.cfg").data.leak = `password ${secrets[0]}`)],
        ["a password in a container's environment", "secret-leak", (o) => mainContainer(sts(o, "pg")).env.push({ name: "PGPASSWORD", value: secrets[4] })],
        ["a base64-encoded password in an annotation", "secret-leak", (o) => (get(o, "Service", "pg").metadata.annotations = { "hadb.io/x": Buffer.from(secrets[2]).toString("base64") })],
        ["a password in a Secret's label", "secret-leak", (o) => (holderOf(o, "pg-0.patroni.yml").metadata.labels["hadb.io/x"] = secrets[5])],
    ];

    it.each(CASES)("%s → %s", (_what, rule, mutate) => {
        const broken = structuredClone(base);
        mutate(broken);
        const violations = checkManifests(broken as ManifestLike[], secrets);
        expect(violations.length, "at least one violation").toBeGreaterThan(0);
        expect([...new Set(violations.map((v) => v.rule))], JSON.stringify(violations, null, 1)).toEqual([rule]);
        for (const v of violations) expect(v.object).toMatch(/^[A-Za-z]+\/.+/);
    });

    it("the unbroken stack has no violation, and every rule has a negative case", () => {
        expect(checkManifests(base as ManifestLike[], secrets)).toEqual([]);
        expect([...new Set(CASES.map(([, rule]) => rule))].sort()).toEqual(Object.keys(RULES).sort());
    });
});

describe("npm run render", () => {
    it("prints every object of the staging stack as one YAML document, Secret values redacted", async () => {
        const { yaml, objects, run } = await renderStack("staging");
        const list = manifests(run.resources);
        const docs = parseAllDocuments(yaml);
        expect(objects).toBe(list.length);
        expect(docs).toHaveLength(list.length);
        for (const doc of docs) expect(doc.errors).toEqual([]);
        const parsed = docs.map((d) => d.toJS() as Obj);
        expect(parsed.map(label).sort()).toEqual(list.map(label).sort());
        for (const o of parsed) expect(Object.keys(o).slice(0, 3)).toEqual(["apiVersion", "kind", "metadata"]);
        for (const s of parsed.filter((o) => o.kind === "Secret")) expect(Object.values(s.stringData ?? s.data).every((v) => v === "[secret]")).toBe(true);
        const secrets = generatedSecrets(run.resources);
        expect(secrets.length).toBeGreaterThan(0);
        for (const secret of secrets) expect(yaml.includes(secret), "a generated password in the rendered YAML").toBe(false);
        // What a reader sees is what was checked: the rendered objects pass the invariants, secrets aside.
        expect(checkManifests(parsed as ManifestLike[], secrets)).toEqual([]);
    });

    it("prints the same objects in the same order on every run, apart from generated values", async () => {
        const strip = (yaml: string) => yaml.replace(/-[0-9a-f]{8}\b/g, "-*");
        const [a, b] = [await renderStack("staging"), await renderStack("staging")];
        expect(strip(a.yaml)).toBe(strip(b.yaml));
    });

    it("refuses a stack that has no Kubernetes objects", async () => {
        await expect(renderStack("dev")).rejects.toThrow(/registers no Kubernetes objects/);
    });
});
