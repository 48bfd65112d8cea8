/**
 * The images the two Helm charts deploy on their own (zero-to-jupyterhub and Kyverno), pinned by digest
 * (images/chart-images.yaml, docs/chart-images.md). Our own images reach Kubernetes as repository@sha256:…; the
 * charts' images would otherwise come from their default values by tag. This module reads the pin file, turns it into
 * Helm values in each chart's own image-block shape, and reports what is not pinned yet. No Pulumi, no network.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isMap, isScalar, LineCounter, parseDocument, Scalar, type Document } from "yaml";
import { z } from "zod";
import type { DigestResolver } from "../scripts/lib/pin-bases";
import { parseImageRef } from "./image-ref";
import { ConfigError, type Problem, renderReceived, zodProblems } from "./problems";
import { strictObject } from "./zod-util";

export const CHART_NAMES = ["jupyterhub", "kyverno"] as const;
export type ChartName = (typeof CHART_NAMES)[number];

/** Resolved from this module, not the working directory: the program runs from wherever Pulumi starts it. */
export { PROJECT_ROOT } from "./paths";
import { PROJECT_ROOT } from "./paths";
export const CHART_IMAGES_FILE = path.join(PROJECT_ROOT, "images", "chart-images.yaml");

/** One image block of a chart: its value path and the reference the chart should render from it. */
export interface ChartImage {
  /** The chart's value path of the image block, e.g. `hub.image`, `admissionController.container.image`. */
  path: string;
  /** The reference as written in the file: `repository:tag` or `repository:tag@sha256:<64 hex>`. */
  ref: string;
  /** `[registry/]repository`, as the chart's default names it (`quay.io/jupyterhub/k8s-hub`, `busybox`). */
  repository: string;
  tag: string;
  /** `sha256:<64 hex>`; absent when not pinned yet. */
  digest?: string;
}

export interface ChartImageSet {
  /** The chart version whose default images these are. */
  version: string;
  /** In file order. */
  images: ChartImage[];
}

export interface ChartImages {
  /** How the file is named in messages (relative to the project root when inside it). */
  file: string;
  charts: Record<ChartName, ChartImageSet>;
}

// The chart's own value path of an image block: dotted identifiers ending in `image`, the key both charts use and
// the key the policy rule helm-values-images-pinned-by-digest looks for (policy/rules.ts walkHelmImages).
const VALUE_PATH = /^(?:[A-Za-z][A-Za-z0-9]*\.)*image$/;
const VERSION = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;

const chartSchema = strictObject({
  version: z.string().regex(VERSION, { error: 'must be the chart version the images belong to, e.g. "4.4.0".' }),
  // Entries are checked one by one below: zod would print a dotted key such as `hub.image` as two path segments.
  images: z.record(z.string(), z.unknown()),
});
const fileSchema = strictObject({
  charts: strictObject({ jupyterhub: chartSchema, kyverno: chartSchema }),
});

/** `charts.jupyterhub.images["hub.image"]`: keys with dots quoted, so the path names one key. */
export function chartImageKeyPath(chart: ChartName, valuePath: string): string {
  return `charts.${chart}.images[${JSON.stringify(valuePath)}]`;
}

function displayPathOf(file: string): string {
  const rel = path.relative(PROJECT_ROOT, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

/**
 * Parses and validates the pin file's text. Throws one ConfigError listing every problem, each with its key path,
 * line, the value received and the fix.
 */
export function parseChartImages(text: string, displayPath: string): ChartImages {
  const header = `Invalid chart image pins in ${displayPath}`;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      header,
      doc.errors.map((e) => ({
        path: `${displayPath}${e.linePos ? ` (line ${e.linePos[0].line})` : ""}`,
        message: `is not valid YAML: ${(e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")}. Fix the syntax at that line.`,
      })),
    );
  }
  // The line of the key, where a reader looks for it (the value of `kyvern:` starts on the next line).
  const lineOf = (p: readonly unknown[]): string => {
    const parent = p.length === 0 ? undefined : doc.getIn(p.slice(0, -1) as unknown[], true);
    const pair = isMap(parent) ? parent.items.find((item) => isScalar(item.key) && item.key.value === p[p.length - 1]) : undefined;
    const node = (isScalar(pair?.key) ? pair.key : doc.getIn(p as unknown[], true)) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? "" : ` (line ${lineCounter.linePos(offset).line})`;
  };
  let json: unknown;
  try {
    // yaml throws on aliases that expand past maxAliasCount (a "billion laughs" bomb).
    json = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new ConfigError(header, [{ path: displayPath, message: `cannot be read: ${(e as Error).message}. Write each entry out instead of expanding aliases.` }]);
  }
  const parsed = fileSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) throw new ConfigError(header, zodProblems(parsed.error, `${displayPath}: `, { locate: lineOf }));

  const problems: Problem[] = [];
  const charts = {} as Record<ChartName, ChartImageSet>;
  for (const chart of CHART_NAMES) {
    const raw = parsed.data.charts[chart];
    const images: ChartImage[] = [];
    const at = (key: string, where: readonly unknown[], message: string, received: unknown): void => {
      problems.push({ path: `${displayPath}: ${chartImageKeyPath(chart, key)}${lineOf(where)}`, message, received: renderReceived(received) });
    };
    const entries = Object.entries(raw.images);
    if (entries.length === 0) {
      problems.push({
        path: `${displayPath}: charts.${chart}.images${lineOf(["charts", chart, "images"])}`,
        message: "lists no images. List every image block the chart deploys, by value path (docs/chart-images.md).",
      });
    }
    for (const [key, value] of entries) {
      const where = ["charts", chart, "images", key];
      if (!VALUE_PATH.test(key)) {
        at(key, where, 'is not the value path of an image block. Write the dotted path the chart\'s values use, ending in ".image" (e.g. "hub.image").', key);
        continue;
      }
      if (typeof value !== "string") {
        at(key, where, 'must be an image reference string like "quay.io/jupyterhub/k8s-hub:4.4.0@sha256:<64 hex>".', value);
        continue;
      }
      const ref = parseImageRef(value);
      if (ref === undefined) {
        at(key, where, 'is not an image reference like "registry/repository:tag@sha256:<64 hex>". Fix the reference.', value);
        continue;
      }
      if (ref.tag === undefined) {
        at(key, where, 'has no tag. The chart renders <repository>:<tag>, so keep the chart\'s tag and put the digest after it: "repository:tag@sha256:<64 hex>".', value);
        continue;
      }
      images.push({ path: key, ref: value, repository: ref.repository, tag: ref.tag, ...(ref.digest !== undefined ? { digest: ref.digest } : {}) });
    }
    charts[chart] = { version: raw.version, images };
  }
  if (problems.length > 0) throw new ConfigError(header, problems);
  return { file: displayPath, charts };
}

/** Reads and validates the pin file (default images/chart-images.yaml). Throws one ConfigError on bad input. */
export function loadChartImages(file: string = CHART_IMAGES_FILE): ChartImages {
  const shown = displayPathOf(file);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`Invalid chart image pins in ${shown}`, [
      { path: shown, message: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Restore it from the repository; docs/chart-images.md says what it holds.` },
    ]);
  }
  return parseChartImages(text, shown);
}

/** Value paths of a chart's images that have no digest yet, in file order. */
export function unpinnedChartImages(images: ChartImages, chart: ChartName): string[] {
  return images.charts[chart].images.filter((i) => i.digest === undefined).map((i) => i.path);
}

/** Registry, as Docker reads a reference: the first component when it has a dot or a port, or is localhost. */
function splitRegistry(repository: string): { registry?: string; repository: string } {
  const slash = repository.indexOf("/");
  const first = slash < 0 ? "" : repository.slice(0, slash);
  if (first !== "" && (first.includes(".") || first.includes(":") || first === "localhost")) {
    return { registry: first, repository: repository.slice(slash + 1) };
  }
  return { repository };
}

type Values = { [key: string]: unknown };

function isPlainObject(value: unknown): value is Values {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function getPath(root: unknown, keys: readonly string[]): unknown {
  let node = root;
  for (const key of keys) node = isPlainObject(node) ? node[key] : undefined;
  return node;
}

function setPath(root: Values, keys: readonly string[], value: unknown): void {
  let node = root;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) node[key] = value;
    else {
      if (!isPlainObject(node[key])) node[key] = {};
      node = node[key] as Values;
    }
  });
}

/** Keys that choose *which* image a block names; pullPolicy and pullSecrets do not. */
const IDENTITY_KEYS = ["name", "registry", "repository", "tag", "digest"] as const;

/**
 * The image block that pins one image in the chart's own shape:
 * - zero-to-jupyterhub renders `{{name}}:{{tag}}` (hub/deployment.yaml, proxy/deployment.yaml, …, and
 *   jupyterhub_config.py for singleuser and networkTools), so `{name, tag: "<tag>@sha256:…"}` renders
 *   `name:tag@sha256:…`;
 * - Kyverno 3.5.2 renders `{{registry}}/{{repository}}:{{tag}}` (templates/_helpers/_image.tpl and the controllers'
 *   _helpers.tpl) and has no digest field, so the pin also goes into tag. Its registry falls back to the block's
 *   defaultRegistry (reg.kyverno.io) or global.image.registry when unset, so the block always names the registry:
 *   a Docker Hub reference is written out as docker.io/library/<name>, the same image.
 */
function imageBlock(chart: ChartName, image: ChartImage & { digest: string }): Values {
  const tag = `${image.tag}@${image.digest}`;
  if (chart === "jupyterhub") return { name: image.repository, tag };
  const split = splitRegistry(image.repository);
  if (split.registry !== undefined) return { registry: split.registry, repository: split.repository, tag };
  return { registry: "docker.io", repository: split.repository.includes("/") ? split.repository : `library/${split.repository}`, tag };
}

/**
 * Helm values that pin a chart's images, one image block per pinned image. Images without a digest are left out,
 * so the chart renders its own default for them (chartImageProblems reports them where that is not allowed).
 *
 * `overrides`: values the stack sets itself (jupyterhub.values). Where those name an image of their own at a pinned
 * path (any of name, registry, repository, tag or digest), the pin is left out: Helm merges image blocks key by key,
 * and our digest next to the stack's repository would name an image that does not exist. The stack's own block is
 * then judged by the policy pack like every other value.
 */
export function chartImageValues(chart: ChartName, images: ChartImages, overrides: Values = {}): Values {
  const out: Values = {};
  for (const image of images.charts[chart].images) {
    if (image.digest === undefined) continue;
    const keys = image.path.split(".");
    const own = getPath(overrides, keys);
    if (isPlainObject(own) && IDENTITY_KEYS.some((k) => k in own)) continue;
    setPath(out, keys, imageBlock(chart, { ...image, digest: image.digest }));
  }
  return out;
}

/**
 * What stops a stack from deploying the charts with pinned images: the pin file's chart version differs from the
 * version the stack installs, or an image has no digest. `deployed` names only the charts this stack installs
 * (e.g. `{ jupyterhub: "4.4.0", kyverno: "3.5.2" }`); `notRun` the value paths of images the release will not run
 * with this stack's values (config/load.ts chartImagesNotRun).
 */
export function chartImageProblems(
  images: ChartImages,
  deployed: Partial<Record<ChartName, string>>,
  notRun: Partial<Record<ChartName, ReadonlySet<string>>> = {},
): Problem[] {
  const problems: Problem[] = [];
  for (const chart of CHART_NAMES) {
    const version = deployed[chart];
    if (version === undefined) continue;
    const set = images.charts[chart];
    if (set.version !== version) {
      problems.push({
        path: `${images.file}: charts.${chart}.version`,
        message:
          `pins the images of ${chart} chart ${set.version}, but this stack deploys ${chart} ${version}. ` +
          `List the image blocks of ${version} with its default tags, set version: ${version} and pin them (docs/chart-images.md).`,
        received: renderReceived(set.version),
      });
      continue; // the pins of another chart version say nothing about this one
    }
    for (const image of set.images) {
      if (image.digest !== undefined || notRun[chart]?.has(image.path)) continue;
      problems.push({
        path: `${images.file}: ${chartImageKeyPath(chart, image.path)}`,
        message:
          `has no digest, so the ${chart} chart would run ${image.ref} by tag on this stack. ` +
          `Pin it: run \`npm run pin-chart-images\` where the registry is reachable, or append the digest that ` +
          `\`skopeo inspect --raw docker://${image.ref} | sha256sum\` prints, as @sha256:<64 hex>.`,
        received: renderReceived(image.ref),
      });
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Refreshing the pins (docs/chart-images.md): the pin-bases procedure applied to this file.

export interface ChartPinChange {
  /** `charts.jupyterhub.images["hub.image"]` */
  path: string;
  from: string;
  to: string;
}

export interface ChartPinResult {
  /** The new text; the input unchanged when there are problems (all or nothing). */
  text: string;
  changes: ChartPinChange[];
  problems: string[];
}

/** The source text for `value` in the style of the scalar it replaces; undefined for a block scalar. */
function scalarSource(node: Scalar, value: string): string | undefined {
  switch (node.type) {
    case Scalar.QUOTE_DOUBLE:
      return JSON.stringify(value);
    case Scalar.QUOTE_SINGLE:
      return `'${value.replace(/'/g, "''")}'`;
    case Scalar.PLAIN:
    case undefined:
      return value;
    default:
      return undefined;
  }
}

interface PinSite {
  chart: ChartName;
  key: string;
  node: Scalar;
  value: string;
}

function pinSites(doc: Document): PinSite[] {
  const sites: PinSite[] = [];
  for (const chart of CHART_NAMES) {
    const map = doc.getIn(["charts", chart, "images"], true);
    if (!isMap(map)) continue;
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (typeof key === "string" && isScalar(pair.value) && typeof pair.value.value === "string") {
        sites.push({ chart, key, node: pair.value, value: pair.value.value });
      }
    }
  }
  return sites;
}

/**
 * Appends the digest each `repository:tag` resolves to now (with `refresh`, also moves existing pins to the tag's
 * current digest), splicing only the reference scalars so comments and layout stay. The file must be valid first;
 * any problem (an invalid file, a resolver error) changes nothing. `resolve` is scripts/lib/pin-bases.ts skopeoResolver()
 * on a workstation, a table in tests.
 */
export async function pinChartImagesText(
  text: string,
  resolve: DigestResolver,
  options: { refresh: boolean; displayPath?: string },
): Promise<ChartPinResult> {
  const unchanged = (problems: string[]): ChartPinResult => ({ text, changes: [], problems });
  try {
    parseChartImages(text, options.displayPath ?? "chart-images.yaml");
  } catch (e) {
    return unchanged(ConfigError.is(e) ? e.problems.map((p) => `${p.path}: ${p.message}`) : [String(e)]);
  }
  const doc = parseDocument(text);
  const todo = pinSites(doc).filter((s) => options.refresh || parseImageRef(s.value)?.digest === undefined);
  const resolved = new Map<string, string>();
  const problems: string[] = [];
  for (const site of todo) {
    const ref = parseImageRef(site.value)!;
    const tagged = `${ref.repository}:${ref.tag!}`;
    if (resolved.has(tagged)) continue;
    try {
      const digest = await resolve(tagged);
      if (!/^sha256:[0-9a-f]{64}$/.test(digest)) problems.push(`${tagged}: the resolver returned ${JSON.stringify(digest)}, not sha256:<64 hex>.`);
      else resolved.set(tagged, digest);
    } catch (e) {
      problems.push(`${tagged}: could not resolve: ${e instanceof Error ? e.message : String(e)}. Check the tag exists and this machine can reach the registry.`);
    }
  }
  if (problems.length > 0) return unchanged(problems);

  const changes: ChartPinChange[] = [];
  const edits: { start: number; end: number; replacement: string }[] = [];
  for (const site of todo) {
    const ref = parseImageRef(site.value)!;
    const to = `${ref.repository}:${ref.tag!}@${resolved.get(`${ref.repository}:${ref.tag!}`)!}`;
    if (to === site.value) continue;
    const source = scalarSource(site.node, to);
    const range = site.node.range;
    if (source === undefined || range === undefined || range === null) {
      problems.push(`${chartImageKeyPath(site.chart, site.key)}: write the reference as a plain or quoted string on one line.`);
      continue;
    }
    edits.push({ start: range[0], end: range[1], replacement: source });
    changes.push({ path: chartImageKeyPath(site.chart, site.key), from: site.value, to });
    doc.setIn(["charts", site.chart, "images", site.key], to);
  }
  if (problems.length > 0) return unchanged(problems);
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.replacement + out.slice(e.end);
  // The splice must equal the same change made through the Document API: nothing else may have moved.
  if (JSON.stringify(parseDocument(out).toJS()) !== JSON.stringify(doc.toJS())) {
    return unchanged(["pinning would change more than the image references (an internal error); nothing was written."]);
  }
  return { text: out, changes, problems: [] };
}

/**
 * pinChartImagesText on the file itself, written through a temporary file and a rename. Returns what changed; the
 * file is untouched when there are problems or `dryRun` is set.
 */
export async function pinChartImagesFile(
  resolve: DigestResolver,
  options: { refresh?: boolean; dryRun?: boolean; file?: string } = {},
): Promise<ChartPinResult> {
  const file = options.file ?? CHART_IMAGES_FILE;
  const text = fs.readFileSync(file, "utf8");
  const result = await pinChartImagesText(text, resolve, { refresh: options.refresh ?? false, displayPath: displayPathOf(file) });
  if (result.problems.length > 0 || result.changes.length === 0 || options.dryRun === true) return result;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.pin-${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, result.text, { mode: fs.statSync(file).mode & 0o7777 });
    if (fs.readFileSync(file, "utf8") !== text) throw new Error(`${file} changed on disk while the pins were resolved; run it again`);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return result;
}
