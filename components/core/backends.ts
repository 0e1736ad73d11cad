import { DeployedMember } from "./plan";

/** The database engines a proxy can front: each answers role checks its own way on the same paths. */
export const Engine = { Postgres: "postgres", Mysql: "mysql" } as const;
export type Engine = (typeof Engine)[keyof typeof Engine];

/** One database server behind a proxy: SQL on `port`, its role answered over HTTP on `checkPort`. */
export interface BackendServer {
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly checkPort: number;
}

/**
 * What a cluster hands a proxy: its servers, which engine they run and whether every primary takes writes.
 * Plain values, known at preview, so the proxy's configuration is too. A proxy reads the engine from here,
 * so it cannot be wired to a cluster in the wrong mode.
 */
export interface ClusterBackends {
    readonly engine: Engine;
    /** Every ONLINE member takes writes (MySQL multi-primary), not only the first. */
    readonly multiWriter: boolean;
    /** The cluster's own members: candidates for the primary and, as replicas, the read-only pool. */
    readonly servers: BackendServer[];
    /** Read replicas that are not members (a fleet): in the read-only pool, never the primary. */
    readonly readers?: BackendServer[];
    /** Replicas kept for analytics: served on their own endpoint, kept out of the read-only pool. */
    readonly analytics?: BackendServer[];
    /** The fleet's lag bound for the read-only and analytics pools, in the engine's unit (see HaproxyFrontend). */
    readonly maxLag?: number;
}

/** A cluster's deployed members as backends: `sqlPort` and `checkPort` name member ports. */
export function clusterBackends(engine: Engine, multiWriter: boolean, members: readonly DeployedMember[], sqlPort: string, checkPort: string): ClusterBackends {
    return {
        engine,
        multiWriter,
        servers: members.map((m) => ({ name: m.name, host: m.host, port: m.ports[sqlPort], checkPort: m.ports[checkPort] })),
    };
}
