import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveEngine, report } from "../../live/support";
import { poll } from "./docker";
import { BootedHost, bootHost, buildHostImage, cloudInitStatus, createNetwork, hostExec, killHost, removeAll, removeHost, stopHost, volumePath } from "./hosts";
import { getParameter, putParameter, ssmStore } from "./ssm";

// Proves the stand-in EC2 host contract (README.md) on the real engine: two hosts on one subnet, each booting
// its user data through cloud-init, reading a secret from the Parameter Store stand-in, writing into its EBS
// stand-in, running a member with --network host, and reporting readiness through the Parameter Store.
// Run: HADB_REQUIRE_LIVE=1 npx vitest run --config test/aws/standin/vitest.config.ts

const NETWORK = "hadb-standin-test";
const SECRET = "/hadb/standin-test/secret";
const SECRET_VALUE = "s3cr3t with spaces & $symbols";
const IMAGE = "hadb/haproxy:local";
const CLOUD_INIT_DEADLINE_MS = 300_000;

interface Instance {
    readonly name: string;
    readonly ip: string;
    readonly volumeId: string;
}
const A: Instance = { name: "hadb-standin-a", ip: "10.77.0.11", volumeId: "vol-0a11" };
const B: Instance = { name: "hadb-standin-b", ip: "10.77.0.12", volumeId: "vol-0b12" };

function readyParameter(host: Instance): string {
    return `/hadb/standin-test/ready/${host.name}`;
}

/** What the AWS target's user data will do, in miniature. `set -eu`: any failed step fails cloud-init. */
function userData(host: Instance, instanceId: string): string {
    const disk = volumePath(host.volumeId);
    return `#cloud-config
write_files:
  - path: /etc/probe/haproxy.cfg
    permissions: "0644"
    content: |
      global
        log stdout format raw local0
      defaults
        mode http
        timeout connect 2s
        timeout client 5s
        timeout server 5s
      frontend probe
        bind :8404
        http-request return status 200 content-type text/plain string "ok from ${host.name}"
runcmd:
  - set -eu
  - aws ssm get-parameter --name ${SECRET} --with-decryption --query Parameter.Value --output text --region eu-west-1 > /root/secret
  - test -d ${disk} && echo ${instanceId} > ${disk}/written-by-${instanceId}
  - for i in $(seq 1 300); do docker image inspect ${IMAGE} >/dev/null 2>&1 && break; sleep 1; done
  - docker run -d --network host --name probe -v /etc/probe/haproxy.cfg:/etc/hadb/haproxy.cfg:ro ${IMAGE}
  - aws ssm put-parameter --name ${readyParameter(host)} --value "$(hostname)" --type String --overwrite --region eu-west-1
`;
}

async function boot(host: Instance, instanceId: string): Promise<BootedHost> {
    const booted = await bootHost({
        name: host.name,
        network: NETWORK,
        ip: host.ip,
        userData: userData(host, instanceId),
        instanceId,
        volumes: [{ volumeId: host.volumeId }],
        images: [IMAGE],
    });
    report(`${host.name} (${instanceId}) dockerd answering after boot`, booted.dockerSeconds);
    report(`${host.name} (${instanceId}) load of ${IMAGE}`, booted.imageSeconds[IMAGE]);
    return booted;
}

/** Polls `cloud-init status` until it is no longer running; reports seconds from power-on. */
async function cloudInitDone(booted: BootedHost): Promise<void> {
    const final = await poll(
        `cloud-init on ${booted.name}`,
        async () => {
            const status = await cloudInitStatus(booted.name);
            return ["running", "not started", "not run"].includes(status.status) ? undefined : status;
        },
        CLOUD_INIT_DEADLINE_MS,
        1000,
    );
    expect(final.value.status, final.value.text).toBe("done");
    expect(final.value.finishedAt, "cloud-init's result.json").toBeDefined();
    report(`${booted.name} power-on to cloud-init done (dockerd, image load and user data)`, ((final.value.finishedAt ?? 0) - booted.startedAt) / 1000);
    expect(final.value.exitCode, final.value.text).toBe(0);
}

/** HTTP from inside one host to another host's private IP, retried briefly: the member may still be binding. */
async function reach(from: Instance, to: Instance): Promise<string> {
    const answer = await poll(`${from.name} -> ${to.ip}:8404`, async () => {
        const ran = await hostExec(from.name, ["curl", "-sS", "--max-time", "3", `http://${to.ip}:8404/`]);
        if (ran.exitCode !== 0) throw new Error(ran.stderr);
        return ran.stdout;
    }, 20_000);
    return answer.value;
}

async function inHost(host: Instance, script: string): Promise<string> {
    const ran = await hostExec(host.name, ["sh", "-c", script]);
    expect(ran.exitCode, `${script}: ${ran.stderr}`).toBe(0);
    return ran.stdout;
}

describe.runIf(liveEngine())("stand-in EC2 hosts", () => {
    let store = "";
    const booted: Record<string, BootedHost> = {};

    beforeAll(async () => {
        await removeAll();
        await buildHostImage();
        await createNetwork(NETWORK, "10.77.0.0/24");
        store = ssmStore(NETWORK);
        // What Pulumi would have created before the instances start.
        putParameter(store, SECRET, SECRET_VALUE);
        // One host at a time: two cores, and each load copies the whole image.
        booted.a = await boot(A, "i-0a0000000000000a1");
        booted.b = await boot(B, "i-0b0000000000000b1");
    });

    afterAll(async () => {
        await removeAll();
    });

    it("runs each host's user data to `cloud-init status: done`", async () => {
        await cloudInitDone(booted.a);
        await cloudInitDone(booted.b);
    });

    it("gives the user data the secret parameter and takes its ready parameter", async () => {
        for (const host of [A, B]) {
            expect(await inHost(host, "cat /root/secret")).toBe(`${SECRET_VALUE}\n`);
            expect(getParameter(store, readyParameter(host))).toBe(host.name);
        }
    });

    it("answers like the aws CLI where the user data depends on it", async () => {
        const missing = await hostExec(A.name, ["aws", "ssm", "get-parameter", "--name", "/hadb/none", "--with-decryption", "--query", "Parameter.Value", "--output", "text"]);
        expect(missing.exitCode).toBe(254);
        expect(missing.stderr).toContain("An error occurred (ParameterNotFound)");
        const ecr = await hostExec(A.name, ["aws", "ecr", "get-login-password", "--region", "eu-west-1"]);
        expect(ecr.exitCode).toBe(1);
        const other = await hostExec(A.name, ["aws", "ec2", "describe-instances"]);
        expect(other.exitCode).toBe(2);
        expect(other.stderr).toContain("not implemented by the stand-in: aws ec2 describe-instances");
    });

    it("lets host A reach host B's member on B's private IP", async () => {
        expect(await reach(A, B)).toBe(`ok from ${B.name}`);
        expect(await reach(B, A)).toBe(`ok from ${A.name}`);
        for (const host of [A, B]) console.log(`[measure] ${host.name} /var/lib/docker: ${(await inHost(host, "du -sh /var/lib/docker")).trim()}`);
        console.log(`[measure] images-loaded marker on ${A.name}: ${(await inHost(A, "cat /run/hadb-standin/images-loaded")).trim()}`);
    });

    it("keeps the EBS stand-in's data when the instance is replaced", async () => {
        const started = Date.now();
        await stopHost(A.name);
        report(`${A.name} graceful stop (systemd shutdown, members stopped)`, (Date.now() - started) / 1000);
        await removeHost(A.name);
        booted.a2 = await boot(A, "i-0a0000000000000a2");
        await cloudInitDone(booted.a2);
        const files = (await inHost(A, `ls ${volumePath(A.volumeId)}`)).split("\n").filter(Boolean);
        expect(files).toEqual(["written-by-i-0a0000000000000a1", "written-by-i-0a0000000000000a2"]);
        expect(await reach(B, A)).toBe(`ok from ${A.name}`);
    });

    it("cuts a host's power with killHost", async () => {
        await killHost(B.name);
        const ran = await hostExec(A.name, ["curl", "-sS", "--max-time", "3", `http://${B.ip}:8404/`]);
        expect(ran.exitCode).not.toBe(0);
    });
});
