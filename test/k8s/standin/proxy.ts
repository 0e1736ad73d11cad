import { tarOneFile } from "../../harness/dockerApi";
import { dockerRequest, inspect, putArchive, quietly } from "./engine";
import { StandInRefusal } from "./objects";
import { LABEL, resolvePort, serviceDnsName } from "./pods";

/**
 * The stand-in's kube-proxy and `kubectl port-forward` for one ClusterIP Service: an HAProxy container that
 * answers to `<svc>.<ns>.svc.<domain>` on the cluster network, balances each Service port over the ready
 * endpoints only, and publishes the port on 127.0.0.1 at a port Docker picks. Endpoints come from the
 * controller (ready, not terminating Pods the selector matches); each server is also health-checked with the
 * Pod's readiness probe, so a Pod that stops being ready leaves before the next sync.
 */

export const PROXY_IMAGE = "hadb/haproxy:local";
const CONFIG_FILE = "/etc/hadb/haproxy.cfg";

/** A ready Pod behind a Service. */
export interface Endpoint {
    readonly pod: string;
    readonly ip: string;
    /** The Pod's containers, for named target ports and the readiness probe. */
    readonly containers: readonly any[];
}

/** Where a Service port's traffic goes in one Pod, and how its readiness is checked. */
function target(servicePort: any, e: Endpoint, where: string): { port: number; check?: string; probe?: any } {
    const wanted = servicePort.targetPort ?? servicePort.port;
    let port: number | undefined;
    for (const c of e.containers) {
        try {
            port = resolvePort(wanted, c, where);
            break;
        } catch {
            /* the port is named in another container */
        }
    }
    if (port === undefined) throw new StandInRefusal(`stand-in: ${where}: targetPort ${JSON.stringify(wanted)} is no port of Pod ${e.pod}`);
    const probes = e.containers.map((c) => c.readinessProbe).filter(Boolean);
    if (probes.length > 1) throw new StandInRefusal(`stand-in: ${where}: Pod ${e.pod} has several readiness probes; the Service proxy checks one`);
    const probe = probes[0];
    if (!probe) return { port };
    if (!probe.httpGet) throw new StandInRefusal(`stand-in: ${where}: Pod ${e.pod}'s readiness probe is exec; the Service proxy can only check httpGet probes`);
    const owner = e.containers.find((c) => c.readinessProbe === probe);
    const checkPort = resolvePort(probe.httpGet.port, owner, where);
    const check = `check port ${checkPort} inter ${probe.periodSeconds ?? 10}s fall ${probe.failureThreshold ?? 3} rise ${probe.successThreshold ?? 1}`;
    return { port, check, probe };
}

/** haproxy.cfg for a Service and its current endpoints (pure). */
export function proxyConfig(service: any, endpoints: readonly Endpoint[]): string {
    const where = `Service ${service.metadata.namespace}/${service.metadata.name}`;
    const lines = [
        "# The stand-in's proxy for a ClusterIP Service (kube-proxy): generated, rewritten when endpoints change.",
        "global",
        "    maxconn 4000",
        "    log stdout format raw local0 notice",
        "defaults",
        "    mode tcp",
        "    log global",
        // kube-proxy (iptables) picks one endpoint per connection and never retries another.
        "    retries 0",
        "    timeout connect 2s",
        "    timeout client 24h",
        "    timeout server 24h",
    ];
    for (const [i, p] of (service.spec.ports ?? []).entries()) {
        const label = p.name ?? String(p.port);
        lines.push("", `frontend port-${label}`, `    bind :${p.port}`, `    default_backend endpoints-${i}`, "", `backend endpoints-${i}`, "    balance random");
        const targets = endpoints.map((e) => ({ e, t: target(p, e, where) }));
        const probe = targets.find((x) => x.t.probe)?.t.probe;
        if (probe) {
            lines.push("    option httpchk", `    http-check send meth GET uri ${probe.httpGet.path ?? "/"}`, "    http-check expect rstatus ^[23]", `    timeout check ${probe.timeoutSeconds ?? 1}s`);
        }
        for (const { e, t } of targets) lines.push(`    server ${e.pod} ${e.ip}:${t.port}${t.check ? ` ${t.check}` : ""}`);
    }
    return lines.join("\n") + "\n";
}

export function proxyContainerName(stack: string, namespace: string, service: string): string {
    return `k8s_svc_${service}_${namespace}_${stack}`;
}

export class ServiceProxy {
    readonly container: string;
    private config = "";
    /** Host port on 127.0.0.1 per Service port. */
    hostPorts: Record<number, number> = {};

    constructor(
        private readonly stack: string,
        private readonly network: string,
        private readonly domain: string,
        public service: any,
    ) {
        this.container = proxyContainerName(stack, service.metadata.namespace, service.metadata.name);
    }

    get dnsName(): string {
        return serviceDnsName(this.service.metadata.namespace, this.service.metadata.name, this.domain);
    }

    /** Creates and starts the proxy (no endpoints yet) unless it runs already. */
    async ensure(): Promise<void> {
        const existing = await inspect(`/containers/${this.container}/json`);
        if (!existing) {
            const ports: any[] = this.service.spec.ports ?? [];
            const config = proxyConfig(this.service, []);
            await dockerRequest("POST", `/containers/create?name=${this.container}`, {
                Image: PROXY_IMAGE,
                Labels: { [LABEL]: this.stack, "io.kubernetes.docker.type": "service-proxy", "io.kubernetes.service.name": this.service.metadata.name, "io.kubernetes.service.namespace": this.service.metadata.namespace },
                ExposedPorts: Object.fromEntries(ports.map((p) => [`${p.port}/tcp`, {}])),
                HostConfig: {
                    NetworkMode: this.network,
                    PortBindings: Object.fromEntries(ports.map((p) => [`${p.port}/tcp`, [{ HostIp: "127.0.0.1", HostPort: "" }]])),
                    CapDrop: ["ALL"],
                    SecurityOpt: ["no-new-privileges:true"],
                    // Service ports below 1024 without a capability.
                    Sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
                    RestartPolicy: { Name: "always" },
                },
                NetworkingConfig: { EndpointsConfig: { [this.network]: { Aliases: [this.dnsName] } } },
            });
            await putArchive(this.container, "/", tarOneFile(CONFIG_FILE, Buffer.from(config), 0o644, 999, 999));
            this.config = config;
            await dockerRequest("POST", `/containers/${this.container}/start`);
        }
        const info = await dockerRequest("GET", `/containers/${this.container}/json`);
        this.hostPorts = Object.fromEntries(
            Object.entries(info.NetworkSettings.Ports ?? {})
                .filter(([, b]) => Array.isArray(b) && (b as any[]).length)
                .map(([k, b]) => [Number(k.split("/")[0]), Number((b as any[])[0].HostPort)]),
        );
    }

    /** Rewrites the config when the endpoints changed and reloads HAProxy (master-worker: sessions stay on the old worker). */
    async sync(endpoints: readonly Endpoint[]): Promise<void> {
        const config = proxyConfig(this.service, endpoints);
        if (config === this.config) return;
        await putArchive(this.container, "/", tarOneFile(CONFIG_FILE, Buffer.from(config), 0o644, 999, 999));
        await quietly(dockerRequest("POST", `/containers/${this.container}/kill?signal=SIGUSR2`));
        this.config = config;
    }
}
