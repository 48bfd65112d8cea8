import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import dockerignore from "@balena/dockerignore";

/**
 * Content-addressed tags (issue #2): a hash of exactly a variant's build inputs, from content only. File paths are
 * relative and POSIX, file bytes are hashed, and mtimes, owners and permission bits never enter, so a fresh clone,
 * a `touch` or a `chmod` plans nothing while a one-byte edit in one variant's context re-plans that variant alone.
 */

export interface BuildInputs {
  /** Absolute path of the build context. */
  contextDir: string;
  /** Absolute path of the Dockerfile (inside or outside the context). */
  dockerfile: string;
  target?: string;
  buildArgs: Record<string, string>;
  platforms: readonly string[];
  /** Every base the Dockerfile builds FROM, by build arg: `ARG → image@sha256:…`. */
  bases: Record<string, string>;
}

export const CONTENT_TAG_PREFIX = "build-";

function sha256(data: string | Buffer): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

const contextCache = new Map<string, ReadonlyArray<readonly [string, string]>>();

/**
 * The files Docker would send for this context: every regular file and symlink under `contextDir`, minus what its
 * `.dockerignore` excludes (Docker's own pattern semantics, via @balena/dockerignore), each with the hash of its
 * content (a symlink: of its target text). Sorted by path. Cached per directory for the life of the process, since
 * one plan reads each context once and several variants may share one (multi-stage targets).
 */
export function contextDigests(contextDir: string): ReadonlyArray<readonly [string, string]> {
  const cached = contextCache.get(contextDir);
  if (cached) return cached;
  const ignoreFile = path.join(contextDir, ".dockerignore");
  const ig = dockerignore({ ignorecase: false });
  if (fs.existsSync(ignoreFile)) ig.add(fs.readFileSync(ignoreFile, "utf8").split(/\r?\n/));
  const out: Array<readonly [string, string]> = [];
  const walk = (rel: string): void => {
    const abs = path.join(contextDir, rel);
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const relPath = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (ig.ignores(relPath)) {
        // Docker still descends into an ignored directory when a later `!` pattern may re-include something in it.
        if (!(entry.isDirectory() && mayReinclude(ig, relPath))) continue;
      }
      const full = path.join(contextDir, relPath);
      if (entry.isDirectory()) walk(relPath);
      else if (entry.isSymbolicLink()) out.push([relPath, `link:${sha256(fs.readlinkSync(full))}`]);
      else if (entry.isFile() && !ig.ignores(relPath)) out.push([relPath, sha256(fs.readFileSync(full))]);
    }
  };
  walk("");
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  contextCache.set(contextDir, out);
  return out;
}

function mayReinclude(ig: ReturnType<typeof dockerignore>, dir: string): boolean {
  // Cheap conservative test: any negated pattern at all means we must look inside.
  return (ig as unknown as { _rules?: Array<{ negative?: boolean }> })._rules?.some((r) => r.negative === true) ?? true;
}

/** Forget cached context listings (tests that edit files between plans). */
export function clearContextCache(): void {
  contextCache.clear();
}

/** The full hex hash of a variant's build inputs. */
export function buildInputsHash(inputs: BuildInputs): string {
  const canonical = {
    v: 1,
    files: contextDigests(inputs.contextDir),
    dockerfile: sha256(fs.readFileSync(inputs.dockerfile)),
    target: inputs.target ?? null,
    buildArgs: Object.entries(inputs.buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    platforms: [...inputs.platforms].sort(),
    bases: Object.entries(inputs.bases).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
  return sha256(JSON.stringify(canonical));
}

/** The registry tag for a build: `build-` and the first 20 hex characters (80 bits) of the inputs hash. */
export function contentTag(inputs: BuildInputs): string {
  return `${CONTENT_TAG_PREFIX}${buildInputsHash(inputs).slice(0, 20)}`;
}
