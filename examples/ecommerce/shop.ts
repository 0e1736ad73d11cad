/**
 * The shop, as an application on hadb would write it: orders are written in one transaction on the read-write
 * endpoint, a user's order history is read from the read-only endpoint (replicas), and the 30-day revenue report
 * runs on the analytics endpoint (a dedicated replica), so reporting never slows the checkout. Each read says
 * which server answered, which is how an operator (and the tests) can see where reads go.
 */
import mysql from "mysql2/promise";
import { Pool } from "pg";

/** The stack outputs the shop needs, per engine: `pulumi stack output --json --show-secrets` → `.postgres` / `.mysql`. */
export interface ShopEndpoints {
    readonly rwUrl: string;
    readonly roUrl: string;
    readonly analyticsUrl: string;
}

export interface OrderLine {
    readonly productId: number;
    readonly quantity: number;
    /** Unit price, in currency units (two decimals). */
    readonly price: number;
}

export interface OrderSummary {
    readonly id: number;
    readonly totalAmount: string;
    readonly status: string;
    readonly createdAt: Date;
    readonly items: number;
}

export interface DailyRevenue {
    readonly day: string;
    readonly orders: number;
    readonly revenue: string;
}

/** Rows and the server (its address or host name) that answered. */
export interface Served<T> {
    readonly rows: T;
    readonly server: string;
}

export interface Shop {
    /**
     * One order and its lines in one transaction on the primary; resolves once COMMIT returned. A rejection is not
     * proof that nothing was written (the primary may fail after committing, before answering): retry with care,
     * e.g. look the order up first, or give orders an idempotency key.
     */
    createOrder(userId: number, lines: readonly OrderLine[]): Promise<number>;
    /** The user's latest orders, from a replica. */
    getUserOrders(userId: number, limit?: number): Promise<Served<OrderSummary[]>>;
    /** Orders and revenue per day over the last 30 days, from the analytics replica. */
    getOrderAnalytics(days?: number): Promise<Served<DailyRevenue[]>>;
    close(): Promise<void>;
}

/** The order total in cents, so no floating-point error reaches the database. */
function totalCents(lines: readonly OrderLine[]): number {
    if (lines.length === 0) throw new Error("an order needs at least one line");
    return lines.reduce((sum, l) => sum + l.quantity * Math.round(l.price * 100), 0);
}

const money = (cents: number) => (cents / 100).toFixed(2);

export function postgresShop(endpoints: ShopEndpoints): Shop {
    const pool = (url: string) => {
        const p = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 2000, query_timeout: 5000 });
        // A connection to a server that went away, idle or checked out: the query on it fails, the pool drops it.
        p.on("error", () => {});
        p.on("connect", (client) => client.on("error", () => {}));
        return p;
    };
    const rw = pool(endpoints.rwUrl);
    const ro = pool(endpoints.roUrl);
    const analytics = pool(endpoints.analyticsUrl);
    async function served<T>(p: Pool, sql: string, args: unknown[], map: (r: any) => T): Promise<Served<T[]>> {
        const client = await p.connect();
        let failure: Error | undefined;
        try {
            const { rows } = await client.query(sql, args);
            const server = (await client.query("SELECT host(inet_server_addr()) AS s")).rows[0].s as string;
            return { rows: rows.map(map), server };
        } catch (err) {
            failure = err as Error;
            throw err;
        } finally {
            client.release(failure);
        }
    }
    return {
        async createOrder(userId, lines) {
            const client = await rw.connect();
            let failure: Error | undefined;
            try {
                await client.query("BEGIN");
                const { rows } = await client.query("INSERT INTO orders (user_id, total_amount) VALUES ($1, $2) RETURNING id", [userId, money(totalCents(lines))]);
                const id = Number(rows[0].id);
                for (const l of lines) await client.query("INSERT INTO order_items (order_id, product_id, quantity, price) VALUES ($1, $2, $3, $4)", [id, l.productId, l.quantity, l.price.toFixed(2)]);
                await client.query("COMMIT");
                return id;
            } catch (err) {
                failure = err as Error;
                throw err;
            } finally {
                // After an error the connection may be to a server that went away: release(err) drops it from the pool.
                client.release(failure);
            }
        },
        getUserOrders: (userId, limit = 20) =>
            served(
                ro,
                `SELECT o.id, o.total_amount, o.status, o.created_at, count(i.id) AS items
                   FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
                  WHERE o.user_id = $1 GROUP BY o.id ORDER BY o.created_at DESC LIMIT $2`,
                [userId, limit],
                (r) => ({ id: Number(r.id), totalAmount: r.total_amount, status: r.status, createdAt: r.created_at, items: Number(r.items) }),
            ),
        getOrderAnalytics: (days = 30) =>
            served(
                analytics,
                `SELECT to_char(date_trunc('day', created_at), 'YYYY-MM-DD') AS day, count(*) AS orders, sum(total_amount) AS revenue
                   FROM orders WHERE created_at >= now() - make_interval(days => $1) GROUP BY 1 ORDER BY 1`,
                [days],
                (r) => ({ day: r.day, orders: Number(r.orders), revenue: r.revenue }),
            ),
        close: async () => void (await Promise.all([rw.end(), ro.end(), analytics.end()])),
    };
}

export function mysqlShop(endpoints: ShopEndpoints): Shop {
    // decimalNumbers off: amounts stay exact strings; dateStrings off: created_at is a Date.
    const pool = (url: string) => mysql.createPool({ uri: url, connectionLimit: 4, connectTimeout: 2000 });
    const rw = pool(endpoints.rwUrl);
    const ro = pool(endpoints.roUrl);
    const analytics = pool(endpoints.analyticsUrl);
    async function served<T>(p: mysql.Pool, sql: string, args: unknown[], map: (r: any) => T): Promise<Served<T[]>> {
        const conn = await p.getConnection();
        try {
            const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql, values: args, timeout: 5000 });
            const [who] = await conn.query<mysql.RowDataPacket[]>({ sql: "SELECT @@report_host AS s", timeout: 5000 });
            conn.release();
            return { rows: rows.map(map), server: String(who[0].s) };
        } catch (err) {
            conn.destroy();
            throw err;
        }
    }
    return {
        async createOrder(userId, lines) {
            const conn = await rw.getConnection();
            try {
                await conn.query({ sql: "BEGIN", timeout: 5000 });
                const [res] = await conn.query<mysql.ResultSetHeader>({ sql: "INSERT INTO orders (user_id, total_amount) VALUES (?, ?)", values: [userId, money(totalCents(lines))], timeout: 5000 });
                const id = Number(res.insertId);
                for (const l of lines) {
                    await conn.query({ sql: "INSERT INTO order_items (order_id, product_id, quantity, price) VALUES (?, ?, ?, ?)", values: [id, l.productId, l.quantity, l.price.toFixed(2)], timeout: 5000 });
                }
                await conn.query({ sql: "COMMIT", timeout: 5000 });
                conn.release();
                return id;
            } catch (err) {
                // The connection may be to a server that went away: drop it rather than return it to the pool.
                conn.destroy();
                throw err;
            }
        },
        getUserOrders: (userId, limit = 20) =>
            served(
                ro,
                `SELECT o.id, o.total_amount, o.status, o.created_at, COUNT(i.id) AS items
                   FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
                  WHERE o.user_id = ? GROUP BY o.id ORDER BY o.created_at DESC LIMIT ?`,
                [userId, limit],
                (r) => ({ id: Number(r.id), totalAmount: String(r.total_amount), status: r.status, createdAt: r.created_at, items: Number(r.items) }),
            ),
        getOrderAnalytics: (days = 30) =>
            served(
                analytics,
                `SELECT DATE_FORMAT(created_at, '%Y-%m-%d') AS day, COUNT(*) AS orders, SUM(total_amount) AS revenue
                   FROM orders WHERE created_at >= NOW(6) - INTERVAL ? DAY GROUP BY day ORDER BY day`,
                [days],
                (r) => ({ day: r.day, orders: Number(r.orders), revenue: String(r.revenue) }),
            ),
        close: async () => void (await Promise.all([rw.end(), ro.end(), analytics.end()])),
    };
}

/** The shop on one engine of a stack's outputs (`pulumi stack output --json --show-secrets`). */
export function shopFromStackOutputs(outputs: Record<string, any>, engine: "postgres" | "mysql"): Shop {
    const endpoints = outputs[engine] as ShopEndpoints | undefined;
    if (!endpoints?.analyticsUrl) throw new Error(`the stack has no ${engine} endpoints with an analytics replica: deploy the ecommerce-ha preset with ${engine} and a fleet`);
    return engine === "postgres" ? postgresShop(endpoints) : mysqlShop(endpoints);
}
