import * as pulumi from "@pulumi/pulumi";
import { ImageName } from "./images";
import { httpCheck, ServicePlan } from "./plan";

/** Where a configurator answers whether the running cluster matches its declaration. */
export const CONFIGURATOR_STATUS_PORT = 8090;
export const CONFIGURATOR_FILE = "configurator.json";

/**
 * A cluster's configurator: one stateless member that keeps the running cluster equal to what the stack
 * declares (settings changed online, restarts rolled, passwords set). Its only file is the declaration, so a
 * changed declaration replaces just the configurator; its readiness means "converged", so a deployment that
 * waits for it waits for the change to land. Runs from the cluster's own image.
 */
export function planConfigurator(cluster: string, image: ImageName, program: string, declaration: pulumi.Input<string>): ServicePlan {
    const name = `${cluster}-config`;
    return {
        name,
        component: "configurator",
        image,
        template: {
            env: {},
            entrypoint: [program],
            args: [],
            files: [],
            ports: [{ name: "status", port: CONFIGURATOR_STATUS_PORT, allow: [] }],
            volumes: [],
            checks: {
                readiness: httpCheck(CONFIGURATOR_STATUS_PORT, "/ready", 2, 3),
                liveness: httpCheck(CONFIGURATOR_STATUS_PORT, "/health", 10, 6, 5),
            },
            compute: { cpuMillis: { request: 50 }, memoryMiB: { request: 64, limit: 128 } },
            stopGraceSeconds: 5,
        },
        members: [{ name: `${name}-0`, ordinal: 0, files: [{ name: CONFIGURATOR_FILE, content: declaration, mode: "0600", secret: true }] }],
        endpoints: [],
        spread: { hosts: "preferred", zones: "preferred" },
        maxUnavailable: 1,
    };
}
