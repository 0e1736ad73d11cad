import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import * as YAML from "yaml";
import { PACKAGE_ROOT } from "../core/images";
import { HostPaths } from "./memberContainer";

/**
 * What one EC2 host needs to run its member, as the JSON document its user data carries to `hadb-host`
 * (hosts/hadb-host.py). Secret files are only named here: the host reads them from SSM Parameter Store.
 */
export interface HostDocument {
    readonly member: string;
    readonly region: string;
    /** Image reference, pulled by digest from ECR (the host logs in) or given by the user. */
    readonly image: string;
    readonly uid: number;
    readonly paths: HostPaths;
    /** Data volumes: the device the attached EBS volume appears as, and the directory it is mounted on. */
    readonly volumes: readonly { readonly name: string; readonly device: string; readonly directory: string }[];
    readonly files: readonly HostFile[];
    /** Arguments of `docker run` (memberContainer.dockerRunArgs). */
    readonly run: readonly string[];
    readonly stopGraceSeconds: number;
    /** Seconds the host waits for the member's health check to pass before it gives up reporting ready. */
    readonly readyWithinSeconds: number;
    /** Where the host writes its instance id once the member is ready: what `pulumi up` waits for. */
    readonly readyParameter: string;
}

/** A file in the member's CONFIG_DIR: its content inline, or the SSM parameter holding it. */
export interface HostFile {
    readonly name: string;
    readonly mode: string;
    readonly content?: string;
    readonly parameter?: string;
    /**
     * The parameter's version: a changed secret changes the user data, so the host is replaced and reads it
     * again. Absent for files the servers take online (a change must not replace the host).
     */
    readonly version?: number;
}

/** The path an EBS volume attached to a Nitro instance appears at: udev names it by the volume id's digits. */
export function nvmeDevicePath(volumeId: string): string {
    return `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace("-", "")}`;
}

export function hostPaths(member: string): HostPaths {
    return { filesDir: `/etc/hadb-host/${member}/files`, volumesDir: `/var/lib/hadb/${member}` };
}

export const HOST_SCRIPT = path.join(PACKAGE_ROOT, "hosts", "hadb-host.py");
export const HOST_DOCUMENT_PATH = "/etc/hadb-host/host.json";
/** AWS's limit on user data, counted before base64. */
export const USER_DATA_LIMIT = 16384;

function gzipBase64(text: string): string {
    return zlib.gzipSync(Buffer.from(text, "utf8"), { level: 9 }).toString("base64");
}

/**
 * The instance's user data: cloud-config that writes the host document and `hadb-host`, then runs it once.
 * Both are gzip+base64 (cloud-init's `gz+b64` encoding) to stay far below AWS's 16 KB.
 */
export function renderUserData(doc: HostDocument, script: string = fs.readFileSync(HOST_SCRIPT, "utf8")): string {
    const config = {
        write_files: [
            { path: HOST_DOCUMENT_PATH, owner: "root:root", permissions: "0600", encoding: "gz+b64", content: gzipBase64(JSON.stringify(doc)) },
            { path: "/usr/local/sbin/hadb-host", owner: "root:root", permissions: "0755", encoding: "gz+b64", content: gzipBase64(script) },
        ],
        runcmd: [["/usr/local/sbin/hadb-host", "boot"]],
    };
    const text = `#cloud-config\n${YAML.stringify(config, { lineWidth: 0 })}`;
    if (Buffer.byteLength(text) > USER_DATA_LIMIT) {
        throw new Error(`user data of ${doc.member} is ${Buffer.byteLength(text)} bytes, above AWS's ${USER_DATA_LIMIT}`);
    }
    return text;
}

/** The host document inside rendered user data (tests and the stand-in read it back). */
export function readUserData(userData: string): { document: HostDocument; script: string } {
    const config = YAML.parse(userData.replace(/^#cloud-config\n/, "")) as { write_files: { path: string; content: string }[] };
    const file = (p: string) => zlib.gunzipSync(Buffer.from(config.write_files.find((f) => f.path === p)!.content, "base64")).toString("utf8");
    return { document: JSON.parse(file(HOST_DOCUMENT_PATH)) as HostDocument, script: file("/usr/local/sbin/hadb-host") };
}
