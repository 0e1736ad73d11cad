import * as pulumi from "@pulumi/pulumi";
import { ClusterBackends, clusterBackends } from "../core/backends";
import { planOrFail } from "../core/errors";
import { ServiceAddress, Target } from "../core/plan";
import { secretUrl } from "../core/urls";
import { placeComponent, TargetSpec } from "../targets/targetSpec";
import { EtcdCluster } from "../etcd/etcdCluster";
import { EtcdSettings } from "../etcd/plan";
import { secretPasswords } from "../secrets/passwords";
import { CONFIGURATOR_STATUS_PORT, planConfigurator } from "../core/configurator";
import { PostgresPasswords, renderConfiguratorDeclaration, resolvePostgresSettings } from "./patroniConfig";
import { planPostgresCluster, planPostgresReplicas } from "./plan";
import { registerReplicaSource } from "../core/replicas";
import { validatePostgresSettings, PostgresSettings } from "./settings";

/** Stand-ins for checking a plan before the passwords exist; never rendered into anything deployed. */
const NO_PASSWORDS: PostgresPasswords = { superuser: "", replication: "", app: "", restApi: "" };

/** Passwords of a Patroni cluster; each one left out is generated. All are handled as Pulumi secrets. */
export interface PostgresPasswordArgs {
    /** Password of the superuser role (`superuser`). */
    readonly superuser?: pulumi.Input<string>;
    /** Password of the role replicas stream WAL as (`replicationUser`). */
    readonly replication?: pulumi.Input<string>;
    /** Password of the application user (`appUser`). */
    readonly app?: pulumi.Input<string>;
    /** Basic auth of Patroni's REST API for switchover, restart and configuration changes. */
    readonly restApi?: pulumi.Input<string>;
}

export interface PostgresClusterArgs extends PostgresSettings {
    /**
     * Where the members (and the etcd cluster this creates) run: a `DockerTarget` or a `KubernetesTarget` object
     * (TypeScript). Give exactly one of `target` and `targetSpec`.
     */
    readonly target?: Target;
    /**
     * Where the members (and the etcd cluster this creates) run, as plain data (any language): the target is
     * declared once and shared by every component of the deployment given the same spec, so give the cluster's
     * HaproxyFrontend the same one. (A TypeScript program may give `target` instead: exactly one of the two.)
     */
    readonly targetSpec?: TargetSpec;
    /**
     * Client `host:port`s of an existing etcd cluster to use as the DCS (`etcd.hosts`); pass that cluster in
     * `dependsOn` too, so Patroni starts after it.
     * @default a new EtcdCluster named "<name>-etcd" on the same target
     */
    readonly etcdHosts?: string[];
    /** Settings of the etcd cluster created when `etcdHosts` is not given. */
    readonly etcd?: EtcdSettings;
    /** Passwords; each one left out is generated. */
    readonly passwords?: PostgresPasswordArgs;
}

/**
 * PostgreSQL managed by Patroni: one leader, streaming replicas, automatic failover through the DCS lock.
 *
 * @example
 * const pg = new PostgresCluster("pg", { target: local, members: 3, synchronousMode: "on" });
 */
export class PostgresCluster extends pulumi.ComponentResource {
    /** Container or Pod names of the members. */
    readonly memberNames: pulumi.Output<string[]>;
    /** Members as a proxy's backends. Plain values: they shape the proxy's configuration. */
    readonly backends: ClusterBackends;
    /** The application database. */
    readonly databaseName: string;
    /** The application user, owner of `databaseName`. */
    readonly appUser: string;
    /** The superuser role. */
    readonly superuser: string;
    /** The application user's password (a secret). */
    readonly appPassword: pulumi.Output<string>;
    /** The superuser's password (a secret). */
    readonly superuserPassword: pulumi.Output<string>;
    /** The password of Patroni's REST API (basic auth, user `patroni`) for switchover, restart and configuration changes (a secret). */
    readonly restApiPassword: pulumi.Output<string>;
    /** Client `host:port`s of the etcd cluster Patroni uses (its own, unless `etcdHosts` was given). */
    readonly etcdHosts: string[];

    static validateArgs = validatePostgresSettings;

    constructor(name: string, args: PostgresClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:PostgresCluster", name, {}, opts);
        const target = placeComponent(this, `PostgresCluster "${name}"`, args, opts);
        const etcdArgs = { target, ...args.etcd };
        const context = (dcsHosts: string[], passwords: pulumi.Input<PostgresPasswords>, service = name) => ({
            dcsHosts,
            memberHost: (m: string) => target.memberHost(service, m),
            clusterRanges: target.clusterRanges,
            passwords,
        });
        const planWith = (dcsHosts: string[], passwords: pulumi.Input<PostgresPasswords>) => planPostgresCluster(name, args, context(dcsHosts, passwords));
        // Everything is checked before the first child exists: the etcd cluster this creates, then the members.
        planOrFail(this, () => {
            validatePostgresSettings(name, args);
            if (!args.etcdHosts) EtcdCluster.plan(`${name}-etcd`, etcdArgs);
            target.checkPlan(planWith([], NO_PASSWORDS), `PostgresCluster "${name}"`);
            target.checkPlan(planConfigurator(name, "postgres", "hadb-pg-configurator", ""), `PostgresCluster "${name}"`);
        });
        const s = resolvePostgresSettings(args);
        const etcd = args.etcdHosts ? undefined : new EtcdCluster(`${name}-etcd`, etcdArgs, { parent: this });
        this.etcdHosts = args.etcdHosts ?? etcd!.hosts;
        const passwords = secretPasswords(name, ["superuser", "replication", "app", "restApi"] as const, args.passwords, this, { app: args.appPasswordRotation });
        const plan = planWith(this.etcdHosts, pulumi.output(passwords));
        // Patroni cannot start without its DCS, so etcd comes first.
        const deployed = target.deploy(this, plan, etcd ? [etcd] : []);
        // After the members: keeps the running cluster equal to these settings when they change.
        const declaration = pulumi
            .output(passwords)
            .apply((p) => renderConfiguratorDeclaration(s, deployed.members.map((m) => m.host), p, CONFIGURATOR_STATUS_PORT));
        target.deploy(this, planConfigurator(name, "postgres", "hadb-pg-configurator", pulumi.secret(declaration)), [...deployed.resources]);

        this.backends = clusterBackends("postgres", false, deployed.members, "postgres", "api");
        registerReplicaSource(this, {
            engine: "postgres",
            cluster: name,
            memberNames: plan.members.map((m) => m.name),
            target,
            backends: this.backends,
            resources: deployed.resources,
            supportsCascade: true,
            plan: (fleet, replicas, cascadeFrom) =>
                planPostgresReplicas(name, args, fleet, replicas, context(this.etcdHosts, pulumi.output(passwords), fleet), cascadeFrom),
        });
        this.memberNames = pulumi.all(deployed.members.map((m) => m.resourceName));
        this.databaseName = s.databaseName;
        this.appUser = s.appUser;
        this.superuser = s.superuser;
        this.appPassword = passwords.app;
        this.superuserPassword = passwords.superuser;
        this.restApiPassword = passwords.restApi;
        this.registerOutputs({ memberNames: this.memberNames });
    }

    /** A secret `postgresql://` URL for the application user or the superuser at an endpoint's address. */
    connectionUrl(address: pulumi.Input<ServiceAddress>, role: "app" | "superuser"): pulumi.Output<string> {
        const user = role === "app" ? this.appUser : this.superuser;
        const password = role === "app" ? this.appPassword : this.superuserPassword;
        return secretUrl("postgresql", user, password, address, role === "app" ? this.databaseName : "postgres");
    }
}
