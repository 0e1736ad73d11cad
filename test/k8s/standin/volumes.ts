/**
 * Pod volumes as the kubelet lays them out (research §1, §2): a projected volume's AtomicWriter tree, and the
 * fsGroup ownership pass (group = fsGroup, mode |= 0660 read-write or 0440 read-only, directories also
 * |= 0110 and setgid). Pure, except for the tar writer's byte layout.
 */

export const RW_MASK = 0o660;
export const RO_MASK = 0o440;
export const EXEC_MASK = 0o110;
export const SETGID = 0o2000;
/** emptyDir's directory mode before ownership (kubelet `perm`); a tmpfs root starts as 1777. */
export const EMPTY_DIR_MODE = 0o777;
export const TMPFS_ROOT_MODE = 0o1777;
/** A fresh ext4 filesystem's root, as the default storage class provisions it. */
export const NEW_FILESYSTEM_ROOT_MODE = 0o755;
export const DEFAULT_FILE_MODE = 0o644;

/** The mode after kubelet's SetVolumeOwnership for one path (symlinks are only chowned: mode unchanged). */
export function ownershipPass(mode: number, kind: "file" | "dir" | "symlink", readOnly: boolean): number {
    if (kind === "symlink") return mode;
    let mask = readOnly ? RO_MASK : RW_MASK;
    if (kind === "dir") mask |= SETGID | EXEC_MASK;
    return mode | mask;
}

export interface TreeEntry {
    /** Path relative to the volume root. */
    readonly path: string;
    readonly kind: "file" | "dir" | "symlink";
    readonly mode: number;
    readonly uid: number;
    readonly gid: number;
    readonly content?: Buffer;
    readonly target?: string;
}

export interface ProjectedItem {
    readonly key: string;
    readonly path: string;
    readonly mode?: number;
}

export interface ProjectedSource {
    /** "configMap" or "secret", for messages. */
    readonly kind: string;
    readonly name: string;
    /** The object's data, decoded; undefined when the object does not exist. */
    readonly data: Readonly<Record<string, Buffer>> | undefined;
    readonly items?: readonly ProjectedItem[];
}

export interface ProjectedVolume {
    /** The tree to write into the volume's (tmpfs) root. */
    readonly entries: TreeEntry[];
    /** The root directory's mode and group after the ownership pass. */
    readonly rootMode: number;
    readonly rootGid: number;
}

/** A payload path as AtomicWriter validates it: relative, no `..` component, not starting with `..`. */
function checkPath(path: string, where: string): string[] {
    const parts = path.split("/");
    if (!path || path.startsWith("/") || parts.some((p) => p === "" || p === "..") || path.startsWith("..")) {
        throw new Error(`stand-in: ${where}: item path ${JSON.stringify(path)} is not a valid projected path`);
    }
    return parts;
}

/**
 * The files a projected volume holds, laid out as AtomicWriter writes them (`..<timestamp>/` with the payload,
 * `..data` → it, a symlink per top-level name), after the ownership pass for `fsGroup` (undefined: none).
 */
export function projectedVolume(sources: readonly ProjectedSource[], defaultMode: number | undefined, fsGroup: number | undefined, stamp: string, where: string): ProjectedVolume {
    const tsDir = `..${stamp}`;
    const gid = fsGroup ?? 0;
    const owned = (mode: number, kind: TreeEntry["kind"]) => (fsGroup === undefined ? mode : ownershipPass(mode, kind, true));
    const files = new Map<string, { content: Buffer; mode: number }>();
    for (const s of sources) {
        if (!s.data) throw new Error(`stand-in: ${where}: ${s.kind} "${s.name}" does not exist; the Pod would wait in ContainerCreating (MountVolume.SetUp failed)`);
        const items: readonly ProjectedItem[] = s.items ?? Object.keys(s.data).map((key) => ({ key, path: key }));
        for (const item of items) {
            const content = s.data[item.key];
            if (content === undefined) throw new Error(`stand-in: ${where}: ${s.kind} "${s.name}" has no key ${JSON.stringify(item.key)}; the Pod would wait in ContainerCreating`);
            checkPath(item.path, where);
            if (files.has(item.path)) throw new Error(`stand-in: ${where}: two projected items write ${item.path}`);
            files.set(item.path, { content, mode: item.mode ?? defaultMode ?? DEFAULT_FILE_MODE });
        }
    }
    const entries: TreeEntry[] = [{ path: tsDir, kind: "dir", mode: owned(0o755, "dir"), uid: 0, gid }];
    const dirs = new Set<string>();
    const tops = new Set<string>();
    for (const [path, f] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
        const parts = path.split("/");
        tops.add(parts[0]);
        for (let i = 1; i < parts.length; i++) {
            const dir = parts.slice(0, i).join("/");
            if (dirs.has(dir)) continue;
            dirs.add(dir);
            entries.push({ path: `${tsDir}/${dir}`, kind: "dir", mode: owned(0o755, "dir"), uid: 0, gid });
        }
        entries.push({ path: `${tsDir}/${path}`, kind: "file", mode: owned(f.mode, "file"), uid: 0, gid, content: f.content });
    }
    entries.push({ path: "..data", kind: "symlink", mode: 0o777, uid: 0, gid, target: tsDir });
    for (const top of [...tops].sort()) entries.push({ path: top, kind: "symlink", mode: 0o777, uid: 0, gid, target: `..data/${top}` });
    return { entries, rootMode: owned(TMPFS_ROOT_MODE, "dir"), rootGid: gid };
}

/** AtomicWriter's timestamped directory name (`2006_01_02_15_04_05.` and a random suffix). */
export function atomicWriterStamp(now: Date, suffix: number): string {
    const p = (n: number, w = 2) => String(n).padStart(w, "0");
    return `${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.${suffix}`;
}

/** A POSIX tar (ustar) of the entries, modes (setgid included), owners and symlinks as given. */
export function tarTree(entries: readonly TreeEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
    const blocks: Buffer[] = [];
    for (const e of entries) {
        const header = Buffer.alloc(512, 0);
        const put = (value: string, offset: number, length: number) => header.write(value, offset, length, "utf8");
        const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, "0") + "\0";
        const name = e.kind === "dir" ? `${e.path}/` : e.path;
        let prefix = "";
        let base = name;
        if (Buffer.byteLength(name) > 100) {
            const cut = name.lastIndexOf("/", name.length - 2);
            prefix = name.slice(0, cut);
            base = name.slice(cut + 1);
            if (cut < 0 || Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`stand-in: path too long for tar: ${e.path}`);
        }
        const content = e.kind === "file" ? (e.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
        put(base, 0, 100);
        put(octal(e.mode & 0o7777, 8), 100, 8);
        put(octal(e.uid, 8), 108, 8);
        put(octal(e.gid, 8), 116, 8);
        put(octal(content.length, 12), 124, 12);
        put(octal(mtime, 12), 136, 12);
        put("        ", 148, 8);
        put(e.kind === "file" ? "0" : e.kind === "symlink" ? "2" : "5", 156, 1);
        if (e.target) put(e.target, 157, 100);
        put("ustar\0", 257, 6);
        put("00", 263, 2);
        put(prefix, 345, 155);
        put(header.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 ", 148, 8);
        blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512, 0));
    }
    blocks.push(Buffer.alloc(1024, 0));
    return Buffer.concat(blocks);
}

/** What the volume-setup step does to one volume mounted at `dir` in the helper container. */
export type VolumeSetup = ReadWriteVolumeSetup | ProjectedRootSetup;

export interface ReadWriteVolumeSetup {
    readonly dir: string;
    /** `emptyDir`: chmod to 0777 (1777 for tmpfs) first; `claim`: a new filesystem on first use, then ownership per policy. */
    readonly kind: "emptyDir" | "memoryEmptyDir" | "claim";
    /** Only for claims: a fresh volume gets the filesystem's root mode and `lost+found`. */
    readonly provision: boolean;
    /** fsGroupChangePolicy (claims only; ephemeral volumes are always walked). */
    readonly policy: "Always" | "OnRootMismatch";
}

/** A projected volume's root (its tree was written with its final modes): the tmpfs root after the pass. */
export interface ProjectedRootSetup {
    readonly dir: string;
    readonly kind: "projected";
    readonly rootMode: number;
    readonly rootGid: number;
}

/**
 * The shell script the volume-setup container runs as root: emptyDir and claim roots as the kubelet leaves
 * them, then SetVolumeOwnership's recursive walk (group, ug+rw, directories ug+x and setgid) when the Pod has
 * an fsGroup. With OnRootMismatch a claim whose root already has the group, 0770 and setgid is skipped.
 */
export function volumeSetupScript(volumes: readonly VolumeSetup[], fsGroup: number | undefined): string {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const lines = [
        "set -eu",
        // chgrp -h: symlinks themselves, as Lchown; chmod never follows into symlinks (find ! -type l).
        'walk() { find "$1" -exec chgrp -h "$FSGROUP" {} +; find "$1" ! -type l ! -type d -exec chmod ug+rw {} +; find "$1" -type d -exec chmod ug+rwx,g+s {} +; }',
        'root_matches() { [ "$(stat -c %g "$1")" = "$FSGROUP" ] && m=$((0$(stat -c %a "$1"))) && [ $((m & 0770)) -eq $((0770)) ] && [ $((m & 02000)) -ne 0 ]; }',
        `FSGROUP=${fsGroup ?? ""}`,
    ];
    for (const v of volumes) {
        const dir = q(v.dir);
        if (v.kind === "projected") {
            lines.push(`chgrp ${v.rootGid} ${dir}`, `chmod ${v.rootMode.toString(8)} ${dir}`);
            continue;
        }
        if (v.kind === "emptyDir") lines.push(`chmod ${EMPTY_DIR_MODE.toString(8)} ${dir}`);
        if (v.kind === "memoryEmptyDir") lines.push(`chmod ${TMPFS_ROOT_MODE.toString(8)} ${dir}`);
        if (v.kind === "claim" && v.provision) lines.push(`chmod ${NEW_FILESYSTEM_ROOT_MODE.toString(8)} ${dir}`, `mkdir -m 700 ${q(`${v.dir}/lost+found`)}`);
        if (fsGroup === undefined) continue;
        if (v.kind === "claim" && v.policy === "OnRootMismatch") lines.push(`root_matches ${dir} || walk ${dir}`);
        else lines.push(`walk ${dir}`);
    }
    return lines.join("\n");
}
