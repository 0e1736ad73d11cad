import * as pulumi from "@pulumi/pulumi";
import type { HealthCheckTiming } from "../components/haproxy/config";

/**
 * Stack configuration, read once. Every default lives in Pulumi.yaml's config schema (the CLI applies it,
 * and so does the test harness), so keys with a default are required here and none is repeated.
 */
export interface StackConfig {
    readonly preset: string;
    /** Which engines the preset deploys: "postgres", "mysql" or "both". */
    readonly engine: string;
    readonly target: string;
    readonly appPasswordRotation: number;
    readonly docker: {
        readonly baseImages: { readonly trixie: string; readonly sid: string };
        readonly imagesDir?: string;
        readonly networkSubnet: string;
        readonly publishAddress: string;
    };
    readonly kubernetes: {
        readonly namespace: string;
        readonly context?: string;
        readonly storageClass?: string;
        readonly registry?: string;
        readonly podCidrs: string[];
        readonly frontendServiceType: string;
        readonly clientCidrs: string[];
        readonly requireHostSpread: boolean;
    };
    readonly aws: {
        readonly region?: string;
        readonly vpcId: string;
        /** "<subnet id> <cidr> <zone>" each. */
        readonly subnets: { readonly id: string; readonly cidr: string; readonly zone: string }[];
        readonly clientCidrs: string[];
        readonly clientSecurityGroupIds: string[];
        readonly allowSingleZone: boolean;
        readonly databaseInstanceType: string;
        readonly amiId?: string;
        /** "haproxy" (two HAProxy instances behind an NLB) or "nlb-direct" (an NLB straight at the members). */
        readonly frontend: string;
    };
    readonly etcd: { readonly members: number; readonly publishClientPortsFrom?: number };
    readonly frontend: { readonly instances: number; readonly checks: HealthCheckTiming; readonly publish: boolean };
    readonly postgres: {
        readonly members: number;
        readonly timingProfile: string;
        readonly synchronousMode: string;
        readonly failsafeMode: boolean;
        readonly parameters: Record<string, string>;
        readonly bootstrapSql?: string;
        readonly ports: FrontendPorts;
        readonly fleet: Fleet;
    };
    readonly mysql: {
        readonly members: number;
        readonly mode: string;
        readonly timingProfile: string;
        readonly rebootFromMajority: boolean;
        readonly serverSettings: Record<string, string>;
        readonly bootstrapSql?: string;
        readonly ports: FrontendPorts;
        readonly fleet: Fleet;
    };
}

type FrontendPorts = { readonly readWrite: number; readonly readOnly: number; readonly analytics: number; readonly stats: number };
/** A read-replica fleet: `replicas` in all, `analytics` of them on the analytics endpoint. No fleet when 0. */
type Fleet = { readonly replicas: number; readonly analytics: number };

export function readStackConfig(): StackConfig {
    const c = new pulumi.Config("hadb");
    return {
        preset: c.require("preset"),
        engine: c.require("engine"),
        target: c.require("target"),
        appPasswordRotation: c.requireNumber("appPasswordRotation"),
        docker: {
            baseImages: { trixie: c.require("baseImageTrixie"), sid: c.require("baseImageSid") },
            imagesDir: c.get("dockerImagesDir") || undefined,
            networkSubnet: c.require("networkSubnet"),
            publishAddress: c.require("publishAddress"),
        },
        kubernetes: {
            namespace: c.require("kubernetesNamespace"),
            context: c.get("kubernetesContext") || undefined,
            storageClass: c.get("kubernetesStorageClass") || undefined,
            registry: c.get("kubernetesRegistry") || undefined,
            podCidrs: c.require("kubernetesPodCidrs").split(",").map((r) => r.trim()),
            frontendServiceType: c.require("kubernetesFrontendServiceType"),
            clientCidrs: list(c.get("kubernetesClientCidrs")),
            requireHostSpread: c.requireBoolean("kubernetesRequireHostSpread"),
        },
        aws: {
            region: c.get("awsRegion") || undefined,
            vpcId: c.require("awsVpcId"),
            subnets: c.requireObject<string[]>("awsSubnets").map((line) => {
                const [id, cidr, zone] = line.trim().split(/\s+/);
                return { id, cidr, zone };
            }),
            clientCidrs: list(c.get("awsClientCidrs")),
            clientSecurityGroupIds: list(c.get("awsClientSecurityGroupIds")),
            allowSingleZone: c.requireBoolean("awsAllowSingleZone"),
            databaseInstanceType: c.require("awsDatabaseInstanceType"),
            amiId: c.get("awsAmiId") || undefined,
            frontend: c.require("awsFrontend"),
        },
        etcd: { members: c.requireNumber("etcdMembers"), publishClientPortsFrom: c.getNumber("etcdPublishClientPortsFrom") || undefined },
        frontend: {
            instances: c.requireNumber("haproxyInstances"),
            checks: {
                intervalMs: c.requireNumber("haproxyCheckIntervalMs"),
                fall: c.requireNumber("haproxyCheckFall"),
                rise: c.requireNumber("haproxyCheckRise"),
                fastDown: c.requireBoolean("haproxyFastDown"),
            },
            publish: c.requireBoolean("publishFrontends"),
        },
        postgres: {
            members: c.requireNumber("postgresMembers"),
            timingProfile: c.require("postgresTiming"),
            synchronousMode: c.require("postgresSynchronousMode"),
            failsafeMode: c.requireBoolean("postgresFailsafeMode"),
            parameters: namedValues(c, "postgresParameters"),
            bootstrapSql: c.get("postgresBootstrapSql") || undefined,
            ports: frontendPorts(c, "postgres"),
            fleet: fleet(c, "postgres"),
        },
        mysql: {
            members: c.requireNumber("mysqlMembers"),
            mode: c.require("mysqlMode"),
            timingProfile: c.require("mysqlTiming"),
            rebootFromMajority: c.requireBoolean("mysqlRebootFromMajority"),
            serverSettings: namedValues(c, "mysqlServerSettings"),
            bootstrapSql: c.get("mysqlBootstrapSql") || undefined,
            ports: frontendPorts(c, "mysql"),
            fleet: fleet(c, "mysql"),
        },
    };
}

/** A comma-separated config value as a list. */
function list(value: string | undefined): string[] {
    return (value ?? "").split(",").map((r) => r.trim()).filter(Boolean);
}

/** `<prefix>ReadWritePort`, `<prefix>ReadOnlyPort`, `<prefix>AnalyticsPort` and `<prefix>StatsPort`. */
function frontendPorts(c: pulumi.Config, prefix: string): FrontendPorts {
    return {
        readWrite: c.requireNumber(`${prefix}ReadWritePort`),
        readOnly: c.requireNumber(`${prefix}ReadOnlyPort`),
        analytics: c.requireNumber(`${prefix}AnalyticsPort`),
        stats: c.requireNumber(`${prefix}StatsPort`),
    };
}

/** `<prefix>ReadReplicas` and `<prefix>AnalyticsReplicas`. */
function fleet(c: pulumi.Config, prefix: string): Fleet {
    return { replicas: c.requireNumber(`${prefix}ReadReplicas`), analytics: c.requireNumber(`${prefix}AnalyticsReplicas`) };
}

/** `name=value,name=value` as a map; an entry without '=' is an error naming the key. */
function namedValues(c: pulumi.Config, key: string): Record<string, string> {
    const raw = c.get(key) ?? "";
    const entries = raw.split(",").map((e) => e.trim()).filter(Boolean);
    return Object.fromEntries(
        entries.map((entry) => {
            const at = entry.indexOf("=");
            if (at < 1) throw new pulumi.RunError(`config \`hadb:${key}\` has "${entry}": not name=value. Fix: write name=value pairs separated by commas.`);
            return [entry.slice(0, at).trim(), entry.slice(at + 1).trim()];
        }),
    );
}
