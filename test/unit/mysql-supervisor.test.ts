import { spawnSync } from "child_process";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, describe, expect, it } from "vitest";
import { renderApplicationJson, renderMemberJson, resolveMySqlSettings } from "../../components/mysql/memberConfig";

// The MySQL member supervisor is Python (images/mysql/member.py, assembly.py). Its tests are Python's unittest
// in test/python, run here with the host's python3 (no pymysql needed: member.py is tested against a stand-in).
const root = join(__dirname, "..", "..");
const scratch = mkdtempSync(join(tmpdir(), "hadb-supervisor-"));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function python(args: string[], env: Record<string, string> = {}) {
    // No __pycache__ in the image's build context or the repository.
    const run = spawnSync("python3", args, { cwd: root, encoding: "utf8", timeout: 50_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1", PYTHONPYCACHEPREFIX: join(scratch, "pycache"), ...env } });
    const output = `$ python3 ${args.join(" ")}\n${run.stdout ?? ""}${run.stderr ?? ""}${run.error ? String(run.error) : ""}`;
    console.log(output);
    return { status: run.status, output };
}

describe("MySQL member supervisor (Python)", () => {
    it("compiles: member.py and assembly.py", () => {
        const { status, output } = python(["-m", "py_compile", "images/mysql/member.py", "images/mysql/assembly.py"]);
        expect(status, output).toBe(0);
    });

    it("passes its unittest suite: the assembly decision table and the supervisor's steps", () => {
        // A member.json as the component renders it, so the supervisor is checked against the real keys too.
        const s = resolveMySqlSettings({ bootstrapSql: "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY);" }, "0b1f5c2e-1111-5222-8333-444455556666");
        const ctx = { member: "mysql-1", ordinal: 1, members: ["mysql-0", "mysql-1", "mysql-2"], memberHost: (m: string) => `${m}.net`, clusterRanges: ["172.29.0.0/24"] };
        const memberJson = join(scratch, "member.json");
        writeFileSync(memberJson, renderMemberJson(s, ctx, { admin: "a", replication: "r", monitor: "m", app: "p" }));
        // application.json sits beside member.json, as in /etc/hadb.
        writeFileSync(join(scratch, "application.json"), renderApplicationJson(s, { app: "p" }));
        const { status, output } = python(["-m", "unittest", "discover", "-s", "test/python", "-v"], { HADB_MEMBER_JSON: memberJson });
        expect(output).toMatch(/^OK/m);
        expect(output).not.toMatch(/skipped/);
        expect(status, output).toBe(0);
    });
});
