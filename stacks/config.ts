import * as pulumi from "@pulumi/pulumi";

/**
 * Stack configuration, read once. Every default lives in Pulumi.yaml's config schema (the CLI applies it,
 * and so does the test harness), so keys with a default are required here and none is repeated.
 */
export interface StackConfig {
    readonly preset: string;
    readonly target: string;
    readonly docker: {
        readonly baseImages: { readonly trixie: string; readonly sid: string };
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
        readonly requireHostSpread: boolean;
    };
    readonly etcd: { readonly members: number; readonly publishClientPortsFrom?: number };
    readonly frontend: { readonly instances: number; readonly checkIntervalMs: number; readonly publish: boolean };
    readonly postgres: {
        readonly members: number;
        readonly timingProfile: string;
        readonly synchronousMode: string;
        readonly bootstrapSql?: string;
        readonly ports: FrontendPorts;
    };
    readonly mysql: {
        readonly members: number;
        readonly mode: string;
        readonly timingProfile: string;
        readonly bootstrapSql?: string;
        readonly ports: FrontendPorts;
    };
}

type FrontendPorts = { readonly readWrite: number; readonly readOnly: number; readonly stats: number };

export function readStackConfig(): StackConfig {
    const c = new pulumi.Config("hadb");
    return {
        preset: c.require("preset"),
        target: c.require("target"),
        docker: {
            baseImages: { trixie: c.require("baseImageTrixie"), sid: c.require("baseImageSid") },
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
            requireHostSpread: c.requireBoolean("kubernetesRequireHostSpread"),
        },
        etcd: { members: c.requireNumber("etcdMembers"), publishClientPortsFrom: c.getNumber("etcdPublishClientPortsFrom") || undefined },
        frontend: {
            instances: c.requireNumber("haproxyInstances"),
            checkIntervalMs: c.requireNumber("haproxyCheckIntervalMs"),
            publish: c.requireBoolean("publishFrontends"),
        },
        postgres: {
            members: c.requireNumber("postgresMembers"),
            timingProfile: c.require("postgresTiming"),
            synchronousMode: c.require("postgresSynchronousMode"),
            bootstrapSql: c.get("postgresBootstrapSql") || undefined,
            ports: frontendPorts(c, "postgres"),
        },
        mysql: {
            members: c.requireNumber("mysqlMembers"),
            mode: c.require("mysqlMode"),
            timingProfile: c.require("mysqlTiming"),
            bootstrapSql: c.get("mysqlBootstrapSql") || undefined,
            ports: frontendPorts(c, "mysql"),
        },
    };
}

/** `<prefix>ReadWritePort`, `<prefix>ReadOnlyPort` and `<prefix>StatsPort`. */
function frontendPorts(c: pulumi.Config, prefix: string): FrontendPorts {
    return {
        readWrite: c.requireNumber(`${prefix}ReadWritePort`),
        readOnly: c.requireNumber(`${prefix}ReadOnlyPort`),
        stats: c.requireNumber(`${prefix}StatsPort`),
    };
}
