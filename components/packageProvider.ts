import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as provider from "@pulumi/pulumi/provider";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { InvalidArgumentError } from "./core/errors";
import { PACKAGE_ROOT } from "./core/images";
import { EtcdCluster } from "./etcd/etcdCluster";
import { HaproxyFrontend } from "./haproxy/frontend";
import { MySqlCluster } from "./mysql/mysqlCluster";
import { PostgresCluster } from "./postgres/postgresCluster";

/** The Pulumi package name: type tokens are `hadb:index:<ClassName>`. */
export const PACKAGE_NAME = "hadb";

/**
 * The components the component package serves to Python, Go, .NET, Java and YAML programs. The targets are not
 * among them: a target reaches a component as an object, which no other language can pass (Pulumi's analyzer
 * supports references to @pulumi/* resources only), so those programs give `targetSpec` instead.
 */
export const PACKAGE_COMPONENTS = { EtcdCluster, PostgresCluster, MySqlCluster, HaproxyFrontend } as const;

/**
 * Arguments a program passes from another component's outputs (`backends: pg.backends`), which hadb needs as
 * values when it constructs the component. The schema types them as Inputs, so Go, .NET and Java programs can
 * pass the Output they hold; the provider waits for the value, which a cluster knows from its construction.
 */
export const RESOLVED_INPUTS: Readonly<Record<string, readonly string[]>> = {
    HaproxyFrontend: ["backends"],
    PostgresCluster: ["etcdHosts"],
};

/** The package schema, generated from the components by Pulumi's analyzer (`npm run schema`) and shipped. */
export const SCHEMA_FILE = path.join(PACKAGE_ROOT, "schema.json");

type ComponentClass = new (name: string, args: any, opts?: pulumi.ComponentResourceOptions) => pulumi.ComponentResource;

/** The parts of a Pulumi package schema this provider reads. */
interface PropertySpec {
    readonly type?: string;
    readonly $ref?: string;
    readonly plain?: boolean;
    readonly items?: PropertySpec;
    readonly additionalProperties?: PropertySpec;
}
interface PackageSchema {
    readonly resources: Record<string, { readonly inputProperties: Record<string, PropertySpec>; readonly properties: Record<string, PropertySpec> }>;
    readonly types: Record<string, { readonly properties?: Record<string, PropertySpec> }>;
}

/**
 * hadb's component provider: what `pulumi package add` runs to serve the components to other languages.
 *
 * It answers GetSchema with the shipped schema.json rather than analysing TypeScript sources at start-up as
 * `componentProviderHost` does: an installed package carries compiled JavaScript only, and the analyzer looks
 * for the `.ts` entry point package.json names. A unit test regenerates the schema with the analyzer and fails
 * when schema.json differs, so both say the same.
 *
 * It constructs a component with its plain arguments resolved: a program in another language passes an
 * argument computed from another resource (YAML's `backends: ${pg.backends}`) as an Output, and hadb's components
 * need those values (they shape what is declared) when they are constructed. See RESOLVED_INPUTS.
 */
export class HadbProvider implements provider.Provider {
    readonly version: string;
    private schemaText?: string;
    private parsed?: PackageSchema;

    constructor(
        private readonly schemaFile: string = SCHEMA_FILE,
        packageJsonFile: string = path.join(PACKAGE_ROOT, "package.json"),
    ) {
        this.version = JSON.parse(fs.readFileSync(packageJsonFile, "utf8")).version;
    }

    async getSchema(): Promise<string> {
        this.schemaText ??= fs.readFileSync(this.schemaFile, "utf8");
        return this.schemaText;
    }

    async construct(name: string, type: string, inputs: pulumi.Inputs, options: pulumi.ComponentResourceOptions): Promise<provider.ConstructResult> {
        ComponentProvider.validateResourceType(PACKAGE_NAME, type);
        const className = type.split(":")[2];
        const Component = (PACKAGE_COMPONENTS as Record<string, ComponentClass>)[className];
        const schema = await this.packageSchema();
        const resource = schema.resources[type];
        if (!Component || !resource) {
            throw new Error(`hadb has no component ${type}; it serves ${Object.keys(PACKAGE_COMPONENTS).map((c) => `${PACKAGE_NAME}:index:${c}`).join(", ")}`);
        }
        const component = `${className} "${name}"`;
        const args: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(inputs)) {
            const prop = resource.inputProperties[key];
            const resolved = RESOLVED_INPUTS[className]?.includes(key) && prop ? { ...prop, plain: true } : prop;
            args[key] = await resolvePlain(value, resolved, schema, component, key);
        }
        const instance = new Component(name, args, options) as unknown as Record<string, unknown> & pulumi.ComponentResource;
        const state = Object.fromEntries(Object.keys(resource.properties).map((key) => [key, instance[key]]));
        return { urn: instance.urn, state };
    }

    private async packageSchema(): Promise<PackageSchema> {
        this.parsed ??= JSON.parse(await this.getSchema()) as PackageSchema;
        return this.parsed;
    }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
    return !!value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

/** Output internals every Output carries: whether its value is known, whether it is secret, and the value. */
interface OutputState {
    readonly isKnown: Promise<boolean>;
    readonly isSecret: Promise<boolean>;
    promise(): Promise<unknown>;
}

/**
 * `value` with every Output where the schema says plain replaced by its value, following the schema into
 * objects, arrays and maps. Outputs where the schema says Input stay Outputs (a password stays a secret). A secret
 * that arrives as a whole object (`passwords`) is opened and each of its Input fields kept secret; a secret that
 * would land in a plain field is refused, since it could not stay secret there.
 */
export async function resolvePlain(value: unknown, prop: PropertySpec | undefined, schema: PackageSchema, component: string, at: string, secret = false): Promise<unknown> {
    if (!prop) return secret ? pulumi.secret(value) : value;
    if (pulumi.Output.isInstance(value)) {
        if (!prop.plain) return secret ? pulumi.secret(value) : value;
        const output = value as unknown as OutputState;
        if (!(await output.isKnown)) {
            throw new InvalidArgumentError(
                component,
                at,
                "unknown",
                "its value is not known yet (it comes from a resource this update creates or changes), and hadb needs it to decide what to declare",
                "pass a value known before the update: a literal, configuration, or an output of another hadb component",
            );
        }
        secret = secret || (await output.isSecret);
        value = await output.promise();
    }
    if (value === undefined || value === null) return value;
    if (secret && !prop.plain) return pulumi.secret(value);
    const type = prop.$ref?.startsWith("#/types/") ? schema.types[prop.$ref.slice("#/types/".length)] : undefined;
    if (type?.properties && isPlainObject(value)) {
        const out: Record<string, unknown> = {};
        for (const [key, v] of Object.entries(value)) out[key] = await resolvePlain(v, type.properties[key], schema, component, `${at}.${key}`, secret);
        return out;
    }
    if (prop.type === "array" && Array.isArray(value)) {
        return Promise.all(value.map((v, i) => resolvePlain(v, prop.items, schema, component, `${at}[${i}]`, secret)));
    }
    if (prop.type === "object" && prop.additionalProperties && isPlainObject(value)) {
        const out: Record<string, unknown> = {};
        for (const [key, v] of Object.entries(value)) out[key] = await resolvePlain(v, prop.additionalProperties, schema, component, `${at}.${key}`, secret);
        return out;
    }
    if (secret) {
        throw new InvalidArgumentError(
            component,
            at,
            "[secret]",
            "it is a secret, but it is a plain argument that decides what hadb declares, so it would not stay secret",
            "pass it unmarked, or put secrets only in the arguments meant for them (`passwords`)",
        );
    }
    return value;
}

/** Serves the components to the Pulumi engine: the component package's plugin entry point. */
export function serve(args: string[] = process.argv.slice(2)): Promise<void> {
    return provider.main(new HadbProvider(), args);
}
