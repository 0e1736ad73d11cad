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
        readonly ports: { readonly readWrite: number; readonly readOnly: number; readonly stats: number };
    };
    readonly postgres: {
        readonly members: number;
        readonly timing: string;
        readonly synchronousMode: string;
        readonly bootstrapSql?: string;
        readonly ports: { readonly readWrite: number; readonly readOnly: number; readonly stats: number };
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
            ports: {
                readWrite: c.getNumber("mysqlReadWritePort") ?? 6446,
                readOnly: c.getNumber("mysqlReadOnlyPort") ?? 6447,
                stats: c.getNumber("mysqlStatsPort") ?? 7001,
            },
        },
        postgres: {
            members: c.getNumber("postgresMembers") ?? 3,
            timing: c.get("postgresTiming") ?? "production",
            synchronousMode: c.get("postgresSynchronousMode") ?? "on",
            bootstrapSql: c.get("postgresBootstrapSql") || undefined,
            ports: {
                readWrite: c.getNumber("postgresReadWritePort") ?? 5000,
                readOnly: c.getNumber("postgresReadOnlyPort") ?? 5001,
                stats: c.getNumber("postgresStatsPort") ?? 7000,
            },
        },
    };
}
