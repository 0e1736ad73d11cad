import { DockerTarget, EtcdCluster, GroupMode, HaproxyFrontend, MySqlCluster, MySqlSettings, PostgresCluster, PostgresSettings, SynchronousMode } from "../../components";
import { StackConfig } from "../config";

/** Everything on the local Docker engine: what developers and the live tests run. */
export function localPreset(config: StackConfig) {
    const local = new DockerTarget("local", {
        baseImages: config.baseImages,
        subnet: config.networkSubnet,
        publishAddress: config.publishAddress,
    });
    const etcd = new EtcdCluster("etcd", {
        target: local,
        members: config.etcd.members,
        publishClientPortsFrom: config.etcd.publishClientPortsFrom,
    });
    const pg = new PostgresCluster("pg", {
        target: local,
        dcs: etcd,
        members: config.postgres.members,
        timing: config.postgres.timing as PostgresSettings["timing"],
        synchronousMode: config.postgres.synchronousMode as SynchronousMode,
        bootstrapSql: config.postgres.bootstrapSql,
    });
    const pgProxy = new HaproxyFrontend("pg-proxy", {
        target: local,
        mode: "postgres",
        backends: pg.backends,
        ports: config.postgres.ports,
        publish: true,
        checks: { intervalMs: config.haproxyCheckIntervalMs, fall: 2, rise: 1 },
    });
    const mysql = new MySqlCluster("mysql", {
        target: local,
        members: config.mysql.members,
        mode: config.mysql.mode as GroupMode,
        timing: config.mysql.timing as MySqlSettings["timing"],
        bootstrapSql: config.mysql.bootstrapSql,
    });
    const mysqlProxy = new HaproxyFrontend("mysql-proxy", {
        target: local,
        mode: "mysql",
        backends: mysql.backends,
        multiWriter: mysql.multiPrimary,
        ports: config.mysql.ports,
        publish: true,
        checks: { intervalMs: config.haproxyCheckIntervalMs, fall: 2, rise: 1 },
    });
    const host = local.publishAddress;
    return {
        etcd: { endpoints: etcd.publishedClientEndpoints, members: etcd.memberNames },
        postgres: {
            rwUrl: pg.connectionUrl(host, pgProxy.publishedPorts.readWrite, "app"),
            roUrl: pg.connectionUrl(host, pgProxy.publishedPorts.readOnly, "app"),
            superuserUrl: pg.connectionUrl(host, pgProxy.publishedPorts.readWrite, "superuser"),
            members: pg.memberNames,
        },
        mysql: {
            rwUrl: mysql.connectionUrl(host, mysqlProxy.publishedPorts.readWrite, "app"),
            roUrl: mysql.connectionUrl(host, mysqlProxy.publishedPorts.readOnly, "app"),
            adminUrl: mysql.connectionUrl(host, mysqlProxy.publishedPorts.readWrite, "admin"),
            members: mysql.memberNames,
        },
    };
}
