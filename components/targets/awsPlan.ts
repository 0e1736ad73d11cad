import * as crypto from "crypto";
import { ArgumentChecker } from "../core/errors";
import { ComponentKind, PortAccess, ServicePlan } from "../core/plan";
import { DockerBaseImages } from "./docker";

/** A private subnet members may be placed in. Plain data: every address is computed from it at preview. */
export interface AwsSubnet {
    /** `subnet-…` */
    readonly id: string;
    /** The subnet's IPv4 CIDR, e.g. "10.0.1.0/24". */
    readonly cidr: string;
    /** Its availability zone, e.g. "eu-west-1a". */
    readonly zone: string;
}

/** Instance types per kind of service. */
export interface AwsInstanceTypes {
    /** Instance type of etcd members. @default "t3.small" */
    readonly etcd?: string;
    /** Instance type of postgres members. @default "m6i.large" */
    readonly postgres?: string;
    /** Instance type of mysql members. @default "m6i.large" */
    readonly mysql?: string;
    /** Instance type of haproxy members. @default "t3.small" */
    readonly haproxy?: string;
    /** Instance type of configurator members. @default "t3.micro" */
    readonly configurator?: string;
}

/** Image references per server, when they are already in a registry the instances pull from. */
export interface AwsImages {
    /** The etcd image, e.g. "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hadb/etcd@sha256:…". */
    readonly etcd?: string;
    /** The PostgreSQL (Patroni) image. */
    readonly postgres?: string;
    /** The HAProxy image. */
    readonly haproxy?: string;
    /** The MySQL (member supervisor) image. */
    readonly mysql?: string;
}

/** The EBS volumes holding members' data. */
export interface AwsVolumeSettings {
    /** "gp3" or "io2". @default "gp3" */
    readonly type?: string;
    /** Provisioned IOPS: gp3 3000–16000 (default 3000), io2 100–256000 (required). */
    readonly iops?: number;
    /** gp3 throughput in MiB/s, 125–1000. @default 125 */
    readonly throughputMiBps?: number;
    /** Raise every volume to at least this size; a plan's own size wins when larger. @default 20 */
    readonly minSizeGiB?: number;
}

export interface AwsTargetArgs {
    /** Region of the provider this target creates when none is passed in `opts`. @default the provider's configured region */
    readonly region?: string;
    /** The VPC the subnets belong to. */
    readonly vpcId: string;
    /**
     * Private subnets, one per availability zone; member *i* of a service goes to subnet *i mod n*, so a
     * cluster of three in three zones survives the loss of any zone. At least three distinct zones.
     */
    readonly subnets: AwsSubnet[];
    /** Accept subnets in fewer than three zones (development accounts): one zone's loss may then stop a cluster. @default false */
    readonly allowSingleZone?: boolean;
    /** Instance types per kind of service. @default m6i.large for databases, t3.small for etcd and HAProxy, t3.micro for configurators */
    readonly instanceTypes?: AwsInstanceTypes;
    /** The data volumes: type, IOPS, throughput, minimum size. @default gp3, 3000 IOPS, 125 MiB/s, at least 20 GiB */
    readonly volumes?: AwsVolumeSettings;
    /** Security groups of the applications: admitted to the proxies' endpoints and the servers' client ports. */
    readonly clientSecurityGroupIds?: string[];
    /** Ranges applications connect from (peered VPCs, VPN): admitted like `clientSecurityGroupIds`. Never 0.0.0.0/0. */
    readonly clientCidrs?: string[];
    /** Image references to run instead of building hadb's images into an ECR repository the target creates. */
    readonly images?: AwsImages;
    /** BASE_IMAGE per Debian suite when building the images. @default the public Debian images */
    readonly baseImages?: DockerBaseImages;
    /** Prefix of every name (instances, groups, parameters, load balancers), at most 12 characters. @default "hadb-<stack>" cut to 12 */
    readonly namePrefix?: string;
    /** First host number used for members in each subnet (AWS reserves the first four). @default 16 */
    readonly firstHostAddress?: number;
    /** Fixed addresses by member name (`{ "pg-0": "10.0.1.40" }`), overriding the computed ones. */
    readonly addresses?: Record<string, string>;
    /** The AMI every instance boots. @default the newest Debian 13 (trixie) amd64 AMI, looked up once and then kept */
    readonly amiId?: string;
    /** KMS key for EBS volumes and SecureString parameters. @default the account's AWS-managed keys */
    readonly kmsKeyId?: string;
    /** Delete data volumes with the stack or a removed member. @default false: volumes are retained */
    readonly destroyData?: boolean;
    /** TCP idle timeout of the load balancers' listeners, above any client's keepalive interval (60–6000). @default 1800 */
    readonly idleTimeoutSeconds?: number;
}

export const AWS_DEFAULT_INSTANCE_TYPES: Required<AwsInstanceTypes> = {
    etcd: "t3.small",
    postgres: "m6i.large",
    mysql: "m6i.large",
    haproxy: "t3.small",
    configurator: "t3.micro",
};
export const AWS_MIN_VOLUME_GIB = 20;
export const AWS_FIRST_HOST_ADDRESS = 16;
export const AWS_IDLE_TIMEOUT_SECONDS = 1800;
/** Debian's own account publishes its cloud images; `debian-13-amd64-*` are trixie's. */
export const DEBIAN_AMI_OWNER = "136693071363";
export const DEBIAN_AMI_NAME = "debian-13-amd64-*";

/** AWS's own limits on the names hadb gives (load balancers and target groups: 32; IAM roles: 64). */
export const AWS_NAME_LIMITS = { loadBalancer: 32, targetGroup: 32, role: 64 } as const;

// ---------------------------------------------------------------------------------------------------------
// Addresses

export function ipToNumber(ip: string): number {
    return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

export function numberToIp(n: number): string {
    return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIpv4(ip: string): boolean {
    const m = IPV4.exec(ip);
    return !!m && m.slice(1).every((o) => Number(o) <= 255);
}

/** An IPv4 CIDR's network address and size, or undefined when it is not one. */
export function parseCidr(cidr: string): { base: number; size: number; prefix: number } | undefined {
    const [ip, bits] = cidr.split("/");
    const prefix = Number(bits);
    if (!isIpv4(ip ?? "") || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
    const size = 2 ** (32 - prefix);
    const base = ipToNumber(ip) - (ipToNumber(ip) % size);
    return { base, size, prefix };
}

/** The member's ordinal from its name (`pg-2` → 2); services name members `<service>-<ordinal>`. */
export function memberOrdinal(member: string): number {
    const m = /-(\d+)$/.exec(member);
    return m ? Number(m[1]) : 0;
}

export interface MemberPlacement {
    readonly subnet: AwsSubnet;
    readonly ip: string;
}

/**
 * Every member's subnet and fixed private IP, decided by name alone so that it is known at preview and stays
 * the same across instance replacement and across changes elsewhere in the program: member *i* goes to subnet
 * *i mod n*; its host number is a hash of its name within the subnet's usable range. Two names hashing to the
 * same address: the one placed first keeps it, the other takes the next free one (pin it with `addresses` to
 * make that independent of declaration order).
 */
export class AddressBook {
    private readonly placed = new Map<string, MemberPlacement>();
    private readonly taken = new Map<string, string>();

    constructor(
        private readonly subnets: readonly AwsSubnet[],
        private readonly firstHost: number,
        private readonly pinned: Readonly<Record<string, string>>,
    ) {
        for (const [member, ip] of Object.entries(pinned)) this.taken.set(ip, member);
    }

    place(member: string): MemberPlacement {
        const known = this.placed.get(member);
        if (known) return known;
        const subnet = this.subnets[memberOrdinal(member) % this.subnets.length];
        const { base, size } = parseCidr(subnet.cidr)!;
        let ip = this.pinned[member];
        if (ip === undefined) {
            // AWS reserves the network address, the next three and the last one.
            const first = this.firstHost;
            const count = size - 1 - first;
            const start = crypto.createHash("sha256").update(member).digest().readUInt32BE(0) % count;
            for (let i = 0; i < count && ip === undefined; i++) {
                const candidate = numberToIp(base + first + ((start + i) % count));
                if (!this.taken.has(candidate)) ip = candidate;
            }
            if (ip === undefined) throw new Error(`subnet ${subnet.id} (${subnet.cidr}) has no free address left for ${member}`);
        }
        this.taken.set(ip, member);
        const placement = { subnet, ip };
        this.placed.set(member, placement);
        return placement;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Arguments

const CIDR_FIX = 'use the VPC\'s private ranges your applications connect from, e.g. "10.20.0.0/16"';

export function validateAwsTargetArgs(name: string, args: AwsTargetArgs): void {
    const check = new ArgumentChecker(`AwsTarget "${name}"`);
    check.dnsLabel("name", name);
    if (typeof args.vpcId !== "string" || !/^vpc-[0-9a-f]{8,17}$/.test(args.vpcId)) {
        check.fail("vpcId", args.vpcId, "it must be a VPC id", 'give the VPC the subnets belong to, e.g. "vpc-0a1b2c3d4e5f67890"');
    }
    const subnets = args.subnets ?? [];
    if (!Array.isArray(subnets) || subnets.length === 0) {
        check.fail("subnets", args.subnets, "at least one private subnet is needed, and three in distinct zones for a cluster that survives a zone", "list the VPC's private subnets as { id, cidr, zone }");
    }
    for (const s of subnets) {
        if (!/^subnet-[0-9a-f]{8,17}$/.test(s?.id ?? "")) check.fail("subnets", s, "each subnet needs its id (`subnet-…`)", "give { id, cidr, zone } for each subnet");
        const cidr = parseCidr(s.cidr ?? "");
        if (!cidr || cidr.prefix < 16 || cidr.prefix > 27) check.fail("subnets", s, "its `cidr` must be an IPv4 CIDR from /16 to /27 (AWS's subnet sizes, with room for members)", "give the subnet's CIDR, e.g. \"10.0.1.0/24\"");
        if (typeof s.zone !== "string" || !/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/.test(s.zone)) check.fail("subnets", s, "its `zone` must be an availability zone name", 'give the subnet\'s zone, e.g. "eu-west-1a"');
    }
    const ids = subnets.map((s) => s.id);
    const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
    if (duplicate) check.fail("subnets", duplicate, "a subnet is listed twice", "list each subnet once");
    const zones = new Set(subnets.map((s) => s.zone));
    if (zones.size < 3 && !args.allowSingleZone) {
        check.fail(
            "subnets",
            subnets.map((s) => s.zone),
            `they span ${zones.size} availability zone(s), and a three-member cluster survives the loss of a zone only across three`,
            "give subnets in three distinct zones, or set `allowSingleZone: true` for a development account",
        );
    }
    if (zones.size < subnets.length) {
        check.fail("subnets", subnets.map((s) => s.zone), "two subnets share a zone, so two members of a cluster could share it", "give one subnet per zone");
    }
    for (const [kind, type] of Object.entries(args.instanceTypes ?? {})) {
        if (!(kind in AWS_DEFAULT_INSTANCE_TYPES)) check.fail(`instanceTypes.${kind}`, type, "there is no such kind of service", `use ${Object.keys(AWS_DEFAULT_INSTANCE_TYPES).join(", ")}`);
        if (typeof type !== "string" || !/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(type)) check.fail(`instanceTypes.${kind}`, type, "it must be an EC2 instance type", 'use e.g. "m6i.large"');
    }
    const volume = args.volumes ?? {};
    const type = volume.type ?? "gp3";
    check.oneOf("volumes.type", type, ["gp3", "io2"]);
    if (type === "gp3") {
        if (volume.iops !== undefined) check.integer("volumes.iops", volume.iops, 3000, 16000, "give gp3 IOPS from 3000 to 16000");
        if (volume.throughputMiBps !== undefined) check.integer("volumes.throughputMiBps", volume.throughputMiBps, 125, 1000, "give gp3 throughput from 125 to 1000 MiB/s");
    } else {
        if (volume.iops === undefined) check.fail("volumes.iops", undefined, "io2 volumes need provisioned IOPS", "give IOPS from 100 to 256000");
        check.integer("volumes.iops", volume.iops!, 100, 256000);
        if (volume.throughputMiBps !== undefined) check.fail("volumes.throughputMiBps", volume.throughputMiBps, "only gp3 volumes take a throughput", "remove it for io2");
    }
    if (volume.minSizeGiB !== undefined) check.integer("volumes.minSizeGiB", volume.minSizeGiB, 1, 16384);
    for (const cidr of args.clientCidrs ?? []) {
        const parsed = parseCidr(cidr);
        if (!parsed || !cidr.includes("/")) check.fail("clientCidrs", cidr, "it must be an IPv4 CIDR", CIDR_FIX);
        if (parsed!.prefix < 8) check.fail("clientCidrs", cidr, "it admits a large part of the Internet (nothing wider than a /8 is accepted)", CIDR_FIX);
    }
    for (const sg of args.clientSecurityGroupIds ?? []) {
        if (!/^sg-[0-9a-f]{8,17}$/.test(sg)) check.fail("clientSecurityGroupIds", sg, "it must be a security group id", 'give the applications\' group, e.g. "sg-0a1b2c3d4e5f67890"');
    }
    if (args.namePrefix !== undefined && (!/^[a-z][a-z0-9-]*[a-z0-9]$/.test(args.namePrefix) || args.namePrefix.length > 12)) {
        check.fail("namePrefix", args.namePrefix, "it must be at most 12 lowercase letters, digits and '-' (load balancer names are limited to 32 characters)", 'use e.g. "shop-prod"');
    }
    const first = args.firstHostAddress ?? AWS_FIRST_HOST_ADDRESS;
    check.integer("firstHostAddress", first, 4, 250, "give a host number from 4 (AWS reserves the first four) to 250");
    for (const s of subnets) {
        const { size } = parseCidr(s.cidr)!;
        if (first >= size - 2) check.fail("firstHostAddress", first, `subnet ${s.id} (${s.cidr}) has only ${size} addresses`, "give a lower first host number or larger subnets");
    }
    for (const [member, ip] of Object.entries(args.addresses ?? {})) {
        if (!isIpv4(ip)) check.fail(`addresses.${member}`, ip, "it must be an IPv4 address", "give an address inside the member's subnet");
        const subnet = subnets[memberOrdinal(member) % subnets.length];
        const { base, size } = parseCidr(subnet.cidr)!;
        const n = ipToNumber(ip);
        if (n < base + 4 || n >= base + size - 1) {
            check.fail(`addresses.${member}`, ip, `member ${member} is placed in subnet ${subnet.id} (${subnet.cidr}), and this address is not usable in it`, `give an address from ${numberToIp(base + 4)} to ${numberToIp(base + size - 2)}`);
        }
    }
    const pinned = Object.values(args.addresses ?? {});
    const twice = pinned.find((ip, i) => pinned.indexOf(ip) !== i);
    if (twice) check.fail("addresses", twice, "two members are given the same address", "give each member its own address");
    if (args.amiId !== undefined && !/^ami-[0-9a-f]{8,17}$/.test(args.amiId)) check.fail("amiId", args.amiId, "it must be an AMI id", 'give e.g. "ami-0a1b2c3d4e5f67890", or leave it out for the newest Debian 13 AMI');
    if (args.kmsKeyId !== undefined && !/^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/)?[0-9a-f-]{36}$/.test(args.kmsKeyId)) {
        check.fail("kmsKeyId", args.kmsKeyId, "it must be a KMS key id or ARN", "give the key's ARN, or leave it out for the AWS-managed keys");
    }
    check.integer("idleTimeoutSeconds", args.idleTimeoutSeconds ?? AWS_IDLE_TIMEOUT_SECONDS, 60, 6000, "give seconds from 60 to 6000 (the NLB's range), above your clients' keepalive");
}

// ---------------------------------------------------------------------------------------------------------
// Names

export function roleName(prefix: string, service: string): string {
    return `${prefix}-${service}`;
}

export function loadBalancerName(prefix: string, service: string): string {
    return `${prefix}-${service}`;
}

export function targetGroupName(prefix: string, service: string, port: number): string {
    return `${prefix}-${service}-${port}`;
}

/** The SSM parameter holding one of a member's files; shared files are kept once under `shared`. */
export function fileParameterName(prefix: string, service: string, member: string | "shared", file: string): string {
    return `/${prefix}/${service}/${member}/${file}`;
}

/** The parameter a member's host writes its instance id to once the member is ready: the rollout gate. */
export function readyParameterName(prefix: string, service: string, member: string): string {
    return `/${prefix}/${service}/ready/${member}`;
}

/** The names AWS would refuse for this plan, as [what, name, limit]. */
export function overlongNames(prefix: string, plan: ServicePlan): [string, string, number][] {
    const names: [string, string, number][] = [["IAM role", roleName(prefix, plan.name), AWS_NAME_LIMITS.role]];
    if (plan.endpoints.length) {
        names.push(["load balancer", loadBalancerName(prefix, plan.name), AWS_NAME_LIMITS.loadBalancer]);
        for (const e of plan.endpoints) names.push(["target group", targetGroupName(prefix, plan.name, e.port), AWS_NAME_LIMITS.targetGroup]);
    }
    return names.filter(([, name, limit]) => name.length > limit);
}

// ---------------------------------------------------------------------------------------------------------
// Security groups

/** What the security-group rules need to know of a deployed service. */
export interface GroupedService {
    readonly name: string;
    readonly component: ComponentKind;
    readonly replicaOf?: string;
    readonly ports: readonly { readonly name: string; readonly port: number; readonly allow: readonly PortAccess[] }[];
    /** The service fronted by a load balancer: its endpoint ports admit the load balancer's group. */
    readonly loadBalanced: boolean;
}

/** One ingress rule: into `service`'s group on `port`, from another service's group, a client group or a CIDR. */
export interface IngressRule {
    readonly service: string;
    readonly port: number;
    readonly from: { readonly service: string } | { readonly loadBalancerOf: string } | { readonly securityGroupId: string } | { readonly cidr: string };
}

function admits(access: PortAccess, to: GroupedService, from: GroupedService): boolean {
    switch (access) {
        case "members":
            return from.name === to.name;
        case "replicas":
            return from.replicaOf === to.name;
        case "source":
            return to.replicaOf === from.name;
        case "clients":
            return false;
        default:
            return from.component === access && from.name !== to.name;
    }
}

/**
 * The ingress rules that involve `added` given the services deployed before it: into its own group (from
 * itself, earlier services, clients and its load balancer) and into earlier services' groups from it. Each
 * rule between two services is produced exactly once, when the later of the two is deployed.
 */
export function ingressRules(earlier: readonly GroupedService[], added: GroupedService, clients: { securityGroupIds: readonly string[]; cidrs: readonly string[] }): IngressRule[] {
    const rules: IngressRule[] = [];
    for (const port of added.ports) {
        for (const from of [added, ...earlier]) {
            if (port.allow.some((a) => admits(a, added, from))) rules.push({ service: added.name, port: port.port, from: { service: from.name } });
        }
        if (port.allow.includes("clients")) {
            if (added.loadBalanced) rules.push({ service: added.name, port: port.port, from: { loadBalancerOf: added.name } });
            for (const securityGroupId of clients.securityGroupIds) rules.push({ service: added.name, port: port.port, from: { securityGroupId } });
            for (const cidr of clients.cidrs) rules.push({ service: added.name, port: port.port, from: { cidr } });
        }
    }
    for (const to of earlier) {
        for (const port of to.ports) {
            if (port.allow.some((a) => admits(a, to, added))) rules.push({ service: to.name, port: port.port, from: { service: added.name } });
        }
    }
    return rules;
}

/**
 * NLB target-group health check of a proxy endpoint: a TCP connect to the endpoint's own port every 5 s,
 * 2 to change state — AWS's fastest (interval 5–300 s, thresholds 2–10, timeout 2–120 s).
 */
export const NLB_HEALTH_CHECK = { protocol: "TCP", port: "traffic-port", interval: 5, healthyThreshold: 2, unhealthyThreshold: 2, timeout: 2 } as const;

/** The instance type a service's members run on. */
export function instanceTypeFor(kind: ComponentKind, given: AwsInstanceTypes | undefined): string {
    return given?.[kind] ?? AWS_DEFAULT_INSTANCE_TYPES[kind];
}
