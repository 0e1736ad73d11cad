import mysql from "mysql2/promise";
import { dockerExec, waitFor } from "./support";
import { OrderDriver } from "./writer";

/** What a member's supervisor reports on /member. */
export interface MemberStatus {
    member: string;
    state: string;
    role: string;
    super_read_only: boolean;
    applier_queue: number | null;
    gtid_executed: string;
    multi_primary: boolean;
}

/** Each member's own view of itself, asked through its supervisor (undefined for a member that does not answer). */
export async function memberStatuses(containers: readonly string[]): Promise<(MemberStatus | undefined)[]> {
    return Promise.all(
        containers.map(async (c) => {
            try {
                return JSON.parse(await dockerExec(c, ["curl", "-sS", "--max-time", "2", "http://127.0.0.1:8008/member"], 5000)) as MemberStatus;
            } catch {
                return undefined;
            }
        }),
    );
}

/** Every member ONLINE; in single-primary mode exactly one PRIMARY. */
export function groupFormed(statuses: (MemberStatus | undefined)[], multiPrimary = false): boolean {
    if (!statuses.every((s) => s?.state === "ONLINE")) return false;
    const primaries = statuses.filter((s) => s!.role === "PRIMARY").length;
    return multiPrimary ? primaries === statuses.length : primaries === 1;
}

export async function connect(url: string): Promise<mysql.Connection> {
    const conn = await mysql.createConnection({ uri: url, connectTimeout: 2000, multipleStatements: false });
    conn.on("error", () => {});
    return conn;
}

export async function withMySql<T>(url: string, work: (c: mysql.Connection) => Promise<T>): Promise<T> {
    const conn = await connect(url);
    try {
        return await work(conn);
    } finally {
        await conn.end().catch(() => {});
    }
}

/** SQL on one member over its socket, as root (member introspection only). Tab-separated rows. */
export async function memberSql(container: string, adminPassword: string, sql: string): Promise<string> {
    return (await dockerExec(container, ["env", `MYSQL_PWD=${adminPassword}`, "mysql", "-uroot", "-N", "-B", "-e", sql], 20_000)).trim();
}

/** Orders through a MySQL endpoint; the server is named by its `@@server_id`. */
export function mysqlOrders(url: string): OrderDriver<mysql.Connection> {
    return {
        connect: () => connect(url),
        async commitOrder(conn, customer) {
            await conn.query({ sql: "BEGIN", timeout: 3000 });
            const [res] = await conn.query<mysql.ResultSetHeader>({ sql: "INSERT INTO orders (user_id, total_amount) VALUES (?, 29.97)", values: [customer], timeout: 3000 });
            const id = Number(res.insertId);
            await conn.query({ sql: "INSERT INTO order_items (order_id, product_id, quantity, price) VALUES (?, 101, 1, 19.99), (?, 202, 2, 4.99)", values: [id, id], timeout: 3000 });
            const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql: "SELECT @@server_id AS server", timeout: 3000 });
            await conn.query({ sql: "COMMIT", timeout: 5000 });
            return { id, server: String(rows[0].server) };
        },
        discard: (conn) => conn.destroy(),
        close: (conn) => conn.end(),
    };
}

/** Acknowledged orders missing (or missing an item) behind `url`. */
export async function missingOrders(url: string, ids: number[]): Promise<number[]> {
    if (ids.length === 0) return [];
    return withMySql(url, async (c) => {
        const [rows] = await c.query<mysql.RowDataPacket[]>(
            `SELECT o.id, (SELECT COUNT(*) FROM order_items i WHERE i.order_id = o.id) AS items FROM orders o WHERE o.id IN (${ids.map(() => "?").join(",")})`,
            ids,
        );
        const complete = new Set(rows.filter((r) => Number(r.items) === 2).map((r) => Number(r.id)));
        return ids.filter((id) => !complete.has(id));
    });
}

/** GTID_EXECUTED and table checksums of one member: equal on every member means identical data. */
export async function fingerprint(container: string, adminPassword: string): Promise<string> {
    return memberSql(container, adminPassword, "SELECT @@GLOBAL.gtid_executed; CHECKSUM TABLE app.orders, app.order_items EXTENDED;");
}

/** Waits until every member has the same GTID_EXECUTED and table checksums. */
export async function waitIdentical(members: readonly string[], adminPassword: string): Promise<void> {
    await waitFor(
        "equal GTID_EXECUTED and table checksums on every member",
        async () => new Set(await Promise.all(members.map((m) => fingerprint(m, adminPassword)))).size === 1,
        60_000,
        500,
    );
}
