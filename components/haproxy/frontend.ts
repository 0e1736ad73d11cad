import * as pulumi from "@pulumi/pulumi";
import { planOrFail } from "../core/errors";
import { DeployedEndpoint, Target } from "../core/plan";
import { placeComponent, TargetSpec } from "../targets/targetSpec";
import { FRONTEND_ENDPOINTS, FrontendSettings, planFrontend, validateFrontendSettings } from "./plan";

export interface HaproxyFrontendArgs extends FrontendSettings {
    /**
     * Where the proxy instances run: a `DockerTarget` or a `KubernetesTarget` object (TypeScript), the one its
     * cluster runs on. Give exactly one of `target` and `targetSpec`.
     */
    readonly target?: Target;
    /**
     * Where the proxy instances run, as plain data (any language): the same spec its cluster was given, so both
     * share one target. (A TypeScript program may give `target` instead: exactly one of the two.)
     */
    readonly targetSpec?: TargetSpec;
}

/**
 * HAProxy in front of a cluster: a read-write port to the current primary and a read-only port to healthy
 * replicas, with role checks against the database's own agent and sessions cut when a server leaves a role.
 *
 * @example
 * const proxy = new HaproxyFrontend("pg-proxy", { target: local, backends: pg.backends, publish: true });
 */
export class HaproxyFrontend extends pulumi.ComponentResource {
    /** Container or Pod names of the instances. */
    readonly instanceNames: pulumi.Output<string[]>;
    /** Where clients reach the primary: in the network, and outside it when published or exposed. */
    readonly readWrite: pulumi.Output<DeployedEndpoint>;
    /** Where clients reach replicas within the lag bound (the primary when none qualifies). */
    readonly readOnly: pulumi.Output<DeployedEndpoint>;
    /**
     * Where clients reach the analytics replicas within the lag bound (else the read-only pool, else the primary).
     * Present only when the backends have analytics replicas (a ReadReplicaFleet's with `analytics`).
     */
    readonly analytics?: pulumi.Output<DeployedEndpoint>;
    /** HAProxy's statistics page; Prometheus metrics at `/metrics` on the same port. */
    readonly stats: pulumi.Output<DeployedEndpoint>;

    static validateArgs = validateFrontendSettings;

    constructor(name: string, args: HaproxyFrontendArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:HaproxyFrontend", name, {}, opts);
        const target = placeComponent(this, `HaproxyFrontend "${name}"`, args, opts);
        const plan = planOrFail(this, () => {
            const p = planFrontend(name, args, target.nameResolution);
            target.checkPlan(p, `HaproxyFrontend "${name}"`);
            return p;
        });
        const deployed = target.deploy(this, plan);
        this.instanceNames = pulumi.all(deployed.members.map((m) => m.resourceName));
        this.readWrite = deployed.endpoints[FRONTEND_ENDPOINTS.readWrite];
        this.readOnly = deployed.endpoints[FRONTEND_ENDPOINTS.readOnly];
        this.analytics = deployed.endpoints[FRONTEND_ENDPOINTS.analytics];
        this.stats = deployed.endpoints[FRONTEND_ENDPOINTS.stats];
        this.registerOutputs({ instanceNames: this.instanceNames, readWrite: this.readWrite, readOnly: this.readOnly, analytics: this.analytics, stats: this.stats });
    }
}
