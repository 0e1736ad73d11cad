import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PACKAGE_ROOT } from "../../components/core/images";
import { HadbProvider, PACKAGE_COMPONENTS, RESOLVED_INPUTS, SCHEMA_FILE } from "../../components/packageProvider";
import { recordMocks, reveal } from "../harness/mockRun";
import { buildSchema, GeneratedSchema, REGENERATE, REQUIRED_OUTSIDE_TYPESCRIPT, Schema, TYPESCRIPT_ONLY_INPUTS } from "../package/schema";
import { byType } from "./helpers";

const EXAMPLE = path.join(PACKAGE_ROOT, "examples", "yaml", "Pulumi.yaml");
const COMPONENTS = Object.keys(PACKAGE_COMPONENTS);

interface Spec {
    type?: string;
    $ref?: string;
    description?: string;
    items?: Spec;
    additionalProperties?: Spec;
    plain?: boolean;
}

let generated: GeneratedSchema;
let committed: Schema;

beforeAll(() => {
    generated = buildSchema();
    committed = JSON.parse(fs.readFileSync(SCHEMA_FILE, "utf8"));
}, 120_000);

describe("component package schema", () => {
    it("schema.json is what Pulumi's analyzer generates from the components today", () => {
        const text = fs.readFileSync(SCHEMA_FILE, "utf8");
        if (text !== generated.text) {
            const a = text.split("\n");
            const b = generated.text.split("\n");
            const line = a.findIndex((l, i) => l !== b[i]);
            throw new Error(`schema.json is stale (first difference at line ${line + 1}: ${JSON.stringify(b[line])}). Regenerate it: ${REGENERATE}`);
        }
    });

    it("serves every package component with every argument and output, each typed and described", () => {
        const schema = generated.schema;
        const tokens = Object.keys(schema.resources);
        console.log(`[schema] ${tokens.length} components (${tokens.join(", ")}), ${Object.keys(schema.types).length} types`);
        expect(tokens.sort()).toEqual(COMPONENTS.map((c) => `hadb:index:${c}`).sort());
        expect(schema.name).toBe("hadb");
        const problems: string[] = [];
        const checkProperty = (where: string, spec: Spec) => {
            if (!spec.type && !spec.$ref) problems.push(`${where} has no type`);
            if (spec.$ref?.startsWith("#/types/") && !schema.types[spec.$ref.slice("#/types/".length)]) problems.push(`${where} refers to a missing type ${spec.$ref}`);
            if (spec.items) checkProperty(`${where}[]`, { ...spec.items, description: "item" });
            if (spec.additionalProperties) checkProperty(`${where}{}`, { ...spec.additionalProperties, description: "value" });
            if (!spec.description?.trim()) problems.push(`${where} has no description`);
        };
        for (const name of COMPONENTS) {
            const resource = schema.resources[`hadb:index:${name}`];
            if (!resource.description?.trim()) problems.push(`${name} has no description`);
            const analyzed = generated.analyzed[name];
            // Everything the analyzer found is offered, but for what only TypeScript can pass.
            expect(Object.keys(resource.inputProperties).sort(), `${name} inputs`).toEqual(
                Object.keys(analyzed.inputs)
                    .filter((i) => !TYPESCRIPT_ONLY_INPUTS.includes(i))
                    .sort(),
            );
            expect(Object.keys(resource.properties).sort(), `${name} outputs`).toEqual(Object.keys(analyzed.outputs).sort());
            expect(Object.keys(resource.properties).length, `${name} outputs`).toBeGreaterThan(0);
            for (const [arg, spec] of Object.entries(resource.inputProperties)) checkProperty(`${name} argument ${arg}`, spec);
            for (const [out, spec] of Object.entries(resource.properties)) checkProperty(`${name} output ${out}`, spec);
            // Placed by plain data: the target object is TypeScript's alone.
            expect(resource.inputProperties.target, name).toBeUndefined();
            expect(resource.inputProperties.targetSpec, name).toMatchObject({ $ref: "#/types/hadb:index:TargetSpec", plain: true });
            for (const input of REQUIRED_OUTSIDE_TYPESCRIPT) expect(resource.requiredInputs, name).toContain(input);
            // What programs pass from another component's outputs is an Input, so typed languages can pass an Output.
            for (const input of RESOLVED_INPUTS[name] ?? []) expect(resource.inputProperties[input], `${name}.${input}`).not.toHaveProperty("plain");
        }
        for (const [token, type] of Object.entries(schema.types)) {
            for (const [prop, spec] of Object.entries(type.properties ?? {})) checkProperty(`${token}.${prop}`, spec);
            if (!type.properties) expect(type.enum?.length, `${token} is an object or an enum`).toBeGreaterThan(0);
        }
        expect(problems).toEqual([]);
        expect(Object.keys(schema.types["hadb:index:TargetSpec"].properties ?? {}).sort()).toEqual(["aws", "docker", "kubernetes", "name"]);
        expect(schema.types["hadb:index:Target"], "no type for the TypeScript-only target").toBeUndefined();
        expect(generated.unusedSupplements, "supplementary descriptions that name nothing").toEqual([]);
        expect(generated.redundantSupplements, "supplementary descriptions whose TSDoc now has text: delete them").toEqual([]);
    });
});

/** Checks a Pulumi YAML program's use of hadb against the schema: types, properties, values and references. */
export function checkYamlProgram(program: any, schema: Schema): string[] {
    const problems: string[] = [];
    const resources: Record<string, { type: string; properties?: Record<string, unknown> }> = program.resources ?? {};
    const variables: Record<string, unknown> = program.variables ?? {};
    const typeOf = (ref: string) => schema.types[ref.slice("#/types/".length)];

    /** The schema of what `${path}` names: an output of a resource, followed through object and array types. */
    const resolvePath = (expr: string, where: string): Spec | { variable: unknown } | undefined => {
        const parts = expr.match(/[^.[\]]+|\[\d+\]/g) ?? [];
        const [head = "", ...rest] = parts;
        if (head in variables && !rest.length) return { variable: variables[head] };
        const resource = resources[head];
        const component = resource && schema.resources[resource.type];
        if (!component) {
            problems.push(`${where}: \${${expr}} names neither a hadb resource nor a variable`);
            return undefined;
        }
        let spec: Spec | undefined = { $ref: "resource" };
        let props: Record<string, Spec> | undefined = component.properties;
        for (const part of rest) {
            if (part.startsWith("[")) {
                spec = spec?.type === "array" ? spec.items : undefined;
            } else {
                spec = props?.[part];
            }
            if (!spec) {
                problems.push(`${where}: \${${expr}}: ${resource.type} has no output path ${part}`);
                return undefined;
            }
            props = spec.$ref?.startsWith("#/types/") ? typeOf(spec.$ref)?.properties : undefined;
        }
        return spec;
    };

    const sameShape = (a: Spec, b: Spec): boolean =>
        a.$ref === b.$ref && a.type === b.type && (!a.items || !b.items || sameShape(a.items, b.items));

    const checkValue = (value: unknown, spec: Spec, where: string): void => {
        if (typeof value === "string") {
            const whole = /^\$\{([^}]+)\}$/.exec(value);
            if (whole) {
                const target = resolvePath(whole[1], where);
                if (target && "variable" in target) checkValue(target.variable, spec, `${where} (\${${whole[1]}})`);
                else if (target && !sameShape(target, spec)) problems.push(`${where}: \${${whole[1]}} is ${JSON.stringify(target.$ref ?? target.type)}, the property takes ${JSON.stringify(spec.$ref ?? spec.type)}`);
                return;
            }
            for (const m of value.matchAll(/\$\{([^}]+)\}/g)) resolvePath(m[1], where);
        }
        if (spec.$ref?.startsWith("#/types/")) {
            const type = typeOf(spec.$ref);
            if (!type) return void problems.push(`${where}: unknown type ${spec.$ref}`);
            if (type.enum) {
                const allowed = type.enum.map((e: any) => e.value);
                if (!allowed.includes(value)) problems.push(`${where}: ${JSON.stringify(value)} is not one of ${JSON.stringify(allowed)}`);
                return;
            }
            if (!value || typeof value !== "object" || Array.isArray(value)) return void problems.push(`${where}: ${JSON.stringify(value)} is not an object of ${spec.$ref}`);
            for (const req of type.required ?? []) if (!(req in value)) problems.push(`${where}: ${spec.$ref} needs ${req}`);
            for (const [k, v] of Object.entries(value)) {
                const prop = type.properties?.[k];
                if (!prop) problems.push(`${where}.${k}: ${spec.$ref} has no property ${k}`);
                else checkValue(v, prop, `${where}.${k}`);
            }
            return;
        }
        switch (spec.type) {
            case "string":
                if (typeof value !== "string") problems.push(`${where}: ${JSON.stringify(value)} is not a string`);
                return;
            case "number":
            case "integer":
                if (typeof value !== "number") problems.push(`${where}: ${JSON.stringify(value)} is not a number`);
                return;
            case "boolean":
                if (typeof value !== "boolean") problems.push(`${where}: ${JSON.stringify(value)} is not a boolean`);
                return;
            case "array":
                if (!Array.isArray(value)) return void problems.push(`${where}: ${JSON.stringify(value)} is not a list`);
                value.forEach((v, i) => checkValue(v, spec.items!, `${where}[${i}]`));
                return;
            case "object":
                if (!value || typeof value !== "object") return void problems.push(`${where}: ${JSON.stringify(value)} is not a map`);
                for (const [k, v] of Object.entries(value)) checkValue(v, spec.additionalProperties ?? {}, `${where}.${k}`);
                return;
        }
    };

    for (const [name, resource] of Object.entries(resources)) {
        const component = schema.resources[resource.type];
        if (!component) {
            problems.push(`${name}: ${resource.type} is not a component of the package (${Object.keys(schema.resources).join(", ")})`);
            continue;
        }
        const properties = resource.properties ?? {};
        for (const req of component.requiredInputs) if (!(req in properties)) problems.push(`${name}: ${resource.type} needs ${req}`);
        for (const [prop, value] of Object.entries(properties)) {
            const spec = component.inputProperties[prop];
            if (!spec) problems.push(`${name}.${prop}: ${resource.type} has no argument ${prop}`);
            else checkValue(value, spec, `${name}.${prop}`);
        }
    }
    for (const [name, value] of Object.entries(program.outputs ?? {})) {
        if (typeof value === "string") for (const m of value.matchAll(/\$\{([^}]+)\}/g)) resolvePath(m[1], `outputs.${name}`);
    }
    return problems;
}

describe("the Pulumi YAML example", () => {
    const program = parse(fs.readFileSync(EXAMPLE, "utf8"));

    it("declares a PostgreSQL cluster and its front end on the Docker target, every type and property as the schema says", () => {
        expect(program.runtime).toBe("yaml");
        const types = Object.values(program.resources as Record<string, { type: string }>).map((r) => r.type);
        expect(types.sort()).toEqual(["hadb:index:HaproxyFrontend", "hadb:index:PostgresCluster"]);
        expect(checkYamlProgram(program, committed)).toEqual([]);
        // Both components name the same Docker target spec, so they share one network.
        const specs = Object.values(program.resources as Record<string, { properties: { targetSpec: unknown } }>).map((r) => r.properties.targetSpec);
        expect(new Set(specs).size).toBe(1);
        expect(program.variables[String(specs[0]).slice(2, -1)]).toHaveProperty("docker");
    });

    it("gets hadb from the folder holding the component package's plugin manifest", () => {
        const source = path.resolve(path.dirname(EXAMPLE), program.packages.hadb);
        expect(source).toBe(PACKAGE_ROOT);
        const plugin = parse(fs.readFileSync(path.join(source, "PulumiPlugin.yaml"), "utf8"));
        expect(plugin.runtime).toBe("nodejs");
        // The entry starts components/provider.ts in a checkout, and its compiled dist/provider.js in the package.
        expect(plugin.main).toBe("plugin.js");
        const entry = fs.readFileSync(path.join(source, plugin.main), "utf8");
        expect(entry).toContain('"components", "provider.ts"');
        expect(entry).toContain('"dist", "provider.js"');
        expect(fs.existsSync(path.join(PACKAGE_ROOT, "components", "provider.ts"))).toBe(true);
    });

    it("the checker finds wrong types, names, values and references", () => {
        const broken = parse(fs.readFileSync(EXAMPLE, "utf8"));
        broken.resources.pg.properties.synchronousMode = "sometimes";
        broken.resources.pg.properties.members = "three";
        broken.resources.pg.properties.replicas = 2;
        broken.resources.proxy.properties.backends = "${pg.memberNames}";
        delete broken.resources.pg.properties.targetSpec;
        broken.resources.db = { type: "hadb:index:Database", properties: {} };
        broken.outputs.nothing = "${proxy.readWrite.nowhere}";
        const problems = checkYamlProgram(broken, committed);
        for (const fragment of ["sometimes", '"three" is not a number', "no argument replicas", "pg.memberNames", "needs targetSpec", "hadb:index:Database", "nowhere"]) {
            expect(problems.join("\n")).toContain(fragment);
        }
    });
});

/**
 * Starts the plugin as the nodejs language host does (@pulumi/pulumi's run-plugin with the manifest's main and an
 * engine address, in the plugin's folder) and asks it over gRPC for its version and schema.
 */
export async function askPlugin(root: string, main: string): Promise<{ version: string; schema: unknown; startSeconds: number }> {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const grpc = require("@grpc/grpc-js");
    const { ResourceProviderClient } = require("@pulumi/pulumi/proto/provider_grpc_pb");
    const provproto = require("@pulumi/pulumi/proto/provider_pb");
    const { Empty } = require("google-protobuf/google/protobuf/empty_pb");
    /* eslint-enable @typescript-eslint/no-require-imports */
    const started = Date.now();
    const child = spawn(process.execPath, [require.resolve("@pulumi/pulumi/cmd/run-plugin"), main, "127.0.0.1:1"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    try {
        const port = await new Promise<string>((resolve, reject) => {
            child.stdout.once("data", (d) => resolve(String(d).trim()));
            child.once("exit", (code) => reject(new Error(`the plugin exited (${code}) before listening:\n${stderr}`)));
        });
        const startSeconds = (Date.now() - started) / 1000;
        const client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        const call = <T>(method: string, req: unknown) => new Promise<T>((resolve, reject) => client[method](req, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));
        const info = await call<{ getVersion(): string }>("getPluginInfo", new Empty());
        const schema = await call<{ getSchema(): string }>("getSchema", new provproto.GetSchemaRequest());
        client.close();
        return { version: info.getVersion(), schema: JSON.parse(schema.getSchema()), startSeconds };
    } finally {
        child.kill();
    }
}

describe("component package plugin", () => {
    it("starts from a checkout without a build, as `pulumi package add` from git does, and serves schema.json", async () => {
        const main = parse(fs.readFileSync(path.join(PACKAGE_ROOT, "PulumiPlugin.yaml"), "utf8")).main;
        const answer = await askPlugin(PACKAGE_ROOT, main);
        console.log(`[plugin] ${main} in the checkout (TypeScript through run-plugin's ts-node) listened after ${answer.startSeconds.toFixed(1)} s`);
        expect(answer.version).toBe(committed.version);
        expect(answer.schema).toEqual(committed);
    }, 180_000);
});

describe("component provider", () => {
    const local = { name: "local", docker: { publishAddress: "127.0.0.1" } };

    it("serves the committed schema and constructs components from plain data, sharing one target per spec", async () => {
        const recorder = await recordMocks("dev");
        const provider = new HadbProvider();
        expect(JSON.parse(await provider.getSchema())).toEqual(committed);
        expect(provider.version).toBe(committed.version);
        const pg = await provider.construct("pg", "hadb:index:PostgresCluster", { targetSpec: local, members: 3, passwords: { app: pulumi.secret("app-pw") } }, {});
        // Another language passes a cluster's backends as an Output (it comes from another resource).
        const backends = pulumi.output(pg.state.backends as object);
        const proxy = await provider.construct("proxy", "hadb:index:HaproxyFrontend", { targetSpec: { ...local }, backends, publish: true }, {});
        const resources = await recorder.settled();

        expect(Object.keys(pg.state).sort()).toEqual(Object.keys(committed.resources["hadb:index:PostgresCluster"].properties).sort());
        expect(Object.keys(proxy.state).sort()).toEqual(Object.keys(committed.resources["hadb:index:HaproxyFrontend"].properties).sort());
        expect(await pulumi.isSecret(pg.state.appPassword as pulumi.Output<string>)).toBe(true);
        expect(await reveal(pg.state.appPassword)).toBe("app-pw");

        const targets = byType(resources, "hadb:index:DockerTarget");
        expect(targets.map((t) => t.name)).toEqual(["local"]);
        expect(targets[0].parent, "beside the components, not under one").toBeUndefined();
        expect(byType(resources, "docker:index/network:Network")).toHaveLength(1);
        const containers = byType(resources, "docker:index/container:Container");
        expect(containers.map((c) => c.name).sort()).toEqual(["pg-0", "pg-1", "pg-2", "pg-config-0", "pg-etcd-0", "pg-etcd-1", "pg-etcd-2", "proxy-0", "proxy-1"].sort());
        for (const c of containers) expect(c.inputs.networksAdvanced[0].name, c.name).toBe("hadb-dev");
        const cfg = byType(resources, "docker:index/container:Container")
            .find((c) => c.name === "proxy-0")!
            .inputs.uploads.find((u: { file: string }) => u.file.endsWith("haproxy.cfg"));
        for (const member of ["pg-0", "pg-1", "pg-2"]) expect(cfg.content).toContain(member);
        expect(await reveal((proxy.state.readWrite as pulumi.Output<unknown>))).toMatchObject({ external: [{ host: "127.0.0.1", port: 5000 }, { host: "127.0.0.1", port: 5010 }] });
    });

    it("refuses a plain argument that is not known yet, or secret, naming it", async () => {
        await recordMocks("dev");
        const provider = new HadbProvider();
        const unknown = pulumi.output(pulumi.unknown as unknown as object);
        await expect(provider.construct("proxy", "hadb:index:HaproxyFrontend", { targetSpec: local, backends: unknown }, {})).rejects.toThrow(/`backends` is "unknown": its value is not known yet/);
        await expect(provider.construct("pg", "hadb:index:PostgresCluster", { targetSpec: local, bootstrapSql: pulumi.secret("SELECT 1") }, {})).rejects.toThrow(/`bootstrapSql`.*is a secret/);
        await expect(provider.construct("x", "hadb:index:DockerTarget", {}, {})).rejects.toThrow(/hadb has no component hadb:index:DockerTarget/);
    });

    it("opens passwords sent as one secret object and keeps each password secret", async () => {
        const recorder = await recordMocks("dev");
        const provider = new HadbProvider();
        const passwords = pulumi.secret({ app: "app-pw", superuser: "su-pw" });
        const pg = await provider.construct("pg", "hadb:index:PostgresCluster", { targetSpec: local, members: 2, passwords }, {});
        await recorder.settled();
        for (const [output, expected] of [["appPassword", "app-pw"], ["superuserPassword", "su-pw"]] as const) {
            const value = pg.state[output] as pulumi.Output<string>;
            expect(await pulumi.isSecret(value), output).toBe(true);
            expect(await reveal(value), output).toBe(expected);
        }
    });
});
