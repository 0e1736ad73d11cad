import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../components/core/images";

// hadb as users get it: `npm pack`, installed from the tarball into a scratch TypeScript program in a temporary
// folder, compiled there and run under Pulumi mocks in preview and in update mode. Nothing the program loads may
// come from this checkout.

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8"));
const PULUMI_VERSION: string = pkg.dependencies["@pulumi/pulumi"];

interface PackedFile {
    path: string;
    size: number;
}
interface Packed {
    filename: string;
    size: number;
    unpackedSize: number;
    files: PackedFile[];
}
interface Registered {
    type: string;
    name: string;
    parent?: string;
    inputs: Record<string, any>;
}
interface RunReport {
    mode: string;
    hadbVersion: string;
    resolved: Record<string, string>;
    loaded: string[];
    registered: Registered[];
    rwUrl: string;
    imagesDir: string;
}

/** Runs a command without blocking this process (the test runner keeps talking to its workers meanwhile). */
async function run(cmd: string, args: string[], cwd: string): Promise<string> {
    try {
        const { stdout } = await promisify(execFile)(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" } });
        return stdout;
    } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string };
        throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
    }
}

// The scratch program: a user's TypeScript program importing hadb by its package name.
const PROGRAM = `import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { DockerTarget, EtcdCluster, HaproxyFrontend, MySqlCluster, PostgresCluster, TargetSpec } from "hadb";

const mode = process.argv[2];
const registered: { type: string; name: string; parent?: string; inputs: Record<string, unknown> }[] = [];

pulumi.runtime.setMocks(
    {
        newResource(args) {
            registered.push({ type: args.type, name: args.name, inputs: args.inputs });
            const computed: Record<string, unknown> =
                args.type === "docker:index/image:Image" ? { repoDigest: args.inputs.imageName }
                : args.type === "random:index/randomPassword:RandomPassword" ? { result: "generated0password" }
                : {};
            return { id: args.custom ? args.name + "-id" : undefined, state: { ...args.inputs, ...computed } };
        },
        call: (args) => args.inputs,
    },
    "scratch",
    "dev",
    mode === "preview",
);

async function main(): Promise<void> {
    // TypeScript style: a target object.
    const local = new DockerTarget("local");
    const pg = new PostgresCluster("pg", { target: local, members: 3, synchronousMode: "on", timingProfile: "dev" });
    const proxy = new HaproxyFrontend("pg-proxy", { target: local, backends: pg.backends, publish: true });
    const rwUrl = pg.connectionUrl(proxy.readWrite.apply((e) => e.external[0]), "app");
    // Any-language style: a plain-data spec, one shared target for both components.
    const spec: TargetSpec = { name: "shared", docker: { subnet: "172.30.0.0/24", namePrefix: "scratch" } };
    const db = new MySqlCluster("mysql", { targetSpec: spec, mode: "single-primary" });
    new HaproxyFrontend("mysql-proxy", { targetSpec: spec, backends: db.backends });
    new EtcdCluster("extra-etcd", { targetSpec: spec, members: 1 });

    const url = await new Promise<string>((resolve) => rwUrl.apply((u) => resolve(u)));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    await require("@pulumi/pulumi/runtime/settings").waitForRPCs();
    const hadbMain = require.resolve("hadb");
    const fromHadb = { paths: [path.dirname(hadbMain)] };
    const image = registered.find((r) => r.type === "docker:index/image:Image")!;
    const report = {
        mode,
        hadbVersion: require("hadb/package.json").version,
        resolved: {
            hadb: hadbMain,
            "hadb/package.json": require.resolve("hadb/package.json"),
            "@pulumi/pulumi": require.resolve("@pulumi/pulumi"),
            "@pulumi/pulumi (from hadb)": require.resolve("@pulumi/pulumi", fromHadb),
            "@pulumi/docker (from hadb)": require.resolve("@pulumi/docker", fromHadb),
            "@pulumi/random (from hadb)": require.resolve("@pulumi/random", fromHadb),
            "yaml (from hadb)": require.resolve("yaml", fromHadb),
        },
        loaded: Object.keys(require.cache),
        registered,
        rwUrl: url,
        imagesDir: path.dirname(String((image.inputs.build as { context: string }).context)),
    };
    console.log("REPORT " + JSON.stringify(report));
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
`;

// A stand-in for the engine: starts the component package's plugin entry (PulumiPlugin.yaml's `main`, from the
// installed package) and asks it over gRPC what `pulumi package add` asks, its version and its schema.
const PLUGIN_CHECK = `const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const { ResourceProviderClient } = require("@pulumi/pulumi/proto/provider_grpc_pb");
const provproto = require("@pulumi/pulumi/proto/provider_pb");
const { Empty } = require("google-protobuf/google/protobuf/empty_pb");

const root = path.join(__dirname, "node_modules", "hadb");
const main = /^main:\\s*(\\S+)/m.exec(fs.readFileSync(path.join(root, "PulumiPlugin.yaml"), "utf8"))[1];
// As the nodejs language host runs a plugin: @pulumi/pulumi's run-plugin with the manifest's main and the engine's address.
const runPlugin = require.resolve("@pulumi/pulumi/cmd/run-plugin");
const child = spawn(process.execPath, [runPlugin, main, "127.0.0.1:1"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
const fail = (err) => { console.error(err); child.kill(); process.exit(1); };
child.stdout.once("data", (data) => {
    const port = String(data).trim();
    const client = new ResourceProviderClient("127.0.0.1:" + port, grpc.credentials.createInsecure());
    client.getPluginInfo(new Empty(), (err, info) => {
        if (err) return fail(err);
        client.getSchema(new provproto.GetSchemaRequest(), (err2, resp) => {
            if (err2) return fail(err2);
            console.log("PLUGIN " + JSON.stringify({ main, version: info.getVersion(), schema: JSON.parse(resp.getSchema()) }));
            client.close();
            child.kill();
        });
    });
});
setTimeout(() => fail(new Error("the plugin did not answer in 60 s")), 60000).unref();
`;

/** Seconds each step of the set-up took, printed with the tarball's figures. */
const timings: string[] = [];
async function timed<T>(step: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const result = await work();
    timings.push(`${step} ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
}

const TSCONFIG = (moduleResolution: string, module: string) =>
    JSON.stringify({
        compilerOptions: { target: "ES2022", module, moduleResolution, lib: ["ES2022"], types: ["node"], strict: true, esModuleInterop: true, skipLibCheck: true },
        files: ["index.ts"],
    });

describe("the npm package", () => {
    let tmp: string;
    let packed: Packed;
    let scratch: string;
    const reports: Record<string, RunReport> = {};
    let plugin: { main: string; version: string; schema: unknown };

    beforeAll(async () => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hadb-package-"));
        // What `npm pack` takes from this checkout, except dist/, which is built into a staging copy: a dist/ in
        // the checkout would be linted and could go stale. `prepack` builds the same dist/ in a real `npm pack`.
        const listed: Packed = JSON.parse(await run(npm, ["pack", "--dry-run", "--json", "--ignore-scripts"], PACKAGE_ROOT))[0];
        const stage = path.join(tmp, "stage");
        for (const file of listed.files) {
            if (file.path.startsWith("dist/")) continue;
            fs.mkdirSync(path.dirname(path.join(stage, file.path)), { recursive: true });
            fs.copyFileSync(path.join(PACKAGE_ROOT, file.path), path.join(stage, file.path));
        }
        await timed("build", () => run(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(PACKAGE_ROOT, "tsconfig.build.json"), "--outDir", path.join(stage, "dist")], PACKAGE_ROOT));
        fs.mkdirSync(path.join(tmp, "out"));
        packed = JSON.parse(await run(npm, ["pack", "--json", "--ignore-scripts", "--pack-destination", path.join(tmp, "out")], stage))[0];
        const tarball = path.join(tmp, "out", packed.filename);
        console.log(`[package] ${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} bytes unpacked, ${packed.files.length} files`);
        for (const f of packed.files) console.log(`[package]   ${f.path} (${f.size} bytes)`);

        // A user's program in a temporary folder: the tarball plus its dependencies from the npm registry (the
        // local cache first), and the same @pulumi/pulumi as hadb's so there is one copy of the runtime.
        scratch = path.join(tmp, "program");
        fs.mkdirSync(scratch);
        const scratchPkg = {
            name: "hadb-scratch-program",
            version: "1.0.0",
            private: true,
            dependencies: { "@pulumi/pulumi": PULUMI_VERSION, "@types/node": pkg.devDependencies["@types/node"], typescript: pkg.devDependencies.typescript },
        };
        fs.writeFileSync(path.join(scratch, "package.json"), JSON.stringify(scratchPkg, null, 2));
        await timed("install", () => run(npm, ["install", "--no-save", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", tarball], scratch));
        fs.writeFileSync(path.join(scratch, "index.ts"), PROGRAM);
        const tsc = path.join(scratch, "node_modules", "typescript", "bin", "tsc");
        // Type-checked against the package's declarations both ways TypeScript resolves packages: through
        // `exports` (node16) and through `types` (node10).
        fs.writeFileSync(path.join(scratch, "tsconfig.node10.json"), TSCONFIG("node10", "commonjs"));
        await timed("type-check (node10)", () => run(process.execPath, [tsc, "-p", "tsconfig.node10.json", "--noEmit"], scratch));
        fs.writeFileSync(path.join(scratch, "tsconfig.json"), TSCONFIG("node16", "node16"));
        await timed("compile (node16)", () => run(process.execPath, [tsc, "-p", "tsconfig.json"], scratch));
        for (const mode of ["preview", "update"]) {
            const out = await timed(mode, () => run(process.execPath, ["index.js", mode], scratch));
            const line = out.split("\n").find((l) => l.startsWith("REPORT "));
            if (!line) throw new Error(`the scratch program printed no report in ${mode} mode:\n${out}`);
            reports[mode] = JSON.parse(line.slice("REPORT ".length));
        }
        fs.writeFileSync(path.join(scratch, "plugin-check.js"), PLUGIN_CHECK);
        const answer = (await timed("plugin", () => run(process.execPath, ["plugin-check.js"], scratch)))
            .split("\n")
            .find((l) => l.startsWith("PLUGIN "));
        if (!answer) throw new Error("the plugin check printed no answer");
        plugin = JSON.parse(answer.slice("PLUGIN ".length));
        console.log(`[package] scratch program in ${scratch}; ${timings.join(", ")}`);
    }, 240_000);

    afterAll(async () => {
        if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
    }, 120_000);

    it("packs compiled JavaScript with declarations, the images, the schema and the plugin manifest, and nothing else", () => {
        const files = packed.files.map((f) => f.path);
        const allowed = [/^dist\/.+\.(js|d\.ts)$/, /^images\/(?!.*__pycache__)/, /^hosts\/hadb-host\.py$/, /^package\.json$/, /^README\.md$/, /^LICEN[CS]E/i, /^schema\.json$/, /^PulumiPlugin\.yaml$/, /^plugin\.js$/];
        expect(files.filter((f) => !allowed.some((a) => a.test(f)))).toEqual([]);
        for (const needed of ["dist/index.js", "dist/index.d.ts", "dist/provider.js", "dist/core/images.js", "images/catalogue.json", "hosts/hadb-host.py", "schema.json", "PulumiPlugin.yaml", "plugin.js", "package.json"]) {
            expect(files).toContain(needed);
        }
        const catalogue = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "images", "catalogue.json"), "utf8"));
        for (const image of Object.keys(catalogue)) expect(files).toContain(`images/${image}/Dockerfile`);
        // Every component source is there compiled, and no test, stack or source file.
        expect(files.filter((f) => /^(test|stacks|components|scripts|examples)\//.test(f) || (f.endsWith(".ts") && !f.endsWith(".d.ts")))).toEqual([]);
        const manifest = JSON.parse(fs.readFileSync(path.join(scratch, "node_modules", "hadb", "package.json"), "utf8"));
        expect(manifest.private).toBeUndefined();
        expect(manifest.version).toBe(pkg.version);
        expect(fs.existsSync(path.join(scratch, "node_modules", "hadb", manifest.main))).toBe(true);
        expect(fs.existsSync(path.join(scratch, "node_modules", "hadb", manifest.types))).toBe(true);
    });

    it("starts the component package's plugin from the installed package, which serves the committed schema", () => {
        // plugin.js runs dist/provider.js: the package has no TypeScript sources.
        expect(plugin.main).toBe("plugin.js");
        expect(plugin.version).toBe(pkg.version);
        expect(plugin.schema).toEqual(JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "schema.json"), "utf8")));
    });

    it("runs a program that imports hadb by name under mocks, in preview and update mode, all from the installed package", () => {
        const checkout = path.resolve(PACKAGE_ROOT) + path.sep;
        const installed = path.join(fs.realpathSync(scratch), "node_modules") + path.sep;
        for (const [mode, report] of Object.entries(reports)) {
            expect(report.mode).toBe(mode);
            expect(report.hadbVersion).toBe(pkg.version);
            for (const [what, file] of Object.entries(report.resolved)) {
                expect(fs.realpathSync(file).startsWith(installed), `${what} resolves to ${file}`).toBe(true);
            }
            expect(report.resolved.hadb).toBe(path.join(installed, "hadb", "dist", "index.js"));
            expect(report.resolved["@pulumi/pulumi (from hadb)"]).toBe(report.resolved["@pulumi/pulumi"]);
            const fromCheckout = report.loaded.filter((f) => fs.realpathSync(f).startsWith(checkout));
            expect(fromCheckout, "modules loaded from this checkout").toEqual([]);
            expect(report.loaded.filter((f) => f.includes(`${path.sep}hadb${path.sep}dist${path.sep}`)).length).toBeGreaterThan(10);
            // The Docker target builds from the images inside the installed package.
            expect(report.imagesDir).toBe(path.join(installed, "hadb", "images"));
            expect(fs.existsSync(path.join(report.imagesDir, "postgres", "Dockerfile"))).toBe(true);
            expect(report.rwUrl).toBe("postgresql://app:generated0password@127.0.0.1:5000/app");
        }
        const count = (report: RunReport, type: string) => report.registered.filter((r) => r.type === type).length;
        const update = reports.update;
        console.log(`[package] the scratch program registered ${update.registered.length} resources in each mode`);
        expect(count(update, "hadb:index:DockerTarget")).toBe(2); // "local", and "shared" declared once for three components
        expect(count(update, "docker:index/network:Network")).toBe(2);
        expect(count(update, "hadb:index:PostgresCluster")).toBe(1);
        expect(count(update, "hadb:index:EtcdCluster")).toBe(2);
        expect(count(update, "hadb:index:MySqlCluster")).toBe(1);
        expect(count(update, "hadb:index:HaproxyFrontend")).toBe(2);
        // pg 3 + its etcd 3 + configurator 1 + proxy 2; mysql 3 + configurator 1 + proxy 2; extra etcd 1.
        expect(count(update, "docker:index/container:Container")).toBe(16);
        const containers = update.registered.filter((r) => r.type === "docker:index/container:Container");
        const onShared = containers.filter((c) => c.inputs.networksAdvanced[0].name === "scratch").map((c) => c.name);
        expect(onShared.sort()).toEqual(["extra-etcd-0", "mysql-0", "mysql-1", "mysql-2", "mysql-config-0", "mysql-proxy-0", "mysql-proxy-1"]);
        // The image catalogue was read from the package: files are owned by the images' uid.
        expect(containers[0].inputs.uploads[0].owner).toBe("999");
        const key = (r: Registered) => `${r.type}::${r.name}`;
        expect(reports.preview.registered.map(key).sort()).toEqual(update.registered.map(key).sort());
    });
});
