// npm run render -- <stack> [hadb:key=value ...]
// Runs the stack program under Pulumi mocks (no engine, no cluster) and prints every Kubernetes object it
// registers as multi-document YAML, as the provider would apply it, Secret values redacted.
import * as path from "path";
import { stringify } from "yaml";
import { ConfigValues, listStacks, parseOverrides } from "../harness/stackConfig";
import { runStack, StackRun } from "../harness/mockRun";
import { applied, Manifest, manifests } from "./manifests";

/** Kinds in the order `kubectl apply` would want them: what others refer to first. */
const KIND_ORDER = ["Namespace", "ConfigMap", "Secret", "Service", "StatefulSet", "PodDisruptionBudget", "NetworkPolicy"];

/** Manifests in a stable order: by kind (KIND_ORDER, then others by name), namespace, name. */
export function sortManifests(list: readonly Manifest[]): Manifest[] {
    const rank = (kind: string) => (KIND_ORDER.includes(kind) ? KIND_ORDER.indexOf(kind) : KIND_ORDER.length);
    return [...list].sort(
        (a, b) =>
            rank(a.kind) - rank(b.kind) ||
            a.kind.localeCompare(b.kind) ||
            (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") ||
            a.metadata.name.localeCompare(b.metadata.name),
    );
}

/** Every object as one YAML document each, `---` between them; Secret values are "[secret]". */
export function renderManifests(list: readonly Manifest[]): string {
    return sortManifests(list)
        .map((m) => {
            const object = applied(m, true);
            // Name and namespace first, as kubectl prints them; the fields are the applied ones.
            const { name, namespace, ...rest } = m.metadata;
            return stringify({ ...object, metadata: { name, ...(namespace === undefined ? {} : { namespace }), ...rest } }, { lineWidth: 0 });
        })
        .join("---\n");
}

export interface Rendered {
    readonly yaml: string;
    readonly objects: number;
    /** The run it came from, for callers that check it against the stack's generated passwords. */
    readonly run: StackRun;
}

/** Runs `stack` under mocks with `config` overrides and renders its Kubernetes objects. */
export async function renderStack(stack: string, config: ConfigValues = {}): Promise<Rendered> {
    const run = await runStack(stack, { config });
    const list = manifests(run.resources);
    if (list.length === 0) {
        throw new Error(`stack ${stack} registers no Kubernetes objects (is hadb:target "kubernetes"? try: npm run render -- staging, or add hadb:target=kubernetes)`);
    }
    return { yaml: renderManifests(list), objects: list.length, run };
}

async function main(argv: string[]): Promise<void> {
    const [stack, ...rest] = argv;
    if (!stack || stack.startsWith("-")) throw new Error(`usage: npm run render -- <stack> [hadb:key=value ...]; stacks: ${listStacks().join(", ")}`);
    const { yaml } = await renderStack(stack, parseOverrides(rest));
    process.stdout.write(yaml);
}

if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
    main(process.argv.slice(2)).then(
        () => process.stdout.write("", () => process.exit(0)),
        (err) => {
            console.error(err instanceof Error ? err.message : err);
            process.exit(1);
        },
    );
}
