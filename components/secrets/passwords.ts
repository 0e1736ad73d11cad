import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/**
 * A password as a Pulumi secret: the one given, or one generated and kept in state. Generated passwords
 * are letters and digits only, so they are safe in URLs, YAML and SQL without escaping.
 */
export function secretPassword(name: string, given: pulumi.Input<string> | undefined, parent: pulumi.Resource, rotation = 0): pulumi.Output<string> {
    if (given !== undefined) return pulumi.secret(given);
    // A new rotation number is a new keeper: the password is generated again. None before the first rotation, so
    // adding the option changes nothing.
    const keepers = rotation > 0 ? { rotation: String(rotation) } : undefined;
    const generated = new random.RandomPassword(name, { length: 32, special: false, keepers }, { parent });
    return pulumi.secret(generated.result);
}

/**
 * One secret password per role, named `<prefix>-<role>-password`; roles given in `given` are used as they are,
 * and a role's rotation number regenerates its password when it changes.
 */
export function secretPasswords<R extends string>(
    prefix: string,
    roles: readonly R[],
    given: Partial<Record<R, pulumi.Input<string>>> | undefined,
    parent: pulumi.Resource,
    rotations: Partial<Record<R, number>> = {},
): Record<R, pulumi.Output<string>> {
    return Object.fromEntries(
        roles.map((role) => [role, secretPassword(`${prefix}-${role.toLowerCase()}-password`, given?.[role], parent, rotations[role])]),
    ) as Record<R, pulumi.Output<string>>;
}
