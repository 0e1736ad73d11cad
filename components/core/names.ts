import { ArgumentChecker } from "./errors";

/**
 * Names a target has handed out, so two components can never declare the same object: the platform would
 * refuse the second only when it is applied (Kubernetes) or silently share it (Docker aliases).
 */
export class NameRegistry {
    private readonly owners = new Map<string, string>();

    /** Claims every name for `owner`; a name another owner holds is an InvalidArgumentError naming both. */
    claim(owner: string, names: readonly string[], what: string): void {
        const check = new ArgumentChecker(owner);
        for (const name of names) {
            const holder = this.owners.get(name);
            if (holder !== undefined && holder !== owner) {
                check.fail("name", name, `${holder} already declares the ${what} "${name}"`, "give one of the two components another name");
            }
        }
        for (const name of names) this.owners.set(name, owner);
    }
}
