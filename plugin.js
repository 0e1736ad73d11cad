// The entry point of hadb's component package (PulumiPlugin.yaml `main`), which Pulumi's plugin runner starts
// when a Python, Go, .NET, Java or YAML program uses hadb. In a checkout (`pulumi package add` from git or a local
// folder) it runs the TypeScript source, through the ts-node the runner registers, so no build step is needed;
// the npm package has no sources and runs the compiled dist/provider.js.
/* eslint-disable @typescript-eslint/no-require-imports */
const fs = require("fs");
const path = require("path");

const source = path.join(__dirname, "components", "provider.ts");
require(fs.existsSync(source) ? source : path.join(__dirname, "dist", "provider.js"));
