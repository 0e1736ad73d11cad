import { ArgumentChecker } from "./errors";

/** One port a plan uses, named by the argument that set it so a clash can point at both arguments. */
export interface PortClaim {
    readonly argument: string;
    readonly port: number;
    /** Ports in different scopes (say, two containers' own network namespaces) never clash. */
    readonly scope: string;
}

/** Fails on the first two claims of the same port in the same scope. */
export function checkPortClashes(check: ArgumentChecker, claims: readonly PortClaim[]): void {
    const seen = new Map<string, PortClaim>();
    for (const claim of claims) {
        check.port(claim.argument, claim.port);
        const key = `${claim.scope}:${claim.port}`;
        const earlier = seen.get(key);
        if (earlier) {
            check.fail(
                claim.argument,
                claim.port,
                `port ${claim.port} is already taken by \`${earlier.argument}\`${claim.scope === "host" ? " on the host" : ""}`,
                `choose different ports for \`${earlier.argument}\` and \`${claim.argument}\``,
            );
        }
        seen.set(key, claim);
    }
}

/** Host ports a range of members publishes, one per member starting at `first`. */
export function publishedRange(argument: string, first: number | undefined, count: number): PortClaim[] {
    if (first === undefined) return [];
    return Array.from({ length: count }, (_, i) => ({ argument, port: first + i, scope: "host" }));
}
