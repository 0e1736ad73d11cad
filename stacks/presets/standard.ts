import * as pulumi from "@pulumi/pulumi";
import {
    DeployedEndpoint,
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
    const pgProxy = new HaproxyFrontend("pg-proxy", { ...frontend, backends: pg.backends, ports: config.postgres.ports });
    const mysql = new MySqlCluster("mysql", {
        target,
        members: config.mysql.members,
        mode: config.mysql.mode as GroupMode,
        timingProfile: config.mysql.timingProfile as GroupTimingProfile,
        serverSettings: config.mysql.serverSettings,
        appPasswordRotation: config.appPasswordRotation,
        bootstrapSql: config.mysql.bootstrapSql,
    });
    const mysqlProxy = new HaproxyFrontend("mysql-proxy", { ...frontend, backends: mysql.backends, ports: config.mysql.ports });
    return {
        etcd: { endpoints: etcd.publishedClientEndpoints, members: etcd.memberNames },
        postgres: {
            rwUrl: pg.connectionUrl(clientAddress(pgProxy.readWrite), "app"),
            roUrl: pg.connectionUrl(clientAddress(pgProxy.readOnly), "app"),
            superuserUrl: pg.connectionUrl(clientAddress(pgProxy.readWrite), "superuser"),
            members: pg.memberNames,
        },
        mysql: {
            rwUrl: mysql.connectionUrl(clientAddress(mysqlProxy.readWrite), "app"),
            roUrl: mysql.connectionUrl(clientAddress(mysqlProxy.readOnly), "app"),
            adminUrl: mysql.connectionUrl(clientAddress(mysqlProxy.readWrite), "admin"),
            members: mysql.memberNames,
        },
    };
}
