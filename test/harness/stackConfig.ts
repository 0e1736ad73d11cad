import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");

type SchemaType = "string" | "integer" | "boolean" | "array" | "object";
interface SchemaEntry {
    type: SchemaType;
    default?: unknown;
    secret?: boolean;
}

export type ConfigValues = Record<string, string | number | boolean>;

/**
 * Stack config the way the Pulumi CLI would hand it to the program: Pulumi.yaml's schema defaults, then
 * Pulumi.<stack>.yaml, then overrides. Keys are namespaced ("hadb:etcdMembers"). Values are type-checked
 * against the schema, and a key the schema does not declare is an error, as `pulumi config` makes it.
 */
export function loadStackConfig(stack: string, overrides: ConfigValues = {}, root = PROJECT_ROOT): { config: Record<string, string>; secretKeys: string[] } {
    const project = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8"));
    const name: string = project.name;
    const schema: Record<string, SchemaEntry> = project.config ?? {};
    const stackFile = path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) throw new Error(`no stack file ${stackFile}: create it or pick one of ${listStacks(root).join(", ")}`);
    const stackConfig: Record<string, unknown> = parse(fs.readFileSync(stackFile, "utf8"))?.config ?? {};

    const values: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(schema)) {
        if (entry.default !== undefined) values[`${name}:${key}`] = entry.default;
    }
    for (const [key, value] of Object.entries({ ...stackConfig, ...overrides })) {
        const full = key.includes(":") ? key : `${name}:${key}`;
        if (typeof value === "object" && value !== null && "secure" in value) {
            throw new Error(`${full}: encrypted (secure:) values need the Pulumi CLI to decrypt; the harness cannot. Pass it as an override instead.`);
        }
        values[full] = value;
    }
    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [full, value] of Object.entries(values)) {
        const [ns, key] = full.split(":", 2);
        const entry = ns === name ? schema[key] : undefined;
        if (ns === name && !entry) throw new Error(`config key ${full} is not declared in Pulumi.yaml's config schema`);
        if (entry) checkType(full, value, entry.type);
        if (entry?.secret) secretKeys.push(full);
        config[full] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return { config, secretKeys };
}

function checkType(key: string, value: unknown, type: SchemaType): void {
    const ok =
        type === "string" ? typeof value === "string"
        : type === "integer" ? Number.isInteger(value)
        : type === "boolean" ? typeof value === "boolean"
        : type === "array" ? Array.isArray(value)
        : typeof value === "object";
    if (!ok) throw new Error(`config ${key} is ${JSON.stringify(value)}, but Pulumi.yaml declares it ${type}`);
}

export function listStacks(root = PROJECT_ROOT): string[] {
    return fs
        .readdirSync(root)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => !!s);
}

/** `hadb:key=value` command-line arguments as config overrides: whole numbers and true/false typed, the rest strings. */
export function parseOverrides(args: readonly string[]): ConfigValues {
    return Object.fromEntries(
        args.map((kv) => {
            const at = kv.indexOf("=");
            if (at < 1) throw new Error(`config override ${JSON.stringify(kv)} is not key=value`);
            const raw = kv.slice(at + 1);
            return [kv.slice(0, at), /^-?\d+$/.test(raw) ? Number(raw) : raw === "true" ? true : raw === "false" ? false : raw];
        }),
    );
}
