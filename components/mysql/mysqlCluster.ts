import * as pulumi from "@pulumi/pulumi";
import { ClusterBackends, clusterBackends } from "../core/backends";
import { planOrFail } from "../core/errors";
import { ServiceAddress, Target } from "../core/plan";
import { secretUrl } from "../core/urls";
import { placeComponent, TargetSpec } from "../targets/targetSpec";
import { secretPasswords } from "../secrets/passwords";
import { CONFIGURATOR_STATUS_PORT, planConfigurator } from "../core/configurator";
import { MySqlPasswords, renderConfiguratorDeclaration, resolveMySqlSettings } from "./memberConfig";
import { planMySqlCluster, planMySqlReplicas } from "./plan";
import { registerReplicaSource } from "../core/replicas";
import { defaultGroupName, MySqlSettings, validateMySqlSettings } from "./settings";

/** Stand-ins for checking a plan before the passwords exist; never rendered into anything deployed. */
const NO_PASSWORDS: MySqlPasswords = { admin: "", replication: "", monitor: "", app: "" };

/** Passwords of a group; each one left out is generated. All are handled as Pulumi secrets. */
export interface MySqlPasswordArgs {
    /** Password of the administrative account (`adminUser`). */
    readonly admin?: pulumi.Input<string>;
    /** Password of the account Group Replication's recovery and clone connect as (`replicationUser`). */
    readonly replication?: pulumi.Input<string>;
    /** The account the supervisors and proxies read group state with. */
    readonly monitor?: pulumi.Input<string>;
    /** Password of the application user (`appUser`). */
    readonly app?: pulumi.Input<string>;
}

export interface MySqlClusterArgs extends MySqlSettings {
    /**
     * Where the members run: a `DockerTarget` or a `KubernetesTarget` object (TypeScript). Give exactly one of
     * `target` and `targetSpec`.
     */
    readonly target?: Target;
    /**
     * Where the members run, as plain data (any language): the target is declared once and shared by every
     * component of the deployment given the same spec, so give the group's HaproxyFrontend the same one. (A
     * TypeScript program may give `target` instead: exactly one of the two.)
     */
    readonly targetSpec?: TargetSpec;
    /** Passwords; each one left out is generated. */
    readonly passwords?: MySqlPasswordArgs;
}

/**
 * A MySQL Group Replication group whose members assemble themselves: the group is founded once, members
 * join and rejoin by themselves, and after a complete outage the member with the most advanced GTID set
 * reboots it. No orchestration step runs outside the members.
 *
 * @example
 * const db = new MySqlCluster("mysql", { target: local, members: 3, mode: "single-primary" });
 */
export class MySqlCluster extends pulumi.ComponentResource {
    /** Container or Pod names of the members. */
    readonly memberNames: pulumi.Output<string[]>;
    /** Members as a proxy's backends (SQL port, role-check port), with the group's mode. */
    readonly backends: ClusterBackends;
    /** The application database. */
    readonly databaseName: string;
    /** The application user, with all privileges on `databaseName`. */
    readonly appUser: string;
    /** The administrative account. */
    readonly adminUser: string;
    /** The application user's password (a secret). */
    readonly appPassword: pulumi.Output<string>;
    /** The administrative account's password (a secret). */
    readonly adminPassword: pulumi.Output<string>;

    static validateArgs = validateMySqlSettings;

    constructor(name: string, args: MySqlClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:MySqlCluster", name, {}, opts);
        const target = placeComponent(this, `MySqlCluster "${name}"`, args, opts);
        const context = (passwords: pulumi.Input<MySqlPasswords>) => ({
            stack: pulumi.getStack(),
            memberHost: (m: string) => target.memberHost(name, m),
            clusterRanges: target.clusterRanges,
            passwords,
        });
        const planWith = (passwords: pulumi.Input<MySqlPasswords>) => planMySqlCluster(name, args, context(passwords));
        // Checked before the first child (a generated password) exists.
        planOrFail(this, () => {
            target.checkPlan(planWith(NO_PASSWORDS), `MySqlCluster "${name}"`);
            target.checkPlan(planConfigurator(name, "mysql", "hadb-mysql-configurator", ""), `MySqlCluster "${name}"`);
        });
        const s = resolveMySqlSettings(args, defaultGroupName(pulumi.getStack(), name));
        const passwords = secretPasswords(name, ["admin", "replication", "monitor", "app"] as const, args.passwords, this, { app: args.appPasswordRotation });
        const plan = planWith(pulumi.output(passwords));
        const deployed = target.deploy(this, plan);
        // After the members: keeps the running group equal to these settings when they change.
        const members = plan.members.map((m) => m.name);
        const declaration = pulumi
            .all([passwords, target.clusterRanges])
            .apply(([p, clusterRanges]) =>
                renderConfiguratorDeclaration(s, { members, memberHost: (m) => target.memberHost(name, m), clusterRanges }, p, CONFIGURATOR_STATUS_PORT),
            );
        target.deploy(this, planConfigurator(name, "mysql", "hadb-mysql-configurator", pulumi.secret(declaration)), [...deployed.resources]);
        this.backends = clusterBackends("mysql", s.mode === "multi-primary", deployed.members, "mysql", "api");
        registerReplicaSource(this, {
            engine: "mysql",
            cluster: name,
            memberNames: members,
            target,
            backends: this.backends,
            resources: deployed.resources,
            supportsCascade: false,
            plan: (fleet, replicas) => planMySqlReplicas(name, args, fleet, replicas, { ...context(pulumi.output(passwords)), replicaHost: (m) => target.memberHost(fleet, m) }),
        });
        this.memberNames = pulumi.all(deployed.members.map((m) => m.resourceName));
        this.databaseName = s.databaseName;
        this.appUser = s.appUser;
        this.adminUser = s.adminUser;
        this.appPassword = passwords.app;
        this.adminPassword = passwords.admin;
        this.registerOutputs({ memberNames: this.memberNames });
    }

    /** A secret `mysql://` URL for the application user or the admin at an endpoint's address. */
    connectionUrl(address: pulumi.Input<ServiceAddress>, role: "app" | "admin"): pulumi.Output<string> {
        const user = role === "app" ? this.appUser : this.adminUser;
        const password = role === "app" ? this.appPassword : this.adminPassword;
        return secretUrl("mysql", user, password, address, role === "app" ? this.databaseName : "");
    }
}
