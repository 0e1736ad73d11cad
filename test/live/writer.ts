import { sleep } from "./support";

/** How one database's client connects and commits one e-commerce order (an order and two items). */
export interface OrderDriver<C> {
    connect(): Promise<C>;
    /** Commits one order in one transaction; returns its id and the server that committed it. */
    commitOrder(client: C, customer: number): Promise<{ id: number; server: string }>;
    /** Drops a client after an error, without waiting for the server. */
    discard(client: C): void;
    close(client: C): Promise<void>;
}

export interface Attempt {
    readonly at: number;
    readonly ok: boolean;
    readonly id?: number;
    /** The server that committed it. */
    readonly server?: string;
    readonly error?: string;
}

/**
 * The e-commerce writer: commits orders back to back through an endpoint and counts one as acknowledged only
 * when COMMIT returned. Reconnects after any error. Bounded by `maxMs`.
 */
export class OrderWriter<C> {
    readonly attempts: Attempt[] = [];
    private running = false;
    private loop?: Promise<void>;

    constructor(
        private readonly driver: OrderDriver<C>,
        private readonly maxMs = 180_000,
    ) {}

    start(): void {
        this.running = true;
        this.loop = this.run();
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.loop;
    }

    get acknowledged(): number[] {
        return this.attempts.filter((a) => a.ok).map((a) => a.id!);
    }

    /** The server that acknowledged the latest write. */
    get lastServer(): string | undefined {
        return this.attempts.filter((a) => a.ok).at(-1)?.server;
    }

    /** Seconds from `since` (ms epoch) to the first acknowledged write after it on a server other than `oldServer`. */
    firstSuccessAfter(since: number, oldServer?: string): number | undefined {
        const a = this.attempts.find((x) => x.ok && x.at > since && x.server !== oldServer);
        return a ? (a.at - since) / 1000 : undefined;
    }

    /** The longest time between two acknowledged writes inside [from, to]: the unavailability a user saw. */
    longestGap(from: number, to: number): number {
        const times = this.attempts.filter((a) => a.ok && a.at >= from && a.at <= to).map((a) => a.at);
        let gap = 0;
        for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
        return gap / 1000;
    }

    async waitForSuccessAfter(since: number, oldServer: string | undefined, timeoutMs: number): Promise<number> {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            const s = this.firstSuccessAfter(since, oldServer);
            if (s !== undefined) return s;
            await sleep(100);
        }
        throw new Error(`no acknowledged write within ${timeoutMs / 1000} s; last error: ${this.attempts.filter((a) => !a.ok).at(-1)?.error}`);
    }

    private async run(): Promise<void> {
        const started = Date.now();
        let client: C | undefined;
        let customer = 0;
        while (this.running && Date.now() - started < this.maxMs) {
            try {
                client ??= await this.driver.connect();
                const { id, server } = await this.driver.commitOrder(client, ++customer);
                this.attempts.push({ at: Date.now(), ok: true, id, server });
            } catch (err) {
                this.attempts.push({ at: Date.now(), ok: false, error: err instanceof Error ? err.message : String(err) });
                if (client) this.driver.discard(client);
                client = undefined;
                await sleep(100);
            }
            await sleep(20);
        }
        if (client) await this.driver.close(client).catch(() => {});
    }
}
