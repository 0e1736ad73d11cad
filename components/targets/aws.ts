import * as path from "path";
import * as aws from "@pulumi/aws";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { BackendServer } from "../core/backends";
import { ArgumentChecker, planOrFail } from "../core/errors";
import { IMAGES, IMAGES_DIR, ImageName } from "../core/images";
import { NameRegistry } from "../core/names";
import { DeployedEndpoint, DeployedMember, DeployedService, FilePlan, MemberPlan, ServicePlan, Target } from "../core/plan";
import { HostDocument, HostFile, hostPaths, nvmeDevicePath, renderUserData } from "./awsHost";
import {
    AddressBook,
    AWS_FIRST_HOST_ADDRESS,
    AWS_IDLE_TIMEOUT_SECONDS,
    AWS_MIN_VOLUME_GIB,
    AWS_NAME_LIMITS,
    AwsTargetArgs,
    DEBIAN_AMI_NAME,
    DEBIAN_AMI_OWNER,
    fileParameterName,
    GroupedService,
    IngressRule,
    ingressRules,
    instanceTypeFor,
    loadBalancerName,
    NLB_HEALTH_CHECK,
    overlongNames,
    readyParameterName,
    roleName,
    targetGroupName,
    validateAwsTargetArgs,
} from "./awsPlan";
import { dockerRunArgs, memberContainer } from "./memberContainer";

export type { AwsInstanceTypes, AwsSubnet, AwsTargetArgs, AwsVolumeSettings } from "./awsPlan";

/** One listener of a load balancer: its port, the IP targets behind it and how the NLB checks them. */
interface BalancedRoute {
    readonly name: string;
    readonly port: number;
    readonly targetPort: number;
    readonly targets: readonly { readonly name: string; readonly host: string; readonly port: number }[];
    readonly healthCheck: aws.types.input.lb.TargetGroupHealthCheck;
    /** Close connections to a target that turns unhealthy (direct: a member that lost its role). */
    readonly terminateUnhealthy: boolean;
}

/** One endpoint of a direct load balancer: its port, the servers behind it and the role path they must answer 200 on. */
export interface DirectRoute {
    readonly name: string;
    readonly port: number;
    readonly servers: readonly BackendServer[];
    readonly checkPath: string;
}

/** How long `pulumi up` waits for a new member to report ready before it fails the update. */
const READY_TIMEOUT_SECONDS = 1800;
const READY_POLL_MS = 10_000;
/** The device name the data volume is attached as; Nitro instances show it under its by-id path. */
const DATA_DEVICE_NAMES = ["/dev/sdf", "/dev/sdg", "/dev/sdh", "/dev/sdi"];

interface AwsInternals {
    readonly name: string;
    readonly args: AwsTargetArgs;
    readonly addresses: AddressBook;
    readonly names: NameRegistry;
    readonly services: GroupedService[];
    readonly groups: Map<string, aws.ec2.SecurityGroup>;
    readonly loadBalancerGroups: Map<string, aws.ec2.SecurityGroup>;
    readonly images: Map<ImageName, { ref: pulumi.Input<string>; repositoryArn?: pulumi.Output<string> }>;
    /** The service each deployed member belongs to (a direct load balancer's rules go into its group). */
    readonly serviceOf: Map<string, string>;
    readonly ami: pulumi.Input<string>;
    readonly region: pulumi.Output<string>;
    builder?: docker.Provider;
}
const AWS_INTERNALS = new WeakMap<AwsTarget, AwsInternals>();

/**
 * Runs plans on EC2 in one VPC: an instance per member, member *i* in subnet *i mod n* (a zone each), on a
 * network interface with a fixed private IP decided at preview; an encrypted EBS volume per member volume in
 * the member's zone, kept when the member goes; the member's files from the user data and, for secrets, from
 * SSM Parameter Store through the instance role; the same images and `docker run` arguments as the Docker
 * target, run by a systemd unit; a security group per service admitting exactly what the plan's ports allow;
 * an internal NLB per service with endpoints. Rollout: members of a service are created and replaced one at a
 * time, each only after the one before it reported ready (its health check passed), so a change never takes
 * more than one member down. No SSH key, no public IP, IMDSv2 only; Session Manager for a shell.
 */
export class AwsTarget extends pulumi.ComponentResource implements Target {
    readonly kind: string = "aws";
    readonly namePrefix: string;
    /** Members are reached by fixed IPs, so proxies never re-resolve. */
    readonly nameResolution = undefined;
    readonly clusterRanges: pulumi.Input<string[]>;
    /** The provider every child uses: the one given in `opts`, or one for `region`. */
    readonly provider: aws.Provider;

    constructor(name: string, args: AwsTargetArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hadb:index:AwsTarget", name, {}, opts);
        planOrFail(this, () => validateAwsTargetArgs(name, args));
        this.namePrefix = args.namePrefix ?? `hadb-${pulumi.getStack()}`.slice(0, 12).replace(/-+$/, "");
        // The subnets (members, proxies, NLBs) and the named client ranges, which the security groups admit to the
        // servers' client ports too: pg_hba and MySQL's account hosts must not refuse what the groups let through.
        this.clusterRanges = [...args.subnets.map((s) => s.cidr), ...(args.clientCidrs ?? [])];
        this.provider = (this.getProvider("aws::") as aws.Provider | undefined) ?? new aws.Provider(`${name}-account`, { region: args.region as aws.Region | undefined }, { parent: this });
        const invoke = { parent: this, provider: this.provider };
        const ami =
            args.amiId ??
            aws.ec2.getAmiOutput(
                {
                    mostRecent: true,
                    owners: [DEBIAN_AMI_OWNER],
                    filters: [
                        { name: "name", values: [DEBIAN_AMI_NAME] },
                        { name: "architecture", values: ["x86_64"] },
                    ],
                },
                invoke,
            ).id;
        AWS_INTERNALS.set(this, {
            name,
            args,
            addresses: new AddressBook(args.subnets, args.firstHostAddress ?? AWS_FIRST_HOST_ADDRESS, args.addresses ?? {}),
            names: new NameRegistry(),
            services: [],
            groups: new Map(),
            loadBalancerGroups: new Map(),
            images: new Map(),
            serviceOf: new Map(),
            ami,
            region: aws.getRegionOutput({}, invoke).region,
        });
        this.registerOutputs({});
    }

    memberHost(_service: string, member: string): string {
        return this.internals.addresses.place(member).ip;
    }

    checkPlan(plan: ServicePlan, component: string): void {
        const check = new ArgumentChecker(component);
        for (const m of plan.members) check.dnsLabel("name", m.name, 40);
        for (const [what, name, limit] of overlongNames(this.namePrefix, plan)) {
            check.fail("name", plan.name, `the ${what} name "${name}" would be ${name.length} characters, above AWS's ${limit}`, `give the component a shorter name, or the target a shorter namePrefix`);
        }
        this.internals.names.claim(component, plan.members.map((m) => m.name), "member");
        // Places every member now: a subnet too small for them fails here, before anything is declared.
        for (const m of plan.members) {
            try {
                this.internals.addresses.place(m.name);
            } catch (err) {
                check.fail("name", m.name, (err as Error).message, "give the target larger subnets, or a lower firstHostAddress");
            }
        }
    }

    /** The image reference hosts run: given, or built from images/ and pushed to an ECR repository the target creates. */
    image(image: ImageName): { ref: pulumi.Input<string>; repositoryArn?: pulumi.Output<string> } {
        const own = this.internals;
        let entry = own.images.get(image);
        if (!entry) {
            const given = own.args.images?.[image];
            if (given) entry = { ref: given };
            else {
                const repository = new aws.ecr.Repository(
                    `${own.name}-${image}`,
                    { name: `${this.namePrefix}/${image}`, imageScanningConfiguration: { scanOnPush: true }, tags: this.tags({}) },
                    { parent: this, provider: this.provider },
                );
                const token = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, { parent: this, provider: this.provider });
                own.builder ??= new docker.Provider(`${own.name}-builder`, {}, { parent: this });
                const base = { trixie: own.args.baseImages?.trixie ?? "debian:trixie-slim", sid: own.args.baseImages?.sid ?? "debian:sid-slim" };
                const built = new docker.Image(
                    `${own.name}-${image}-image`,
                    {
                        imageName: pulumi.interpolate`${repository.repositoryUrl}:latest`,
                        build: { context: path.join(IMAGES_DIR, image), args: { BASE_IMAGE: base[IMAGES[image].suite] }, builderVersion: "BuilderV1", platform: "linux/amd64" },
                        registry: { server: repository.repositoryUrl, username: token.userName, password: pulumi.secret(token.password) },
                    },
                    { parent: this, provider: own.builder },
                );
                // By digest: a member replaced next month runs the same bits.
                entry = { ref: built.repoDigest, repositoryArn: repository.arn };
            }
            own.images.set(image, entry);
        }
        return entry;
    }

    deploy(owner: pulumi.ComponentResource, plan: ServicePlan, dependsOn: pulumi.Resource[] = []): DeployedService {
        const own = this.internals;
        const opts = (extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({ parent: owner, provider: this.provider, ...extra });
        const group = this.securityGroups(owner, plan);
        const image = this.image(plan.image);
        const parameters = this.fileParameters(owner, plan);
        const readyParameters = plan.members.map(
            (m) =>
                new aws.ssm.Parameter(
                    `${m.name}-ready`,
                    { name: readyParameterName(this.namePrefix, plan.name, m.name), type: "String", value: "pending", description: `Instance id of ${m.name} once it is ready`, tags: this.tags({}) },
                    // The host writes it; Pulumi only creates it.
                    opts({ ignoreChanges: ["value"] }),
                ),
        );
        const profile = this.instanceProfile(owner, plan, [...parameters.values()], readyParameters, image.repositoryArn);
        let gate: pulumi.Input<pulumi.Resource[]> = dependsOn;
        const ready: pulumi.Output<string>[] = [];
        const members = plan.members.map((member, i): DeployedMember => {
            own.serviceOf.set(member.name, plan.name);
            const { subnet, ip } = own.addresses.place(member.name);
            const nic = new aws.ec2.NetworkInterface(
                `${member.name}-nic`,
                { subnetId: subnet.id, privateIps: [ip], securityGroups: [group.id], description: `hadb ${member.name}`, tags: this.tags({ Name: `${this.namePrefix}-${member.name}` }) },
                opts(),
            );
            const volumes = plan.template.volumes.map((v) => ({
                plan: v,
                volume: new aws.ebs.Volume(
                    `${member.name}-${v.name}`,
                    {
                        availabilityZone: subnet.zone,
                        size: Math.max(v.sizeGiB, own.args.volumes?.minSizeGiB ?? AWS_MIN_VOLUME_GIB),
                        type: own.args.volumes?.type ?? "gp3",
                        iops: own.args.volumes?.iops,
                        throughput: (own.args.volumes?.type ?? "gp3") === "gp3" ? (own.args.volumes?.throughputMiBps ?? 125) : undefined,
                        encrypted: true,
                        kmsKeyId: own.args.kmsKeyId,
                        tags: this.tags({ Name: `${this.namePrefix}-${member.name}-${v.name}`, "hadb:member": member.name }),
                    },
                    // A replaced volume is a deleted one: data outlives members and the stack unless told otherwise.
                    opts({ retainOnDelete: !own.args.destroyData, protect: false }),
                ),
            }));
            const readyParameter = readyParameters[i];
            const userData = this.userData(plan, member, image.ref, parameters, volumes.map((v) => ({ name: v.plan.name, id: v.volume.id })), readyParameter.name);
            const instance = new aws.ec2.Instance(
                member.name,
                {
                    ami: own.ami,
                    instanceType: instanceTypeFor(plan.component, own.args.instanceTypes),
                    primaryNetworkInterface: { networkInterfaceId: nic.id },
                    iamInstanceProfile: profile.name,
                    metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
                    rootBlockDevice: { encrypted: true, volumeType: "gp3", volumeSize: 16, kmsKeyId: own.args.kmsKeyId, deleteOnTermination: true },
                    userData,
                    // New files or a new image mean a new host: one that boots from them, not one that kept old ones.
                    userDataReplaceOnChange: true,
                    tags: this.tags({ Name: `${this.namePrefix}-${member.name}`, "hadb:service": plan.name, "hadb:member": member.name, "hadb:ready-parameter": readyParameterName(this.namePrefix, plan.name, member.name) }),
                },
                opts({
                    // The network interface (and its address) belongs to one instance at a time.
                    deleteBeforeReplace: true,
                    // A newer AMI is taken when a member is replaced for another reason, never all members at once.
                    ignoreChanges: ["ami"],
                    dependsOn: gate,
                }),
            );
            volumes.forEach(
                (v, k) =>
                    new aws.ec2.VolumeAttachment(
                        `${member.name}-${v.plan.name}`,
                        { instanceId: instance.id, volumeId: v.volume.id, deviceName: DATA_DEVICE_NAMES[k], stopInstanceBeforeDetaching: true },
                        opts(),
                    ),
            );
            const isReady = this.readyGate(member.name, instance, readyParameter.name);
            ready.push(isReady);
            // The next member is touched only once this one is in service.
            gate = isReady.apply(() => [instance]);
            return {
                name: member.name,
                resourceName: instance.id,
                host: ip,
                ports: Object.fromEntries(plan.template.ports.map((p) => [p.name, p.port])),
                published: {},
            };
        });
        // One resource meaning "every member is in service", for components that start after this one.
        const inService = new aws.ssm.Parameter(
            `${plan.name}-in-service`,
            { name: `/${this.namePrefix}/${plan.name}/in-service`, type: "String", value: pulumi.all(ready).apply((ids) => ids.join(",")), tags: this.tags({}) },
            opts(),
        );
        const endpoints = this.loadBalancer(owner, plan, members);
        return { members, endpoints, resources: [inService] };
    }

    /** Throws an InvalidArgumentError when a direct load balancer of this name would break AWS's name limits. */
    checkDirectLoadBalancer(name: string, ports: readonly number[], component: string): void {
        const check = new ArgumentChecker(component);
        const names: [string, string, number][] = [["load balancer", loadBalancerName(this.namePrefix, name), AWS_NAME_LIMITS.loadBalancer], ...ports.map((p): [string, string, number] => ["target group", targetGroupName(this.namePrefix, name, p), AWS_NAME_LIMITS.targetGroup])];
        for (const [what, n, limit] of names) {
            if (n.length > limit) check.fail("name", name, `the ${what} name "${n}" would be ${n.length} characters, above AWS's ${limit}`, "give the component a shorter name, or the target a shorter namePrefix");
        }
        this.internals.names.claim(component, [`${name}-nlb`], "load balancer");
    }

    /**
     * "nlb-direct": an internal NLB straight at a cluster's members, no proxy tier. Each endpoint is a target group of
     * the members' fixed IPs whose HTTP health check asks the member's role path (`/primary`, `/replica`) — AWS's
     * fastest checks (5 s, 2 to change state). When no target is healthy an NLB sends to all of them (fail open), so
     * during a failover writes can reach a demoted primary and fail there; connections to a target that turns
     * unhealthy are closed. Slower and less strict than HaproxyFrontend: see README "Production on AWS".
     */
    directLoadBalancer(owner: pulumi.ComponentResource, name: string, routes: readonly DirectRoute[]): Record<string, pulumi.Output<DeployedEndpoint>> {
        const own = this.internals;
        const opts = { parent: owner, provider: this.provider };
        const lbGroup = this.balancerGroup(name, "a load balancer straight at the members", routes.map((r) => r.port), opts);
        const servers = [...new Map(routes.flatMap((r) => r.servers).map((s) => [s.name, s])).values()];
        const memberPorts = [...new Set(servers.flatMap((s) => [s.port, s.checkPort]))];
        for (const service of new Set(servers.map((s) => own.serviceOf.get(s.name)!))) {
            const members = own.groups.get(service)!;
            for (const port of memberPorts) {
                new aws.vpc.SecurityGroupIngressRule(`${service}-${port}-from-${name}-nlb`, { securityGroupId: members.id, ipProtocol: "tcp", fromPort: port, toPort: port, referencedSecurityGroupId: lbGroup.id, description: `hadb: ${name} to ${service}` }, opts);
                new aws.vpc.SecurityGroupEgressRule(`${name}-nlb-to-${service}-${port}`, { securityGroupId: lbGroup.id, ipProtocol: "tcp", fromPort: port, toPort: port, referencedSecurityGroupId: members.id }, opts);
            }
        }
        return this.networkLoadBalancer(
            name,
            lbGroup,
            routes.map((route) => ({
                name: route.name,
                port: route.port,
                targetPort: route.servers[0].port,
                targets: route.servers.map((server) => ({ name: server.name, host: server.host, port: server.port })),
                healthCheck: { enabled: true, protocol: "HTTP", port: String(route.servers[0].checkPort), path: route.checkPath, matcher: "200", interval: NLB_HEALTH_CHECK.interval, healthyThreshold: NLB_HEALTH_CHECK.healthyThreshold, unhealthyThreshold: NLB_HEALTH_CHECK.unhealthyThreshold, timeout: NLB_HEALTH_CHECK.timeout },
                terminateUnhealthy: true,
            })),
            opts,
        );
    }

    /** Resolves once the member's host wrote this instance's id into its ready parameter (bounded). */
    private readyGate(member: string, instance: aws.ec2.Instance, parameterName: pulumi.Output<string>): pulumi.Output<string> {
        return pulumi.all([instance.id, parameterName]).apply(async ([id, name]) => {
            const deadline = Date.now() + READY_TIMEOUT_SECONDS * 1000;
            for (;;) {
                const value = await aws.ssm
                    .getParameter({ name }, { provider: this.provider })
                    .then((p) => p.value)
                    .catch(() => undefined);
                if (value === id) return id;
                if (Date.now() > deadline) {
                    throw new Error(`${member} (instance ${id}) did not report ready within ${READY_TIMEOUT_SECONDS} s: read its boot log with Session Manager (/var/log/cloud-init-output.log)`);
                }
                await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
            }
        });
    }

    private userData(
        plan: ServicePlan,
        member: MemberPlan,
        image: pulumi.Input<string>,
        parameters: Map<FilePlan, aws.ssm.Parameter>,
        volumes: { name: string; id: pulumi.Output<string> }[],
        readyParameter: pulumi.Output<string>,
    ): pulumi.Output<string> {
        const container = memberContainer(plan, member, { "hadb.stack": pulumi.getStack() });
        const paths = hostPaths(member.name);
        const checks = plan.template.checks;
        const files = container.files.map((f): pulumi.Output<HostFile> => {
            const parameter = parameters.get(f);
            if (!parameter) return pulumi.output(f.content).apply((content) => ({ name: f.name, mode: f.mode, content }));
            // Files taken online are read at boot without their version: a change reaches the servers online.
            return pulumi.all([parameter.name, parameter.version]).apply(([name, version]) => ({ name: f.name, mode: f.mode, parameter: name, ...(f.appliedOnline ? {} : { version }) }));
        });
        return pulumi
            .all([this.internals.region, pulumi.output(image), pulumi.all(files), pulumi.all(volumes.map((v) => v.id)), readyParameter])
            .apply(([region, ref, hostFiles, volumeIds, ready]) =>
                dockerRunArgs(container, ref, paths).apply((run) => {
                    const doc: HostDocument = {
                        member: member.name,
                        region,
                        image: ref,
                        uid: container.uid,
                        paths,
                        volumes: volumes.map((v, k) => ({ name: v.name, device: nvmeDevicePath(volumeIds[k]), directory: `${paths.volumesDir}/${v.name}` })),
                        files: hostFiles,
                        run,
                        stopGraceSeconds: container.stopGraceSeconds,
                        readyWithinSeconds: (checks.startup ? checks.startup.periodSeconds * checks.startup.failureThreshold : 0) + 600,
                        readyParameter: ready,
                    };
                    return renderUserData(doc);
                }),
            );
    }

    /** A SecureString per secret file and per file taken online (shared ones once); other files travel in the user data. */
    private fileParameters(owner: pulumi.ComponentResource, plan: ServicePlan): Map<FilePlan, aws.ssm.Parameter> {
        const parameters = new Map<FilePlan, aws.ssm.Parameter>();
        const declare = (f: FilePlan, scope: string) => {
            if (!f.secret && !f.appliedOnline) return;
            const name = fileParameterName(this.namePrefix, plan.name, scope, f.name);
            parameters.set(
                f,
                new aws.ssm.Parameter(
                    `${scope === "shared" ? plan.name : scope}-${f.name}`,
                    {
                        name,
                        type: "SecureString",
                        value: pulumi.secret(f.content),
                        keyId: this.internals.args.kmsKeyId,
                        // Standard up to 4 KB, advanced above: a large file never fails the update.
                        tier: "Intelligent-Tiering",
                        description: `hadb ${plan.name}: ${f.name}`,
                        tags: this.tags({}),
                    },
                    { parent: owner, provider: this.provider },
                ),
            );
        };
        for (const f of plan.template.files) declare(f, "shared");
        for (const m of plan.members) for (const f of m.files) declare(f, m.name);
        return parameters;
    }

    /**
     * The service's role: read exactly its own parameters, write its members' ready parameters, pull its image,
     * and Session Manager's own actions. Not AmazonSSMManagedInstanceCore: it grants reading every parameter.
     */
    private instanceProfile(
        owner: pulumi.ComponentResource,
        plan: ServicePlan,
        files: aws.ssm.Parameter[],
        ready: aws.ssm.Parameter[],
        repositoryArn?: pulumi.Output<string>,
    ): aws.iam.InstanceProfile {
        const opts = { parent: owner, provider: this.provider };
        const name = roleName(this.namePrefix, plan.name);
        const role = new aws.iam.Role(
            `${plan.name}-host`,
            {
                name,
                assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
                tags: this.tags({}),
            },
            opts,
        );
        const kms = this.internals.args.kmsKeyId;
        const policy = pulumi.all([pulumi.all(files.map((p) => p.arn)), pulumi.all(ready.map((p) => p.arn)), repositoryArn ?? pulumi.output(undefined)]).apply(([fileArns, readyArns, repo]) =>
            JSON.stringify({
                Version: "2012-10-17",
                Statement: [
                    ...(fileArns.length ? [{ Sid: "ReadOwnFiles", Effect: "Allow", Action: ["ssm:GetParameter"], Resource: fileArns }] : []),
                    { Sid: "ReportReady", Effect: "Allow", Action: ["ssm:PutParameter"], Resource: readyArns },
                    ...(kms ? [{ Sid: "DecryptOwnFiles", Effect: "Allow", Action: ["kms:Decrypt"], Resource: [kms] }] : []),
                    ...(repo
                        ? [
                              { Sid: "PullImageAuth", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: ["*"] },
                              { Sid: "PullImage", Effect: "Allow", Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], Resource: [repo] },
                          ]
                        : []),
                    {
                        Sid: "SessionManager",
                        Effect: "Allow",
                        Action: ["ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
                        Resource: ["*"],
                    },
                ],
            }),
        );
        new aws.iam.RolePolicy(`${plan.name}-host`, { role: role.id, policy }, opts);
        return new aws.iam.InstanceProfile(`${plan.name}-host`, { name, role: role.name, tags: this.tags({}) }, opts);
    }

    /** The service's security group, and every ingress rule between it and the services deployed before it. */
    private securityGroups(owner: pulumi.ComponentResource, plan: ServicePlan): aws.ec2.SecurityGroup {
        const own = this.internals;
        const opts = { parent: owner, provider: this.provider };
        const group = new aws.ec2.SecurityGroup(
            `${plan.name}-members`,
            { vpcId: own.args.vpcId, name: `${this.namePrefix}-${plan.name}`, description: `hadb ${plan.name}: its members`, tags: this.tags({ Name: `${this.namePrefix}-${plan.name}` }) },
            opts,
        );
        // Out to SSM, ECR and the Debian mirror (through the VPC's NAT or endpoints), and to the other members.
        new aws.vpc.SecurityGroupEgressRule(`${plan.name}-egress`, { securityGroupId: group.id, ipProtocol: "-1", cidrIpv4: "0.0.0.0/0", description: "hadb: hosts reach AWS APIs, the image registry and their peers" }, opts);
        own.groups.set(plan.name, group);
        if (plan.endpoints.length) {
            const lbGroup = this.balancerGroup(plan.name, "its load balancer", plan.endpoints.map((e) => e.port), opts);
            own.loadBalancerGroups.set(plan.name, lbGroup);
            for (const e of plan.endpoints) {
                new aws.vpc.SecurityGroupEgressRule(`${plan.name}-nlb-${e.port}-to-members`, { securityGroupId: lbGroup.id, ipProtocol: "tcp", fromPort: e.port, toPort: e.port, referencedSecurityGroupId: group.id }, opts);
            }
        }
        const grouped: GroupedService = { name: plan.name, component: plan.component, replicaOf: plan.replicaOf, ports: plan.template.ports, loadBalanced: plan.endpoints.length > 0 };
        const rules = ingressRules(own.services, grouped, { securityGroupIds: own.args.clientSecurityGroupIds ?? [], cidrs: own.args.clientCidrs ?? [] });
        own.services.push(grouped);
        for (const rule of rules) this.ingressRule(rule, opts);
        return group;
    }

    private ingressRule(rule: IngressRule, opts: pulumi.CustomResourceOptions): void {
        const own = this.internals;
        const from = rule.from;
        const source =
            "service" in from
                ? { label: from.service, referencedSecurityGroupId: own.groups.get(from.service)!.id }
                : "loadBalancerOf" in from
                  ? { label: `${from.loadBalancerOf}-nlb`, referencedSecurityGroupId: own.loadBalancerGroups.get(from.loadBalancerOf)!.id }
                  : "securityGroupId" in from
                    ? { label: from.securityGroupId, referencedSecurityGroupId: from.securityGroupId }
                    : { label: from.cidr, cidrIpv4: from.cidr };
        const { label, ...peer } = source;
        new aws.vpc.SecurityGroupIngressRule(
            `${rule.service}-${rule.port}-from-${label}`,
            { securityGroupId: own.groups.get(rule.service)!.id, ipProtocol: "tcp", fromPort: rule.port, toPort: rule.port, description: `hadb: ${label} to ${rule.service}`, ...peer },
            opts,
        );
    }

    /** The proxy tier's NLB: a TCP listener per endpoint, forwarding to the members' fixed IPs, TCP health checks. */
    private loadBalancer(owner: pulumi.ComponentResource, plan: ServicePlan, members: DeployedMember[]): Record<string, pulumi.Output<DeployedEndpoint>> {
        if (!plan.endpoints.length) return {};
        const routes = plan.endpoints.map((e) => ({
            name: e.name,
            port: e.port,
            targetPort: e.port,
            targets: members.map((m) => ({ name: m.name, host: m.host, port: e.port })),
            healthCheck: { ...NLB_HEALTH_CHECK, enabled: true },
            terminateUnhealthy: false,
        }));
        return this.networkLoadBalancer(plan.name, this.internals.loadBalancerGroups.get(plan.name)!, routes, { parent: owner, provider: this.provider });
    }

    /** A load balancer's security group, admitting the named client groups and ranges on its ports. */
    private balancerGroup(name: string, description: string, ports: readonly number[], opts: pulumi.CustomResourceOptions): aws.ec2.SecurityGroup {
        const own = this.internals;
        const lbGroup = new aws.ec2.SecurityGroup(
            `${name}-balancer`,
            { vpcId: own.args.vpcId, name: `${this.namePrefix}-${name}-nlb`, description: `hadb ${name}: ${description}`, tags: this.tags({ Name: `${this.namePrefix}-${name}-nlb` }) },
            opts,
        );
        for (const port of ports) {
            for (const sg of own.args.clientSecurityGroupIds ?? []) {
                new aws.vpc.SecurityGroupIngressRule(`${name}-nlb-${port}-from-${sg}`, { securityGroupId: lbGroup.id, ipProtocol: "tcp", fromPort: port, toPort: port, referencedSecurityGroupId: sg }, opts);
            }
            for (const cidr of own.args.clientCidrs ?? []) {
                new aws.vpc.SecurityGroupIngressRule(`${name}-nlb-${port}-from-${cidr}`, { securityGroupId: lbGroup.id, ipProtocol: "tcp", fromPort: port, toPort: port, cidrIpv4: cidr }, opts);
            }
        }
        return lbGroup;
    }

    /**
     * An internal NLB across the subnets in `lbGroup`, with a TCP listener per route forwarding to IP targets (the
     * members' fixed addresses, which survive instance replacement).
     */
    private networkLoadBalancer(name: string, lbGroup: aws.ec2.SecurityGroup, routes: readonly BalancedRoute[], opts: pulumi.CustomResourceOptions): Record<string, pulumi.Output<DeployedEndpoint>> {
        const own = this.internals;
        const nlb = new aws.lb.LoadBalancer(
            `${name}-nlb`,
            {
                name: loadBalancerName(this.namePrefix, name),
                loadBalancerType: "network",
                internal: true,
                subnets: own.args.subnets.map((s) => s.id),
                securityGroups: [lbGroup.id],
                enableCrossZoneLoadBalancing: true,
                tags: this.tags({}),
            },
            opts,
        );
        return Object.fromEntries(
            routes.map((route): [string, pulumi.Output<DeployedEndpoint>] => {
                const group = new aws.lb.TargetGroup(
                    `${name}-${route.name}`,
                    {
                        name: targetGroupName(this.namePrefix, name, route.port),
                        port: route.targetPort,
                        protocol: "TCP",
                        targetType: "ip",
                        vpcId: own.args.vpcId,
                        // A target leaving is cut off at once: its clients reconnect through another.
                        deregistrationDelay: 0,
                        connectionTermination: true,
                        // Connections arrive from the NLB's own addresses in the subnets, which access rules admit.
                        preserveClientIp: "false",
                        ...(route.terminateUnhealthy ? { targetHealthStates: [{ enableUnhealthyConnectionTermination: true }] } : {}),
                        healthCheck: route.healthCheck,
                        tags: this.tags({}),
                    },
                    opts,
                );
                for (const target of route.targets) {
                    new aws.lb.TargetGroupAttachment(`${name}-${route.name}-${target.name}`, { targetGroupArn: group.arn, targetId: target.host, port: target.port }, opts);
                }
                new aws.lb.Listener(
                    `${name}-${route.name}`,
                    {
                        loadBalancerArn: nlb.arn,
                        port: route.port,
                        protocol: "TCP",
                        tcpIdleTimeoutSeconds: own.args.idleTimeoutSeconds ?? AWS_IDLE_TIMEOUT_SECONDS,
                        defaultActions: [{ type: "forward", targetGroupArn: group.arn }],
                        tags: this.tags({}),
                    },
                    opts,
                );
                return [route.name, nlb.dnsName.apply((host) => ({ internal: [{ host, port: route.port }], external: [] }))];
            }),
        );
    }

    private tags(extra: Record<string, string>): Record<string, string> {
        return { "hadb:stack": pulumi.getStack(), "hadb:target": this.internals.name, ...extra };
    }

    /** State behind the public surface (component schemas see only public, plain properties). */
    private get internals(): AwsInternals {
        return AWS_INTERNALS.get(this)!;
    }
}
