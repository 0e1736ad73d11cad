import * as pulumi from "@pulumi/pulumi";
import { IMAGES } from "../core/images";
import { CheckPlan, CONFIG_DIR, FilePlan, memberFiles, MemberPlan, ServicePlan } from "../core/plan";

/**
 * A member as one container, engine-neutral: what the Docker target declares as a `docker.Container` and what
 * an AWS host runs with `docker run`. One function decides both, so a member on a VM runs exactly what the
 * Docker tests run.
 */
export interface MemberContainer {
    readonly name: string;
    readonly env: Readonly<Record<string, pulumi.Input<string>>>;
    /** The image's entrypoint replaced by this program (its first element) and arguments; undefined keeps the image's. */
    readonly entrypoint?: readonly string[];
    /** Arguments replacing the image's default ones; undefined keeps them. */
    readonly command?: readonly string[];
    /**
     * The member's files in CONFIG_DIR, files taken online first: Docker's `ignoreChanges` names uploads by
     * position, and these positions never move when other files come and go.
     */
    readonly files: readonly FilePlan[];
    /** uid and gid that own the files and volumes: the image's server user. */
    readonly uid: number;
    readonly volumes: readonly { readonly name: string; readonly mountPath: string }[];
    /** Docker has one health check: readiness, with the startup check's budget as its start period. */
    readonly health: {
        readonly command: readonly string[];
        readonly intervalSeconds: number;
        readonly timeoutSeconds: number;
        readonly retries: number;
        readonly startPeriodSeconds: number;
    };
    /** Seconds a stop waits before killing (a leader hands over meanwhile). */
    readonly stopGraceSeconds: number;
    readonly labels: Readonly<Record<string, string>>;
}

/** A check as a command run inside the member: every hadb image has curl. */
export function checkCommand(check: CheckPlan): string[] {
    if (check.command) return [...check.command];
    return ["curl", "-fsS", "-o", "/dev/null", "--max-time", String(check.timeoutSeconds), `http://127.0.0.1:${check.http!.port}${check.http!.path}`];
}

export function memberContainer(plan: ServicePlan, member: MemberPlan, labels: Readonly<Record<string, string>> = {}): MemberContainer {
    const t = plan.template;
    const readiness = t.checks.readiness;
    const startup = t.checks.startup;
    return {
        name: member.name,
        env: t.env,
        entrypoint: t.entrypoint,
        command: t.args,
        files: [...memberFiles(plan, member)].sort((a, b) => Number(b.appliedOnline ?? false) - Number(a.appliedOnline ?? false)),
        uid: IMAGES[plan.image].uid,
        volumes: t.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath })),
        health: {
            command: checkCommand(readiness),
            intervalSeconds: readiness.periodSeconds,
            timeoutSeconds: readiness.timeoutSeconds,
            retries: readiness.failureThreshold,
            startPeriodSeconds: startup ? startup.periodSeconds * startup.failureThreshold : 0,
        },
        stopGraceSeconds: t.stopGraceSeconds,
        labels: { ...labels, "hadb.component": plan.component, "hadb.cluster": plan.name, "hadb.member": member.name },
    };
}

/** A word for a POSIX shell: Docker runs `--health-cmd` through `/bin/sh -c`. */
export function shellQuote(word: string): string {
    return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Where a host keeps a member's files and volumes for `docker run`. */
export interface HostPaths {
    /** Host directory mounted read-only at CONFIG_DIR. */
    readonly filesDir: string;
    /** Host directory holding one directory per volume, by volume name. */
    readonly volumesDir: string;
}

/**
 * The `docker run` arguments (after `docker run`) that start `container` on a host whose network it shares:
 * the same entrypoint, arguments, environment, health check and stop timeout as the Docker target's container.
 * No restart policy: the host's systemd unit restarts it. No published ports: the host's own address is the
 * member's. No resolver options: members on hosts address each other by IP.
 */
export function dockerRunArgs(container: MemberContainer, image: string, paths: HostPaths): pulumi.Output<string[]> {
    const h = container.health;
    const head = [
        "--name", container.name,
        "--hostname", container.name,
        "--network", "host",
        ...Object.entries(container.labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
        "--volume", `${paths.filesDir}:${CONFIG_DIR}:ro`,
        ...container.volumes.flatMap((v) => ["--volume", `${paths.volumesDir}/${v.name}:${v.mountPath}`]),
        "--health-cmd", h.command.map(shellQuote).join(" "),
        "--health-interval", `${h.intervalSeconds}s`,
        "--health-timeout", `${h.timeoutSeconds}s`,
        "--health-retries", String(h.retries),
        "--health-start-period", `${h.startPeriodSeconds}s`,
        "--stop-timeout", String(container.stopGraceSeconds),
    ];
    const entrypoint = container.entrypoint ? ["--entrypoint", container.entrypoint[0]] : [];
    const tail = [...(container.entrypoint?.slice(1) ?? []), ...(container.command ?? [])];
    return pulumi
        .all(Object.entries(container.env).map(([k, v]) => pulumi.output(v).apply((value) => ["--env", `${k}=${value}`])))
        .apply((env) => [...head, ...env.flat(), ...entrypoint, image, ...tail]);
}
