import { DockerTarget, EtcdCluster } from "../../components";
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
    return {
        etcd: { endpoints: etcd.publishedClientEndpoints, members: etcd.memberNames },
    };
}
