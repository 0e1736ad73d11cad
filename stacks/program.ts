import * as pulumi from "@pulumi/pulumi";
import { readStackConfig } from "./config";
import { ecommercePreset } from "./presets/ecommerce";
import { standardPreset } from "./presets/standard";
import { stackTarget } from "./targets";

const PRESETS = { standard: standardPreset, "ecommerce-ha": ecommercePreset } as const;

/** The stack program: read config, pick the target, compose the chosen preset, return the stack outputs. */
export function program() {
    const config = readStackConfig();
    const preset = PRESETS[config.preset as keyof typeof PRESETS];
    if (!preset) {
        throw new pulumi.RunError(`config \`hadb:preset\` is "${config.preset}": no such preset. Fix: use one of ${Object.keys(PRESETS).join(", ")}.`);
    }
    return preset(config, stackTarget(config));
}
