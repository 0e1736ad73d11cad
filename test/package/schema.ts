// The component package's schema, generated from the components by Pulumi's own analyzer (what
// ComponentProvider.getSchema() runs), and written to schema.json by `npm run schema`. The schema test
// regenerates it and fails when the committed file differs.
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";
import { PACKAGE_ROOT } from "../../components/core/images";
import { PACKAGE_COMPONENTS, PACKAGE_NAME, RESOLVED_INPUTS, SCHEMA_FILE } from "../../components/packageProvider";

/* eslint-disable @typescript-eslint/no-require-imports */
const { Analyzer } = require("@pulumi/pulumi/provider/experimental/analyzer");
const { generateSchema } = require("@pulumi/pulumi/provider/experimental/schema");
/* eslint-enable @typescript-eslint/no-require-imports */

export const REGENERATE = "npm run schema";

/**
 * Arguments only a TypeScript program can give: `target` takes a target object, which no other language can
 * pass (they give `targetSpec`), so the schema leaves it out rather than offer a type nothing can fill.
 */
export const TYPESCRIPT_ONLY_INPUTS: readonly string[] = ["target"];

/** Inputs optional in TypeScript only because a TypeScript-only one can stand in for them: required elsewhere. */
export const REQUIRED_OUTSIDE_TYPESCRIPT: readonly string[] = ["targetSpec"];

/**
 * Descriptions for public arguments and outputs whose TSDoc has no text yet, in files this package's schema
 * work may not edit. Keys: `<Component>.inputs.<arg>`, `<Component>.outputs.<output>`, `<Type>.<property>`.
 * When a file gains the TSDoc, the schema test fails on the entry here, which is then deleted.
 */
export const SUPPLEMENTARY_DESCRIPTIONS: Readonly<Record<string, string>> = {
    // components/postgres/settings.ts (PostgresSettings)
    "PostgresCluster.inputs.members": "Members of the Patroni cluster: a leader and its replicas, 2 to 9.",
    "PostgresCluster.inputs.port": "PostgreSQL's port on every member.",
    "PostgresCluster.inputs.databaseName": "The application database, created on the first primary and owned by `appUser`.",
    "PostgresCluster.inputs.appUser": "The application user, owner of `databaseName`.",
    "PostgresCluster.inputs.superuser": "The superuser role, which Patroni also uses.",
    "PostgresCluster.inputs.replicationUser": "The role replicas stream WAL as.",
    // components/mysql/settings.ts (MySqlSettings)
    "MySqlCluster.inputs.mode": "`single-primary`: one member takes writes; `multi-primary`: every member does, conflicts are certified.",
    "MySqlCluster.inputs.consistency": "group_replication_consistency: what a read or a write waits for.",
    "MySqlCluster.inputs.port": "MySQL's SQL port on every member.",
    "MySqlCluster.inputs.databaseName": "The application database, created once the group is founded.",
    "MySqlCluster.inputs.appUser": "The application user, with all privileges on `databaseName`.",
    "MySqlCluster.inputs.adminUser": "The administrative account (all privileges, with grant option).",
    "MySqlCluster.inputs.replicationUser": "The account Group Replication's distributed recovery and clone connect as.",
    "MySqlCluster.inputs.monitorUser": "The account the member supervisors and proxies read group state with.",
    // components/haproxy/plan.ts (FrontendSettings)
    "HaproxyFrontend.inputs.ports": "The proxy's client ports: read-write, read-only and the statistics page.",
    // components/haproxy/config.ts (HealthCheckTiming)
    "HealthCheckTiming.rise": "Consecutive successful checks before a server that was down is in service again.",
    // components/core/backends.ts (ClusterBackends, BackendServer)
    "ClusterBackends.engine": "The database engine of the servers, which decides how the proxy checks their roles.",
    "BackendServer.name": "The member's name.",
    "BackendServer.host": "The address the proxy reaches the member at.",
    "BackendServer.port": "The member's SQL port.",
    "BackendServer.checkPort": "The member's HTTP port that answers role checks (`/primary`, `/replica?lag=N`).",
    // components/core/plan.ts (ServiceAddress)
    "ServiceAddress.host": "Host name or IP address.",
    "ServiceAddress.port": "TCP port.",
    // components/targets/docker.ts (DockerBaseImages)
    "DockerBaseImages.trixie": "BASE_IMAGE of the images built from Debian stable (etcd, PostgreSQL, HAProxy).",
    "DockerBaseImages.sid": "BASE_IMAGE of the images built from Debian sid (MySQL).",
    // components/targets/kubernetes.ts (KubernetesImages)
    "KubernetesImages.etcd": "Image reference of the etcd members.",
    "KubernetesImages.postgres": "Image reference of the PostgreSQL (Patroni) members and their configurator.",
    "KubernetesImages.haproxy": "Image reference of the HAProxy instances.",
    "KubernetesImages.mysql": "Image reference of the MySQL members and their configurator.",
};

interface Property {
    type?: string;
    $ref?: string;
    description?: string;
    items?: Property;
    additionalProperties?: Property;
    [key: string]: unknown;
}
interface Resource {
    description?: string;
    inputProperties: Record<string, Property>;
    requiredInputs: string[];
    properties: Record<string, Property>;
    required: string[];
}
export interface Schema {
    name: string;
    version: string;
    description?: string;
    resources: Record<string, Resource>;
    types: Record<string, { type: string; properties?: Record<string, Property>; enum?: unknown[]; required?: string[] }>;
    [key: string]: unknown;
}

export interface GeneratedSchema {
    readonly schema: Schema;
    /** schema.json's content: the schema as JSON, two-space indented, with a final newline. */
    readonly text: string;
    /** What the analyzer found: every component's inputs and outputs, before the TypeScript-only ones are left out. */
    readonly analyzed: Record<string, { inputs: Record<string, Property>; outputs: Record<string, Property> }>;
    /** Supplementary descriptions that name no property of the schema. */
    readonly unusedSupplements: string[];
    /** Supplementary descriptions for a property whose TSDoc now has text: delete them. */
    readonly redundantSupplements: string[];
}

/** The `@default` of every documented property, by the keys SUPPLEMENTARY_DESCRIPTIONS uses. */
function defaultTags(program: ts.Program, checker: ts.TypeChecker): Map<string, string> {
    const defaults = new Map<string, string>();
    const record = (key: string, symbol: ts.Symbol | undefined) => {
        const tag = symbol?.getJsDocTags(checker).find((t) => t.name === "default");
        if (tag?.text) defaults.set(key, ts.displayPartsToString(tag.text).trim());
    };
    const componentNames = new Set(Object.keys(PACKAGE_COMPONENTS));
    const componentsDir = path.join(PACKAGE_ROOT, "components") + path.sep;
    for (const file of program.getSourceFiles()) {
        if (!path.resolve(file.fileName).startsWith(componentsDir)) continue;
        file.forEachChild((node) => {
            if (ts.isInterfaceDeclaration(node)) {
                for (const prop of checker.getTypeAtLocation(node).getProperties()) record(`${node.name.text}.${prop.name}`, prop);
            } else if (ts.isClassDeclaration(node) && node.name && componentNames.has(node.name.text)) {
                const name = node.name.text;
                const ctor = node.members.find(ts.isConstructorDeclaration);
                const argsType = ctor?.parameters.find((p) => ts.isIdentifier(p.name) && p.name.text === "args")?.type;
                if (argsType) for (const prop of checker.getTypeAtLocation(argsType).getProperties()) record(`${name}.inputs.${prop.name}`, prop);
                checker.getTypeAtLocation(node).getSymbol()?.members?.forEach((member, key) => record(`${name}.outputs.${String(key)}`, member));
            }
        });
    }
    return defaults;
}

/** `#/types/hadb:index:Name` → `Name`. */
function typeName(ref: string): string {
    return ref.slice(ref.lastIndexOf(":") + 1);
}

function refsIn(value: unknown, into: Set<string>): void {
    if (Array.isArray(value)) value.forEach((v) => refsIn(v, into));
    else if (value && typeof value === "object") {
        for (const [k, v] of Object.entries(value)) {
            if (k === "$ref" && typeof v === "string" && v.startsWith("#/types/")) into.add(v.slice("#/types/".length));
            else refsIn(v, into);
        }
    }
}

/** Generates the package schema from the TypeScript sources. Takes a few seconds (it type-checks components/). */
export function buildSchema(): GeneratedSchema {
    const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8"));
    const names = Object.keys(PACKAGE_COMPONENTS);
    // The analyzer finds its entry point through package.json, whose main is the compiled dist/index.js; it is
    // handed the TypeScript entry instead.
    const analyzer = new Analyzer(PACKAGE_ROOT, PACKAGE_NAME, { ...pkg, exports: undefined, main: "components/index.ts" }, new Set(names));
    const { components, typeDefinitions, dependencies } = analyzer.analyze();
    const analyzed = JSON.parse(JSON.stringify(components));
    const schema: Schema = generateSchema(PACKAGE_NAME, pkg.version, pkg.description, components, typeDefinitions, dependencies, undefined);
    const defaults = defaultTags(analyzer.program, analyzer.checker);

    const used = new Set<string>();
    const redundant: string[] = [];
    const describe = (key: string, prop: Property) => {
        const supplement = SUPPLEMENTARY_DESCRIPTIONS[key];
        if (supplement !== undefined) {
            used.add(key);
            if (prop.description) redundant.push(key);
            else prop.description = supplement;
        }
        const byDefault = defaults.get(key);
        if (byDefault && prop.description && !/Default: /.test(prop.description)) {
            prop.description = `${prop.description} Default: ${byDefault.replace(/\.$/, "")}.`;
        }
    };
    for (const [token, resource] of Object.entries(schema.resources)) {
        const component = typeName(token);
        for (const input of TYPESCRIPT_ONLY_INPUTS) {
            delete resource.inputProperties[input];
            resource.requiredInputs = resource.requiredInputs.filter((r) => r !== input);
        }
        for (const input of REQUIRED_OUTSIDE_TYPESCRIPT) {
            const prop = resource.inputProperties[input];
            if (!prop) continue;
            delete prop.optional;
            resource.requiredInputs = [...new Set([...resource.requiredInputs, input])].sort();
        }
        // Typed as Inputs so a typed language can pass the Output another component gave it; the provider resolves them.
        for (const input of RESOLVED_INPUTS[component] ?? []) delete resource.inputProperties[input]?.plain;
        for (const [name, prop] of Object.entries(resource.inputProperties)) describe(`${component}.inputs.${name}`, prop);
        for (const [name, prop] of Object.entries(resource.properties)) describe(`${component}.outputs.${name}`, prop);
    }
    for (const [token, type] of Object.entries(schema.types)) {
        // Partial<FailoverTiming> is analysed as the type PartialFailoverTiming; its TSDoc is FailoverTiming's.
        const name = typeName(token);
        const declared = name.replace(/^(Partial|Required)(?=[A-Z])/, "");
        for (const [prop, spec] of Object.entries(type.properties ?? {})) describe(`${declared}.${prop}`, spec);
    }
    // Types only the TypeScript-only inputs used (Target, NameResolution) go with them.
    for (;;) {
        const referenced = new Set<string>();
        refsIn(schema.resources, referenced);
        for (const [token, type] of Object.entries(schema.types)) if (referenced.has(token)) refsIn(type, referenced);
        const unreferenced = Object.keys(schema.types).filter((t) => !referenced.has(t));
        if (!unreferenced.length) break;
        for (const t of unreferenced) delete schema.types[t];
    }
    return {
        schema,
        text: `${JSON.stringify(schema, null, 2)}\n`,
        analyzed,
        unusedSupplements: Object.keys(SUPPLEMENTARY_DESCRIPTIONS).filter((k) => !used.has(k)),
        redundantSupplements: redundant,
    };
}

if (require.main === module) {
    const { text, unusedSupplements, redundantSupplements } = buildSchema();
    fs.writeFileSync(SCHEMA_FILE, text);
    const schema = JSON.parse(text) as Schema;
    console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}: ${Object.keys(schema.resources).length} components, ${Object.keys(schema.types).length} types`);
    for (const key of unusedSupplements) console.warn(`supplementary description ${key} names no property of the schema: delete it`);
    for (const key of redundantSupplements) console.warn(`supplementary description ${key} is no longer needed (the TSDoc has text): delete it`);
}
