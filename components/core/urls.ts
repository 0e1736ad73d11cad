import * as pulumi from "@pulumi/pulumi";
import { ServiceAddress } from "./plan";

/** A connection URL with its password percent-encoded, as a Pulumi secret. */
export function secretUrl(
    scheme: "postgresql" | "mysql",
    user: string,
    password: pulumi.Output<string>,
    address: pulumi.Input<ServiceAddress>,
    database: string,
): pulumi.Output<string> {
    return pulumi.secret(
        pulumi.all([password, address]).apply(([p, a]) => `${scheme}://${user}:${encodeURIComponent(p)}@${a.host}:${a.port}/${database}`),
    );
}
