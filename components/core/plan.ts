import * as pulumi from "@pulumi/pulumi";

/**
 * What a cluster needs, independent of where it runs. Components compute a ServicePlan with pure
 * functions; a target (Docker today; Kubernetes and AWS later) turns it into resources. Values are
 * `pulumi.Input` only where a secret or another resource's output must flow through.
 */
export interface ServicePlan {
    /** The component's name; every member name starts with it. */
    readonly name: string;
    /** Which server image the members run: a folder under images/ for the Docker target. */
    readonly image: ImageName;
    readonly members: readonly MemberPlan[];
    /** Labels every resource of the service carries (cluster name, role). */
    readonly labels: Readonly<Record<string, string>>;
}

export type ImageName = "etcd" | "postgres" | "haproxy" | "mysql";

/** One server with a stable identity: the same name is its hostname, DNS alias and Pod name. */
export interface MemberPlan {
    readonly name: string;
    readonly env: Readonly<Record<string, pulumi.Input<string>>>;
    /** Overrides the image's default command (its CMD); the image's entrypoint is kept. */
    readonly command?: readonly string[];
    readonly files: readonly FilePlan[];
    readonly ports: readonly PortPlan[];
    readonly volumes: readonly VolumePlan[];
    readonly health: HealthPlan;
    /** Restart the server when it exits on its own; a deliberate stop is respected. */
    readonly restart: "unless-stopped" | "no";
}

export interface FilePlan {
    readonly path: string;
    readonly content: pulumi.Input<string>;
    /** Octal permission string, e.g. "0600" for files holding secrets. */
    readonly mode: string;
    readonly owner?: string;
}

export interface PortPlan {
    /** What the port is for ("client", "peer", "api"); targets use it for Service port names. */
    readonly name: string;
    readonly port: number;
    /** Publish on the host at this port (Docker dev only; other targets expose via services). */
    readonly hostPort?: number;
}

export interface VolumePlan {
    readonly name: string;
    readonly mountPath: string;
}

export interface HealthPlan {
    /** Command run inside the member; exit code 0 means healthy. */
    readonly command: readonly string[];
    readonly intervalSeconds: number;
    readonly timeoutSeconds: number;
    readonly retries: number;
    readonly startPeriodSeconds: number;
}

/** Where a deployed member can be reached from inside the cluster's network and, when published, from the host. */
export interface DeployedMember {
    readonly name: string;
    /** Container or Pod name, as a user sees it in `docker ps` or `kubectl get pods`. */
    readonly resourceName: pulumi.Output<string>;
    readonly host: string;
    /** The member's own ports by name, as seen from inside the network. */
    readonly ports: Readonly<Record<string, number>>;
    readonly publishedPorts: Readonly<Record<string, number>>;
}

/** A place that can run a ServicePlan. */
export interface Target {
    readonly kind: "docker";
    /** Address published ports are bound to on the host (127.0.0.1 for dev). */
    readonly publishAddress: string;
    /** The network range members see each other from: what access rules (pg_hba, allowlists) admit. */
    readonly clusterCidr: string;
    /** Declares the plan's resources under `owner`, created only after everything in `dependsOn`. */
    deploy(owner: pulumi.ComponentResource, plan: ServicePlan, dependsOn?: pulumi.Resource[]): DeployedMember[];
}
