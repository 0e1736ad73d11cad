import * as pulumi from "@pulumi/pulumi";
import { ImageName } from "./images";

/**
 * The target contract. A component computes a `ServicePlan` with pure functions; a target (Docker,
 * Kubernetes, AWS) turns it into resources. A plan says what every member shares (`template`) apart from
 * what differs per member (`members[i].files`), so a StatefulSet's single pod template, per-VM user data
 * and per-container uploads can all carry it. Values are `pulumi.Input` only where a secret or another
 * resource's output must flow through.
 */
export interface ServicePlan {
    /** The component's name; every member name starts with it (`pg` → `pg-0`, `pg-1`). */
    readonly name: string;
    /** What the service is: labels, access rules and name prefixes derive from it. */
    readonly component: ComponentKind;
    /** Which server image the members run (see images/catalogue.json). */
    readonly image: ImageName;
    readonly template: MemberTemplate;
    readonly members: readonly MemberPlan[];
    /** Client-facing endpoints of the whole service (a proxy's read-write port); targets expose them. */
    readonly endpoints: readonly EndpointPlan[];
    /** How members are kept apart, so that one host or zone failure takes at most one of them. */
    readonly spread: SpreadPolicy;
    /** How many members may be down at once for voluntary disruptions (drains, rollouts). */
    readonly maxUnavailable: number;
    /**
     * The cluster this service's members replicate from when they are not its members (a read-replica fleet):
     * that cluster's ports allowing `replicas` admit them.
     */
    readonly replicaOf?: string;
}

/** What a service is. A configurator keeps a running cluster equal to its declaration (one per cluster). */
export type ComponentKind = "etcd" | "postgres" | "mysql" | "haproxy" | "configurator";

/** What every member of a service shares. */
export interface MemberTemplate {
    /** Environment shared by every member. Per-member values belong in per-member files. */
    readonly env: Readonly<Record<string, pulumi.Input<string>>>;
    /** A program of the image to run instead of its entrypoint. */
    readonly entrypoint?: readonly string[];
    /** Arguments for the entrypoint, replacing the image's default ones. */
    readonly args?: readonly string[];
    /** Files every member gets, the same content for all. */
    readonly files: readonly FilePlan[];
    readonly ports: readonly PortPlan[];
    readonly volumes: readonly VolumePlan[];
    readonly checks: MemberChecks;
    readonly compute: ComputePlan;
    /** Seconds a member gets to stop cleanly (a leader hands over) before it is killed. */
    readonly stopGraceSeconds: number;
}

/** One member's identity and what only it has. */
export interface MemberPlan {
    /** Stable member name (`pg-1`): the database's own name for it. Targets may prefix resource names. */
    readonly name: string;
    readonly ordinal: number;
    /** Files only this member gets (its own patroni.yml, my.cnf); same paths for every member. */
    readonly files: readonly FilePlan[];
    /** Host ports to publish this member's ports on, by port name. Only a target with a host (Docker) uses them. */
    readonly hostPorts?: Readonly<Record<string, number>>;
}

/** Every file a plan places lives in this directory, which the image leaves empty for it. */
export const CONFIG_DIR = "/etc/hadb";

export interface FilePlan {
    /** File name inside CONFIG_DIR (no directories). */
    readonly name: string;
    readonly content: pulumi.Input<string>;
    /** Octal permission string, e.g. "0600". Files are owned by the image's user. */
    readonly mode: string;
    /** Holds a password or key: a target keeps it in its secret store (Secret, SSM), never in plain config. */
    readonly secret: boolean;
    /**
     * The servers read this file only when they first start; later changes reach them online, through the
     * cluster's configurator. A target must not replace or restart a member because this file changed.
     */
    readonly appliedOnline?: boolean;
}

/** Who may connect to a port. Targets with network policy (Kubernetes, AWS) turn this into rules. */
export type PortAccess = "members" | "replicas" | "source" | "clients" | ComponentKind;

export interface PortPlan {
    /** An IANA service name (lowercase, at most 15 characters): Kubernetes uses it as the port name. */
    readonly name: string;
    readonly port: number;
    /**
     * `members`: the service's own members; `replicas`: members of services that replicate from it (`replicaOf`);
     * `source`: members of the cluster this service replicates from (none when it has no `replicaOf`);
     * `clients`: the target's named clients; a component: its members.
     */
    readonly allow: readonly PortAccess[];
}

export interface EndpointPlan {
    /** IANA service name of the endpoint (`read-write`); also the name of the member port it forwards to. */
    readonly name: string;
    readonly port: number;
}

export interface VolumePlan {
    readonly name: string;
    readonly mountPath: string;
    /** Requested capacity; a target's args may raise it. */
    readonly sizeGiB: number;
}

/** Three separate checks, because each failure means something else. */
export interface MemberChecks {
    /** Passes once the member finished starting; until then the others are not asked. Allow long rejoins. */
    readonly startup?: CheckPlan;
    /** Passes while the member is in service. Rollouts wait for it before touching the next member. */
    readonly readiness: CheckPlan;
    /** Fails only when the process is wedged; a target restarts the member then. Never tests role or group state. */
    readonly liveness?: CheckPlan;
}

export interface CheckPlan {
    /** An HTTP GET on the member's own port answering 2xx, or a command exiting 0. Exactly one. */
    readonly http?: { readonly port: number; readonly path: string };
    readonly command?: readonly string[];
    readonly periodSeconds: number;
    readonly timeoutSeconds: number;
    /** Consecutive failures before the check counts as failed. */
    readonly failureThreshold: number;
}

export interface ComputePlan {
    readonly cpuMillis: { readonly request: number; readonly limit?: number };
    readonly memoryMiB: { readonly request: number; readonly limit: number };
}

/** `required`: never two members on one host (or zone); `preferred`: only when there is no other choice. */
export interface SpreadPolicy {
    readonly hosts: "required" | "preferred";
    readonly zones: "required" | "preferred";
}

/** An address a client or a peer connects to. */
export interface ServiceAddress {
    readonly host: string;
    readonly port: number;
}

/** Where an endpoint can be reached: from inside the cluster's network, and from outside when exposed. */
export interface DeployedEndpoint {
    /** In-network addresses: a Service name, a member alias, a load balancer. */
    readonly internal: ServiceAddress[];
    /** Addresses outside the network: ports published on 127.0.0.1, a LoadBalancer. Empty when not exposed. */
    readonly external: ServiceAddress[];
}

/** Where a deployed member can be reached from inside the cluster's network. */
export interface DeployedMember {
    readonly name: string;
    /** Container, Pod or instance name, as a user sees it in `docker ps` or `kubectl get pods`. */
    readonly resourceName: pulumi.Output<string>;
    /** The address peers and proxies use; decided by the target before any configuration was rendered. */
    readonly host: string;
    /** The member's own ports by name. */
    readonly ports: Readonly<Record<string, number>>;
    /** Where its ports are published outside the network, by port name (Docker's host ports). */
    readonly published: Readonly<Record<string, ServiceAddress>>;
}

export interface DeployedService {
    readonly members: readonly DeployedMember[];
    /** What to depend on to start after every member is in service (containers, a StatefulSet). */
    readonly resources: readonly pulumi.Resource[];
    /** Every endpoint of the plan, by name. */
    readonly endpoints: Readonly<Record<string, pulumi.Output<DeployedEndpoint>>>;
}

/** How proxies find members again after a member is recreated with a new address. */
export interface NameResolution {
    /** DNS servers to ask (`host:port`); empty means the resolvers in the member's /etc/resolv.conf. */
    readonly nameservers: string[];
}

/**
 * A place that can run a ServicePlan: the Docker engine, a Kubernetes namespace, an AWS VPC. Everything a
 * component needs from it is here, asked before any configuration is rendered.
 */
export interface Target {
    /** Which kind of target this is ("docker", "kubernetes", "aws"); for messages and labels. */
    readonly kind: string;
    /** The address member `member` of service `service` is reached at by its peers and proxies. */
    memberHost(service: string, member: string): string;
    /** The network ranges members and proxies connect from: what access rules (pg_hba, allowlists) admit. */
    readonly clusterRanges: pulumi.Input<string[]>;
    /** How proxies re-resolve member names; undefined when member addresses never change. */
    readonly nameResolution?: NameResolution;
    /**
     * Throws an InvalidArgumentError when this target cannot run the plan (a name too long for it, say). Pure:
     * components call it before they declare any child, so nothing is half-created.
     */
    checkPlan(plan: ServicePlan, component: string): void;
    /** Declares the plan's resources under `owner`, created only after everything in `dependsOn`. */
    deploy(owner: pulumi.ComponentResource, plan: ServicePlan, dependsOn?: pulumi.Resource[]): DeployedService;
}

/**
 * resolv.conf options for every member: a lookup gives up after 1 s and one retry instead of the resolver's
 * 5 s × 2. Members address each other by name, and a member cut off from the network must notice within its
 * failure bounds: with the defaults an isolated Patroni leader spent 10 s per etcd host on a name it could not
 * resolve and held its role about 50 s, twice ttl + retry_timeout. Targets apply them (Docker `dnsOpts`,
 * Kubernetes `dnsConfig`).
 */
export const RESOLVER_OPTIONS: Readonly<Record<string, string>> = { timeout: "1", attempts: "2" };

/** Member names are the service name plus an ordinal, like a StatefulSet's Pods. */
export function memberNames(service: string, members: number): string[] {
    return Array.from({ length: members }, (_, i) => `${service}-${i}`);
}

/** A plan's files for one member: the shared ones, then its own. */
export function memberFiles(plan: ServicePlan, member: MemberPlan): readonly FilePlan[] {
    return [...plan.template.files, ...member.files];
}

/** An HTTP check on the member's own port. */
export function httpCheck(port: number, path: string, periodSeconds: number, failureThreshold: number, timeoutSeconds = 2): CheckPlan {
    return { http: { port, path }, periodSeconds, timeoutSeconds, failureThreshold };
}
