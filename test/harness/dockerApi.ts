import * as http from "http";

/** A minimal client for the Docker Engine API over its Unix socket: exact semantics, no CLI parsing. */
const SOCKET = process.env.DOCKER_SOCKET ?? "/var/run/docker.sock";
const API = "/v1.41";

export class DockerApiError extends Error {
    constructor(
        readonly status: number,
        message: string,
    ) {
        super(message);
    }
}

export function dockerRequest<T = any>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    return new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
        const req = http.request(
            {
                socketPath: SOCKET,
                method,
                path: API + path,
                headers: payload ? { "Content-Type": contentType, "Content-Length": payload.length } : {},
                timeout: 120_000,
            },
            (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c) => chunks.push(c));
                res.on("end", () => {
                    const text = Buffer.concat(chunks).toString("utf8");
                    const status = res.statusCode ?? 0;
                    if (status >= 400) {
                        let message = text;
                        try {
                            message = JSON.parse(text).message ?? text;
                        } catch {
                            /* plain-text error body */
                        }
                        reject(new DockerApiError(status, `${method} ${path}: ${status} ${message}`));
                        return;
                    }
                    try {
                        resolve((text ? JSON.parse(text) : undefined) as T);
                    } catch {
                        resolve(text as T);
                    }
                });
            },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer from the Docker engine within 120 s`)));
        req.on("error", reject);
        if (payload) req.write(payload);
        req.end();
    });
}

/** A JSON filter for list endpoints: `{label: ["k=v"]}`. */
export function labelFilter(...labels: string[]): string {
    return encodeURIComponent(JSON.stringify({ label: labels }));
}

/** One-file POSIX tar archive (ustar), enough for the provider's `uploads`. */
export function tarOneFile(file: string, content: Buffer, mode: number, uid: number, gid: number): Buffer {
    const name = file.replace(/^\/+/, "");
    const header = Buffer.alloc(512, 0);
    const write = (value: string, offset: number, length: number) => header.write(value, offset, length, "utf8");
    const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, "0") + "\0";
    let prefix = "";
    let base = name;
    if (Buffer.byteLength(name) > 100) {
        const cut = name.lastIndexOf("/", 155);
        prefix = name.slice(0, cut);
        base = name.slice(cut + 1);
        if (Buffer.byteLength(base) > 100 || cut < 0) throw new Error(`upload path too long for tar: ${file}`);
    }
    write(base, 0, 100);
    write(octal(mode, 8), 100, 8);
    write(octal(uid, 8), 108, 8);
    write(octal(gid, 8), 116, 8);
    write(octal(content.length, 12), 124, 12);
    write(octal(Math.floor(Date.now() / 1000), 12), 136, 12);
    write("        ", 148, 8);
    write("0", 156, 1);
    write("ustar\0", 257, 6);
    write("00", 263, 2);
    write(prefix, 345, 155);
    const sum = header.reduce((a, b) => a + b, 0);
    write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
    const padding = Buffer.alloc((512 - (content.length % 512)) % 512, 0);
    return Buffer.concat([header, content, padding, Buffer.alloc(1024, 0)]);
}
