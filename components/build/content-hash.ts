import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import dockerignore from "@balena/dockerignore";
import type { Instruction } from "dockerfile-ast";
import { parseDockerfile } from "../../config/dockerfile";

/**
 * Content-addressed tags (issue #2): a hash of exactly a variant's build inputs, from content only. File paths are
 * relative and POSIX, file bytes are hashed, and mtimes, owners and permission bits never enter, so a fresh clone,
 * a `touch` or a `chmod` plans nothing while a one-byte edit in one variant's context re-plans that variant alone.
 *
 * Per target (issue #16): of the build context, a target's hash covers only the files its stages read. The
 * Dockerfile is parsed (dockerfile-ast), the stages the target needs are followed (`FROM <stage>`,
 * `COPY --from=<stage>`, `RUN --mount=…,from=<stage>`), and the context sources of their COPY, ADD and
 * `RUN --mount=type=bind` are resolved against the context listing (which honours `.dockerignore`), plus the
 * Dockerfile and `.dockerignore` themselves. Whatever cannot be resolved statically falls back to the whole context.
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

type Listing = ReadonlyArray<readonly [string, string]>;

const contextCache = new Map<string, Listing>();

/**
 * The files Docker would send for this context: every regular file and symlink under `contextDir`, minus what its
 * `.dockerignore` excludes (Docker's own pattern semantics, via @balena/dockerignore), each with the hash of its
 * content (a symlink: of its target text). Sorted by path. Cached per directory for the life of the process, since
 * one plan reads each context once and several variants may share one (multi-stage targets).
 */
export function contextDigests(contextDir: string): Listing {
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
  out.sort((a, b) => compare(a[0], b[0]));
  contextCache.set(contextDir, out);
  return out;
}

function mayReinclude(ig: ReturnType<typeof dockerignore>, dir: string): boolean {
  // Cheap conservative test: any negated pattern at all means we must look inside.
  return (ig as unknown as { _rules?: Array<{ negative?: boolean }> })._rules?.some((r) => r.negative === true) ?? true;
}

const readsCache = new Map<string, ContextReads>();

/** Forget cached context listings and Dockerfile analyses (tests that edit files between plans). */
export function clearContextCache(): void {
  contextCache.clear();
  dockerfileCache.clear();
  readsCache.clear();
  modelCache.clear();
  ignoreFileCache.clear();
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// What a target reads from its context
// ---------------------------------------------------------------------------------------------------------------

/**
 * What one target of a Dockerfile reads from its build context: source patterns relative to the context root
 * (`.` is the whole context), or the whole context with the reason it could not be narrowed.
 */
export type ContextReads =
  | { kind: "sources"; /** The stages the target builds, target last. */ stages: string[]; sources: string[] }
  | { kind: "all"; reason: string };

class Unresolvable extends Error {}

/**
 * Expands `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}` and `${NAME+word}` from `vars`, as
 * BuildKit's shell lexer does for FROM and flag values. Any other form, or a variable with no value, cannot be
 * resolved here and throws.
 */
function expand(word: string, vars: ReadonlyMap<string, string | undefined>, what: string): string {
  let out = "";
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    if (c === "\\" && word[i + 1] === "$") {
      out += "$";
      i++;
      continue;
    }
    if (c !== "$") {
      out += c;
      continue;
    }
    let name: string;
    let op = "";
    let alt = "";
    if (word[i + 1] === "{") {
      const close = word.indexOf("}", i + 2);
      if (close < 0) throw new Unresolvable(`${what}: unterminated variable in ${JSON.stringify(word)}`);
      const body = word.slice(i + 2, close);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?$/.exec(body);
      if (!m) throw new Unresolvable(`${what}: unsupported variable form \${${body}} in ${JSON.stringify(word)}`);
      name = m[1]!;
      op = m[2] ?? "";
      alt = m[3] ?? "";
      if (alt.includes("$")) throw new Unresolvable(`${what}: nested variable in ${JSON.stringify(word)}`);
      i = close;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(word.slice(i + 1));
      if (!m) {
        out += c;
        continue;
      }
      name = m[0];
      i += name.length;
    }
    const declared = vars.has(name);
    const value = vars.get(name);
    const set = value !== undefined;
    const nonEmpty = set && value !== "";
    if (op === ":-") out += nonEmpty ? value : alt;
    else if (op === "-") out += set ? value : alt;
    else if (op === ":+") out += nonEmpty ? alt : "";
    else if (op === "+") out += set ? alt : "";
    else if (set) out += value;
    else throw new Unresolvable(`${what}: ${declared ? "build arg" : "variable"} ${name} has no value here (in ${JSON.stringify(word)})`);
  }
  return out;
}

/** `key=value,key=value` of a `--mount` flag; quoted values are not supported (they throw). */
function mountOptions(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of value.split(",")) {
    if (part === "") continue;
    if (/["']/.test(part)) throw new Unresolvable(`RUN --mount=${value}: quoted options`);
    const eq = part.indexOf("=");
    out.set((eq < 0 ? part : part.slice(0, eq)).toLowerCase(), eq < 0 ? "true" : part.slice(eq + 1));
  }
  return out;
}

/** The offset in `text` of a (line, character) position. */
function offsetOf(lineStarts: readonly number[], pos: { line: number; character: number }): number {
  return (lineStarts[pos.line] ?? 0) + pos.character;
}

/** Source operands of a COPY or ADD (the last operand is the destination). */
function copySources(instr: Instruction, text: string, lineStarts: readonly number[]): string[] {
  const json = instr as unknown as {
    getJSONStrings?: () => unknown[];
    getOpeningBracket?: () => { getRange(): { start: { line: number; character: number } } } | null;
    getClosingBracket?: () => { getRange(): { end: { line: number; character: number } } } | null;
    getHeredocs?: () => unknown[];
  };
  if ((json.getHeredocs?.() ?? []).length > 0) throw new Unresolvable(`${instr.getKeyword()} with a here-document`);
  let operands: string[];
  if ((json.getJSONStrings?.() ?? []).length > 0) {
    // JSON form: parsed from the source text (the parser's own unquoting drops spaces inside strings).
    const open = json.getOpeningBracket?.();
    const close = json.getClosingBracket?.();
    if (!open || !close) throw new Unresolvable(`${instr.getKeyword()}: JSON form without brackets`);
    const raw = text.slice(offsetOf(lineStarts, open.getRange().start), offsetOf(lineStarts, close.getRange().end));
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.replace(/\\\r?\n/g, ""));
    } catch {
      throw new Unresolvable(`${instr.getKeyword()}: JSON form that does not parse: ${raw}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === "string")) throw new Unresolvable(`${instr.getKeyword()}: ${raw}`);
    operands = parsed as string[];
  } else {
    operands = instr.getArguments().map((a) => a.getValue());
    if (operands.some((o) => /["']/.test(o))) throw new Unresolvable(`${instr.getKeyword()} with quoted operands: ${operands.join(" ")}`);
  }
  if (operands.length < 2) throw new Unresolvable(`${instr.getKeyword()} without source and destination`);
  const sources = operands.slice(0, -1);
  for (const s of sources) {
    // Variables in a source: the value may come from ARG/ENV in scope at that line; not resolved here (issue #16).
    if (s.includes("$")) throw new Unresolvable(`${instr.getKeyword()} source ${JSON.stringify(s)} uses a variable`);
  }
  return sources;
}

/** A remote ADD source (URL or git repository): reads nothing from the context. */
function isRemote(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || /^git@/.test(source);
}

/**
 * What `target` (the last stage when undefined) reads from the context, by BuildKit's rules: only stages the target
 * reaches through FROM, `COPY --from` and `RUN --mount from=` are built, RUN reads the context only through a bind
 * mount, and `COPY --from=<image>` reads an image, not the context. `args` are the build args (bases included);
 * they resolve variables in FROM and in `--from`, the only places a stage reference may be computed.
 */
export function dockerfileContextReads(dockerfileText: string, target: string | undefined, args: Record<string, string>): ContextReads {
  return readsFor(sha256(dockerfileText), dockerfileText, target, args);
}

function readsFor(textDigest: string, text: string, target: string | undefined, args: Record<string, string>): ContextReads {
  // analyse reads a build arg only where the Dockerfile declares it (ARG), so only those enter the key: variants that
  // differ in other build args share one analysis.
  const declared = declaredArgs(modelOf(text));
  const used = Object.entries(args).filter(([name]) => declared.has(name));
  const key = `${textDigest}\0${target ?? ""}\0${JSON.stringify(used.sort(([a], [b]) => compare(a, b)))}`;
  const cached = readsCache.get(key);
  if (cached) return cached;
  let reads: ContextReads;
  try {
    reads = analyse(text, target, args);
  } catch (e) {
    if (!(e instanceof Unresolvable)) throw e;
    reads = { kind: "all", reason: e.message };
  }
  readsCache.set(key, reads);
  return reads;
}

/** What resolving a stage needs from one of its instructions, extracted once per Dockerfile text. */
type Step =
  | { kind: "arg"; declared: Array<readonly [string, string | undefined]> }
  | { kind: "copyFrom"; keyword: string; ref: string }
  | { kind: "sources"; sources: string[] }
  | { kind: "mount"; value: string }
  /** An instruction that cannot be resolved statically: it matters only if its stage is built. */
  | { kind: "unresolvable"; reason: string };

interface Stage {
  /** Lower-cased: BuildKit matches stage names and `--target` case-insensitively. */
  name: string | undefined;
  index: number;
  from: string;
  steps: Step[];
}

interface Model {
  /** ARGs before the first FROM, with their defaults: the only variables FROM may use. */
  globals: Array<readonly [string, string | undefined]>;
  stages: Stage[];
  unresolvable?: string;
}

const modelCache = new Map<string, Model>();
const declaredCache = new WeakMap<Model, Set<string>>();

/** Every name an ARG declares, before the first FROM or in any stage. */
function declaredArgs(model: Model): Set<string> {
  let names = declaredCache.get(model);
  if (names === undefined) {
    names = new Set(model.globals.map(([name]) => name));
    for (const stage of model.stages) for (const step of stage.steps) if (step.kind === "arg") for (const [name] of step.declared) names.add(name);
    declaredCache.set(model, names);
  }
  return names;
}

/** The Dockerfile as plain data, once per text: per-user images share one Dockerfile across many build-arg sets. */
function modelOf(text: string): Model {
  const cached = modelCache.get(text);
  if (cached) return cached;
  const dockerfile = parseDockerfile(text);
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
  const model: Model = { globals: [], stages: [] };
  for (const arg of dockerfile.getInitialARGs()) {
    const name = arg.getProperty()?.getName();
    if (name !== undefined) model.globals.push([name, arg.getProperty()?.getValue() ?? undefined]);
  }
  for (const instr of dockerfile.getInstructions()) {
    const keyword = instr.getKeyword();
    // ONBUILD triggers run in whatever later builds FROM this stage: not followed here.
    if (keyword === "ONBUILD") model.unresolvable ??= "ONBUILD instruction";
    if (keyword === "FROM") {
      const from = instr as unknown as { getImage(): string | null; getBuildStage(): string | null };
      model.stages.push({ name: from.getBuildStage()?.toLowerCase(), index: model.stages.length, from: from.getImage() ?? "", steps: [] });
      continue;
    }
    const stage = model.stages[model.stages.length - 1];
    if (!stage) continue;
    const flags = (instr as unknown as { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> }).getFlags?.() ?? [];
    if (keyword === "ARG") {
      const props = (instr as unknown as { getProperties(): Array<{ getName(): string; getValue(): string | null }> }).getProperties();
      stage.steps.push({ kind: "arg", declared: props.map((p) => [p.getName(), p.getValue() ?? undefined] as const) });
    } else if (keyword === "COPY" || keyword === "ADD") {
      const fromFlag = flags.find((f) => f.getName().toLowerCase() === "from");
      if (fromFlag) {
        stage.steps.push({ kind: "copyFrom", keyword, ref: fromFlag.getValue() ?? "" });
        continue;
      }
      try {
        // --exclude is ignored: hashing the excluded files too is only ever more conservative.
        const sources = copySources(instr, text, lineStarts).filter((src) => !(keyword === "ADD" && isRemote(src)));
        stage.steps.push({ kind: "sources", sources: sources.map(normalizeSource) });
      } catch (e) {
        if (!(e instanceof Unresolvable)) throw e;
        stage.steps.push({ kind: "unresolvable", reason: e.message });
      }
    } else if (keyword === "RUN") {
      for (const f of flags) if (f.getName().toLowerCase() === "mount") stage.steps.push({ kind: "mount", value: f.getValue() ?? "" });
    }
  }
  modelCache.set(text, model);
  return model;
}

function analyse(text: string, target: string | undefined, args: Record<string, string>): ContextReads {
  const model = modelOf(text);
  if (model.unresolvable !== undefined) throw new Unresolvable(model.unresolvable);
  const stages = model.stages;
  if (stages.length === 0) throw new Unresolvable("no FROM instruction");
  // A build arg overrides a declared ARG's default.
  const globals = new Map(model.globals.map(([name, value]) => [name, Object.hasOwn(args, name) ? args[name] : value] as const));

  const byName = new Map<string, Stage>();
  for (const s of stages) if (s.name !== undefined && !byName.has(s.name)) byName.set(s.name, s);
  const stageRef = (ref: string, self: Stage, allowIndex: boolean): Stage | undefined => {
    const named = byName.get(ref.toLowerCase());
    if (named && named !== self) return named;
    if (allowIndex && /^\d+$/.test(ref)) {
      const indexed = stages[Number(ref)];
      if (!indexed) throw new Unresolvable(`--from=${ref}: no stage with that index`);
      return indexed;
    }
    return undefined;
  };

  let start: Stage | undefined;
  if (target === undefined) start = stages[stages.length - 1];
  else {
    start = byName.get(target.toLowerCase());
    if (!start) throw new Unresolvable(`target ${JSON.stringify(target)} is not a stage of the Dockerfile`);
  }

  const needed = new Set<Stage>();
  const sources = new Set<string>();
  const visit = (stage: Stage): void => {
    if (needed.has(stage)) return;
    needed.add(stage);
    const base = stageRef(expand(stage.from, globals, `FROM ${stage.from}`), stage, false);
    if (base) visit(base);
    // In a stage, flag values may also use that stage's own ARGs; those are resolved from build args or defaults.
    const scope = new Map(globals);
    for (const step of stage.steps) {
      if (step.kind === "unresolvable") throw new Unresolvable(step.reason);
      if (step.kind === "arg") {
        for (const [name, value] of step.declared) scope.set(name, Object.hasOwn(args, name) ? args[name] : (value ?? globals.get(name)));
      } else if (step.kind === "copyFrom") {
        // From a stage: that stage's reads count; from an image or named context: nothing from this context.
        const dep = stageRef(expand(step.ref, scope, `${step.keyword} --from`), stage, true);
        if (dep) visit(dep);
      } else if (step.kind === "sources") {
        for (const src of step.sources) sources.add(src);
      } else {
        const opts = mountOptions(expand(step.value, scope, "RUN --mount"));
        const from = opts.get("from");
        if (from !== undefined) {
          const dep = stageRef(from, stage, true);
          if (dep) visit(dep);
        } else if ((opts.get("type") ?? "bind") === "bind") {
          // A bind mount without from= mounts the build context (its root by default).
          sources.add(normalizeSource(opts.get("source") ?? opts.get("src") ?? "."));
        }
        // cache, tmpfs, secret and ssh mounts read nothing from the context.
      }
    }
  };
  visit(start!);
  return {
    kind: "sources",
    stages: stages.filter((s) => needed.has(s)).map((s) => s.name ?? String(s.index)),
    sources: [...sources].sort(compare),
  };
}

/** A source as a context-relative POSIX path: `/x`, `./x` and `x/` are `x`; `..` cannot leave the context. */
function normalizeSource(source: string): string {
  const n = path.posix.normalize(`/${source}`).replace(/^\/+/, "").replace(/\/+$/, "");
  return n === "" ? "." : n;
}

// ---------------------------------------------------------------------------------------------------------------
// Matching sources against the context listing
// ---------------------------------------------------------------------------------------------------------------

const segmentCache = new Map<string, RegExp>();

/** One path segment of a Go `filepath.Match` pattern (`*`, `?`, `[...]`, `\` escapes) as a RegExp. */
function segmentRegExp(segment: string): RegExp {
  let re = segmentCache.get(segment);
  if (re) return re;
  let src = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === "\\" && i + 1 < segment.length) src += escapeRe(segment[++i]!);
    else if (c === "*") src += "[^/]*";
    else if (c === "?") src += "[^/]";
    else if (c === "[") {
      const close = segment.indexOf("]", i + 2);
      if (close < 0) {
        src += "\\[";
        continue;
      }
      let body = segment.slice(i + 1, close);
      if (body.startsWith("^")) body = `!${body.slice(1)}`;
      src += body.startsWith("!") ? `[^${body.slice(1).replace(/\\/g, "\\\\")}]` : `[${body.replace(/\\/g, "\\\\")}]`;
      i = close;
    } else src += escapeRe(c);
  }
  re = new RegExp(`^${src}$`);
  segmentCache.set(segment, re);
  return re;
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * Whether the listed path `file` is read by the source `pattern`: the pattern names the file itself or one of its
 * parent directories (a directory source copies everything under it). `**` (COPY --parents) matches any number of
 * segments.
 */
function patternReads(pattern: string[], file: string[], pi = 0, fi = 0): boolean {
  if (pi === pattern.length) return true;
  if (fi === file.length) return pattern.slice(pi).every((p) => p === "**");
  const p = pattern[pi]!;
  if (p === "**") return patternReads(pattern, file, pi + 1, fi) || patternReads(pattern, file, pi, fi + 1);
  return segmentRegExp(p).test(file[fi]!) && patternReads(pattern, file, pi + 1, fi + 1);
}

/**
 * Whether the listed path `file` is the source `pattern` names or a directory on its way (the pattern is not used up
 * before the path is): a symlink there is followed by the builder.
 */
function patternPasses(pattern: string[], file: string[], pi = 0, fi = 0): boolean {
  if (fi === file.length) return true;
  if (pi === pattern.length) return false;
  const p = pattern[pi]!;
  if (p === "**") return patternPasses(pattern, file, pi + 1, fi) || patternPasses(pattern, file, pi, fi + 1);
  return segmentRegExp(p).test(file[fi]!) && patternPasses(pattern, file, pi + 1, fi + 1);
}

/**
 * The listed files a target reads. A symlink inside a copied directory is copied as a link (its target text is
 * hashed); a symlink that a source names or passes through is followed by the builder to content elsewhere, so
 * rather than follow links here, such a target hashes the whole context.
 */
export function selectContextFiles(listing: Listing, reads: ContextReads): { files: Listing; wholeContext?: string } {
  if (reads.kind === "all") return { files: listing, wholeContext: reads.reason };
  if (reads.sources.includes(".")) return { files: listing };
  const patterns = reads.sources.map((s) => s.split("/"));
  const selected: Array<readonly [string, string]> = [];
  for (const entry of listing) {
    const segments = entry[0].split("/");
    if (entry[1].startsWith("link:")) {
      const through = patterns.find((p) => patternPasses(p, segments));
      if (through) return { files: listing, wholeContext: `source ${through.join("/")} reaches the symlink ${entry[0]}` };
    }
    if (patterns.some((p) => patternReads(p, segments))) selected.push(entry);
  }
  return { files: selected };
}

// ---------------------------------------------------------------------------------------------------------------
// The hash
// ---------------------------------------------------------------------------------------------------------------

/**
 * The context files that enter a target's hash, sorted: what its stages read, plus the Dockerfile (when it lies in
 * the context) and `.dockerignore`, even where `.dockerignore` excludes them from what the builder receives.
 */
export function targetContextFiles(inputs: BuildInputs): { files: Listing; reads: ContextReads; wholeContext?: string } {
  const { bytes, digest } = dockerfileOf(inputs.dockerfile);
  return filesFor(inputs, bytes, digest);
}

const dockerfileCache = new Map<string, { bytes: Buffer; digest: string }>();

/** A Dockerfile's bytes and digest, read once per run like the context listings: variants share Dockerfiles. */
function dockerfileOf(file: string): { bytes: Buffer; digest: string } {
  let cached = dockerfileCache.get(file);
  if (cached === undefined) {
    const bytes = fs.readFileSync(file);
    cached = { bytes, digest: sha256(bytes) };
    dockerfileCache.set(file, cached);
  }
  return cached;
}

const ignoreFileCache = new Map<string, string | null>();

function filesFor(inputs: BuildInputs, dockerfile: Buffer, dockerfileDigest: string): { files: Listing; reads: ContextReads; wholeContext?: string } {
  const listing = contextDigests(inputs.contextDir);
  const reads = readsFor(dockerfileDigest, dockerfile.toString("utf8"), inputs.target, { ...inputs.buildArgs, ...inputs.bases });
  const selected = selectContextFiles(listing, reads);
  const files = new Map(selected.files.map(([p, h]) => [p, h] as const));
  if (!files.has(".dockerignore")) {
    let ignore = ignoreFileCache.get(inputs.contextDir);
    if (ignore === undefined) {
      const file = path.join(inputs.contextDir, ".dockerignore");
      ignore = fs.existsSync(file) ? sha256(fs.readFileSync(file)) : null;
      ignoreFileCache.set(inputs.contextDir, ignore);
    }
    if (ignore !== null) files.set(".dockerignore", ignore);
  }
  const dockerfileRel = path.relative(inputs.contextDir, inputs.dockerfile);
  if (!dockerfileRel.startsWith("..") && !path.isAbsolute(dockerfileRel)) {
    const rel = dockerfileRel.split(path.sep).join("/");
    if (!files.has(rel)) files.set(rel, dockerfileDigest);
  }
  return {
    files: [...files].sort((a, b) => compare(a[0], b[0])),
    reads,
    ...(selected.wholeContext !== undefined ? { wholeContext: selected.wholeContext } : {}),
  };
}

/**
 * The full hex hash of a variant's build inputs. The canonical form is unchanged from v1 (issue #2); only `files`
 * narrowed to the target's reads (issue #16), so a target that reads its whole context keeps its tag.
 */
export function buildInputsHash(inputs: BuildInputs): string {
  const { bytes, digest: dockerfile } = dockerfileOf(inputs.dockerfile);
  const canonical = {
    v: 1,
    files: filesFor(inputs, bytes, dockerfile).files,
    dockerfile,
    target: inputs.target ?? null,
    buildArgs: Object.entries(inputs.buildArgs).sort(([a], [b]) => compare(a, b)),
    platforms: [...inputs.platforms].sort(),
    bases: Object.entries(inputs.bases).sort(([a], [b]) => compare(a, b)),
  };
  return sha256(JSON.stringify(canonical));
}

/** The registry tag for a build: `build-` and the first 20 hex characters (80 bits) of the inputs hash. */
export function contentTag(inputs: BuildInputs): string {
  return `${CONTENT_TAG_PREFIX}${buildInputsHash(inputs).slice(0, 20)}`;
}
