export * from "./core/errors";
export * from "./core/plan";
export * from "./etcd/plan";
export * from "./etcd/etcdCluster";
export * from "./targets/docker";
