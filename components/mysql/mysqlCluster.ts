import * as pulumi from "@pulumi/pulumi";
import { ClusterBackends, clusterBackends } from "../core/backends";
import { planOrFail } from "../core/errors";
import { ServiceAddress, Target } from "../core/plan";
import { secretUrl } from "../core/urls";
import { secretPasswords } from "../secrets/passwords";
import { CONFIGURATOR_STATUS_PORT, planConfigurator } from "../core/configurator";
import { MySqlPasswords, renderConfiguratorDeclaration, resolveMySqlSettings } from "./memberConfig";
import { planMySqlCluster } from "./plan";
import { defaultGroupName, MySqlSettings, validateMySqlSettings } from "./settings";

/** Stand-ins for checking a plan before the passwords exist; never rendered into anything deployed. */
const NO_PASSWORDS: MySqlPasswords = { admin: "", replication: "", monitor: "", app: "" };

/** Passwords of a group; each one left out is generated. All are handled as Pulumi secrets. */
export interface MySqlPasswordArgs {
    readonly admin?: pulumi.Input<string>;
    readonly replication?: pulumi.Input<string>;
    /** The account the supervisors and proxies read group state with. */
    readonly monitor?: pulumi.Input<string>;
    readonly app?: pulumi.Input<string>;
}

export interface MySqlClusterArgs extends MySqlSettings {
    /** Where the members run: a `DockerTarget` or a `KubernetesTarget`. */
    readonly target: Target;
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
    readonly databaseName: string;
    readonly appUser: string;
    readonly adminUser: string;
    readonly appPassword: pulumi.Output<string>;
    readonly adminPassword: pulumi.Output<string>;

    static validateArgs = validateMySqlSettings;

    constructor(name: string, args: MySqlClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:MySqlCluster", name, {}, opts);
        const planWith = (passwords: pulumi.Input<MySqlPasswords>) =>
            planMySqlCluster(name, args, { stack: pulumi.getStack(), memberHost: (m) => args.target.memberHost(name, m), clusterRanges: args.target.clusterRanges, passwords });
        // Checked before the first child (a generated password) exists.
        planOrFail(this, () => {
            args.target.checkPlan(planWith(NO_PASSWORDS), `MySqlCluster "${name}"`);
            args.target.checkPlan(planConfigurator(name, "mysql", "hadb-mysql-configurator", ""), `MySqlCluster "${name}"`);
        });
        const s = resolveMySqlSettings(args, defaultGroupName(pulumi.getStack(), name));
        const passwords = secretPasswords(name, ["admin", "replication", "monitor", "app"] as const, args.passwords, this, { app: args.appPasswordRotation });
        const plan = planWith(pulumi.output(passwords));
        const deployed = args.target.deploy(this, plan);
        // After the members: keeps the running group equal to these settings when they change.
        const members = plan.members.map((m) => m.name);
        const declaration = pulumi
            .all([passwords, args.target.clusterRanges])
            .apply(([p, clusterRanges]) =>
                renderConfiguratorDeclaration(s, { members, memberHost: (m) => args.target.memberHost(name, m), clusterRanges }, p, CONFIGURATOR_STATUS_PORT),
            );
        args.target.deploy(this, planConfigurator(name, "mysql", "hadb-mysql-configurator", pulumi.secret(declaration)), [...deployed.resources]);
        this.backends = clusterBackends("mysql", s.mode === "multi-primary", deployed.members, "mysql", "api");
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
