import * as pulumi from "@pulumi/pulumi";
import { planOrFail } from "../core/errors";
import { ServicePlan, Target } from "../core/plan";
import { givenTarget, placeComponent, TargetSpec } from "../targets/targetSpec";
import { EtcdSettings, planEtcdCluster, validateEtcdSettings } from "./plan";

export interface EtcdClusterArgs extends EtcdSettings {
    /**
     * Where the members run: a `DockerTarget` or a `KubernetesTarget` object (TypeScript). Give exactly one of
     * `target` and `targetSpec`.
     */
    readonly target?: Target;
    /**
     * Where the members run, as plain data (any language): the target is declared once and shared by every
     * component of the deployment given the same spec. (A TypeScript program may give `target` instead: exactly
     * one of the two.)
     */
    readonly targetSpec?: TargetSpec;
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
        const target = givenTarget(`EtcdCluster "${name}"`, args);
        const plan = planEtcdCluster(name, args, { stack: pulumi.getStack(), memberHost: (m) => target.memberHost(name, m) });
        target.checkPlan(plan, `EtcdCluster "${name}"`);
        return plan;
    }

    constructor(name: string, args: EtcdClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:EtcdCluster", name, {}, opts);
        const target = placeComponent(this, `EtcdCluster "${name}"`, args, opts);
        const plan = planOrFail(this, () => EtcdCluster.plan(name, { ...args, target, targetSpec: undefined }));
        const deployed = target.deploy(this, plan);
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
