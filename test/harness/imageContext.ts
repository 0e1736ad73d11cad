import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";

/**
 * docker.Image's build-context digest, as pulumi-docker's Check computes it (provider/provider.go hashContext):
 * the Dockerfile's contents under the name "Dockerfile", then every file of the context that .dockerignore does not
 * exclude, each as its relative path, its mode and the SHA-256 of its content (a symlink: of its target path).
 * The provider stores it as `build.contextDigest`, so any edit under images/<name>/ is an Image update (a rebuild).
 */
export function contextDigest(context: string, dockerfile = path.join(context, "Dockerfile")): string {
    const ignore = dockerignore(context, dockerfile);
    const hash = crypto.createHash("sha256");
    hash.update("Dockerfile\0");
    hash.update(fs.readFileSync(dockerfile));
    for (const rel of walk(context).filter((f) => !ignore(f))) {
        const full = path.join(context, rel);
        const st = fs.lstatSync(full);
        const content = st.isSymbolicLink() ? Buffer.from(fs.readlinkSync(full)) : fs.readFileSync(full);
        hash.update(`${rel}\0${(st.mode & 0o7777).toString(8)}\0`);
        hash.update(crypto.createHash("sha256").update(content).digest("hex"));
    }
    return hash.digest("hex");
}

function walk(dir: string, prefix = ""): string[] {
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .sort((a, b) => a.name.localeCompare(b.name))
        .flatMap((e) => {
            const rel = prefix ? `${prefix}/${e.name}` : e.name;
            return e.isDirectory() ? walk(path.join(dir, e.name), rel) : [rel];
        });
}

/** `<Dockerfile>.dockerignore`, else `<context>/.dockerignore`: `*`, `**`, `?`, `!` exceptions, last match wins. */
function dockerignore(context: string, dockerfile: string): (rel: string) => boolean {
    const file = [`${dockerfile}.dockerignore`, path.join(context, ".dockerignore")].find((f) => fs.existsSync(f));
    if (!file) return () => false;
    const rules = fs
        .readFileSync(file, "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => {
            const negate = l.startsWith("!");
            const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ""));
            const re = new RegExp(
                "^" +
                    pattern
                        .split("**")
                        .map((part) => part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"))
                        .join(".*") +
                    "(/.*)?$",
            );
            return { negate, re };
        });
    return (rel) => rules.reduce((ignored, r) => (r.re.test(rel) ? !r.negate : ignored), false);
}
