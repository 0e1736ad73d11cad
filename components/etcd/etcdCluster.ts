import * as pulumi from "@pulumi/pulumi";
import { planOrFail } from "../core/errors";
import { ServicePlan, Target } from "../core/plan";
import { EtcdSettings, planEtcdCluster, validateEtcdSettings } from "./plan";

export interface EtcdClusterArgs extends EtcdSettings {
    /** Where the members run: a `DockerTarget` or a `KubernetesTarget`. */
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
    /** Client URLs on the host, when `publishClientPortsFrom` is set (Docker target). */
    readonly publishedClientEndpoints: pulumi.Output<string[]>;
    /** Container or Pod names of the members. */
    readonly memberNames: pulumi.Output<string[]>;
    /** `host:port` of every member's client port, for Patroni's `etcd3.hosts`. Plain: known at preview. */
    readonly hosts: string[];

    /** Throws an InvalidArgumentError for bad settings; pure, so it can run before anything is declared. */
    static validateArgs = validateEtcdSettings;

    /** The cluster's plan on its target; throws an InvalidArgumentError for anything either refuses. Pure. */
    static plan(name: string, args: EtcdClusterArgs): ServicePlan {
        const plan = planEtcdCluster(name, args, { stack: pulumi.getStack(), memberHost: (m) => args.target.memberHost(name, m) });
        args.target.checkPlan(plan, `EtcdCluster "${name}"`);
        return plan;
    }

    constructor(name: string, args: EtcdClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:EtcdCluster", name, {}, opts);
        const plan = planOrFail(this, () => EtcdCluster.plan(name, args));
        const deployed = args.target.deploy(this, plan);
        this.hosts = deployed.members.map((m) => `${m.host}:${m.ports.client}`);
        this.clientEndpoints = pulumi.output(this.hosts.map((h) => `http://${h}`));
        this.publishedClientEndpoints = pulumi.output(deployed.members.flatMap((m) => (m.published.client ? [`http://${m.published.client.host}:${m.published.client.port}`] : [])));
        this.memberNames = pulumi.all(deployed.members.map((m) => m.resourceName));
        this.registerOutputs({
            clientEndpoints: this.clientEndpoints,
            publishedClientEndpoints: this.publishedClientEndpoints,
            memberNames: this.memberNames,
        });
    }
}
