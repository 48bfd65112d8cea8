import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, type Document } from "yaml";
import { formatImageRef, isDigest, parseImageRef } from "../../lib/image-ref";
import { formatPath } from "../../lib/problems";
import { type CliProblem, display, escapeControls, type ParsedFlags, parseFlags, problemLine, Refused, unreadable } from "./cli";

/**
 * `npm run pin-bases` (issue #3): resolves every catalog base tag to the digest it points at now and writes that
 * digest into images/catalog.yaml, keeping every comment and every byte of formatting around it.
 *
 * Why the edit is a splice of the original text and not `doc.toString()`: yaml's stringifier re-flows flow
 * sequences longer than its line width and pads `[a]` to `[ a ]`; on our own catalog that rewrites dozens of lines
 * nobody asked to change. The Document API is still what finds each ref (its node range), and the spliced result
 * is re-parsed and compared with the Document after `setIn`, so a splice can never change anything else.
 */


/** Resolves `repository:tag` to the digest of the manifest the tag points at (`sha256:<64 hex>`). */
export type DigestResolver = (imageWithTag: string) => Promise<string>;

export interface PinChange {
  /** `variants[0].base.ref`, `variants[4].extraBases.CUDA_IMAGE` */
  path: string;
  from: string;
  to: string;
}

export interface PinResult {
  /** The new catalog text; the input unchanged when there are problems (all or nothing). */
  text: string;
  /** Empty when there are problems. */
  changes: PinChange[];
  problems: string[];
}

export interface PinOptions {
  /** Re-resolve refs that already carry a digest and move them to the tag's current digest. @default keep them */
  refresh: boolean;
  /** Distinct tags resolved at once. @default 4 (a registry rate-limits anonymous pulls per client) */
  concurrency?: number;
}

/** One catalog scalar holding a base reference. */
interface RefSite {
  path: (string | number)[];
  shown: string;
  node: Scalar;
  value: string;
}

/**
 * Pins the base references of a catalog (`variants[*].base.ref` and every `variants[*].extraBases.*`):
 * - `repo:tag` gets `@<digest>` appended;
 * - `repo:tag@digest` is kept, or with `refresh` moved to the tag's current digest;
 * - `repo@digest` (no tag) is left alone: there is nothing to resolve.
 * Each distinct `repo:tag` is resolved once. Any problem (a resolver error, a ref that is not a reference) means
 * nothing changes.
 */
export async function pinCatalogText(text: string, resolve: DigestResolver, options: PinOptions): Promise<PinResult> {
  const unchanged = (problems: string[]): PinResult => ({ text, changes: [], problems });
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return unchanged(
      doc.errors.map((e) => `line ${lineCounter.linePos(e.pos[0]).line}: is not valid YAML: ${e.message.split("\n")[0]}. Fix the syntax there.`),
    );
  }
  const lineOf = (node: Scalar): string =>
    node.range ? ` (line ${lineCounter.linePos(node.range[0]).line})` : "";

  const { sites, problems } = findRefSites(doc, lineOf);

  // Which sites need a digest, grouped by the tag to resolve, so each distinct tag costs one registry round trip.
  const byTag = new Map<string, RefSite[]>();
  const tagOf = new Map<RefSite, string>();
  for (const site of sites) {
    const ref = parseImageRef(site.value);
    if (ref === undefined) {
      problems.push(`${site.shown}: is not an image reference like "registry/repository:tag" (received ${JSON.stringify(site.value)}). Fix the reference.`);
      continue;
    }
    if (ref.tag === undefined) {
      if (ref.digest === undefined) {
        problems.push(`${site.shown}: has neither a tag nor a digest (received ${JSON.stringify(site.value)}), so there is nothing to pin. Add the tag you mean, e.g. ":1.2.3".`);
      }
      continue; // digest only: already pinned and no tag to follow
    }
    if (ref.digest !== undefined && !options.refresh) continue;
    const key = formatImageRef({ repository: ref.repository, tag: ref.tag });
    byTag.set(key, [...(byTag.get(key) ?? []), site]);
    tagOf.set(site, key);
  }
  if (problems.length > 0) return unchanged(problems);

  const resolved = await resolveAll([...byTag.keys()], resolve, options.concurrency ?? 4);
  for (const [key, outcome] of resolved) {
    const where = (byTag.get(key) ?? []).map((s) => s.shown).join(", ");
    if ("error" in outcome) {
      problems.push(`${where}: could not resolve ${key}: ${outcome.error}. Check that the tag exists and that this machine can reach the registry (and is logged in, for a private one).`);
    } else if (!isDigest(outcome.digest)) {
      problems.push(`${where}: resolving ${key} gave ${JSON.stringify(outcome.digest)}, not a sha256:<64 hex> digest. This is a resolver bug: report it.`);
    }
  }
  if (problems.length > 0) return unchanged(problems);

  const changes: PinChange[] = [];
  const edits: { start: number; end: number; replacement: string }[] = [];
  // Document order (not tag order), so the printed changes read top to bottom like the file.
  for (const site of sites) {
    const key = tagOf.get(site);
    const outcome = key === undefined ? undefined : resolved.get(key);
    const ref = parseImageRef(site.value);
    if (outcome === undefined || !("digest" in outcome) || ref === undefined) continue;
    const to = formatImageRef({ ...ref, digest: outcome.digest });
    if (to === site.value) continue;
    const source = scalarSource(site.node, to);
    const range = site.node.range;
    if (typeof source !== "string") {
      problems.push(`${site.shown}: ${source.problem}`);
      continue;
    }
    if (range === undefined || range === null) {
      problems.push(`${site.shown}: the YAML parser gave no position for this value. Write it as a plain string.`);
      continue;
    }
    edits.push({ start: range[0], end: range[1], replacement: source });
    changes.push({ path: formatPath(site.path), from: site.value, to });
    // The same change through the Document API: its toJS() is what the spliced text must parse to.
    if (isScalar(doc.getIn(site.path, true))) doc.setIn(site.path, to);
    else site.node.value = to; // an alias: setIn would replace it with a copy; changing the anchor keeps it an alias
  }
  if (problems.length > 0) return unchanged(problems);

  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.replacement + out.slice(e.end);
  const check = parseDocument(out, { prettyErrors: false });
  let same: boolean;
  try {
    same = check.errors.length === 0 && JSON.stringify(check.toJS()) === JSON.stringify(doc.toJS());
  } catch (e) {
    return unchanged([`the catalog cannot be expanded: ${(e as Error).message}. Write the repeated values out instead of nesting aliases.`]);
  }
  if (!same) {
    return unchanged(["pinning would change more than the base references (an internal error): nothing was written. Report it with the catalog attached."]);
  }
  return { text: out, changes, problems: [] };
}

/** Every `variants[i].base.ref` and `variants[i].extraBases.<ARG>` scalar, in document order. */
function findRefSites(doc: Document, lineOf: (node: Scalar) => string): { sites: RefSite[]; problems: string[] } {
  const sites: RefSite[] = [];
  const problems: string[] = [];
  const seen = new Set<Scalar>();
  const variants = doc.get("variants", true);
  if (!isSeq(variants)) {
    return { sites, problems: ['variants: is missing or not a list. The catalog needs a top-level "variants:" list.'] };
  }
  const visit = (p: (string | number)[]): void => {
    const raw = doc.getIn(p, true);
    const node = isAlias(raw) ? raw.resolve(doc) : raw;
    if (node === undefined) return;
    if (!isScalar(node) || typeof node.value !== "string") {
      problems.push(`${formatPath(p)}: must be a string image reference like "registry/repository:tag@sha256:<digest>".`);
      return;
    }
    // An anchored ref used again through an alias is one value: pin it once, where the anchor is.
    if (seen.has(node)) return;
    seen.add(node);
    sites.push({ path: p, shown: `${formatPath(p)}${lineOf(node)}`, node, value: node.value });
  };
  variants.items.forEach((_, i) => {
    visit(["variants", i, "base", "ref"]);
    const extra = doc.getIn(["variants", i, "extraBases"], true);
    const extraMap = isAlias(extra) ? extra.resolve(doc) : extra;
    if (isMap(extraMap)) {
      for (const pair of extraMap.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (typeof key === "string") visit(["variants", i, "extraBases", key]);
      }
    }
  });
  return { sites, problems };
}

/** The source text for `value` in the same style as the scalar it replaces. */
function scalarSource(node: Scalar, value: string): string | { problem: string } {
  switch (node.type) {
    case Scalar.QUOTE_DOUBLE:
      return JSON.stringify(value);
    case Scalar.QUOTE_SINGLE:
      return `'${value.replace(/'/g, "''")}'`;
    case Scalar.PLAIN:
    case undefined:
      return value;
    default:
      return { problem: `is a block scalar (${node.type}); pin-bases only rewrites plain or quoted strings. Write the reference on one line.` };
  }
}

type Outcome = { digest: string } | { error: string };

async function resolveAll(keys: string[], resolve: DigestResolver, concurrency: number): Promise<Map<string, Outcome>> {
  const results = new Map<string, Outcome>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      try {
        results.set(key, { digest: await resolve(key) });
      } catch (e) {
        results.set(key, { error: e instanceof Error ? e.message : String(e) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, keys.length)) }, worker));
  // Map in the order the keys were asked for, whatever order they finished in.
  return new Map(keys.map((k) => [k, results.get(k) ?? { error: "not resolved" }]));
}

export interface SkopeoOptions {
  /** `false` for a plain-http or self-signed registry (a local test registry). @default true */
  tlsVerify?: boolean;
  /** Environment for skopeo (e.g. REGISTRY_AUTH_FILE). @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Per-image limit. @default 60_000 */
  timeoutMs?: number;
}

/**
 * Resolves a tag with `skopeo inspect --raw docker://<ref>` and returns sha256 of the bytes it prints.
 *
 * `--raw` prints the top-level manifest exactly as the registry served it: for a multi-arch tag the OCI index or
 * Docker manifest list, for a single-arch tag the image manifest. Its sha256 is the digest the registry names in
 * `Docker-Content-Digest` and the digest `FROM image@sha256:…` pulls, so each platform of a multi-arch base
 * still gets its own image. Not `skopeo inspect`'s parsed output: besides `.Digest` (documented as the top-level
 * manifest's digest, skopeo-inspect(1)) it also reads the config of the image for the *current* platform, so it
 * fails outright for a tag with no image for this machine's OS/arch (containers/skopeo#1283, #1554).
 */
export function skopeoResolver(bin = "skopeo", options: SkopeoOptions = {}): DigestResolver {
  return (imageWithTag) =>
    new Promise((resolve, reject) => {
      const args = ["inspect", "--raw", ...(options.tlsVerify === false ? ["--tls-verify=false"] : []), `docker://${imageWithTag}`];
      execFile(
        bin,
        args,
        { encoding: "buffer", maxBuffer: 16 * 1024 * 1024, timeout: options.timeoutMs ?? 60_000, env: options.env ?? process.env },
        (error, stdout, stderr) => {
          if (error) {
            const code = (error as NodeJS.ErrnoException).code;
            if (code === "ENOENT") {
              reject(new Error(`${bin} was not found. Install skopeo (Debian/Ubuntu: apt-get install skopeo; macOS: brew install skopeo)`));
              return;
            }
            reject(new Error(skopeoMessage(stderr.toString("utf8")) || error.message));
            return;
          }
          try {
            checkManifest(stdout);
          } catch (e) {
            reject(e);
            return;
          }
          resolve(`sha256:${createHash("sha256").update(stdout).digest("hex")}`);
        },
      );
    });
}

/** skopeo logs `time="…" level=fatal msg="…"`: the msg is the useful part. */
function skopeoMessage(stderr: string): string {
  const last = stderr.trim().split("\n").pop() ?? "";
  const m = /level=fatal msg="((?:[^"\\]|\\.)*)"/.exec(last);
  const msg = m?.[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : last.trim();
  // skopeo 1.x prefixes network and registry errors alike with this; the caller already names the image.
  return msg.replace(/^Error parsing image name "[^"]*": /, "");
}

/**
 * Refuses what a digest of the raw bytes would get wrong: not JSON (a proxy's error page), or a schema 1 manifest,
 * whose digest is computed without its JWS signature (distribution's schema1 spec); no base we use is schema 1.
 */
function checkManifest(raw: Buffer): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new Error(`the registry's manifest is not JSON (starts ${JSON.stringify(raw.subarray(0, 40).toString("utf8"))})`);
  }
  const version = (parsed as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (version !== 2) {
    throw new Error(`the manifest has schemaVersion ${JSON.stringify(version)}; only schema 2 (OCI and Docker v2) manifests can be pinned. Use a newer tag`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The command line, here rather than in scripts/ so tests run it in-process with a fake resolver.

export const PIN_BASES_USAGE =
  "usage: npm run pin-bases -- [--catalog <file>] [--refresh] [--dry-run] [--no-tls-verify]\n" +
  "  --catalog <file>  catalog to pin (default images/catalog.yaml)\n" +
  "  --refresh         move refs that already have a digest to their tag's current digest\n" +
  "  --dry-run         print the changes, write nothing\n" +
  "  --no-tls-verify   plain-http or self-signed registries (local test registries only)";

export interface PinBasesIo {
  /** Where a relative --catalog and the default catalog are found. */
  cwd: string;
  defaultCatalog: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  makeResolver: (options: { tlsVerify: boolean }) => DigestResolver;
}

/**
 * Runs `npm run pin-bases` and returns its exit code: 0 written (or nothing to do, or a dry run), 2 bad flags or
 * any problem (one message listing them all; the catalog untouched).
 */
export async function runPinBases(argv: string[], io: PinBasesIo): Promise<number> {
  const CLI = "pin-bases";
  const HELP = "Run `npm run pin-bases -- --help` for the options.";
  const refuse = (problems: CliProblem[]): number => {
    io.stderr(`${problems.map((p) => problemLine(CLI, p)).join("\n")}\n`);
    return 2;
  };
  let values: ParsedFlags["values"];
  try {
    ({ values } = parseFlags(
      CLI,
      argv,
      { catalog: { type: "string" }, refresh: { type: "boolean" }, "dry-run": { type: "boolean" }, "no-tls-verify": { type: "boolean" }, help: { type: "boolean", short: "h" } },
      { help: HELP },
    ));
  } catch (e) {
    if (e instanceof Refused) return refuse([...e.problems]);
    throw e;
  }
  if (values.help) {
    io.stdout(`${PIN_BASES_USAGE}\n`);
    return 0;
  }
  const catalog = values.catalog as string | undefined;
  if (catalog === "") return refuse([{ where: "--catalog", message: "is empty. Give the catalog file, e.g. --catalog images/catalog.yaml.", received: catalog }]);
  const file = path.resolve(io.cwd, catalog ?? io.defaultCatalog);
  const shown = display(file, io.cwd);
  const fix = "Pass the catalog with --catalog <file>.";
  const why = unreadable(file, 64 * 1024 * 1024);
  if (why !== undefined) return refuse([{ where: shown, message: `${why}. ${fix}` }]);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    return refuse([{ where: shown, message: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). ${fix}` }]);
  }
  // A file that is not YAML, or whose aliases expand past yaml's limit (an alias bomb), is one line: nothing else in
  // it can be judged.
  const syntax = yamlFileProblem(text);
  if (syntax !== undefined) return refuse([{ where: `${shown}${syntax.line}`, message: `${syntax.message} Nothing was written.` }]);
  const resolver = io.makeResolver({ tlsVerify: values["no-tls-verify"] !== true });
  const result = await pinCatalogText(text, resolver, { refresh: values.refresh === true });
  if (result.problems.length > 0) {
    // Problems inside the catalog: a header, then one line per problem (each escaped, so none can forge a line).
    io.stderr(`${CLI}: ${escapeControls(shown)} was not changed; fix these and run it again:\n${result.problems.map((p) => `  - ${escapeControls(p)}`).join("\n")}\n`);
    return 2;
  }
  if (result.changes.length === 0) {
    io.stdout(`all bases already pinned in ${shown}${values.refresh ? " (and every pin is at its tag's current digest)" : ""}\n`);
    return 0;
  }
  for (const c of result.changes) io.stdout(`${escapeControls(c.path)}: ${escapeControls(c.from)} → ${escapeControls(c.to)}\n`);
  const n = `${result.changes.length} base reference${result.changes.length === 1 ? "" : "s"}`;
  if (values["dry-run"]) {
    io.stdout(`dry run: ${shown} not written (${n} would change)\n`);
    return 0;
  }
  try {
    writeAtomically(file, text, result.text);
  } catch (e) {
    return refuse([{ where: shown, message: `was not changed: ${(e as Error).message}` }]);
  }
  io.stdout(`pinned ${n} in ${shown}\n`);
  return 0;
}

/** Why `text` cannot be read as YAML at all: the first syntax error (with its line), or aliases expanding too far. */
export function yamlFileProblem(text: string): { line: string; message: string } | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const first = doc.errors[0];
  if (first !== undefined) {
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more YAML error${doc.errors.length > 2 ? "s" : ""} after it)` : "";
    return { line: ` (line ${lineCounter.linePos(first.pos[0]).line})`, message: `is not valid YAML: ${first.message.split("\n")[0]}${more}. Fix the syntax there.` };
  }
  try {
    doc.toJS(); // yaml's default maxAliasCount (100) stops an alias bomb here
  } catch (e) {
    return { line: "", message: `cannot be expanded: ${(e as Error).message}. Write the repeated values out instead of nesting aliases.` };
  }
  return undefined;
}

/**
 * Temp file beside the catalog, then rename: a reader (or an interrupted run) sees the old file or the new one,
 * never half of one. Refuses when the file changed while the registries were being asked (an editor saved it).
 */
function writeAtomically(file: string, expected: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.pin-bases-${process.pid}.tmp`);
  const mode = fs.statSync(file).mode & 0o7777;
  try {
    fs.writeFileSync(tmp, text, { mode });
    if (fs.readFileSync(file, "utf8") !== expected) {
      throw new Error("it changed on disk while pin-bases ran. Run pin-bases again");
    }
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
