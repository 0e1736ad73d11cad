import * as pulumi from "@pulumi/pulumi";
import { planOrFail } from "../core/errors";
import { FrontendBackend, frontendBackends } from "../haproxy/plan";
import { Target } from "../core/plan";
import { secretPasswords } from "../core/secrets";
import { secretUrl } from "../core/urls";
import { EtcdCluster } from "../etcd/etcdCluster";
import { EtcdSettings } from "../etcd/plan";
import { resolvePostgresSettings } from "./patroniConfig";
import { planPostgresCluster } from "./plan";
import { PostgresSettings, validatePostgresSettings } from "./settings";

export interface PostgresClusterArgs extends PostgresSettings {
    /** Where the members run, e.g. a `DockerTarget`. */
    readonly target: Target;
    /** An etcd cluster to use as the DCS. @default a new 3-member EtcdCluster named "<name>-etcd" */
    readonly dcs?: EtcdCluster;
    /** Settings of the etcd cluster created when `dcs` is not given. */
    readonly etcd?: EtcdSettings;
    /** Passwords; each one left out is generated. All are handled as Pulumi secrets. */
    readonly passwords?: {
        readonly superuser?: pulumi.Input<string>;
        readonly replication?: pulumi.Input<string>;
        readonly app?: pulumi.Input<string>;
        readonly restApi?: pulumi.Input<string>;
    };
}

/**
 * PostgreSQL managed by Patroni: one leader, streaming replicas, automatic failover through the DCS lock.
 *
 * @example
 * const pg = new PostgresCluster("pg", { target: local, members: 3, synchronousMode: "on" });
 */
export class PostgresCluster extends pulumi.ComponentResource {
    readonly memberNames: pulumi.Output<string[]>;
    /** Members as HAProxy backends. Plain values: they shape the proxy's configuration. */
    readonly backends: FrontendBackend[];
    readonly databaseName: string;
    readonly appUser: string;
    readonly superuser: string;
    readonly appPassword: pulumi.Output<string>;
    readonly superuserPassword: pulumi.Output<string>;
    readonly restApiPassword: pulumi.Output<string>;
    readonly dcs: EtcdCluster;

    static validateArgs = validatePostgresSettings;

    constructor(name: string, args: PostgresClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:postgres:PatroniCluster", name, {}, opts);
        planOrFail(this, () => validatePostgresSettings(name, args));
        const s = resolvePostgresSettings(args);
        this.dcs = args.dcs ?? new EtcdCluster(`${name}-etcd`, { target: args.target, ...args.etcd }, { parent: this });
        const passwords = secretPasswords(name, ["superuser", "replication", "app", "restApi"] as const, args.passwords, this);
        const plan = planOrFail(this, () =>
            planPostgresCluster(name, args, { dcsHosts: this.dcs.hosts, clusterCidr: args.target.clusterCidr, passwords: pulumi.output(passwords) }),
        );
        // Patroni cannot start without its DCS, so etcd comes first.
        const deployed = args.target.deploy(this, plan, [this.dcs]);

        this.backends = frontendBackends(deployed, "postgres");
        this.memberNames = pulumi.all(deployed.map((m) => m.resourceName));
        this.databaseName = s.databaseName;
        this.appUser = s.appUser;
        this.superuser = s.superuser;
        this.appPassword = passwords.app;
        this.superuserPassword = passwords.superuser;
        this.restApiPassword = passwords.restApi;
        this.registerOutputs({ memberNames: this.memberNames });
    }

    /** A secret `postgresql://` URL for the application user or the superuser at host:port. */
    connectionUrl(host: pulumi.Input<string>, port: pulumi.Input<number>, role: "app" | "superuser"): pulumi.Output<string> {
        const user = role === "app" ? this.appUser : this.superuser;
        const password = role === "app" ? this.appPassword : this.superuserPassword;
        return secretUrl("postgresql", user, password, host, port, role === "app" ? this.databaseName : "postgres");
    }
}
