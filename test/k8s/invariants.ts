import * as ts from "typescript";
import { parse as parseYaml } from "yaml";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { RecordedResource } from "../harness/mockRun";
import { Manifest } from "./manifests";

/**
 * Invariants of the Kubernetes objects a stack registers, checked without an API server: the kubernetes-models
 * schemas (types, enums, required fields), then what those schemas and a dry run would not catch (unknown
 * fields, name and label syntax, how objects refer to each other, Pod Security "restricted", probes, secrets).
 * Each check is pure and reports every violation it finds; each fault is reported under its most specific rule.
 */

/** Every rule, with what it guarantees. */
export const RULES = {
    schema: "the object validates against the kubernetes-models schema of its kind (types, enums, required fields), and passes the value checks the API server adds: quantities, port ranges, replicas ≥ 0, requests ≤ limits",
    "schema-kind": "the object's apiVersion/kind is one hadb declares and kubernetes-models can validate",
    "unknown-field": "every field, at any depth, is one the kind's schema declares (the API server drops or refuses others)",
    "unique-name": "no two objects of one kind share a namespace and name (Pulumi URNs differ; the API server refuses the second)",
    name: "names are DNS-1123 (Services DNS-1035) within the limits: StatefulSet ≤ 52, Namespace/Service/container/volume/port ≤ 63, others ≤ 253",
    namespace: "every namespaced object names a valid namespace, one the stack creates when it creates any",
    "label-syntax": "label and annotation keys, label values and selector terms have Kubernetes' syntax (values ≤ 63)",
    "selector-match": "a StatefulSet's selector is non-empty and matches its Pod template's labels",
    "headless-service": "a StatefulSet's serviceName names a headless Service (clusterIP None) in its namespace selecting its Pods",
    "publish-not-ready": "that headless Service publishes not-ready addresses, so members resolve each other before they are ready",
    pdb: "a PDB sets one of minAvailable/maxUnavailable and selects exactly one workload; every workload of 2+ replicas has exactly one PDB",
    "service-selects-workload": "every Service has a selector that selects the Pods of at least one workload in its namespace",
    "service-target-port": "every Service port's targetPort names or numbers a container port of every workload it selects",
    "port-name": "container port names are IANA service names (≤ 15, lowercase, a letter, no leading/trailing/double '-') unique in the Pod",
    "volume-mount": "every volumeMount names a volume or a volumeClaimTemplate, and every volumeClaimTemplate is mounted",
    "projected-source": "every ConfigMap/Secret a Pod reads exists in its namespace and holds every key it projects",
    "per-member-identity": "for N replicas, pods <sts>-0..N-1 each get every per-member file <pod>.<file>, copied by $POD_NAME",
    "pod-security": 'the Pod and every container (init too) meet Pod Security "restricted"; the Namespace enforces it',
    "service-account-token": "Pods do not mount a service account token (automountServiceAccountToken: false)",
    "liveness-role-check": "no liveness probe asks a role or group endpoint (a replica would be restarted for being a replica)",
    "pod-management-policy": "StatefulSets start their Pods in parallel (members wait for each other at start)",
    "pvc-retention": "volume claims are retained when the StatefulSet is deleted or scaled down",
    "network-policy": "every StatefulSet's Pods are selected by an Ingress NetworkPolicy whose rules name only ports they expose",
    "external-access": "a LoadBalancer/NodePort Service's ports are admitted by its Pods' NetworkPolicies from outside the cluster (ipBlock or any source): podSelector peers never match external clients",
    "secret-leak": "no password (generated or configured) appears in a ConfigMap or any other object but a Secret's values",
} as const;

export type Rule = keyof typeof RULES;

export interface Violation {
    /** `Kind/name`. */
    readonly object: string;
    readonly rule: Rule;
    readonly detail: string;
}

/** A manifest from manifests.ts, or a plain object of the same shape (negative tests build those). */
export type ManifestLike = Pick<Manifest, "apiVersion" | "kind" | "metadata"> & { readonly [field: string]: any };

/** Every password the stack generated: the RandomPassword results recorded under mocks. */
export function generatedSecrets(resources: readonly RecordedResource[]): string[] {
    return resources
        .filter((r) => r.type === "random:index/randomPassword:RandomPassword")
        .map((r) => r.state.result)
        .filter((v): v is string => typeof v === "string" && v.length > 0);
}

/**
 * Every password in the stack's Secrets: the string values under a key ending in password, passwd, pass, secret
 * or token in each Secret file that parses as YAML or JSON (patroni.yml, member.json, configurator.json). That
 * includes passwords given in a component's arguments, which no RandomPassword records.
 */
export function configuredSecrets(manifests: readonly ManifestLike[]): string[] {
    const found = new Set<string>();
    const walk = (value: unknown, key = "") => {
        if (typeof value === "string") {
            // `password`, `restApiPassword`, `token`; not `password_encryption`.
            if (/(pass(word|wd)?|secret|token)$/i.test(key) && value.length > 0) found.add(value);
        } else if (Array.isArray(value)) value.forEach((v) => walk(v, key));
        else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(v, k);
    };
    for (const m of manifests.filter((x) => x.kind === "Secret")) {
        const values = { ...m.data, ...m.stringData } as Record<string, unknown>;
        for (const [key, raw] of Object.entries(values)) {
            const text = key in (m.stringData ?? {}) ? String(raw) : Buffer.from(String(raw), "base64").toString("utf8");
            try {
                walk(parseYaml(text));
            } catch {
                // Not a structured file (SQL, a script): nothing to read passwords from.
            }
        }
    }
    return [...found];
}

/** All violations of every rule, in object order. `secrets`: every generated and configured password. */
export function checkManifests(manifests: readonly ManifestLike[], secrets: readonly string[]): Violation[] {
    const objects = manifests.map(plain);
    const stack = new Stack(objects);
    const out: Violation[] = [];
    const identities = new Map<string, number>();
    for (const o of objects) {
        const id = identity(o);
        identities.set(id, (identities.get(id) ?? 0) + 1);
    }
    for (const o of objects) {
        const report = (rule: Rule, detail: string) => out.push({ object: ref(o), rule, detail });
        const copies = identities.get(identity(o)) ?? 0;
        if (copies > 1) report("unique-name", `${copies} objects are ${o.apiVersion} ${o.kind} ${o.metadata?.namespace ?? "(cluster)"}/${o.metadata?.name}`);
        checkSchema(o, report);
        checkNames(o, report);
        checkNamespace(o, stack, report);
        checkLabelSyntax(o, report);
        checkSecretLeak(o, secrets, report);
        if (o.kind === "StatefulSet") checkStatefulSet(o, stack, report);
        if (o.kind === "Service") checkService(o, stack, report);
        if (o.kind === "PodDisruptionBudget") checkPdb(o, stack, report);
        if (o.kind === "NetworkPolicy") checkNetworkPolicyTargets(o, stack, report);
        if (o.kind === "Namespace") checkNamespaceObject(o, report);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Objects and references

type Obj = Record<string, any> & { apiVersion: string; kind: string; metadata: Record<string, any> };
type Report = (rule: Rule, detail: string) => void;

/** The object as applied: no Pulumi bookkeeping. */
function plain(m: ManifestLike): Obj {
    const object: Record<string, any> = { ...m };
    delete object.resource;
    return object as Obj;
}

/** What the API server identifies an object by: group, kind, namespace and name. */
function identity(o: Obj): string {
    const group = String(o.apiVersion).includes("/") ? String(o.apiVersion).split("/")[0] : "";
    return [group, o.kind, o.metadata?.namespace ?? "", o.metadata?.name].join("|");
}

function ref(o: Obj): string {
    return `${o.kind}/${o.metadata?.name}`;
}

class Stack {
    readonly workloads: Obj[];
    constructor(readonly objects: Obj[]) {
        this.workloads = objects.filter((o) => o.kind === "StatefulSet");
    }
    find(kind: string, namespace: string | undefined, name: unknown): Obj | undefined {
        return this.objects.find((o) => o.kind === kind && o.metadata?.namespace === namespace && o.metadata?.name === name);
    }
    /** StatefulSets in `namespace` whose Pod template labels `matches` accepts. */
    workloadsSelected(namespace: string | undefined, matches: (labels: Record<string, string>) => boolean): Obj[] {
        return this.workloads.filter((w) => w.metadata?.namespace === namespace && matches(podLabels(w)));
    }
}

function podLabels(workload: Obj): Record<string, string> {
    return workload.spec?.template?.metadata?.labels ?? {};
}

function podSpec(workload: Obj): Record<string, any> {
    return workload.spec?.template?.spec ?? {};
}

function containersOf(workload: Obj, withInit = true): { container: Record<string, any>; where: string }[] {
    const spec = podSpec(workload);
    const list = (field: string) => (Array.isArray(spec[field]) ? spec[field] : []).map((c: any, i: number) => ({ container: c ?? {}, where: `${field}[${i}] ${c?.name}` }));
    return [...(withInit ? list("initContainers") : []), ...list("containers")];
}

/** A LabelSelector (matchLabels and matchExpressions) as the API server evaluates it. */
function labelSelectorMatches(selector: any, labels: Record<string, string>): boolean {
    if (!selector || typeof selector !== "object") return false;
    for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
    for (const e of selector.matchExpressions ?? []) {
        const has = Object.prototype.hasOwnProperty.call(labels, e.key);
        const values: string[] = e.values ?? [];
        const ok =
            e.operator === "In" ? has && values.includes(labels[e.key])
            : e.operator === "NotIn" ? !has || !values.includes(labels[e.key])
            : e.operator === "Exists" ? has
            : e.operator === "DoesNotExist" ? !has
            : false;
        if (!ok) return false;
    }
    return true;
}

function isEmptySelector(selector: any): boolean {
    return !selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0);
}

/** A Service's selector: a plain map; empty means "no selector" (no endpoints are managed). */
function serviceSelectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
    if (!selector || Object.keys(selector).length === 0) return false;
    return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

// ---------------------------------------------------------------------------------------------------------------
// schema, schema-kind and unknown-field

interface Validatable {
    validate(): void;
}

const MODELS: Record<string, { model: new (data: any) => Validatable; file: string; root: string }> = {
    "apps/v1/StatefulSet": { model: StatefulSet, file: "kubernetes-models/apps/v1/StatefulSet", root: "IStatefulSet" },
    "v1/Service": { model: Service, file: "kubernetes-models/v1/Service", root: "IService" },
    "v1/ConfigMap": { model: ConfigMap, file: "kubernetes-models/v1/ConfigMap", root: "IConfigMap" },
    "v1/Secret": { model: Secret, file: "kubernetes-models/v1/Secret", root: "ISecret" },
    "v1/Namespace": { model: Namespace, file: "kubernetes-models/v1/Namespace", root: "INamespace" },
    "policy/v1/PodDisruptionBudget": { model: PodDisruptionBudget, file: "kubernetes-models/policy/v1/PodDisruptionBudget", root: "IPodDisruptionBudget" },
    "networking.k8s.io/v1/NetworkPolicy": { model: NetworkPolicy, file: "kubernetes-models/networking.k8s.io/v1/NetworkPolicy", root: "INetworkPolicy" },
};

export const VALIDATED_KINDS = Object.keys(MODELS);

function checkSchema(o: Obj, report: Report): void {
    const key = `${o.apiVersion}/${o.kind}`;
    const entry = MODELS[key];
    if (!entry) {
        report("schema-kind", `no kubernetes-models validator for ${key}: hadb declares only ${VALIDATED_KINDS.join(", ")}`);
        return;
    }
    try {
        new entry.model(o).validate();
    } catch (err: any) {
        if (!Array.isArray(err?.errors)) throw err;
        for (const e of err.errors) {
            const allowed = e.params?.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : "";
            report("schema", `${e.instancePath || "/"} ${e.message}${allowed}`);
        }
    }
    checkFields(o, fieldSchema(key), "", report);
    checkValues(o, report);
}

/** A resource quantity as the API server parses it (`500m`, `1Gi`, `2`, `1e3`). */
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?\d+)?$/;
const SUFFIX: Record<string, number> = { "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

function quantityValue(q: unknown): number | undefined {
    if (typeof q === "number") return q;
    if (typeof q !== "string" || !QUANTITY.test(q)) return undefined;
    const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([KMGTPE]i|[mkMGTPE]|[eE][+-]?\d+)?$/.exec(q)!;
    const suffix = m[2] ?? "";
    return /^[eE]/.test(suffix) ? Number(m[1] + suffix) : Number(m[1]) * SUFFIX[suffix];
}

/** What the schema types but the API server also checks: quantity syntax, port ranges, counts, requests ≤ limits. */
function checkValues(o: Obj, report: Report): void {
    const quantity = (q: unknown, at: string) => {
        if (q !== undefined && quantityValue(q) === undefined) report("schema", `${at} ${JSON.stringify(q)} is not a resource quantity`);
    };
    const port = (p: unknown, at: string) => {
        if (typeof p === "number" && !(Number.isInteger(p) && p >= 1 && p <= 65535)) report("schema", `${at} ${p} is not a port from 1 to 65535`);
    };
    const walk = (value: any, at: string) => {
        if (Array.isArray(value)) return value.forEach((v, i) => walk(v, `${at}[${i}]`));
        if (!value || typeof value !== "object") return;
        for (const [k, v] of Object.entries(value)) {
            const here = at ? `${at}.${k}` : k;
            if (k === "resources" && v && typeof v === "object") {
                const r = v as any;
                for (const kind of ["requests", "limits"]) for (const [name, q] of Object.entries(r[kind] ?? {})) quantity(q, `${here}.${kind}.${name}`);
                for (const [name, limit] of Object.entries(r.limits ?? {})) {
                    const request = quantityValue(r.requests?.[name]);
                    const max = quantityValue(limit);
                    if (request !== undefined && max !== undefined && request > max) report("schema", `${here}.requests.${name} ${r.requests[name]} exceeds the limit ${limit}`);
                }
            } else if (k === "sizeLimit") quantity(v, here);
            else if (["containerPort", "hostPort", "port"].includes(k) || (k === "targetPort" && typeof v === "number")) port(v, here);
            walk(v, here);
        }
    };
    walk(o.spec, "spec");
    for (const field of ["replicas", "minReadySeconds", "revisionHistoryLimit"]) {
        const v = o.spec?.[field];
        if (typeof v === "number" && !(Number.isInteger(v) && v >= 0)) report("schema", `spec.${field} ${v} must be a whole number ≥ 0`);
    }
}

/**
 * The field names kubernetes-models declares for a kind. The package ships its JSON schemas compiled into ajv
 * validators (no schema objects, and no additionalProperties: unknown fields pass), but its type declarations
 * are generated from the same OpenAPI definitions: the field tree is read from them with the TypeScript checker.
 */
type FieldSchema =
    | { kind: "leaf" }
    | { kind: "array"; items: FieldSchema }
    | { kind: "map"; values: FieldSchema }
    | { kind: "object"; fields: () => Map<string, FieldSchema> };

let schemaCache: Map<string, FieldSchema> | undefined;

function fieldSchema(key: string): FieldSchema {
    schemaCache ??= buildFieldSchemas();
    return schemaCache.get(key)!;
}

function buildFieldSchemas(): Map<string, FieldSchema> {
    const files = Object.fromEntries(Object.entries(MODELS).map(([k, m]) => [k, require.resolve(m.file).replace(/\.js$/, ".d.ts")]));
    const program = ts.createProgram(Object.values(files), { noEmit: true, skipLibCheck: true, types: [], lib: ["lib.es5.d.ts"] });
    const checker = program.getTypeChecker();
    const memo = new Map<ts.Type, FieldSchema>();
    const leaf: FieldSchema = { kind: "leaf" };
    const PRIMITIVE = ts.TypeFlags.StringLike | ts.TypeFlags.NumberLike | ts.TypeFlags.BooleanLike | ts.TypeFlags.Any | ts.TypeFlags.Unknown | ts.TypeFlags.Null | ts.TypeFlags.Undefined;

    const toSchema = (type: ts.Type): FieldSchema => {
        if (type.isUnion()) {
            const objects = type.types.filter((t) => !(t.flags & PRIMITIVE));
            // Scalars and enums, or IntOrString / Quantity (string | number): leaves.
            if (objects.length === 0) return leaf;
            if (objects.length === 1) return toSchema(objects[0]);
            throw new Error(`field schema: union of object types ${checker.typeToString(type)}`);
        }
        if (type.flags & PRIMITIVE) return leaf;
        const known = memo.get(type);
        if (known) return known;
        let schema: FieldSchema;
        if (checker.isArrayType(type)) {
            schema = { kind: "array", items: toSchema(checker.getTypeArguments(type as ts.TypeReference)[0]) };
        } else {
            const properties = checker.getPropertiesOfType(type);
            const index = checker.getIndexInfosOfType(type)[0];
            if (properties.length === 0 && index) schema = { kind: "map", values: toSchema(index.type) };
            else if (properties.length === 0) schema = leaf;
            else {
                let fields: Map<string, FieldSchema> | undefined;
                // Lazy: some definitions are recursive (JSONSchemaProps).
                schema = { kind: "object", fields: () => (fields ??= new Map(properties.map((p) => [p.name, toSchema(checker.getTypeOfSymbol(p))]))) };
            }
        }
        memo.set(type, schema);
        return schema;
    };

    const schemas = new Map<string, FieldSchema>();
    for (const [key, file] of Object.entries(files)) {
        const source = program.getSourceFile(file);
        const root = MODELS[key].root;
        let declaration: ts.InterfaceDeclaration | undefined;
        source?.forEachChild((n) => {
            if (ts.isInterfaceDeclaration(n) && n.name.text === root) declaration = n;
        });
        if (!declaration) throw new Error(`kubernetes-models: no interface ${root} in ${file}`);
        schemas.set(key, toSchema(checker.getTypeAtLocation(declaration.name)));
    }
    return schemas;
}

function checkFields(value: unknown, schema: FieldSchema, path: string, report: Report): void {
    if (value === null || value === undefined) return;
    switch (schema.kind) {
        case "leaf":
            return;
        case "array":
            if (Array.isArray(value)) value.forEach((v, i) => checkFields(v, schema.items, `${path}[${i}]`, report));
            return;
        case "map":
            if (typeof value === "object" && !Array.isArray(value)) for (const [k, v] of Object.entries(value)) checkFields(v, schema.values, `${path}[${JSON.stringify(k)}]`, report);
            return;
        case "object": {
            if (typeof value !== "object" || Array.isArray(value)) return; // a type error: the schema check reports it
            const fields = schema.fields();
            for (const [k, v] of Object.entries(value)) {
                const field = fields.get(k);
                const at = path ? `${path}.${k}` : k;
                if (!field) report("unknown-field", `${at} is not a field of the schema (known here: ${[...fields.keys()].join(", ")})`);
                else checkFields(v, field, at, report);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// name, namespace, label-syntax

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_STATEFULSET_NAME = 52;

function isDnsLabel(value: unknown, max = 63): boolean {
    return typeof value === "string" && value.length <= max && DNS1123_LABEL.test(value);
}

function isDnsSubdomain(value: unknown): boolean {
    return typeof value === "string" && value.length <= 253 && value.split(".").every((l) => DNS1123_LABEL.test(l));
}

/** An IANA service name, as Kubernetes requires of container port names. */
export function isIanaServiceName(value: unknown): boolean {
    return typeof value === "string" && value.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(value) && /[a-z]/.test(value) && !value.includes("--");
}

function checkNames(o: Obj, report: Report): void {
    const name = o.metadata?.name;
    const bad = (what: string) => report("name", `${JSON.stringify(name)}: ${what}`);
    if (o.kind === "StatefulSet") {
        // Pods are named <sts>-<ordinal> and labelled controller-revision-hash=<sts>-<10 chars>: 52 keeps that ≤ 63.
        if (!isDnsLabel(name, MAX_STATEFULSET_NAME)) bad(`a StatefulSet name must be a DNS-1123 label of at most ${MAX_STATEFULSET_NAME} characters (its Pods are never created otherwise)`);
    } else if (o.kind === "Service") {
        if (!(typeof name === "string" && name.length <= 63 && DNS1035_LABEL.test(name))) bad("a Service name must be a DNS-1035 label (a letter first) of at most 63 characters");
    } else if (o.kind === "Namespace") {
        if (!isDnsLabel(name)) bad("a Namespace name must be a DNS-1123 label of at most 63 characters");
    } else if (!isDnsSubdomain(name)) bad("the name must be a DNS-1123 subdomain of at most 253 characters");

    if (o.kind === "Service") {
        const ports: any[] = o.spec?.ports ?? [];
        const names = ports.map((p) => p?.name);
        for (const n of names) if (n !== undefined && !isDnsLabel(n)) report("name", `Service port name ${JSON.stringify(n)} is not a DNS-1123 label`);
        if (ports.length > 1 && names.some((n) => !n)) report("name", "a Service with several ports must name every one");
        if (new Set(names).size !== names.length) report("name", `Service port names repeat: ${names.join(", ")}`);
    }
    if (o.kind === "StatefulSet") {
        for (const { container, where } of containersOf(o)) if (!isDnsLabel(container.name)) report("name", `${where}: a container name must be a DNS-1123 label`);
        const volumes: any[] = podSpec(o).volumes ?? [];
        for (const v of volumes) if (!isDnsLabel(v?.name)) report("name", `volume ${JSON.stringify(v?.name)}: a volume name must be a DNS-1123 label`);
        const replicas = Number(o.spec?.replicas ?? 1);
        for (const t of o.spec?.volumeClaimTemplates ?? []) {
            const claim = `${t?.metadata?.name}-${name}-${Math.max(0, replicas - 1)}`;
            if (!isDnsLabel(t?.metadata?.name)) report("name", `volumeClaimTemplate ${JSON.stringify(t?.metadata?.name)}: must be a DNS-1123 label`);
            else if (!isDnsSubdomain(claim)) report("name", `claim name ${claim} is not a DNS-1123 subdomain`);
        }
    }
}

function checkNamespace(o: Obj, stack: Stack, report: Report): void {
    const namespace = o.metadata?.namespace;
    if (o.kind === "Namespace") {
        if (namespace !== undefined) report("namespace", "a Namespace is cluster-scoped: it has no metadata.namespace");
        return;
    }
    if (!isDnsLabel(namespace)) {
        report("namespace", `metadata.namespace ${JSON.stringify(namespace)}: every object goes into a named namespace (a DNS-1123 label), never the provider's default`);
        return;
    }
    const created = stack.objects.filter((x) => x.kind === "Namespace").map((x) => x.metadata?.name);
    if (created.length && !created.includes(namespace)) report("namespace", `namespace ${namespace} is not the one the stack creates (${created.join(", ")})`);
}

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function labelKeyProblem(key: string): string | undefined {
    const slash = key.lastIndexOf("/");
    const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : [undefined, key];
    if (prefix !== undefined && !isDnsSubdomain(prefix)) return `prefix ${JSON.stringify(prefix)} is not a DNS-1123 subdomain`;
    if (name.length > 63 || !LABEL_NAME.test(name)) return `name ${JSON.stringify(name)} must be at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends`;
    return undefined;
}

function labelValueProblem(value: unknown): string | undefined {
    if (typeof value !== "string") return `value ${JSON.stringify(value)} is not a string`;
    if (value === "") return undefined;
    if (value.length > 63 || !LABEL_NAME.test(value)) return `value ${JSON.stringify(value)} must be at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends`;
    return undefined;
}

/** Every label map, annotation map and selector term, wherever it sits in the object. */
function checkLabelSyntax(o: Obj, report: Report): void {
    const labelMap = (map: any, at: string, values: boolean) => {
        if (!map || typeof map !== "object") return;
        for (const [k, v] of Object.entries(map)) {
            const problem = labelKeyProblem(k) ?? (values ? labelValueProblem(v) : undefined);
            if (problem) report("label-syntax", `${at} key ${JSON.stringify(k)}: ${problem}`);
        }
    };
    const walk = (value: any, at: string) => {
        if (Array.isArray(value)) return value.forEach((v, i) => walk(v, `${at}[${i}]`));
        if (!value || typeof value !== "object") return;
        for (const [k, v] of Object.entries(value)) {
            const here = at ? `${at}.${k}` : k;
            if (k === "labels" || k === "matchLabels") labelMap(v, here, true);
            else if (k === "annotations") labelMap(v, here, false);
            else if (k === "matchExpressions" && Array.isArray(v)) {
                v.forEach((e: any, i: number) => {
                    const problem = labelKeyProblem(String(e?.key ?? "")) ?? (e?.values ?? []).map(labelValueProblem).find(Boolean);
                    if (problem) report("label-syntax", `${here}[${i}]: ${problem}`);
                });
            } else walk(v, here);
        }
    };
    walk(o, "");
    if (o.kind === "Service") labelMap(o.spec?.selector, "spec.selector", true);
}

// ---------------------------------------------------------------------------------------------------------------
// StatefulSets: selector, headless Service, ports, volumes, files, Pod Security, probes, policies

/** Role and group checks: they answer "not that role", which must never restart a healthy member. */
const ROLE_PATHS = [
    "/primary",
    "/master",
    "/leader",
    "/standby-leader",
    "/standby_leader",
    "/replica",
    "/read-write",
    "/read-only",
    "/sync",
    "/synchronous",
    "/async",
    "/asynchronous",
    "/quorum",
    "/read-only-sync",
    "/ready",
    "/readiness",
];

const RESTRICTED_VOLUME_TYPES = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret"];

function checkStatefulSet(o: Obj, stack: Stack, report: Report): void {
    const namespace = o.metadata?.namespace;
    const labels = podLabels(o);
    const spec = o.spec ?? {};

    // selector-match
    if (isEmptySelector(spec.selector)) report("selector-match", "spec.selector is empty: it must select the template's Pods and nothing else");
    else if (!labelSelectorMatches(spec.selector, labels)) report("selector-match", `spec.selector ${JSON.stringify(spec.selector)} does not match the template labels ${JSON.stringify(labels)}`);

    // headless-service and publish-not-ready
    const governing = stack.find("Service", namespace, spec.serviceName);
    if (!spec.serviceName) report("headless-service", "spec.serviceName is empty: Pods get no DNS names");
    else if (!governing) report("headless-service", `spec.serviceName ${spec.serviceName}: no Service of that name in namespace ${namespace}`);
    else {
        if (governing.spec?.clusterIP !== "None") report("headless-service", `Service/${spec.serviceName} has clusterIP ${JSON.stringify(governing.spec?.clusterIP)}, not "None": Pods get no per-member DNS records`);
        if (!serviceSelectorMatches(governing.spec?.selector, labels)) report("headless-service", `Service/${spec.serviceName} selector ${JSON.stringify(governing.spec?.selector)} does not select the StatefulSet's Pods`);
        if (governing.spec?.clusterIP === "None" && governing.spec?.publishNotReadyAddresses !== true) {
            report("publish-not-ready", `Service/${spec.serviceName} has publishNotReadyAddresses ${JSON.stringify(governing.spec?.publishNotReadyAddresses)}: members cannot resolve each other until ready`);
        }
    }

    // pod-management-policy and pvc-retention
    if (spec.podManagementPolicy !== "Parallel") report("pod-management-policy", `spec.podManagementPolicy is ${JSON.stringify(spec.podManagementPolicy)}, not "Parallel"`);
    const retention = spec.persistentVolumeClaimRetentionPolicy ?? {};
    for (const when of ["whenDeleted", "whenScaled"]) {
        if ((retention[when] ?? "Retain") !== "Retain") report("pvc-retention", `persistentVolumeClaimRetentionPolicy.${when} is ${JSON.stringify(retention[when])}: data would be deleted`);
    }

    checkPorts(o, report);
    checkVolumes(o, report);
    checkProjectedSources(o, stack, report);
    checkPerMemberIdentity(o, stack, report);
    checkPodSecurity(o, report);
    if (podSpec(o).automountServiceAccountToken !== false) {
        report("service-account-token", `spec.template.spec.automountServiceAccountToken is ${JSON.stringify(podSpec(o).automountServiceAccountToken)}, not false`);
    }
    checkLiveness(o, report);
    checkNetworkPolicyCoverage(o, stack, report);
    checkPdbCoverage(o, stack, report);
}

function containerPorts(workload: Obj): { name?: string; containerPort: number; protocol: string }[] {
    return containersOf(workload, false).flatMap(({ container }) => (container.ports ?? []).map((p: any) => ({ ...p, protocol: p?.protocol ?? "TCP" })));
}

function checkPorts(o: Obj, report: Report): void {
    const seen = new Map<string, string>();
    for (const { container, where } of containersOf(o)) {
        for (const p of container.ports ?? []) {
            if (p?.name === undefined) continue;
            if (!isIanaServiceName(p.name)) report("port-name", `${where} port ${p.containerPort} name ${JSON.stringify(p.name)} is not an IANA service name (≤ 15 lowercase letters, digits and single inner '-', with a letter)`);
            const other = seen.get(p.name);
            if (other) report("port-name", `port name ${JSON.stringify(p.name)} is used twice in the Pod (${other} and ${where})`);
            seen.set(p.name, where);
        }
    }
}

function checkVolumes(o: Obj, report: Report): void {
    const volumes: string[] = (podSpec(o).volumes ?? []).map((v: any) => v?.name);
    const claims: string[] = (o.spec?.volumeClaimTemplates ?? []).map((t: any) => t?.metadata?.name);
    const dup = [...volumes, ...claims].filter((n, i, all) => all.indexOf(n) !== i);
    if (dup.length) report("volume-mount", `volume names repeat across volumes and volumeClaimTemplates: ${dup.join(", ")}`);
    const mounted = new Set<string>();
    for (const { container, where } of containersOf(o)) {
        const paths = new Set<string>();
        for (const m of container.volumeMounts ?? []) {
            mounted.add(m?.name);
            if (!volumes.includes(m?.name) && !claims.includes(m?.name)) report("volume-mount", `${where} mounts ${JSON.stringify(m?.name)} at ${m?.mountPath}: no volume or volumeClaimTemplate has that name`);
            if (paths.has(m?.mountPath)) report("volume-mount", `${where} mounts two volumes at ${m?.mountPath}`);
            paths.add(m?.mountPath);
        }
    }
    for (const c of claims) if (!mounted.has(c)) report("volume-mount", `volumeClaimTemplate ${c} is mounted by no container`);
}

interface FileSource {
    readonly kind: "ConfigMap" | "Secret";
    readonly name: string;
    readonly optional: boolean;
    readonly items?: { key: string; path: string }[];
}

function fileSources(o: Obj): FileSource[] {
    const out: FileSource[] = [];
    for (const v of podSpec(o).volumes ?? []) {
        if (v?.configMap) out.push({ kind: "ConfigMap", name: v.configMap.name, optional: !!v.configMap.optional, items: v.configMap.items });
        if (v?.secret) out.push({ kind: "Secret", name: v.secret.secretName, optional: !!v.secret.optional, items: v.secret.items });
        for (const s of v?.projected?.sources ?? []) {
            if (s?.configMap) out.push({ kind: "ConfigMap", name: s.configMap.name, optional: !!s.configMap.optional, items: s.configMap.items });
            if (s?.secret) out.push({ kind: "Secret", name: s.secret.name, optional: !!s.secret.optional, items: s.secret.items });
        }
    }
    return out;
}

function keysOf(object: Obj | undefined): string[] {
    if (!object) return [];
    return [...Object.keys(object.data ?? {}), ...Object.keys(object.binaryData ?? {}), ...Object.keys(object.stringData ?? {})];
}

/** Items projecting a member's own file (`<sts>-<ordinal>/<file>`): per-member-identity reports those. */
function memberItemPattern(o: Obj): RegExp {
    return new RegExp(`^${String(o.metadata?.name).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-(\\d+)/([^/]+)$`);
}

function checkProjectedSources(o: Obj, stack: Stack, report: Report): void {
    const namespace = o.metadata?.namespace;
    const member = memberItemPattern(o);
    for (const s of fileSources(o)) {
        const object = stack.find(s.kind, namespace, s.name);
        if (!object) {
            if (!s.optional) report("projected-source", `the Pod reads ${s.kind}/${s.name}, which the stack does not declare in namespace ${namespace}`);
            continue;
        }
        const keys = keysOf(object);
        for (const item of s.items ?? []) {
            if (member.test(String(item?.path))) continue;
            if (!keys.includes(item?.key)) report("projected-source", `item ${item?.key} → ${item?.path}: ${s.kind}/${s.name} has no key ${item?.key}`);
        }
    }
    for (const { container, where } of containersOf(o)) {
        for (const e of container.env ?? []) {
            const r = e?.valueFrom?.configMapKeyRef ?? e?.valueFrom?.secretKeyRef;
            if (!r || r.optional) continue;
            const kind = e.valueFrom.configMapKeyRef ? "ConfigMap" : "Secret";
            const object = stack.find(kind, namespace, r.name);
            if (!object || !keysOf(object).includes(r.key)) report("projected-source", `${where} env ${e.name} reads ${kind}/${r.name} key ${r.key}, which does not exist`);
        }
    }
}

/** Per-member files: each Pod `<sts>-<i>` finds `<sts>-<i>.<file>` projected at `<sts>-<i>/<file>` and copies it by $POD_NAME. */
function checkPerMemberIdentity(o: Obj, stack: Stack, report: Report): void {
    const name = o.metadata?.name;
    const namespace = o.metadata?.namespace;
    const member = memberItemPattern(o);
    const items = fileSources(o).flatMap((s) => (s.items ?? []).map((item) => ({ ...item, source: s })));
    const memberItems = items.filter((i) => member.test(String(i.path)));
    const scripts = containersOf(o)
        .filter(({ where }) => where.startsWith("initContainers"))
        .map(({ container }) => ({ container, text: [...(container.command ?? []), ...(container.args ?? [])].join("\n") }));
    const copied = new Set(scripts.flatMap(({ text }) => [...text.matchAll(/\$\{?POD_NAME\}?\/([A-Za-z0-9._-]+)/g)].map((m) => m[1])));
    const files = new Set([...memberItems.map((i) => member.exec(i.path)![2]), ...copied]);
    if (files.size === 0) return;

    const replicas = Number(o.spec?.replicas ?? 1);
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
        const pod = `${name}-${ordinal}`;
        for (const file of files) {
            const item = memberItems.find((i) => i.path === `${pod}/${file}`);
            if (!item) {
                report("per-member-identity", `Pod ${pod} gets no ${file}: no projected item ${pod}/${file} (key ${pod}.${file})`);
                continue;
            }
            if (item.key !== `${pod}.${file}`) report("per-member-identity", `item ${item.path} projects key ${item.key}, not ${pod}.${file}`);
            const object = stack.find(item.source.kind, namespace, item.source.name);
            if (object && !keysOf(object).includes(item.key)) report("per-member-identity", `Pod ${pod} gets no ${file}: ${item.source.kind}/${item.source.name} has no key ${item.key}`);
        }
    }
    for (const file of files) {
        if (!copied.has(file)) report("per-member-identity", `no init container copies ${file} by $POD_NAME: every Pod would get the same (or no) ${file}`);
    }
    for (const { container, text } of scripts) {
        if (!/\$\{?POD_NAME\b/.test(text)) continue;
        const env = (container.env ?? []).find((e: any) => e?.name === "POD_NAME");
        if (env?.valueFrom?.fieldRef?.fieldPath !== "metadata.name") {
            report("per-member-identity", `init container ${container.name} uses $POD_NAME but does not set it from the downward API (fieldRef metadata.name)`);
        }
    }
}

function checkPodSecurity(o: Obj, report: Report): void {
    const pod = podSpec(o);
    const psc = pod.securityContext ?? {};
    const bad = (detail: string) => report("pod-security", detail);
    for (const host of ["hostNetwork", "hostPID", "hostIPC"]) if (pod[host]) bad(`spec.template.spec.${host} is true`);
    if (psc.runAsUser === 0) bad("the Pod's securityContext.runAsUser is 0");
    if (psc.seccompProfile && !["RuntimeDefault", "Localhost"].includes(psc.seccompProfile.type)) bad(`the Pod's seccompProfile is ${JSON.stringify(psc.seccompProfile.type)}`);
    for (const v of pod.volumes ?? []) {
        const types = Object.keys(v ?? {}).filter((k) => k !== "name");
        for (const t of types) if (!RESTRICTED_VOLUME_TYPES.includes(t)) bad(`volume ${v.name} is of type ${t}, which "restricted" forbids`);
    }
    for (const { container, where } of containersOf(o)) {
        const sc = container.securityContext ?? {};
        const runAsNonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
        if (runAsNonRoot !== true) bad(`${where}: runAsNonRoot is not true (neither on the container nor the Pod)`);
        if (sc.runAsUser === 0) bad(`${where}: runAsUser is 0`);
        if (sc.allowPrivilegeEscalation !== false) bad(`${where}: allowPrivilegeEscalation is ${JSON.stringify(sc.allowPrivilegeEscalation)}, not false`);
        if (sc.privileged) bad(`${where}: privileged`);
        if (!(sc.capabilities?.drop ?? []).includes("ALL")) bad(`${where}: capabilities.drop does not include ALL`);
        const added = (sc.capabilities?.add ?? []).filter((c: string) => c !== "NET_BIND_SERVICE");
        if (added.length) bad(`${where}: capabilities.add ${added.join(", ")}`);
        const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
        if (!["RuntimeDefault", "Localhost"].includes(seccomp)) bad(`${where}: seccompProfile is ${JSON.stringify(seccomp)}, not RuntimeDefault or Localhost (neither on the container nor the Pod)`);
        if (sc.procMount && sc.procMount !== "Default") bad(`${where}: procMount ${sc.procMount}`);
        for (const p of container.ports ?? []) if (p?.hostPort) bad(`${where}: hostPort ${p.hostPort}`);
    }
}

function checkNamespaceObject(o: Obj, report: Report): void {
    const level = o.metadata?.labels?.["pod-security.kubernetes.io/enforce"];
    if (level !== "restricted") report("pod-security", `label pod-security.kubernetes.io/enforce is ${JSON.stringify(level)}, not "restricted"`);
}

function rolePath(path: unknown): string | undefined {
    if (typeof path !== "string") return undefined;
    const bare = path.split("?")[0].replace(/\/+$/, "").toLowerCase();
    return ROLE_PATHS.find((p) => bare === p);
}

function checkLiveness(o: Obj, report: Report): void {
    for (const { container, where } of containersOf(o)) {
        const probe = container.livenessProbe;
        if (!probe) continue;
        const http = rolePath(probe.httpGet?.path);
        if (http) report("liveness-role-check", `${where}: livenessProbe GETs ${probe.httpGet.path}, a role/group check: a healthy member in another role would be restarted`);
        const command: string[] = probe.exec?.command ?? [];
        const inCommand = command.flatMap((arg) => [...String(arg).matchAll(/https?:\/\/[^\s"']+?(\/[^\s"'?]*)/g)].map((m) => rolePath(m[1]))).find(Boolean);
        if (inCommand) report("liveness-role-check", `${where}: livenessProbe command asks ${inCommand}, a role/group check`);
    }
}

function networkPolicyPorts(policy: Obj): { port: unknown; protocol: string }[] | "all" {
    const rules: any[] = policy.spec?.ingress ?? [];
    if (rules.some((r) => !r?.ports || r.ports.length === 0)) return "all";
    return rules.flatMap((r) => r.ports.map((p: any) => ({ port: p?.port, protocol: p?.protocol ?? "TCP" })));
}

/** The Ingress NetworkPolicies that select a workload's Pods. */
function ingressPolicies(workload: Obj, stack: Stack): Obj[] {
    const labels = podLabels(workload);
    return stack.objects.filter(
        (p) =>
            p.kind === "NetworkPolicy" &&
            p.metadata?.namespace === workload.metadata?.namespace &&
            labelSelectorMatches(p.spec?.podSelector ?? {}, labels) &&
            (p.spec?.policyTypes ?? ["Ingress"]).includes("Ingress"),
    );
}

function checkNetworkPolicyCoverage(o: Obj, stack: Stack, report: Report): void {
    const policies = ingressPolicies(o, stack);
    if (policies.length === 0) {
        report("network-policy", "no Ingress NetworkPolicy selects the StatefulSet's Pods: every Pod in the cluster can reach every port");
        return;
    }
    const exposed = containerPorts(o);
    for (const p of policies) {
        const ports = networkPolicyPorts(p);
        if (ports === "all") {
            report("network-policy", `NetworkPolicy/${p.metadata?.name} has an ingress rule without ports: it admits every port`);
            continue;
        }
        for (const { port, protocol } of ports) {
            const match = exposed.find((e) => e.protocol === protocol && (typeof port === "number" ? e.containerPort === port : e.name === port));
            if (!match) report("network-policy", `NetworkPolicy/${p.metadata?.name} admits ${protocol} port ${JSON.stringify(port)}, which no container of the StatefulSet exposes`);
        }
    }
}

function checkNetworkPolicyTargets(o: Obj, stack: Stack, report: Report): void {
    if (isEmptySelector(o.spec?.podSelector)) report("network-policy", "spec.podSelector is empty: the policy applies to every Pod in the namespace");
    else if (stack.workloadsSelected(o.metadata?.namespace, (l) => labelSelectorMatches(o.spec?.podSelector, l)).length === 0) {
        report("network-policy", `spec.podSelector ${JSON.stringify(o.spec?.podSelector)} selects no workload's Pods`);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// PodDisruptionBudgets and Services

function checkPdb(o: Obj, stack: Stack, report: Report): void {
    const spec = o.spec ?? {};
    const set = ["minAvailable", "maxUnavailable"].filter((k) => spec[k] !== undefined && spec[k] !== null);
    if (set.length !== 1) report("pdb", `exactly one of minAvailable and maxUnavailable must be set (set: ${set.join(", ") || "none"})`);
    const selected = isEmptySelector(spec.selector) ? stack.workloads.filter((w) => w.metadata?.namespace === o.metadata?.namespace) : stack.workloadsSelected(o.metadata?.namespace, (l) => labelSelectorMatches(spec.selector, l));
    if (selected.length !== 1) report("pdb", `selects ${selected.length} workloads (${selected.map(ref).join(", ") || "none"}), not exactly one`);
}

function checkPdbCoverage(o: Obj, stack: Stack, report: Report): void {
    const labels = podLabels(o);
    const budgets = stack.objects.filter((p) => p.kind === "PodDisruptionBudget" && p.metadata?.namespace === o.metadata?.namespace && (isEmptySelector(p.spec?.selector) || labelSelectorMatches(p.spec?.selector, labels)));
    const replicas = Number(o.spec?.replicas ?? 1);
    if (replicas >= 2 && budgets.length === 0) report("pdb", `${replicas} replicas and no PodDisruptionBudget: a node drain may evict every member at once`);
    if (budgets.length > 1) report("pdb", `selected by ${budgets.length} PodDisruptionBudgets (${budgets.map(ref).join(", ")}): evictions of its Pods fail`);
}

function checkService(o: Obj, stack: Stack, report: Report): void {
    const selector = o.spec?.selector;
    const selected = stack.workloadsSelected(o.metadata?.namespace, (l) => serviceSelectorMatches(selector, l));
    if (selected.length === 0) {
        report("service-selects-workload", `selector ${JSON.stringify(selector)} selects no workload's Pods in namespace ${o.metadata?.namespace}`);
        return;
    }
    for (const p of o.spec?.ports ?? []) {
        const target = p?.targetPort ?? p?.port;
        const protocol = p?.protocol ?? "TCP";
        for (const w of selected) {
            const ok = containerPorts(w).some((c) => c.protocol === protocol && (typeof target === "number" ? c.containerPort === target : c.name === target));
            if (!ok) report("service-target-port", `port ${p?.name ?? p?.port} targets ${JSON.stringify(target)}, which no container of ${ref(w)} exposes`);
        }
    }
    if (["LoadBalancer", "NodePort"].includes(o.spec?.type)) checkExternalAccess(o, selected, stack, report);
}

/**
 * Clients of a LoadBalancer or NodePort Service are outside the cluster: no podSelector peer matches them (and
 * after SNAT the source is a node), so only a rule with an ipBlock peer or no `from` admits them.
 */
function checkExternalAccess(o: Obj, selected: Obj[], stack: Stack, report: Report): void {
    for (const w of selected) {
        const policies = ingressPolicies(w, stack);
        if (policies.length === 0) continue; // nothing isolates the Pods; network-policy reports that
        const ports = containerPorts(w);
        const number = (port: unknown) => (typeof port === "number" ? port : ports.find((c) => c.name === port)?.containerPort);
        for (const p of o.spec?.ports ?? []) {
            const target = number(p?.targetPort ?? p?.port);
            const admitted = policies.some((policy) =>
                (policy.spec?.ingress ?? []).some(
                    (rule: any) =>
                        (!rule?.ports?.length || rule.ports.some((rp: any) => number(rp?.port) === target)) &&
                        (!rule?.from?.length || rule.from.some((peer: any) => peer?.ipBlock)),
                ),
            );
            if (!admitted) {
                report(
                    "external-access",
                    `a ${o.spec.type} Service for clients outside the cluster, but ${policies.map(ref).join(", ")} admit ${ref(w)}'s port ${target} only from Pods (podSelector): external clients are dropped`,
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// secret-leak

/** Passwords may appear only in a Secret's data/stringData values; anywhere else (plain or base64) is a leak. */
function checkSecretLeak(o: Obj, secrets: readonly string[], report: Report): void {
    const searched = o.kind === "Secret" ? { ...o, data: undefined, stringData: undefined, keys: [...Object.keys(o.data ?? {}), ...Object.keys(o.stringData ?? {})] } : o;
    const text = JSON.stringify(searched);
    for (const secret of new Set(secrets)) {
        if (secret.length < 4) continue;
        const encoded = Buffer.from(secret).toString("base64").replace(/=+$/, "");
        const where = text.includes(secret) ? "in plain text" : text.includes(encoded) ? "base64-encoded" : undefined;
        if (where) report("secret-leak", `a password (${secret.slice(0, 3)}…, ${secret.length} characters) appears ${where} ${o.kind === "Secret" ? "outside the Secret's values" : `in a ${o.kind}`}: ${leakPath(searched, secret, encoded)}`);
    }
}

function leakPath(value: any, secret: string, encoded: string, at = ""): string {
    if (typeof value === "string") return value.includes(secret) || value.includes(encoded) ? at || "(root)" : "";
    if (value && typeof value === "object") {
        for (const [k, v] of Object.entries(value)) {
            const here = Array.isArray(value) ? `${at}[${k}]` : at ? `${at}.${k}` : k;
            if (k.includes(secret) || k.includes(encoded)) return `${here} (a key)`;
            const found = leakPath(v, secret, encoded, here);
            if (found) return found;
        }
    }
    return "";
}
