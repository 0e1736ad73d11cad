import * as pulumi from "@pulumi/pulumi";
import { planOrFail } from "../core/errors";
import { Target } from "../core/plan";
import { secretPasswords } from "../core/secrets";
import { secretUrl } from "../core/urls";
import { FrontendBackend, frontendBackends } from "../haproxy/plan";
import { planMySqlCluster } from "./plan";
import { MYSQL_DEFAULTS, MySqlSettings, validateMySqlSettings } from "./settings";

export interface MySqlClusterArgs extends MySqlSettings {
    /** Where the members run, e.g. a `DockerTarget`. */
    readonly target: Target;
    /** Passwords; each one left out is generated. All are handled as Pulumi secrets. */
    readonly passwords?: {
        readonly admin?: pulumi.Input<string>;
        readonly replication?: pulumi.Input<string>;
        readonly monitor?: pulumi.Input<string>;
        readonly app?: pulumi.Input<string>;
    };
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
    readonly memberNames: pulumi.Output<string[]>;
    /** Members as HAProxy backends (SQL port, role-check port). */
    readonly backends: FrontendBackend[];
    readonly multiPrimary: boolean;
    readonly databaseName: string;
    readonly appUser: string;
    readonly adminUser: string;
    readonly appPassword: pulumi.Output<string>;
    readonly adminPassword: pulumi.Output<string>;

    static validateArgs = validateMySqlSettings;

    constructor(name: string, args: MySqlClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:mysql:GroupReplicationCluster", name, {}, opts);
        planOrFail(this, () => validateMySqlSettings(name, args));
        const passwords = secretPasswords(name, ["admin", "replication", "monitor", "app"] as const, args.passwords, this);
        const plan = planOrFail(this, () =>
            planMySqlCluster(name, args, { stack: pulumi.getStack(), clusterCidr: args.target.clusterCidr, passwords: pulumi.output(passwords) }),
        );
        const deployed = args.target.deploy(this, plan);
        this.backends = frontendBackends(deployed, "mysql");
        this.memberNames = pulumi.all(deployed.map((m) => m.resourceName));
        this.multiPrimary = args.mode === "multi-primary";
        this.databaseName = args.databaseName ?? MYSQL_DEFAULTS.databaseName;
        this.appUser = args.appUser ?? MYSQL_DEFAULTS.appUser;
        this.adminUser = args.adminUser ?? MYSQL_DEFAULTS.adminUser;
        this.appPassword = passwords.app;
        this.adminPassword = passwords.admin;
        this.registerOutputs({ memberNames: this.memberNames });
    }

    /** A secret `mysql://` URL for the application user or the admin at host:port. */
    connectionUrl(host: pulumi.Input<string>, port: pulumi.Input<number>, role: "app" | "admin"): pulumi.Output<string> {
        const user = role === "app" ? this.appUser : this.adminUser;
        const password = role === "app" ? this.appPassword : this.adminPassword;
        return secretUrl("mysql", user, password, host, port, role === "app" ? this.databaseName : "");
    }
}
