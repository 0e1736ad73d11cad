import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ArgumentChecker, planOrFail } from "../core/errors";
import { IMAGES, IMAGES_DIR, ImageName } from "../core/images";
import { NameRegistry } from "../core/names";
import { CONFIG_DIR, DeployedEndpoint, DeployedMember, DeployedService, MemberPlan, NameResolution, RESOLVER_OPTIONS, ServicePlan, Target } from "../core/plan";
import { memberContainer } from "./memberContainer";

/** BASE_IMAGE per Debian suite. */
export interface DockerBaseImages {
    /** @default "debian:trixie-slim" */
    readonly trixie?: string;
    /** @default "debian:sid-slim" */
    readonly sid?: string;
}

export interface DockerTargetArgs {
    /**
     * BASE_IMAGE for the Dockerfiles, per Debian suite. Machines without a registry pass locally imported images.
     * @default { trixie: "debian:trixie-slim", sid: "debian:sid-slim" }
     */
    readonly baseImages?: DockerBaseImages;
    /**
     * Prefix of every container, network and volume name, so stacks on one engine never collide.
     * @default "hadb-<stack>"
     */
    readonly namePrefix?: string;
    /**
     * Subnet of the cluster's own network. Access rules (pg_hba, allowlists) admit exactly this range.
     * @default "172.29.0.0/24"
     */
    readonly subnet?: string;
    /**
     * Host address published ports bind to. Keep 127.0.0.1 unless the host is itself protected.
     * @default "127.0.0.1"
     */
    readonly publishAddress?: string;
    /** Folder holding one Dockerfile folder per image. @default the package's images/ */
    readonly imagesDir?: string;
    /**
     * Delete data volumes with the stack (`pulumi destroy`) or when a member is removed. Only for throwaway stacks:
     * by default volumes outlive the stack and a later stack of the same name finds its data again.
     * @default false
     */
    readonly destroyData?: boolean;
}

const SUBNET_DEFAULT = "172.29.0.0/24";
/** Docker's embedded DNS, which follows a container to its new address after it is recreated. */
const DOCKER_DNS = "127.0.0.11:53";

export function validateDockerTargetArgs(name: string, args: DockerTargetArgs): void {
    const check = new ArgumentChecker(`DockerTarget "${name}"`);
    check.dnsLabel("name", name);
    if (args.namePrefix !== undefined) check.dnsLabel("namePrefix", args.namePrefix, 30);
    const subnet = args.subnet ?? SUBNET_DEFAULT;
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
    if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) < 16 || Number(m[5]) > 28) {
        check.fail("subnet", subnet, "it must be an IPv4 CIDR from /16 to /28", 'use a private range no other network on the host uses, e.g. "172.29.0.0/24"');
    }
    const publish = args.publishAddress ?? "127.0.0.1";
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(publish)) {
        check.fail("publishAddress", publish, "it must be an IPv4 address", 'use "127.0.0.1"');
    }
}

/** Seconds as Go's time.Duration prints them ("2s", "2m0s"), which is how the provider reads durations back. */
export function goDuration(seconds: number): string {
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    if (h) return `${h}h${m}m${s}s`;
    if (m) return `${m}m${s}s`;
    return `${s}s`;
}

interface DockerInternals {
    readonly name: string;
    readonly images: Map<ImageName, docker.Image>;
    readonly baseImages: Required<DockerBaseImages>;
    readonly imagesDir: string;
    readonly destroyData: boolean;
    readonly names: NameRegistry;
}
const DOCKER_INTERNALS = new WeakMap<DockerTarget, DockerInternals>();

/**
 * Runs plans as containers on one Docker engine: one private network per stack, a named volume per member
 * volume, images built from images/ on first use. The only module that knows about @pulumi/docker.
 *
 * Changes roll: each member's container waits for the one before it, and a container counts as created only
 * once its readiness check passes, so `pulumi up` replaces one member at a time and waits for it to be back in
 * service before touching the next. A replaced container is stopped gracefully (a leader hands over).
 */
export class DockerTarget extends pulumi.ComponentResource implements Target {
    readonly kind: string = "docker";
    readonly publishAddress: string;
    readonly clusterRanges: pulumi.Input<string[]>;
    readonly nameResolution: NameResolution = { nameservers: [DOCKER_DNS] };
    readonly namePrefix: string;
    readonly network: docker.Network;
    /** The provider every child uses: the one given in `opts`, or an explicit one for the local engine. */
    readonly provider: docker.Provider;

    constructor(name: string, args: DockerTargetArgs = {}, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:DockerTarget", name, {}, opts);
        planOrFail(this, () => validateDockerTargetArgs(name, args));
        this.namePrefix = args.namePrefix ?? `hadb-${pulumi.getStack()}`;
        this.publishAddress = args.publishAddress ?? "127.0.0.1";
        const subnet = args.subnet ?? SUBNET_DEFAULT;
        this.clusterRanges = [subnet];
        DOCKER_INTERNALS.set(this, {
            name,
            images: new Map(),
            baseImages: { trixie: args.baseImages?.trixie ?? "debian:trixie-slim", sid: args.baseImages?.sid ?? "debian:sid-slim" },
            imagesDir: args.imagesDir ?? IMAGES_DIR,
            destroyData: args.destroyData ?? false,
            names: new NameRegistry(),
        });
        this.provider = (this.getProvider("docker::Container") as docker.Provider | undefined) ?? new docker.Provider(`${name}-engine`, {}, { parent: this });
        this.network = new docker.Network(
            `${name}-network`,
            { name: this.namePrefix, ipamConfigs: [{ subnet }], labels: this.labels({ "hadb.role": "network" }) },
            this.childOptions(this),
        );
        this.registerOutputs({ network: this.network.name });
    }

    checkPlan(plan: ServicePlan, component: string): void {
        // Container names are `<prefix>-<member>`; Docker accepts any length, DNS aliases do not.
        for (const m of plan.members) new ArgumentChecker(component).dnsLabel("name", m.name, 63);
        // Two components must not share a member name: the containers would collide and the alias be shared.
        this.internals.names.claim(component, plan.members.map((m) => m.name), "member");
    }

    memberHost(_service: string, member: string): string {
        // Each container's network alias is its member name; the network is the stack's own.
        return member;
    }

    /** The image for a server, built once per stack however many components use it. */
    image(image: ImageName): docker.Image {
        const own = this.internals;
        let built = own.images.get(image);
        if (!built) {
            built = new docker.Image(
                `${own.name}-${image}-image`,
                {
                    imageName: `hadb/${image}:local`,
                    build: {
                        context: path.join(own.imagesDir, image),
                        args: { BASE_IMAGE: own.baseImages[IMAGES[image].suite] },
                        // The classic builder: the one hadb's tests build with, and the one that uses local base images offline.
                        builderVersion: "BuilderV1",
                    },
                    skipPush: true,
                },
                this.childOptions(this),
            );
            own.images.set(image, built);
        }
        return built;
    }

    deploy(owner: pulumi.ComponentResource, plan: ServicePlan, dependsOn: pulumi.Resource[] = []): DeployedService {
        const image = this.image(plan.image);
        let previous: docker.Container | undefined;
        const containers: docker.Container[] = [];
        const members = plan.members.map((member): DeployedMember => {
            // One member at a time: each waits for the previous one to be created and ready.
            previous = this.container(owner, plan, member, image, previous ? [previous] : dependsOn);
            containers.push(previous);
            return {
                name: member.name,
                resourceName: previous.name,
                host: this.memberHost(plan.name, member.name),
                ports: Object.fromEntries(plan.template.ports.map((p) => [p.name, p.port])),
                published: Object.fromEntries(Object.entries(member.hostPorts ?? {}).map(([port, hostPort]) => [port, { host: this.publishAddress, port: hostPort }])),
            };
        });
        const endpoints = Object.fromEntries(
            plan.endpoints.map((e): [string, pulumi.Output<DeployedEndpoint>] => [
                e.name,
                pulumi.output({
                    internal: members.map((m) => ({ host: m.host, port: e.port })),
                    external: members.flatMap((m) => (m.published[e.name] ? [m.published[e.name]] : [])),
                }),
            ]),
        );
        return { members, endpoints, resources: containers };
    }

    private container(owner: pulumi.ComponentResource, plan: ServicePlan, member: MemberPlan, image: docker.Image, dependsOn: pulumi.Resource[]): docker.Container {
        const c = memberContainer(plan, member, { "hadb.stack": pulumi.getStack() });
        const uid = String(c.uid);
        const volumes = c.volumes.map((v) => {
            // No labels: a changed label would replace the volume, and a replaced volume is a deleted one.
            const volume = new docker.Volume(
                `${member.name}-${v.name}`,
                { name: `${this.namePrefix}-${member.name}-${v.name}` },
                { ...this.childOptions(owner), retainOnDelete: !this.internals.destroyData },
            );
            return { volumeName: volume.name, containerPath: v.mountPath };
        });
        const ports = plan.template.ports;
        return new docker.Container(
            member.name,
            {
                name: `${this.namePrefix}-${member.name}`,
                image: image.repoDigest,
                hostname: member.name,
                envs: Object.entries(c.env).map(([k, v]) => pulumi.interpolate`${k}=${v}`),
                entrypoints: c.entrypoint ? [...c.entrypoint] : undefined,
                command: c.command ? [...c.command] : undefined,
                uploads: c.files.map((f) => ({ file: `${CONFIG_DIR}/${f.name}`, content: f.content, permissions: f.mode, owner: uid, group: uid })),
                ports: Object.entries(member.hostPorts ?? {}).map(([name, hostPort]) => ({
                    internal: ports.find((p) => p.name === name)!.port,
                    external: hostPort,
                    ip: this.publishAddress,
                    protocol: "tcp",
                })),
                networksAdvanced: [{ name: this.network.name, aliases: [member.name] }],
                dnsOpts: Object.entries(RESOLVER_OPTIONS).map(([k, v]) => `${k}:${v}`),
                volumes,
                healthcheck: {
                    tests: ["CMD", ...c.health.command],
                    interval: goDuration(c.health.intervalSeconds),
                    timeout: goDuration(c.health.timeoutSeconds),
                    retries: c.health.retries,
                    startPeriod: goDuration(c.health.startPeriodSeconds),
                },
                restart: "unless-stopped",
                stopTimeout: c.stopGraceSeconds,
                // Replacing or removing a member stops it gracefully first; without this the provider kills it.
                destroyGraceSeconds: c.stopGraceSeconds,
                // The rollout gate: `pulumi up` moves on to the next member only once this one is ready.
                wait: true,
                waitTimeout: 600,
                labels: Object.entries(c.labels).map(([label, value]) => ({ label, value })),
            },
            {
                ...this.childOptions(owner),
                dependsOn: [image, ...dependsOn],
                // A fixed name cannot exist twice: the old container goes before the new one is created.
                deleteBeforeReplace: true,
                // The provider stores a changed health check without applying it; a new container does.
                replaceOnChanges: ["healthcheck"],
                // Files the servers take online: a change reaches them through the configurator, not a new container.
                ignoreChanges: c.files.flatMap((f, i) => (f.appliedOnline ? [`uploads[${i}].content`] : [])),
            },
        );
    }

    /** State behind the public surface (component schemas see only public, plain properties). */
    private get internals(): DockerInternals {
        return DOCKER_INTERNALS.get(this)!;
    }

    /** Every child is declared under its component with this target's provider, never an inherited one. */
    private childOptions(parent: pulumi.Resource): pulumi.CustomResourceOptions {
        return { parent, provider: this.provider };
    }

    private labels(extra: Record<string, string>): docker.types.input.ContainerLabel[] {
        return Object.entries({ "hadb.stack": pulumi.getStack(), ...extra }).map(([label, value]) => ({ label, value }));
    }
}
