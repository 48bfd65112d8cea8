import * as path from "node:path";

/**
 * The project's root folder (where Pulumi.yaml is). One definition, so a module that moves between folders never
 * re-counts `..` segments to find images/, schemas/ or the catalog. The project is CommonJS: `__dirname` is defined.
 */
export const PROJECT_ROOT = path.resolve(__dirname, "..");
