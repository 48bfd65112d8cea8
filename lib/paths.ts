import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The project's root folder (where Pulumi.yaml is). One definition, so a module that moves between folders never
 * re-counts `..` segments to find images/, schemas/ or the catalog. The project is CommonJS: `__dirname` is defined.
 * The nearest folder above this module holding Pulumi.yaml: the same from the sources (`lib/`) and from the compiled
 * CLIs (`dist/lib/`, issue #16).
 */
export const PROJECT_ROOT = findProjectRoot(path.resolve(__dirname, ".."));

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
    if (path.dirname(dir) === dir) return start;
  }
}

/**
 * Where `candidate` (absolute) really is, symlinks resolved, if that is inside `root` (also resolved); otherwise why
 * not. Configuration may name only files of the project: a catalog, build context, Dockerfile or ignore file outside
 * it (`../`, an absolute path, a symlink out) would let a stack file make the program read, build from, or print
 * any file of the machine that runs it (issue #13).
 */
export function projectPath(root: string, candidate: string): { real: string } | { problem: "missing" | "outside" } {
  let real: string;
  let realRoot: string;
  try {
    realRoot = fs.realpathSync(root);
  } catch {
    realRoot = path.resolve(root);
  }
  const lexical = path.relative(path.resolve(root), path.resolve(candidate));
  if (lexical.startsWith("..") || path.isAbsolute(lexical)) return { problem: "outside" };
  try {
    real = fs.realpathSync(candidate);
  } catch {
    return { problem: "missing" };
  }
  const rel = path.relative(realRoot, real);
  return rel.startsWith("..") || path.isAbsolute(rel) ? { problem: "outside" } : { real };
}
