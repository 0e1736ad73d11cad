import { RecordedResource } from "../harness/mockRun";

/** A Kubernetes object as the provider would apply it: apiVersion, kind, metadata and the rest of its body. */
export interface Manifest {
    readonly apiVersion: string;
    readonly kind: string;
    readonly metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
    readonly [field: string]: any;
    /** The Pulumi resource it came from. */
    readonly resource: RecordedResource;
}

/** `kubernetes:apps/v1:StatefulSet` → true. Provider resources (`pulumi:providers:kubernetes`) are not objects. */
export function isKubernetesObject(r: RecordedResource): boolean {
    return r.type.startsWith("kubernetes:") && r.custom;
}

/**
 * Every Kubernetes object a stack registered, with the names the provider gives auto-named objects (from the
 * mock's state) and references to them resolved. Secret values stay in `stringData`; callers redact.
 */
export function manifests(resources: readonly RecordedResource[]): Manifest[] {
    return resources.filter(isKubernetesObject).map((r) => {
        const { apiVersion, kind, metadata, ...body } = r.inputs;
        const name = metadata?.name ?? r.state.metadata?.name;
        if (!apiVersion || !kind || !name) throw new Error(`${r.type} "${r.name}" has no apiVersion, kind or name`);
        return { apiVersion, kind, metadata: { ...metadata, name }, ...body, resource: r };
    });
}

/** The manifest without its Pulumi bookkeeping, secret values replaced by a marker. */
export function applied(m: Manifest, redact = true): Record<string, unknown> {
    const object: Record<string, unknown> = { ...m };
    delete object.resource;
    if (redact && m.kind === "Secret") {
        for (const field of ["data", "stringData"] as const) {
            const values = object[field] as Record<string, unknown> | undefined;
            if (values) object[field] = Object.fromEntries(Object.keys(values).map((k) => [k, "[secret]"]));
        }
    }
    return object;
}
