import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ArgumentChecker, planOrFail } from "../core/errors";
import { DeployedMember, ImageName, MemberPlan, ServicePlan, Target } from "../core/plan";

/** Which Debian suite each image is built from (MySQL exists only in sid). */
const IMAGE_SUITE: Record<ImageName, "trixie" | "sid"> = { etcd: "trixie", postgres: "trixie", haproxy: "trixie", mysql: "sid" };

export interface DockerTargetArgs {
    /**
     * BASE_IMAGE for the Dockerfiles, per Debian suite. Machines without a registry pass locally imported images.
     * @default { trixie: "debian:trixie-slim", sid: "debian:sid-slim" }
     */
    readonly baseImages?: { readonly trixie?: string; readonly sid?: string };
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
}

export function validateDockerTargetArgs(name: string, args: DockerTargetArgs): void {
    const check = new ArgumentChecker(`DockerTarget "${name}"`);
    check.dnsLabel("name", name);
    if (args.namePrefix !== undefined) check.dnsLabel("namePrefix", args.namePrefix, 30);
    const subnet = args.subnet ?? "172.29.0.0/24";
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
    if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) < 16 || Number(m[5]) > 28) {
        check.fail("subnet", subnet, "it must be an IPv4 CIDR from /16 to /28", 'use a private range no other network on the host uses, e.g. "172.29.0.0/24"');
    }
    const publish = args.publishAddress ?? "127.0.0.1";
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(publish)) {
        check.fail("publishAddress", publish, "it must be an IPv4 address", 'use "127.0.0.1"');
    }
}

/**
 * Runs plans as containers on one Docker engine: one private network per stack, a named volume per member
 * volume, images built from images/ on first use. The only module that knows about @pulumi/docker.
 */
export class DockerTarget extends pulumi.ComponentResource implements Target {
    readonly kind = "docker" as const;
    readonly publishAddress: string;
    readonly clusterCidr: string;
    readonly namePrefix: string;
    readonly network: docker.Network;
    private readonly images = new Map<ImageName, docker.Image>();
    private readonly baseImages: { trixie: string; sid: string };
    private readonly imagesDir: string;

    constructor(
        private readonly resourceName: string,
        args: DockerTargetArgs = {},
        opts?: pulumi.ComponentResourceOptions,
    ) {
        super("hadb:docker:Target", resourceName, {}, opts);
        planOrFail(this, () => validateDockerTargetArgs(resourceName, args));
        this.namePrefix = args.namePrefix ?? `hadb-${pulumi.getStack()}`;
        this.publishAddress = args.publishAddress ?? "127.0.0.1";
        this.clusterCidr = args.subnet ?? "172.29.0.0/24";
        this.baseImages = { trixie: args.baseImages?.trixie ?? "debian:trixie-slim", sid: args.baseImages?.sid ?? "debian:sid-slim" };
        this.imagesDir = args.imagesDir ?? path.join(__dirname, "..", "..", "images");
        this.network = new docker.Network(
            `${resourceName}-network`,
            {
                name: this.namePrefix,
                ipamConfigs: [{ subnet: this.clusterCidr }],
                labels: this.labels({ "hadb.role": "network" }),
            },
            { parent: this },
        );
        this.registerOutputs({ network: this.network.name });
    }

    /** The image for a server, built once per stack however many components use it. */
    image(image: ImageName): docker.Image {
        let built = this.images.get(image);
        if (!built) {
            built = new docker.Image(
                `${this.resourceName}-${image}-image`,
                {
                    imageName: `hadb/${image}:local`,
                    build: {
                        context: path.join(this.imagesDir, image),
                        args: { BASE_IMAGE: this.baseImages[IMAGE_SUITE[image]] },
                    },
                    skipPush: true,
                },
                { parent: this },
            );
            this.images.set(image, built);
        }
        return built;
    }

    deploy(owner: pulumi.ComponentResource, plan: ServicePlan, dependsOn: pulumi.Resource[] = []): DeployedMember[] {
        const image = this.image(plan.image);
        return plan.members.map((member) => {
            const container = this.container(owner, plan, member, image, dependsOn);
            return {
                name: member.name,
                resourceName: container.name,
                host: member.name,
                ports: Object.fromEntries(member.ports.map((p) => [p.name, p.port])),
                publishedPorts: Object.fromEntries(member.ports.filter((p) => p.hostPort !== undefined).map((p) => [p.name, p.hostPort!])),
            };
        });
    }

    private container(owner: pulumi.ComponentResource, plan: ServicePlan, member: MemberPlan, image: docker.Image, dependsOn: pulumi.Resource[]): docker.Container {
        const labels = this.labels({ ...plan.labels, "hadb.member": member.name });
        const volumes = member.volumes.map((v) => {
            const volume = new docker.Volume(`${member.name}-${v.name}`, { name: `${this.namePrefix}-${member.name}-${v.name}`, labels }, { parent: owner });
            return { volumeName: volume.name, containerPath: v.mountPath };
        });
        const h = member.health;
        return new docker.Container(
            member.name,
            {
                name: `${this.namePrefix}-${member.name}`,
                image: image.repoDigest,
                hostname: member.name,
                envs: Object.entries(member.env).map(([k, v]) => pulumi.interpolate`${k}=${v}`),
                command: member.command ? [...member.command] : undefined,
                uploads: member.files.map((f) => ({ file: f.path, content: f.content, permissions: f.mode, owner: f.owner, group: f.owner })),
                ports: member.ports
                    .filter((p) => p.hostPort !== undefined)
                    .map((p) => ({ internal: p.port, external: p.hostPort, ip: this.publishAddress, protocol: "tcp" })),
                networksAdvanced: [{ name: this.network.name, aliases: [member.name] }],
                volumes,
                healthcheck: {
                    tests: ["CMD", ...h.command],
                    interval: `${h.intervalSeconds}s`,
                    timeout: `${h.timeoutSeconds}s`,
                    retries: h.retries,
                    startPeriod: `${h.startPeriodSeconds}s`,
                },
                restart: member.restart,
                labels,
            },
            { parent: owner, dependsOn },
        );
    }

    private labels(extra: Record<string, string>): docker.types.input.ContainerLabel[] {
        return Object.entries({ "hadb.stack": pulumi.getStack(), ...extra }).map(([label, value]) => ({ label, value }));
    }
}
