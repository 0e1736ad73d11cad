import * as pulumi from "@pulumi/pulumi";

/** A connection URL with its password percent-encoded, as a Pulumi secret. */
export function secretUrl(
    scheme: "postgresql" | "mysql",
    user: string,
    password: pulumi.Output<string>,
    host: pulumi.Input<string>,
    port: pulumi.Input<number>,
    database: string,
): pulumi.Output<string> {
    return pulumi.secret(pulumi.interpolate`${scheme}://${user}:${password.apply(encodeURIComponent)}@${host}:${port}/${database}`);
}
