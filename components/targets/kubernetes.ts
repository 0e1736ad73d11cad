import * as path from "path";
import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ArgumentChecker, planOrFail } from "../core/errors";
import { IMAGES, IMAGES_DIR, ImageName } from "../core/images";
import { NameRegistry } from "../core/names";
import { DeployedEndpoint, DeployedMember, DeployedService, NameResolution, ServicePlan, Target } from "../core/plan";
import { DockerBaseImages } from "./docker";
import {
    endpointServiceName,
    endpointServiceSpec,
    FILE_GROUPS,
    fileData,
    fileObjectName,
    headlessServiceSpec,
    KubernetesPlacement,
    memberDnsName,
    networkPolicySpec,
    objectLabels,
    podDisruptionBudgetSpec,
    podName,
    serviceName,
    statefulSetSpec,
    validatePlacement,
} from "./kubernetesObjects";

/** Image references per server, when they are already in a registry the cluster pulls from. */
export interface KubernetesImages {
    readonly etcd?: string;
    readonly postgres?: string;
    readonly haproxy?: string;
    readonly mysql?: string;
}

/** How the proxies' endpoints are exposed: inside the cluster only, or through the cloud's load balancer. */
export const EndpointServiceType = { ClusterIP: "ClusterIP", LoadBalancer: "LoadBalancer" } as const;
export type EndpointServiceType = (typeof EndpointServiceType)[keyof typeof EndpointServiceType];

export interface KubernetesTargetArgs {
    /** Namespace every object goes into. @default "hadb" */
    readonly namespace?: string;
    /** Create the namespace (with the "restricted" Pod Security level enforced). @default true */
    readonly createNamespace?: boolean;
    /** kubeconfig context of the provider this target creates when none is passed in `opts`. @default the current context */
    readonly context?: string;
    /** Cluster DNS domain. @default "cluster.local" */
    readonly clusterDomain?: string;
    /** Prefix of every object name, for several stacks in one namespace. @default "" */
    readonly namePrefix?: string;
    /** StorageClass of the members' volumes. @default the cluster's default class */
    readonly storageClass?: string;
    /**
     * Registry to build and push hadb's images to (`registry.example.com/hadb`); Pods then run them by digest.
     * @default none: `images`, or `hadb/<image>:local` already present on the nodes
     */
    readonly registry?: string;
    /** BASE_IMAGE per Debian suite when building for `registry`. @default the public Debian images */
    readonly baseImages?: DockerBaseImages;
    /** Image references to run instead of building (they win over `registry`). */
    readonly images?: KubernetesImages;
    /** Secrets in the namespace for pulling from a private registry. */
    readonly imagePullSecrets?: string[];
    /**
     * The Pod network's ranges: what pg_hba and Group Replication's allowlist admit. NetworkPolicy narrows
     * access to the cluster's own Pods on top.
     * @default ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
     */
    readonly podCidrs?: string[];
    /** Labels client Pods carry to be let through to client ports. @default { "hadb.io/client": "true" } */
    readonly clientSelector?: Record<string, string>;
    /** Service type of the proxies' endpoints. @default "ClusterIP" */
    readonly frontendServiceType?: EndpointServiceType;
    /**
     * Ranges clients outside the cluster connect from: what a LoadBalancer endpoint admits (its
     * loadBalancerSourceRanges and NetworkPolicy ipBlocks). Required with `frontendServiceType: "LoadBalancer"`.
     */
    readonly clientCidrs?: string[];
    /** Never schedule two members of a cluster on one node; false makes it a preference for small clusters. @default true */
    readonly requireHostSpread?: boolean;
}

const DEFAULT_POD_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

export function validateKubernetesTargetArgs(name: string, args: KubernetesTargetArgs): void {
    const check = new ArgumentChecker(`KubernetesTarget "${name}"`);
    check.dnsLabel("name", name);
    check.dnsLabel("namespace", args.namespace ?? "hadb", 63);
    if (args.namePrefix) {
        if (!/^[a-z][a-z0-9-]{0,19}$/.test(args.namePrefix)) check.fail("namePrefix", args.namePrefix, "it must be at most 20 lowercase letters, digits and '-', starting with a letter", 'use e.g. "shop-"');
    }
    check.oneOf("frontendServiceType", args.frontendServiceType ?? "ClusterIP", ["ClusterIP", "LoadBalancer"]);
    for (const cidr of args.podCidrs ?? DEFAULT_POD_CIDRS) {
        if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr)) check.fail("podCidrs", cidr, "it must be an IPv4 CIDR", 'use the cluster\'s Pod ranges, e.g. "10.244.0.0/16"');
    }
    for (const cidr of args.clientCidrs ?? []) {
        if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr) || cidr.endsWith("/0")) {
            check.fail("clientCidrs", cidr, "it must be an IPv4 CIDR narrower than the whole Internet", 'use the ranges your clients connect from, e.g. "203.0.113.0/24"');
        }
    }
    if (args.frontendServiceType === "LoadBalancer" && !args.clientCidrs?.length) {
        check.fail("clientCidrs", args.clientCidrs ?? [], "a LoadBalancer endpoint admits clients from outside the cluster, and none are named", "list the ranges your clients connect from");
    }
    if (args.registry !== undefined && !/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/.test(args.registry)) {
        check.fail("registry", args.registry, "it must be a registry host with an optional path", 'use e.g. "registry.example.com/hadb"');
    }
}

interface KubernetesInternals {
    readonly name: string;
    readonly args: KubernetesTargetArgs;
    readonly placement: Omit<KubernetesPlacement, "image">;
    readonly images: Map<ImageName, pulumi.Input<string>>;
    readonly namespace?: k8s.core.v1.Namespace;
    readonly names: NameRegistry;
}
const K8S_INTERNALS = new WeakMap<KubernetesTarget, KubernetesInternals>();

/**
 * Runs plans on Kubernetes: a StatefulSet per plan (Pods start in parallel, each taking its member identity
 * from its own name) behind a headless Service that publishes not-ready addresses, so peers resolve each
 * other from the first second; the plan's files in a ConfigMap and a Secret, copied into place by an init
 * container; a volume claim per member volume, kept when the StatefulSet is deleted or scaled down; a
 * PodDisruptionBudget and a NetworkPolicy per cluster; a Service per endpoint. Pods run under the
 * "restricted" Pod Security level. etcd stays Patroni's DCS: no RBAC, no dependence on the API server.
 */
export class KubernetesTarget extends pulumi.ComponentResource implements Target {
    readonly kind: string = "kubernetes";
    readonly namespace: string;
    readonly clusterRanges: pulumi.Input<string[]>;
    /** HAProxy re-resolves members through the Pod's own resolvers (cluster DNS). */
    readonly nameResolution: NameResolution = { nameservers: [] };
    /** The provider every child uses: the one given in `opts`, or one for `context`. */
    readonly provider: k8s.Provider;

    constructor(name: string, args: KubernetesTargetArgs = {}, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:KubernetesTarget", name, {}, opts);
        planOrFail(this, () => validateKubernetesTargetArgs(name, args));
        this.namespace = args.namespace ?? "hadb";
        this.clusterRanges = args.podCidrs ?? DEFAULT_POD_CIDRS;
        const placement = {
            namespace: this.namespace,
            clusterDomain: args.clusterDomain ?? "cluster.local",
            namePrefix: args.namePrefix ?? "",
            imagePullSecrets: args.imagePullSecrets ?? [],
            storageClass: args.storageClass,
            clientSelector: args.clientSelector ?? { "hadb.io/client": "true" },
            requireHostSpread: args.requireHostSpread ?? true,
            endpointServiceType: args.frontendServiceType ?? "ClusterIP",
            clientCidrs: args.clientCidrs ?? [],
        };
        this.provider =
            (this.getProvider("kubernetes:core/v1:Namespace") as k8s.Provider | undefined) ??
            new k8s.Provider(`${name}-cluster`, { context: args.context }, { parent: this });
        const namespace =
            (args.createNamespace ?? true)
                ? new k8s.core.v1.Namespace(
                      `${name}-namespace`,
                {
                    metadata: {
                        name: this.namespace,
                        labels: { "pod-security.kubernetes.io/enforce": "restricted", "app.kubernetes.io/part-of": "hadb" },
                    },
                },
                      { parent: this, provider: this.provider },
                  )
                : undefined;
        K8S_INTERNALS.set(this, { name, args, placement, images: new Map(), namespace, names: new NameRegistry() });
        this.registerOutputs({ namespace: this.namespace });
    }

    memberHost(service: string, member: string): string {
        return memberDnsName({ ...this.internals.placement, image: "" }, service, member);
    }

    /** The image reference Pods run: given, built and pushed to `registry`, or the local tag. */
    image(image: ImageName): pulumi.Input<string> {
        const { args, images, name } = this.internals;
        let ref = images.get(image);
        if (ref === undefined) {
            const given = args.images?.[image];
            if (given) ref = given;
            else if (args.registry) {
                const base = { trixie: args.baseImages?.trixie ?? "debian:trixie-slim", sid: args.baseImages?.sid ?? "debian:sid-slim" };
                const built = new docker.Image(
                    `${name}-${image}-image`,
                    {
                        imageName: `${args.registry}/hadb-${image}:latest`,
                        build: { context: path.join(IMAGES_DIR, image), args: { BASE_IMAGE: base[IMAGES[image].suite] }, builderVersion: "BuilderV1", platform: "linux/amd64" },
                    },
                    { parent: this },
                );
                // By digest: a Pod replaced next month runs the same bits.
                ref = built.repoDigest;
            } else ref = `hadb/${image}:local`;
            images.set(image, ref);
        }
        return ref;
    }

    checkPlan(plan: ServicePlan, component: string): void {
        const placement = { ...this.internals.placement, image: "" };
        validatePlacement(placement, plan, component);
        // One name per StatefulSet, headless Service, NetworkPolicy and PDB; one per endpoint Service.
        this.internals.names.claim(component, [serviceName(placement, plan.name), ...plan.endpoints.map((e) => endpointServiceName(placement, plan.name, e.name))], "object");
    }

    deploy(owner: pulumi.ComponentResource, plan: ServicePlan, dependsOn: pulumi.Resource[] = []): DeployedService {
        const placement: KubernetesPlacement = { ...this.internals.placement, image: this.image(plan.image) };
        const namespace = this.internals.namespace;
        const name = serviceName(placement, plan.name);
        const labels = objectLabels(placement, plan);
        const options = (extra: pulumi.Resource[] = []): pulumi.CustomResourceOptions => ({
            parent: owner,
            provider: this.provider,
            dependsOn: [...(namespace ? [namespace] : []), ...dependsOn, ...extra],
        });
        const metadata = { namespace: this.namespace, labels };
        // Auto-named unless online: new content creates a new object under a new name, so the Pod template changes
        // and the StatefulSet rolls its Pods one at a time. Online files keep their object's name: no roll.
        const fileObjects = FILE_GROUPS.map((g) => {
            const data = fileData(placement, plan, g);
            if (!Object.keys(data).length) return undefined;
            const resourceName = `${plan.name}-${g.online ? "online-" : ""}${g.secret ? "secret-files" : "files"}`;
            const meta = { ...metadata, name: fileObjectName(placement, plan, g) };
            const object = g.secret
                ? new k8s.core.v1.Secret(resourceName, { metadata: meta, type: "Opaque", stringData: data }, options())
                : new k8s.core.v1.ConfigMap(resourceName, { metadata: meta, data }, options());
            return object.metadata.name;
        });
        const headless = new k8s.core.v1.Service(`${plan.name}-members`, { metadata: { ...metadata, name }, spec: headlessServiceSpec(placement, plan) }, options());
        const statefulSet = new k8s.apps.v1.StatefulSet(
            plan.name,
            {
                metadata: { ...metadata, name },
                spec: statefulSetSpec(placement, plan, fileObjects),
            },
            options([headless]),
        );
        if (plan.members.length >= 2) {
            new k8s.policy.v1.PodDisruptionBudget(`${plan.name}-disruption`, { metadata: { ...metadata, name }, spec: podDisruptionBudgetSpec(placement, plan) }, options());
        }
        new k8s.networking.v1.NetworkPolicy(`${plan.name}-ingress`, { metadata: { ...metadata, name }, spec: networkPolicySpec(placement, plan) }, options());
        const endpoints = Object.fromEntries(
            plan.endpoints.map((e): [string, pulumi.Output<DeployedEndpoint>] => {
                const svcName = endpointServiceName(placement, plan.name, e.name);
                const service = new k8s.core.v1.Service(
                    `${plan.name}-${e.name}`,
                    { metadata: { ...metadata, name: svcName }, spec: endpointServiceSpec(placement, plan, e.name, e.port) },
                    options(),
                );
                const internal = [{ host: `${svcName}.${this.namespace}.svc.${placement.clusterDomain}`, port: e.port }];
                const external =
                    placement.endpointServiceType === "LoadBalancer"
                        ? service.status.loadBalancer.ingress.apply((ingress) => (ingress ?? []).map((i) => ({ host: i.hostname ?? i.ip, port: e.port })))
                        : pulumi.output([]);
                return [e.name, pulumi.all([internal, external]).apply(([i, x]) => ({ internal: i, external: x }))];
            }),
        );
        const members = plan.members.map(
            (m): DeployedMember => ({
                name: m.name,
                resourceName: statefulSet.metadata.name.apply(() => podName(placement, m.name)),
                host: this.memberHost(plan.name, m.name),
                ports: Object.fromEntries(plan.template.ports.map((p) => [p.name, p.port])),
                published: {},
            }),
        );
        return { members, endpoints, resources: [statefulSet] };
    }

    /** State behind the public surface (component schemas see only public, plain properties). */
    private get internals(): KubernetesInternals {
        return K8S_INTERNALS.get(this)!;
    }
}
