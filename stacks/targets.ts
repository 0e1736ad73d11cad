import * as pulumi from "@pulumi/pulumi";
import { AwsTarget, DockerTarget, KubernetesTarget, Target } from "../components";
import { StackConfig } from "./config";

/** The target the stack's config names. */
export function stackTarget(config: StackConfig): Target {
    // Checked before anything is declared: a refused stack leaves nothing half-registered.
    if (config.aws.frontend !== "haproxy" && (config.aws.frontend !== "nlb-direct" || config.target !== "aws")) {
        throw new pulumi.RunError(`config \`hadb:awsFrontend\` is "${config.aws.frontend}" on target "${config.target}". Fix: use "haproxy", or "nlb-direct" with target aws.`);
    }
    switch (config.target) {
        case "docker":
            return new DockerTarget("local", {
                baseImages: config.docker.baseImages,
                subnet: config.docker.networkSubnet,
                imagesDir: config.docker.imagesDir,
                publishAddress: config.docker.publishAddress,
            });
        case "kubernetes":
            return new KubernetesTarget("k8s", {
                namespace: config.kubernetes.namespace,
                context: config.kubernetes.context,
                storageClass: config.kubernetes.storageClass,
                registry: config.kubernetes.registry,
                baseImages: config.docker.baseImages,
                podCidrs: config.kubernetes.podCidrs,
                frontendServiceType: config.kubernetes.frontendServiceType as "ClusterIP" | "LoadBalancer",
                clientCidrs: config.kubernetes.clientCidrs,
                requireHostSpread: config.kubernetes.requireHostSpread,
            });
        case "aws":
            return new AwsTarget("aws", {
                region: config.aws.region,
                vpcId: config.aws.vpcId,
                subnets: config.aws.subnets,
                allowSingleZone: config.aws.allowSingleZone,
                clientCidrs: config.aws.clientCidrs,
                clientSecurityGroupIds: config.aws.clientSecurityGroupIds,
                instanceTypes: { postgres: config.aws.databaseInstanceType, mysql: config.aws.databaseInstanceType },
                baseImages: config.docker.baseImages,
                amiId: config.aws.amiId,
            });
        default:
            throw new pulumi.RunError(`config \`hadb:target\` is "${config.target}": no such target. Fix: use "docker", "kubernetes" or "aws".`);
    }
}
