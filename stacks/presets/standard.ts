import * as pulumi from "@pulumi/pulumi";
import {
    ClusterBackends,
    DeployedEndpoint,
    FrontendPorts,
    ReadReplicaFleet,
    ServiceAddress,
    EtcdCluster,
    GroupMode,
    GroupTimingProfile,
    HaproxyFrontend,
    MySqlCluster,
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
function analyticsUrl(proxy: HaproxyFrontend, url: (address: pulumi.Output<ServiceAddress>) => pulumi.Output<string>) {
    return proxy.analytics ? { analyticsUrl: url(clientAddress(proxy.analytics)) } : {};
}

/**
 * PostgreSQL on Patroni with its own etcd, and a MySQL Group Replication group, each behind HAProxy, on any
 * target: what the dev stack runs on Docker and the k8s stack on Kubernetes.
 */
export function standardPreset(config: StackConfig, target: Target) {
    const checks = { intervalMs: config.frontend.checkIntervalMs, fall: 2, rise: 1 };
    const frontend = { target, instances: config.frontend.instances, publish: config.frontend.publish, checks };
    const etcd = new EtcdCluster("etcd", { target, members: config.etcd.members, publishClientPortsFrom: config.etcd.publishClientPortsFrom });
    const pg = new PostgresCluster(
        "pg",
        {
            target,
            etcdHosts: etcd.hosts,
            members: config.postgres.members,
            timingProfile: config.postgres.timingProfile as TimingProfile,
            synchronousMode: config.postgres.synchronousMode as SynchronousMode,
            parameters: config.postgres.parameters,
            appPasswordRotation: config.appPasswordRotation,
            bootstrapSql: config.postgres.bootstrapSql,
        },
        { dependsOn: [etcd] },
    );
    const pgReads = withFleet("pg-reads", pg, config.postgres.fleet);
    const pgProxy = new HaproxyFrontend("pg-proxy", { ...frontend, backends: pgReads.backends, ports: servedPorts(config.postgres.ports, pgReads.backends) });
    const mysql = new MySqlCluster("mysql", {
        target,
        members: config.mysql.members,
        mode: config.mysql.mode as GroupMode,
        timingProfile: config.mysql.timingProfile as GroupTimingProfile,
        serverSettings: config.mysql.serverSettings,
        appPasswordRotation: config.appPasswordRotation,
        bootstrapSql: config.mysql.bootstrapSql,
    });
    const mysqlReads = withFleet("mysql-reads", mysql, config.mysql.fleet);
    const mysqlProxy = new HaproxyFrontend("mysql-proxy", { ...frontend, backends: mysqlReads.backends, ports: servedPorts(config.mysql.ports, mysqlReads.backends) });
    return {
        etcd: { endpoints: etcd.publishedClientEndpoints, members: etcd.memberNames },
        postgres: {
            rwUrl: pg.connectionUrl(clientAddress(pgProxy.readWrite), "app"),
            roUrl: pg.connectionUrl(clientAddress(pgProxy.readOnly), "app"),
            ...analyticsUrl(pgProxy, (address) => pg.connectionUrl(address, "app")),
            superuserUrl: pg.connectionUrl(clientAddress(pgProxy.readWrite), "superuser"),
            members: pg.memberNames,
            ...pgReads.outputs,
        },
        mysql: {
            rwUrl: mysql.connectionUrl(clientAddress(mysqlProxy.readWrite), "app"),
            roUrl: mysql.connectionUrl(clientAddress(mysqlProxy.readOnly), "app"),
            ...analyticsUrl(mysqlProxy, (address) => mysql.connectionUrl(address, "app")),
            adminUrl: mysql.connectionUrl(clientAddress(mysqlProxy.readWrite), "admin"),
            members: mysql.memberNames,
            ...mysqlReads.outputs,
        },
    };
}
