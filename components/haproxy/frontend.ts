import * as pulumi from "@pulumi/pulumi";
import { planOrFail } from "../core/errors";
import { Target } from "../core/plan";
import { FrontendSettings, planFrontend, validateFrontendSettings } from "./plan";

export interface HaproxyFrontendArgs extends FrontendSettings {
    readonly target: Target;
}

/**
 * HAProxy in front of a cluster: a read-write port to the current primary and a read-only port to healthy
 * replicas, with role checks against the database's own agent and sessions cut when a server leaves a role.
 *
 * @example
 * const proxy = new HaproxyFrontend("pg-proxy", { target: local, mode: "postgres", backends: pg.backends, publish: true });
 */
export class HaproxyFrontend extends pulumi.ComponentResource {
    readonly instanceNames: pulumi.Output<string[]>;
    /** Host port per endpoint of instance 0, when published. */
    readonly publishedPorts: Readonly<Record<string, number>>;

    static validateArgs = validateFrontendSettings;

    constructor(name: string, args: HaproxyFrontendArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:haproxy:Frontend", name, {}, opts);
        const plan = planOrFail(this, () => planFrontend(name, args));
        const deployed = args.target.deploy(this, plan);
        this.instanceNames = pulumi.all(deployed.map((m) => m.resourceName));
        this.publishedPorts = deployed[0].publishedPorts;
        this.registerOutputs({ instanceNames: this.instanceNames });
    }
}
