// Entry point that Pulumi.yaml runs; the returned object becomes the stack outputs.
import { program } from "./program";

export = async () => program();
