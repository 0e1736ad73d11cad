import * as pulumi from "@pulumi/pulumi";
import { planOrFail } from "../core/errors";
import { Target } from "../core/plan";
import { EtcdSettings, planEtcdCluster, validateEtcdSettings } from "./plan";

export interface EtcdClusterArgs extends EtcdSettings {
    /** Where the members run, e.g. a `DockerTarget`. */
    readonly target: Target;
}

/**
 * An etcd cluster: the distributed configuration store (DCS) Patroni elects its leader through.
 *
 * @example
 * const etcd = new EtcdCluster("etcd", { target: local, members: 3 });
 */
export class EtcdCluster extends pulumi.ComponentResource {
    /** Client URLs inside the cluster's network, one per member (what Patroni is given). */
    readonly clientEndpoints: pulumi.Output<string[]>;
    /** Client URLs on the host, when `publishClientPortsFrom` is set. */
    readonly publishedClientEndpoints: pulumi.Output<string[]>;
    /** Container (or Pod) names of the members. */
    readonly memberNames: pulumi.Output<string[]>;
    /** `host:port` pairs for Patroni's `etcd3.hosts`. */
    readonly hosts: string[];

    /** Throws an InvalidArgumentError for bad settings; pure, so it can run before anything is declared. */
    static validateArgs = validateEtcdSettings;

    constructor(name: string, args: EtcdClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:etcd:EtcdCluster", name, {}, opts);
        const plan = planOrFail(this, () => planEtcdCluster(name, pulumi.getStack(), args));
        const deployed = args.target.deploy(this, plan);
        this.hosts = deployed.map((m) => `${m.host}:${m.ports.client}`);
        this.clientEndpoints = pulumi.output(this.hosts.map((h) => `http://${h}`));
        this.publishedClientEndpoints = pulumi.output(
            deployed.filter((m) => m.publishedPorts.client !== undefined).map((m) => `http://${args.target.publishAddress}:${m.publishedPorts.client}`),
        );
        this.memberNames = pulumi.all(deployed.map((m) => m.resourceName));
        this.registerOutputs({
            clientEndpoints: this.clientEndpoints,
            publishedClientEndpoints: this.publishedClientEndpoints,
            memberNames: this.memberNames,
        });
    }
}
