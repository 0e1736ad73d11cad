import { readUserData, USER_DATA_LIMIT } from "../../components/targets/awsHost";
import { AwsSubnet, ipToNumber, NLB_HEALTH_CHECK, parseCidr } from "../../components/targets/awsPlan";
import { mockId, RecordedResource } from "../harness/mockRun";

/**
 * The rules an AWS deployment of hadb must keep, checked on the resources a stack registers (under mocks,
 * nothing is deployed). Each returns the violations it finds, as sentences; the unit tests run every rule on the
 * prod stack (none) and on a copy broken on purpose (the rule must notice).
 */
export interface AwsFacts {
    readonly resources: RecordedResource[];
    readonly subnets: readonly AwsSubnet[];
    /** Every generated password: none may appear in user data. */
    readonly secrets: readonly string[];
    /** Ranges and groups the stack admits clients from. */
    readonly clientCidrs: readonly string[];
    readonly clientSecurityGroupIds: readonly string[];
}

const of = (facts: AwsFacts, type: string) => facts.resources.filter((r) => r.type === type);
const byName = (facts: AwsFacts, type: string, name: string) => facts.resources.find((r) => r.type === type && r.name === name);
const INSTANCE = "aws:ec2/instance:Instance";

function subnetOf(facts: AwsFacts, instance: RecordedResource): AwsSubnet | undefined {
    const nic = byName(facts, "aws:ec2/networkInterface:NetworkInterface", `${instance.name}-nic`);
    return facts.subnets.find((s) => s.id === nic?.inputs.subnetId);
}

export const AWS_RULES: Record<string, (facts: AwsFacts) => string[]> = {
    "every instance runs one member on its own network interface": (facts) =>
        of(facts, INSTANCE).flatMap((i) => {
            const nic = byName(facts, "aws:ec2/networkInterface:NetworkInterface", `${i.name}-nic`);
            if (!nic) return [`${i.name}: no network interface ${i.name}-nic`];
            return i.inputs.tags?.["hadb:member"] === i.name ? [] : [`${i.name}: tagged as member ${i.inputs.tags?.["hadb:member"]}`];
        }),
    "members of a service are in distinct zones while there are zones left": (facts) => {
        const byService = new Map<string, string[]>();
        for (const i of of(facts, INSTANCE)) {
            const zone = subnetOf(facts, i)?.zone ?? "?";
            byService.set(i.inputs.tags?.["hadb:service"], [...(byService.get(i.inputs.tags?.["hadb:service"]) ?? []), zone]);
        }
        const zones = new Set(facts.subnets.map((s) => s.zone)).size;
        return [...byService].flatMap(([service, used]) => (new Set(used).size < Math.min(used.length, zones) ? [`${service}: members in zones ${used.join(", ")}`] : []));
    },
    "each data volume is in its instance's zone": (facts) =>
        of(facts, "aws:ec2/volumeAttachment:VolumeAttachment").flatMap((a) => {
            const volume = facts.resources.find((r) => r.type === "aws:ebs/volume:Volume" && a.dependencies.includes(r.urn));
            const instance = facts.resources.find((r) => r.type === INSTANCE && a.dependencies.includes(r.urn));
            if (!volume || !instance) return [`${a.name}: attaches no recorded volume or instance`];
            const zone = subnetOf(facts, instance)?.zone;
            return volume.inputs.availabilityZone === zone ? [] : [`${a.name}: volume in ${volume.inputs.availabilityZone}, instance in ${zone}`];
        }),
    "fixed private IPs are inside their subnet's usable range and unique": (facts) => {
        const seen = new Map<string, string>();
        return of(facts, "aws:ec2/networkInterface:NetworkInterface").flatMap((nic) => {
            const ip: string = nic.inputs.privateIps?.[0];
            const subnet = facts.subnets.find((s) => s.id === nic.inputs.subnetId);
            const problems: string[] = [];
            if (!subnet) problems.push(`${nic.name}: subnet ${nic.inputs.subnetId} is not one of the stack's`);
            else {
                const { base, size } = parseCidr(subnet.cidr)!;
                const n = ipToNumber(ip ?? "");
                if (!ip || n < base + 4 || n >= base + size - 1) problems.push(`${nic.name}: ${ip} is not usable in ${subnet.cidr}`);
            }
            if (seen.has(ip)) problems.push(`${nic.name}: ${ip} is also ${seen.get(ip)}'s`);
            seen.set(ip, nic.name);
            return problems;
        });
    },
    "no ingress from the whole Internet, and only from hadb's groups or the named clients": (facts) => {
        const hadbGroups = new Set(of(facts, "aws:ec2/securityGroup:SecurityGroup").map((g) => mockId(g.type, g.name)));
        const inline = of(facts, "aws:ec2/securityGroup:SecurityGroup").filter((g) => g.inputs.ingress?.length).map((g) => `${g.name}: inline ingress rules`);
        return [
            ...inline,
            ...of(facts, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").flatMap((r) => {
                const { cidrIpv4, cidrIpv6, referencedSecurityGroupId } = r.inputs;
                if (cidrIpv6 || (cidrIpv4 && parseCidr(cidrIpv4)!.prefix === 0)) return [`${r.name}: open to ${cidrIpv4 ?? cidrIpv6}`];
                if (cidrIpv4 && !facts.clientCidrs.includes(cidrIpv4)) return [`${r.name}: from ${cidrIpv4}, not a client range`];
                if (referencedSecurityGroupId && !hadbGroups.has(referencedSecurityGroupId) && !facts.clientSecurityGroupIds.includes(referencedSecurityGroupId)) {
                    return [`${r.name}: from ${referencedSecurityGroupId}, neither hadb's nor a client group`];
                }
                if (!cidrIpv4 && !referencedSecurityGroupId) return [`${r.name}: from anywhere`];
                return [];
            }),
        ];
    },
    "IMDSv2 only, no public address, no SSH key": (facts) =>
        of(facts, INSTANCE).flatMap((i) => [
            ...(i.inputs.metadataOptions?.httpTokens === "required" ? [] : [`${i.name}: IMDSv1 allowed`]),
            ...(i.inputs.associatePublicIpAddress ? [`${i.name}: public IP`] : []),
            ...(i.inputs.keyName ? [`${i.name}: SSH key ${i.inputs.keyName}`] : []),
        ]),
    "disks are encrypted": (facts) => [
        ...of(facts, INSTANCE).flatMap((i) => (i.inputs.rootBlockDevice?.encrypted === true ? [] : [`${i.name}: root volume unencrypted`])),
        ...of(facts, "aws:ebs/volume:Volume").flatMap((v) => (v.inputs.encrypted === true ? [] : [`${v.name}: unencrypted`])),
    ],
    "no secret in user data, which stays within 16 KB": (facts) =>
        of(facts, INSTANCE).flatMap((i) => {
            const userData: string = i.inputs.userData ?? "";
            const problems = Buffer.byteLength(userData) > USER_DATA_LIMIT ? [`${i.name}: user data of ${Buffer.byteLength(userData)} bytes`] : [];
            const { document, script } = readUserData(userData);
            const text = [userData, JSON.stringify(document), script].join("\n");
            for (const secret of facts.secrets) {
                if ([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)].some((form) => text.includes(form))) problems.push(`${i.name}: a password is in its user data`);
            }
            return problems;
        }),
    "files parameters holding secrets are SecureStrings": (facts) =>
        of(facts, "aws:ssm/parameter:Parameter")
            .filter((p) => facts.secrets.some((s) => String(p.inputs.value ?? "").includes(s)))
            .flatMap((p) => (p.inputs.type === "SecureString" ? [] : [`${p.name}: a password in a ${p.inputs.type} parameter`])),
    "instance roles read only their own parameters": (facts) => [
        ...of(facts, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => `${a.name}: managed policy ${a.inputs.policyArn} (AmazonSSMManagedInstanceCore reads every parameter)`),
        ...of(facts, "aws:iam/rolePolicy:RolePolicy").flatMap((p) => {
            const statements: { Action: string[]; Resource: string[] }[] = JSON.parse(p.inputs.policy).Statement;
            return statements
                .filter((s) => s.Action.some((a) => /^ssm:(Get|Put)Parameter/.test(a)) && s.Resource.some((r) => r.includes("*")))
                .map(() => `${p.name}: SSM parameters by wildcard`);
        }),
    ],
    "names within AWS's limits": (facts) => [
        ...of(facts, "aws:lb/loadBalancer:LoadBalancer").filter((l) => !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/.test(l.inputs.name)).map((l) => `${l.name}: load balancer name ${l.inputs.name}`),
        ...of(facts, "aws:lb/targetGroup:TargetGroup").filter((t) => !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/.test(t.inputs.name)).map((t) => `${t.name}: target group name ${t.inputs.name}`),
        ...of(facts, "aws:iam/role:Role").filter((r) => !/^[\w+=,.@-]{1,64}$/.test(r.inputs.name)).map((r) => `${r.name}: role name ${r.inputs.name}`),
    ],
    "health checks and idle timeouts within AWS's ranges": (facts) => [
        ...of(facts, "aws:lb/targetGroup:TargetGroup").flatMap((t) => {
            const h = { ...NLB_HEALTH_CHECK, ...t.inputs.healthCheck };
            const bad = [
                h.interval < 5 || h.interval > 300,
                h.healthyThreshold < 2 || h.healthyThreshold > 10,
                h.unhealthyThreshold < 2 || h.unhealthyThreshold > 10,
                h.timeout < 2 || h.timeout > 120,
                t.inputs.deregistrationDelay < 0 || t.inputs.deregistrationDelay > 3600,
            ];
            return bad.some(Boolean) ? [`${t.name}: health check ${JSON.stringify(t.inputs.healthCheck)}`] : [];
        }),
        ...of(facts, "aws:lb/listener:Listener").flatMap((l) => (l.inputs.tcpIdleTimeoutSeconds >= 60 && l.inputs.tcpIdleTimeoutSeconds <= 6000 ? [] : [`${l.name}: idle timeout ${l.inputs.tcpIdleTimeoutSeconds}`])),
    ],
};

export function awsViolations(facts: AwsFacts): string[] {
    return Object.entries(AWS_RULES).flatMap(([rule, check]) => check(facts).map((v) => `${rule}: ${v}`));
}
