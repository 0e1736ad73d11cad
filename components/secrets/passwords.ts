import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/**
 * A password as a Pulumi secret: the one given, or one generated and kept in state. Generated passwords
 * are letters and digits only, so they are safe in URLs, YAML and SQL without escaping.
 */
export function secretPassword(name: string, given: pulumi.Input<string> | undefined, parent: pulumi.Resource): pulumi.Output<string> {
    if (given !== undefined) return pulumi.secret(given);
    const generated = new random.RandomPassword(name, { length: 32, special: false }, { parent });
    return pulumi.secret(generated.result);
}

/** One secret password per role, named `<prefix>-<role>-password`; roles given in `given` are used as they are. */
export function secretPasswords<R extends string>(
    prefix: string,
    roles: readonly R[],
    given: Partial<Record<R, pulumi.Input<string>>> | undefined,
    parent: pulumi.Resource,
): Record<R, pulumi.Output<string>> {
    return Object.fromEntries(roles.map((role) => [role, secretPassword(`${prefix}-${role.toLowerCase()}-password`, given?.[role], parent)])) as Record<R, pulumi.Output<string>>;
}
