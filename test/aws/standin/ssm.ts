import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "fs";
import { join } from "path";

/**
 * The Parameter Store stand-in, seen from the test: a directory with one file per parameter, named by the
 * percent-encoded parameter name, bind-mounted into every host of a test at /var/lib/hadb-standin/ssm where the
 * host's `aws` script (image/aws) reads and writes it. The test writes what Pulumi would have created before boot
 * and reads what the hosts report.
 */
export const SSM_ROOT = "/tmp/hadb-standin-ssm";

// SSM's own name rule. It also makes encodeURIComponent here and Python's quote(name, safe="") agree.
const NAME = /^[A-Za-z0-9_.\-/]{1,2048}$/;

/** The store shared by the hosts on one network (created if missing). */
export function ssmStore(network: string): string {
    const dir = join(SSM_ROOT, network);
    mkdirSync(dir, { recursive: true });
    return dir;
}

function fileOf(store: string, name: string): string {
    if (!NAME.test(name)) throw new Error(`not a valid SSM parameter name: ${name}`);
    return join(store, encodeURIComponent(name));
}

export function putParameter(store: string, name: string, value: string): void {
    const file = fileOf(store, name);
    // Write then rename, as the hosts do: a host never reads half a value. "%tmp" is no encoded name.
    const partial = join(store, `%tmp-${process.pid}-${Date.now()}`);
    writeFileSync(partial, value, { mode: 0o644 });
    renameSync(partial, file);
}

/** The value, or undefined while no host has written it. */
export function getParameter(store: string, name: string): string | undefined {
    const file = fileOf(store, name);
    return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}
