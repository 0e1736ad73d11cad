import { describe, expect, it } from "vitest";
import { checkShape, dependencyOrder, durationNs } from "../harness/dockerApply";
import { tarOneFile } from "../harness/dockerApi";
import { RecordedResource, unwrapSecrets } from "../harness/mockRun";
import { loadStackConfig, parseOverrides } from "../harness/stackConfig";

function resource(urn: string, deps: string[] = [], parent?: string, custom = true): RecordedResource {
    return { urn, type: "t", name: urn, custom, inputs: {}, secretInputs: [], dependencies: deps, parent, state: {} };
}

describe("stack harness", () => {
    it("fails loudly on an input field it does not implement, naming the field path", () => {
        const shape = { name: true, ports: { internal: true } } as const;
        expect(() => checkShape("Container x", { name: "a", ports: [{ internal: 1 }] }, shape)).not.toThrow();
        expect(() => checkShape("Container x", { name: "a", privileged: true }, shape)).toThrow(/`privileged`, which the harness does not implement/);
        expect(() => checkShape("Container x", { ports: [{ internal: 1, external: 2 }] }, shape)).toThrow(/`ports\[0\]\.external`/);
    });

    it("orders resources after their dependencies, expanding a dependency on a component to its children", () => {
        const order = dependencyOrder([
            resource("c", ["comp"]),
            resource("comp", [], undefined, false),
            resource("b", [], "comp"),
            resource("a", [], "comp"),
            resource("d", ["c"]),
        ]);
        expect(order.map((r) => r.urn)).toEqual(["b", "a", "c", "d"]);
    });

    it("refuses a dependency cycle", () => {
        expect(() => dependencyOrder([resource("a", ["b"]), resource("b", ["a"])])).toThrow(/cycle/);
    });

    it("parses the provider's durations", () => {
        expect(durationNs("2s")).toBe(2e9);
        expect(durationNs("500ms")).toBe(5e8);
        expect(durationNs("1m30s")).toBe(90e9);
        expect(() => durationNs("2 seconds")).toThrow(/not of the form/);
    });

    it("writes a valid ustar header with mode and owner", () => {
        const tar = tarOneFile("/etc/patroni/patroni.yml", Buffer.from("x: 1\n"), 0o600, 999, 998);
        expect(tar.length % 512).toBe(0);
        expect(tar.subarray(0, 100).toString().replace(/\0+$/, "")).toBe("etc/patroni/patroni.yml");
        expect(tar.subarray(100, 107).toString()).toBe("0000600");
        expect(parseInt(tar.subarray(108, 115).toString(), 8)).toBe(999);
        const stored = parseInt(tar.subarray(148, 154).toString(), 8);
        const copy = Buffer.from(tar.subarray(0, 512));
        copy.fill(" ", 148, 156);
        expect(copy.reduce((a, b) => a + b, 0)).toBe(stored);
        expect(tar.subarray(512, 517).toString()).toBe("x: 1\n");
    });

    it("unwraps the mock's secret envelopes and says a secret was there", () => {
        const found = { secret: false };
        const value = unwrapSecrets({ a: [{ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value: "pw" }] }, found);
        expect(value).toEqual({ a: ["pw"] });
        expect(found.secret).toBe(true);
    });

    it("loads config like the CLI: schema defaults, then the stack file, then overrides, type-checked", () => {
        const { config } = loadStackConfig("dev", { "hadb:etcdMembers": 5 });
        expect(config["hadb:preset"]).toBe("ecommerce-ha");
        expect(config["hadb:engine"]).toBe("both");
        expect(config["hadb:etcdMembers"]).toBe("5");
        expect(config["hadb:publishAddress"]).toBe("127.0.0.1");
        expect(() => loadStackConfig("dev", { "hadb:etcdMembers": "three" })).toThrow(/declares it integer/);
        expect(() => loadStackConfig("dev", { "hadb:nope": 1 })).toThrow(/not declared/);
        expect(() => loadStackConfig("nosuchstack")).toThrow(/no stack file/);
    });

    it("types command-line overrides as the CLIs pass them: whole numbers and booleans, the rest strings", () => {
        expect(parseOverrides(["hadb:postgresMembers=5", "hadb:publishFrontends=true", "hadb:postgresParameters=work_mem=8MB"])).toEqual({
            "hadb:postgresMembers": 5,
            "hadb:publishFrontends": true,
            "hadb:postgresParameters": "work_mem=8MB",
        });
        expect(() => parseOverrides(["postgresMembers"])).toThrow(/not key=value/);
    });
});
