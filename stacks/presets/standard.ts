import * as pulumi from "@pulumi/pulumi";
import {
    AwsTarget,
    ClusterBackends,
    DeployedEndpoint,
    FrontendPorts,
    ReadReplicaFleet,
    ServiceAddress,
    EtcdCluster,
    GroupMode,
    GroupTimingProfile,
    HaproxyFrontend,
    HaproxyFrontendArgs,
    MySqlCluster,
    NlbFrontend,
    PostgresCluster,
    SynchronousMode,
    Target,
    TimingProfile,
} from "../../components";
import { StackConfig } from "../config";

/** The address clients of this stack use: outside the network when exposed (published ports), else inside it. */
function clientAddress(endpoint: pulumi.Output<DeployedEndpoint>) {
    return endpoint.apply((e) => e.external[0] ?? e.internal[0]);
}

/** A read-replica fleet of the cluster when the stack asks for one: the proxy's backends and the replicas' names. */
function withFleet(name: string, cluster: PostgresCluster | MySqlCluster, fleet: { replicas: number; analytics: number }) {
    if (fleet.replicas === 0) return { backends: cluster.backends, outputs: {} };
    const reads = new ReadReplicaFleet(name, { source: cluster, replicas: fleet.replicas, analytics: fleet.analytics });
    return { backends: reads.backends, outputs: { replicas: reads.memberNames } };
}

/** The stack's ports for a proxy: the analytics port only when there are analytics replicas to serve. */
function servedPorts(ports: FrontendPorts, backends: ClusterBackends): FrontendPorts {
    return backends.analytics?.length ? ports : { ...ports, analytics: undefined };
}

/** `analyticsUrl` when the proxy serves analytics replicas. */
function analyticsUrl(proxy: FrontDoor, url: (address: pulumi.Output<ServiceAddress>) => pulumi.Output<string>) {
    return proxy.analytics ? { analyticsUrl: url(clientAddress(proxy.analytics)) } : {};
}

/** Engines `hadb:engine` may name. */
export const ENGINES = ["postgres", "mysql", "both"] as const;

type Frontend = Pick<HaproxyFrontendArgs, "target" | "instances" | "publish" | "checks"> & { readonly direct: boolean };

/** Where clients connect: an HAProxy tier, or on AWS with `hadb:awsFrontend nlb-direct` an NLB straight at the members. */
type FrontDoor = Pick<HaproxyFrontend, "readWrite" | "readOnly" | "analytics">;

function frontDoor(name: string, frontend: Frontend, backends: ClusterBackends, ports: FrontendPorts): FrontDoor {
    const { direct, ...haproxy } = frontend;
    if (direct) return new NlbFrontend(name.replace(/-proxy$/, "-nlb"), { target: frontend.target as AwsTarget, backends, ports: { readWrite: ports.readWrite, readOnly: ports.readOnly, analytics: ports.analytics } });
    return new HaproxyFrontend(name, { ...haproxy, backends, ports: servedPorts(ports, backends) });
}

/** PostgreSQL on Patroni with its etcd, a fleet when the stack sizes one, behind HAProxy; its stack outputs. */
function postgresStack(config: StackConfig, target: Target, frontend: Frontend) {
    const etcd = new EtcdCluster("etcd", { target, members: config.etcd.members, publishClientPortsFrom: config.etcd.publishClientPortsFrom });
    const pg = new PostgresCluster(
        "pg",
        {
            target,
            etcdHosts: etcd.hosts,
            members: config.postgres.members,
            timingProfile: config.postgres.timingProfile as TimingProfile,
            synchronousMode: config.postgres.synchronousMode as SynchronousMode,
            failsafeMode: config.postgres.failsafeMode,
            parameters: config.postgres.parameters,
            appPasswordRotation: config.appPasswordRotation,
            bootstrapSql: config.postgres.bootstrapSql,
        },
        { dependsOn: [etcd] },
    );
    const reads = withFleet("pg-reads", pg, config.postgres.fleet);
    const proxy = frontDoor("pg-proxy", frontend, reads.backends, config.postgres.ports);
    return {
        etcd: { endpoints: etcd.publishedClientEndpoints, members: etcd.memberNames },
        postgres: {
            rwUrl: pg.connectionUrl(clientAddress(proxy.readWrite), "app"),
            roUrl: pg.connectionUrl(clientAddress(proxy.readOnly), "app"),
            ...analyticsUrl(proxy, (address) => pg.connectionUrl(address, "app")),
            superuserUrl: pg.connectionUrl(clientAddress(proxy.readWrite), "superuser"),
            members: pg.memberNames,
            ...reads.outputs,
        },
    };
}

/** A MySQL Group Replication group, a fleet when the stack sizes one, behind HAProxy; its stack outputs. */
function mysqlStack(config: StackConfig, target: Target, frontend: Frontend) {
    const mysql = new MySqlCluster("mysql", {
        target,
        members: config.mysql.members,
        mode: config.mysql.mode as GroupMode,
        timingProfile: config.mysql.timingProfile as GroupTimingProfile,
        rebootFromMajority: config.mysql.rebootFromMajority,
        serverSettings: config.mysql.serverSettings,
        appPasswordRotation: config.appPasswordRotation,
        bootstrapSql: config.mysql.bootstrapSql,
    });
    const reads = withFleet("mysql-reads", mysql, config.mysql.fleet);
    const proxy = frontDoor("mysql-proxy", frontend, reads.backends, config.mysql.ports);
    return {
        mysql: {
            rwUrl: mysql.connectionUrl(clientAddress(proxy.readWrite), "app"),
            roUrl: mysql.connectionUrl(clientAddress(proxy.readOnly), "app"),
            ...analyticsUrl(proxy, (address) => mysql.connectionUrl(address, "app")),
            adminUrl: mysql.connectionUrl(clientAddress(proxy.readWrite), "admin"),
            members: mysql.memberNames,
            ...reads.outputs,
        },
    };
}

/**
 * PostgreSQL on Patroni with its own etcd, and a MySQL Group Replication group (either or both, as `hadb:engine`
 * says), each behind HAProxy with the read-replica fleet the stack sizes, on any target.
 */
export function standardPreset(config: StackConfig, target: Target) {
    if (!(ENGINES as readonly string[]).includes(config.engine)) {
        throw new pulumi.RunError(`config \`hadb:engine\` is "${config.engine}": not an engine. Fix: use one of ${ENGINES.join(", ")}.`);
    }
    const frontend: Frontend = {
        target,
        instances: config.frontend.instances,
        publish: config.frontend.publish,
        checks: config.frontend.checks,
        direct: config.aws.frontend === "nlb-direct",
    };
    return {
        ...(config.engine !== "mysql" ? postgresStack(config, target, frontend) : {}),
        ...(config.engine !== "postgres" ? mysqlStack(config, target, frontend) : {}),
    };
}
