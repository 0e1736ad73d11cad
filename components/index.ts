// hadb's public API: the components, their arguments and what they return. Renderers and planners are
// internal; tests import them from their modules.
export { EtcdCluster, EtcdClusterArgs } from "./etcd/etcdCluster";
export { EtcdSettings } from "./etcd/plan";
export { PostgresCluster, PostgresClusterArgs, PostgresPasswordArgs } from "./postgres/postgresCluster";
export { FailoverTiming, PatroniTags, PostgresSettings, SynchronousMode, TimingProfile } from "./postgres/settings";
export { MySqlCluster, MySqlClusterArgs, MySqlPasswordArgs } from "./mysql/mysqlCluster";
export { ConsistencyLevel, ExitStateAction, GroupMode, GroupTiming, GroupTimingProfile, MySqlSettings } from "./mysql/settings";
export { HaproxyFrontend, HaproxyFrontendArgs } from "./haproxy/frontend";
export { ReadReplicaFleet, ReadReplicaFleetArgs } from "./replicas/readReplicaFleet";
export { FleetSettings } from "./core/replicas";
export { FrontendPorts, FrontendSettings } from "./haproxy/plan";
export { HealthCheckTiming } from "./haproxy/config";
export { DockerBaseImages, DockerTarget, DockerTargetArgs } from "./targets/docker";
export { KubernetesTarget, KubernetesTargetArgs } from "./targets/kubernetes";
export { AwsInstanceTypes, AwsSubnet, AwsTarget, AwsTargetArgs, AwsVolumeSettings } from "./targets/aws";
export { NlbFrontend, NlbFrontendArgs } from "./nlb/nlbFrontend";
export { TargetSpec } from "./targets/targetSpec";
export { BackendServer, ClusterBackends, Engine } from "./core/backends";
export { DeployedEndpoint, ServiceAddress, Target } from "./core/plan";
export { InvalidArgumentError } from "./core/errors";
