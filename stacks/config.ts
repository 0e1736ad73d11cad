import * as pulumi from "@pulumi/pulumi";

/** Stack configuration, read once. Defaults live in Pulumi.yaml's schema; these fallbacks mirror them. */
export interface StackConfig {
    readonly preset: string;
    readonly baseImages: { readonly trixie: string; readonly sid: string };
    readonly networkSubnet: string;
    readonly publishAddress: string;
    readonly etcd: { readonly members: number; readonly publishClientPortsFrom: number };
    readonly haproxyCheckIntervalMs: number;
    readonly mysql: {
        readonly members: number;
        readonly mode: string;
        readonly timing: string;
        readonly bootstrapSql?: string;
        readonly ports: FrontendPorts;
    };
    readonly postgres: {
        readonly members: number;
        readonly timing: string;
        readonly synchronousMode: string;
        readonly bootstrapSql?: string;
        readonly ports: FrontendPorts;
    };
}

export function readStackConfig(): StackConfig {
    const c = new pulumi.Config("hadb");
    return {
        preset: c.get("preset") ?? "local",
        baseImages: { trixie: c.get("baseImageTrixie") ?? "debian:trixie-slim", sid: c.get("baseImageSid") ?? "debian:sid-slim" },
        networkSubnet: c.get("networkSubnet") ?? "172.29.0.0/24",
        publishAddress: c.get("publishAddress") ?? "127.0.0.1",
        etcd: { members: c.getNumber("etcdMembers") ?? 3, publishClientPortsFrom: c.getNumber("etcdPublishClientPortsFrom") ?? 23790 },
        haproxyCheckIntervalMs: c.getNumber("haproxyCheckIntervalMs") ?? 1000,
        mysql: {
            members: c.getNumber("mysqlMembers") ?? 3,
            mode: c.get("mysqlMode") ?? "single-primary",
            timing: c.get("mysqlTiming") ?? "production",
            bootstrapSql: c.get("mysqlBootstrapSql") || undefined,
            ports: frontendPorts(c, "mysql", { readWrite: 6446, readOnly: 6447, stats: 7001 }),
        },
        postgres: {
            members: c.getNumber("postgresMembers") ?? 3,
            timing: c.get("postgresTiming") ?? "production",
            synchronousMode: c.get("postgresSynchronousMode") ?? "on",
            bootstrapSql: c.get("postgresBootstrapSql") || undefined,
            ports: frontendPorts(c, "postgres", { readWrite: 5000, readOnly: 5001, stats: 7000 }),
        },
    };
}

type FrontendPorts = { readonly readWrite: number; readonly readOnly: number; readonly stats: number };

/** `<prefix>ReadWritePort`, `<prefix>ReadOnlyPort` and `<prefix>StatsPort`. */
function frontendPorts(c: pulumi.Config, prefix: string, defaults: FrontendPorts): FrontendPorts {
    return {
        readWrite: c.getNumber(`${prefix}ReadWritePort`) ?? defaults.readWrite,
        readOnly: c.getNumber(`${prefix}ReadOnlyPort`) ?? defaults.readOnly,
        stats: c.getNumber(`${prefix}StatsPort`) ?? defaults.stats,
    };
}
