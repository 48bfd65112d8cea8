/**
 * `npm run promote` as data (issue #7): which of the source stack's validated digests to promote, and how they are
 * written into prod's stack file, comments and layout kept. Everything here is pure; scripts/promote.ts does the I/O.
 */
import { type Document, isMap, isScalar, isSeq, parseDocument, type ToStringOptions, YAMLMap, YAMLSeq } from "yaml";
import { ecrRegistryHost } from "../../components/supply-chain/kyverno";
import { ENVIRONMENTS, type StackConfig } from "../../config/schema";
import { type ParsedStackOutputs, type ValidatedImage } from "../../config/stack-outputs";
import { isDigest, parseImageRef } from "../../lib/image-ref";
import { variantRepositoryName } from "../../lib/naming";
import { type Problem, renderReceived } from "../../lib/problems";

/** The config key promote writes, as Pulumi stores it in a stack file (config/schema.ts `promotion`). */
export const PROMOTION_CONFIG_KEY = "workbench-images:promotion";

/** One image to promote: what prod's stack file records under promotion.images.<variant>. */
export interface Promotion {
  variant: string;
  digest: string;
  /** `repository@sha256:…` in the source registry. */
  source: string;
  validatedPools: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// The source stack, as its own stack file declares it

/** A users[] entry of the source stack, as far as the target needs it to own the same image. */
export interface SourceUser {
  login: string;
  uid: number;
  gid: number;
  project: string;
  baseVariant: string;
}

const sourceUser = (u: SourceUser): SourceUser => ({ login: u.login, uid: u.uid, gid: u.gid, project: u.project, baseVariant: u.baseVariant });

/** One image the source stack makes, as its configuration resolves it (config/images.ts ImageSpec). */
export interface SourceImage {
  /** Repository path in the source registry, without the host: `<prefix>/<variant>` or `<prefix>-<uid>/<project>`. */
  repository: string;
  gpu: boolean;
  /** GPU images: the pools the source validates it on; [] for CPU images. */
  pools: string[];
  /** Per-user images: the owner, as the source stack's users[] declares them (what the target's users[] needs). */
  owner?: SourceUser;
}

/**
 * What promote checks the source outputs against (issue #12 point 5): the registry and images that the FROM stack's
 * own file declares. Outputs are a file anyone can edit or a CLI's answer; the stack file is reviewed code.
 */
export interface PromotionSource {
  /** The source stack's name, for messages. */
  stack: string;
  /** Its stack file, as shown in messages. */
  file: string;
  registry: { kind: "ecr"; host: string; accountId: string; region: string; repositoryPrefix: string } | { kind: "local"; host: string; repositoryPrefix: string };
  /** By image id (catalog variant name or `user-<username>-<project>`). */
  images: Record<string, SourceImage>;
}

/** The source stack's registry and images from its parsed configuration (config/ parseStackConfig). */
export function promotionSource(
  cfg: Pick<StackConfig, "stack" | "registry" | "images" | "catalog" | "users" | "poolsByVariant">,
  file: string,
): PromotionSource {
  const r = cfg.registry;
  const registry: PromotionSource["registry"] =
    r.kind === "ecr"
      ? { kind: "ecr", host: ecrRegistryHost(r.accountId, r.region), accountId: r.accountId, region: r.region, repositoryPrefix: r.repositoryPrefix }
      : { kind: "local", host: `${r.host}:${r.port}`, repositoryPrefix: r.repositoryPrefix };
  const images: Record<string, SourceImage> = {};
  for (const s of cfg.images) {
    images[s.id] = { repository: s.repositoryName, gpu: s.gpu, pools: s.pools.map((p) => p.name), ...(s.owner !== undefined ? { owner: sourceUser(s.owner) } : {}) };
  }
  // A promote-mode source resolves only what it promotes; its catalog and users still say where the rest would be.
  const variants = new Map(cfg.catalog.variants.map((v) => [v.name, v]));
  for (const v of cfg.catalog.variants) {
    images[v.name] ??= { repository: variantRepositoryName(r.repositoryPrefix, v.name), gpu: v.gpu, pools: (cfg.poolsByVariant[v.name] ?? []).map((p) => p.name) };
  }
  for (const u of cfg.users) {
    const base = variants.get(u.baseVariant);
    images[u.id] ??= {
      repository: u.repositoryName,
      gpu: base?.gpu ?? false,
      pools: base?.gpu ? (cfg.poolsByVariant[base.name] ?? []).map((p) => p.name) : [],
      owner: sourceUser(u),
    };
  }
  return { stack: cfg.stack, file, registry, images };
}

/**
 * The registry host and repository path of a repository reference, by the Docker reference rules (distribution/
 * reference ParseNormalizedNamed): the first component is a host only when it has a '.' or ':' or is localhost;
 * otherwise the image is on Docker Hub.
 */
function splitRegistry(repository: string): { host: string; path: string } {
  const slash = repository.indexOf("/");
  const first = slash < 0 ? "" : repository.slice(0, slash);
  if (first !== "" && (first.includes(".") || first.includes(":") || first === "localhost")) return { host: first, path: repository.slice(slash + 1) };
  return { host: "docker.io", path: repository };
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

/** Why `repository` (host/path) is not where the source stack pushes `name`; undefined when it is. */
function originMismatch(name: string, repository: string, source: PromotionSource): string | undefined {
  const { stack, registry } = source;
  const { host, path } = splitRegistry(repository);
  if (host !== registry.host) {
    const m = registry.kind === "ecr" ? ECR_HOST.exec(host) : null;
    if (m !== null && registry.kind === "ecr" && (m[1] !== registry.accountId || m[2] !== registry.region)) {
      const reasons = [
        ...(m[1] !== registry.accountId ? [`account ${m[1]}, not ${stack}'s account ${registry.accountId} (registry.accountId)`] : []),
        ...(m[2] !== registry.region ? [`region ${m[2]}, not ${stack}'s region ${registry.region} (registry.region)`] : []),
      ];
      return `it is in ${reasons.join(" and ")}`;
    }
    return `its registry is ${host}, not ${stack}'s registry ${registry.host}`;
  }
  const prefix = registry.repositoryPrefix;
  const underPrefix = path.startsWith(`${prefix}/`) || (path.startsWith(`${prefix}-`) && /^\d+\//.test(path.slice(prefix.length + 1)));
  if (!underPrefix) return `its repository ${path} is not under ${stack}'s repository prefix ${prefix} (registry.repositoryPrefix)`;
  const expected = source.images[name]?.repository;
  if (expected !== undefined && path !== expected) return `its repository ${path} is not ${name}'s repository ${expected}`;
  return undefined;
}

/** Problems with where an entry's digest lives and what it was validated on, judged against the source stack's file. */
function sourceProblems(name: string, img: ValidatedImage, repository: string | undefined, source: PromotionSource, at: (p: string) => string): Problem[] {
  const problems: Problem[] = [];
  const { stack, file, registry } = source;
  const path = `validatedImages.${name}`;
  const image = source.images[name];
  const retake = `Promote what \`pulumi stack output --json --stack ${stack}\` prints, unedited.`;
  if (repository !== undefined) {
    const why = originMismatch(name, repository, source);
    if (why !== undefined) {
      const where =
        image !== undefined
          ? `${registry.host}/${image.repository}`
          : `${registry.host}/${registry.repositoryPrefix}/… or ${registry.host}/${registry.repositoryPrefix}-<uid>/…`;
      problems.push({
        path: at(`${path}.imageRef`),
        message: `is not an image ${stack} pushed: ${why}. Only digests in ${stack}'s own repositories (${where}, from registry.* in ${file}) can be promoted. ${retake}`,
        received: renderReceived(img.imageRef),
      });
    }
  }
  if (image === undefined) return problems;
  const gpuWhy = image.owner !== undefined ? `its base variant ${image.owner.baseVariant} has gpu: true in the catalog` : "gpu: true in the catalog";
  if (image.gpu && img.validatedPools.length === 0) {
    problems.push({
      path: at(`${path}.validatedPools`),
      message:
        `is empty, but ${name} is a GPU image (${gpuWhy}): ${stack} validated it on no GPU pool, and a GPU image is promoted only with the pools it was validated on. ` +
        `Let its GPU validation pass on ${stack}'s pools (${image.pools.length > 0 ? image.pools.join(", ") : `none: add gpuPools to ${file}`}), then promote again.`,
      received: renderReceived(img.validatedPools),
    });
  }
  img.validatedPools.forEach((pool, i) => {
    if (image.pools.includes(pool)) return;
    problems.push({
      path: at(`${path}.validatedPools[${i}]`),
      message: image.gpu
        ? `is not a pool ${stack} validates ${name} on (${image.pools.length > 0 ? image.pools.join(", ") : "none"}; gpuPools in ${file}), so ${stack} cannot have validated it there. ${retake}`
        : `names a pool, but ${name} is a CPU image: ${stack} validates CPU images on no GPU pool, so its validatedPools is []. ${retake}`,
      received: renderReceived(pool),
    });
  });
  return problems;
}

/**
 * Decides what to promote: the requested variants, or every validated image when none is requested. Refuses (as
 * problems, every one of them) a variant the source did not validate, an unscanned or unsigned image, a malformed
 * digest, and an imageRef that names another digest than `digest`. With `source` (the FROM stack's own file), also
 * an imageRef outside the source's registry, account, region, prefix or the image's own repository, a GPU image
 * validated on no pool, and a pool the source does not validate the image on.
 */
export function selectPromotions(
  outputs: ParsedStackOutputs,
  variants?: readonly string[],
  source?: PromotionSource,
): { promotions: Promotion[]; problems: Problem[] } {
  const problems: Problem[] = [...outputs.problems];
  const at = (p: string) => `${outputs.source}: ${p}`;
  if (outputs.problems.length > 0) return { promotions: [], problems };
  const known = [...Object.keys(outputs.images), ...Object.keys(outputs.entryProblems)].sort();
  let names: string[];
  if (variants === undefined) {
    names = known;
    if (names.length === 0) {
      problems.push({ path: at("validatedImages"), message: `is empty: ${outputs.stack} has validated nothing yet, so there is nothing to promote.` });
    }
  } else {
    names = [];
    variants.forEach((v, i) => {
      if (v === "") problems.push({ path: `--variants[${i}]`, message: "is empty. List variant names separated by commas, e.g. --variants a,b." });
      else if (!names.includes(v)) names.push(v);
    });
  }
  const promotions: Promotion[] = [];
  for (const name of names) {
    const shape = outputs.entryProblems[name];
    if (shape !== undefined) {
      problems.push(...shape);
      continue;
    }
    const img = outputs.images[name];
    const path = `validatedImages.${name}`;
    if (img === undefined) {
      // No "did you mean": variant names differ by one letter on purpose (app-cpu, app-gpu); the list says it all.
      const listed = known.length > 0 ? `${outputs.stack} validated: ${known.join(", ")}` : `${outputs.stack} validated nothing yet`;
      problems.push({
        path: at(path),
        message:
          `is missing: ${outputs.stack} did not validate "${name}", so it cannot be promoted (${listed}). ` +
          `Validate it on ${outputs.stack} first (scan, signing and GPU validation must pass), or leave it out of --variants.`,
      });
      continue;
    }
    const before = problems.length;
    if (!img.scanned) {
      problems.push({ path: at(`${path}.scanned`), message: "is false: the image did not pass the scan gate. Only scanned images can be promoted.", received: "false" });
    }
    if (!img.signed) {
      problems.push({
        path: at(`${path}.signed`),
        message: `is false: the image is not signed. Only signed images can be promoted; sign it on ${outputs.stack} (signing.mode: cosign-kms).`,
        received: "false",
      });
    }
    const digestOk = isDigest(img.digest);
    if (!digestOk) {
      problems.push({ path: at(`${path}.digest`), message: 'is not a digest "sha256:" followed by 64 lowercase hex characters.', received: renderReceived(img.digest) });
    }
    const ref = parseImageRef(img.imageRef);
    if (ref?.digest === undefined) {
      problems.push({ path: at(`${path}.imageRef`), message: "is not an image reference pinned by digest (repository@sha256:…).", received: renderReceived(img.imageRef) });
    } else if (digestOk && ref.digest !== img.digest) {
      problems.push({
        path: at(`${path}.imageRef`),
        message: `is pinned to ${ref.digest} but digest is ${img.digest}: the outputs disagree about what was validated. Re-run \`pulumi up\` on ${outputs.stack} and promote again.`,
      });
    }
    if (source !== undefined) problems.push(...sourceProblems(name, img, ref?.repository, source, at));
    if (problems.length === before && ref?.digest !== undefined) {
      promotions.push({ variant: name, digest: img.digest, source: `${ref.repository}@${ref.digest}`, validatedPools: [...img.validatedPools] });
    }
  }
  return { promotions, problems };
}

// ---------------------------------------------------------------------------------------------------------------
// Prod's stack file

/** A change promote makes, for the summary: `from` is undefined for a variant promoted for the first time. */
export interface PromotionChange {
  variant: string;
  from?: string;
  to: string;
}

const PROMOTION_PATH = ["config", PROMOTION_CONFIG_KEY] as const;

function parseStackFile(text: string): Document.Parsed {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new Error(`the stack file is not valid YAML: ${e.message.split("\n")[0]} Fix the syntax; nothing was written.`);
  }
  const config = doc.get("config", true);
  if (config !== undefined && config !== null && !isMap(config)) {
    throw new Error("the stack file's `config` is not a mapping. Fix the file; nothing was written.");
  }
  const promotion = doc.getIn(PROMOTION_PATH, true);
  if (promotion !== undefined && promotion !== null && !isMap(promotion)) {
    throw new Error(`the stack file's config["${PROMOTION_CONFIG_KEY}"] is not a mapping { from, images }. Fix the file; nothing was written.`);
  }
  const images = doc.getIn([...PROMOTION_PATH, "images"], true);
  if (images !== undefined && images !== null && !isMap(images)) {
    throw new Error(`the stack file's config["${PROMOTION_CONFIG_KEY}"].images is not a mapping of variant to image. Fix the file; nothing was written.`);
  }
  return doc;
}

/**
 * Promote writes only into a stack in promote mode (issue #12 point 5): a build stack (local, dev) builds its own
 * images and ignores promotion.images. The mode is the stack file's `mode`, else promote for prod and build for
 * every other environment (config/load.ts). A file that is not YAML gives no problem here: applyPromotions reports it.
 */
export function targetModeProblems(stackFileText: string, stack: string, shownFile: string): Problem[] {
  let doc: Document.Parsed;
  try {
    doc = parseStackFile(stackFileText);
  } catch {
    return [];
  }
  const [project] = PROMOTION_CONFIG_KEY.split(":");
  const read = (key: string): { key: string; value: unknown } | undefined => {
    for (const k of [`${project}:${key}`, key]) {
      const node = doc.getIn(["config", k], true);
      if (node !== undefined) return { key: k, value: doc.getIn(["config", k]) };
    }
    return undefined;
  };
  const mode = read("mode");
  if (mode?.value === "promote") return [];
  const env = read("environment")?.value ?? ((ENVIRONMENTS as readonly string[]).includes(stack) ? stack : undefined);
  if (mode === undefined && env === "prod") return [];
  const key = mode?.key ?? `${project}:mode`;
  const fix =
    env === "prod"
      ? `Set ${key}: promote in ${shownFile}: prod never builds.`
      : "Promote only into a stack in promote mode, e.g. --to prod.";
  if (mode === undefined) {
    const environment = env === undefined ? "no environment" : `environment ${renderReceived(env)}`;
    return [{ path: `${shownFile}: ${key}`, message: `is not set, so ${stack} (${environment}) is in build mode: it builds its own images and never reads promotion.images. ${fix}` }];
  }
  const what = mode.value === "build" ? `${stack} builds its own images and never reads promotion.images` : "the only modes are build and promote";
  return [{ path: `${shownFile}: ${key}`, message: `is not "promote": ${what}. ${fix}`, received: renderReceived(mode.value) }];
}

/**
 * config/'s refusal of a promoted id the target does not know, made specific for a per-user image of the source:
 * the fix is the target's users[], not promote (config/load.ts words it for catalog variants).
 */
export function explainTargetProblem(problem: Problem, source: PromotionSource | undefined, to: string, shownFile: string): Problem {
  const prefix = `${PROMOTION_CONFIG_KEY}.images.`;
  if (!problem.path.startsWith(prefix) || !problem.message.startsWith("names no catalog variant or user image")) return problem;
  const owner = source?.images[problem.path.slice(prefix.length)]?.owner;
  if (owner === undefined) return problem;
  const entry = `{ login: ${JSON.stringify(owner.login)}, uid: ${owner.uid}, gid: ${owner.gid}, project: ${owner.project}, baseVariant: ${owner.baseVariant} }`;
  return {
    ...problem,
    message:
      `is ${source!.stack}'s image for user ${JSON.stringify(owner.login)} (project ${owner.project}), and ${to} has no such user. ` +
      `Add the user to ${to}'s users (${shownFile} users[]: ${entry}), or leave the image out with --variants.`,
  };
}

/** Digests prod's stack file promotes now, by variant (entries without a string digest are skipped). */
export function currentPromotions(prodYamlText: string): Record<string, string> {
  const images = parseStackFile(prodYamlText).getIn([...PROMOTION_PATH, "images"]);
  const out: Record<string, string> = {};
  if (images instanceof YAMLMap) {
    for (const pair of images.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const value = pair.value;
      if (isMap(value)) {
        const digest = value.get("digest");
        if (typeof digest === "string") out[key] = digest;
      }
    }
  }
  return out;
}

/** What applyPromotions would change, in promotion order. */
export function promotionChanges(prodYamlText: string, promotions: readonly Promotion[]): PromotionChange[] {
  const current = currentPromotions(prodYamlText);
  return promotions.map((p) => ({ variant: p.variant, ...(current[p.variant] !== undefined ? { from: current[p.variant] } : {}), to: p.digest }));
}

/** Writer settings tried in order; the first that reproduces the untouched file exactly is used. */
const STYLE_CANDIDATES: ToStringOptions[] = [2, 4].flatMap((indent) =>
  [true, false].flatMap((indentSeq) =>
    [false, true].map((flowCollectionPadding) => ({ indent, indentSeq, flowCollectionPadding, lineWidth: 0, minContentWidth: 0 })),
  ),
);

/**
 * The writer settings that best reproduce this file: the yaml library re-emits the whole document from its syntax
 * tree, so indentation and flow-collection padding must match the file or every line would change in the diff.
 * `exact` is false when no setting reproduces it byte for byte (e.g. aligned comments): the pull request then shows
 * those formatting changes too.
 */
export function stackFileStyle(text: string): { options: ToStringOptions; exact: boolean; changedLines: number } {
  const lines = text.split("\n");
  let best: { options: ToStringOptions; exact: boolean; changedLines: number } | undefined;
  for (const options of STYLE_CANDIDATES) {
    const out = parseStackFile(text).toString(options);
    if (out === text) return { options, exact: true, changedLines: 0 };
    const outLines = out.split("\n");
    const changedLines = Math.max(lines.length, outLines.length) - lines.filter((l, i) => outLines[i] === l).length;
    if (best === undefined || changedLines < best.changedLines) best = { options, exact: false, changedLines };
  }
  return best!;
}

/**
 * Writes the promotions into prod's stack file text: config["workbench-images:promotion"] = { from, images: {
 * <variant>: { digest, source, validatedPools } } } (config/ `promotion`). Uses the yaml library's document API
 * so every comment and the order of every key survive; promoted variants' entries are replaced whole, other
 * entries are left as they are, new variants are appended. Throws on a file that is not a stack file.
 */
export function applyPromotions(prodYamlText: string, promotions: readonly Promotion[], from: string): string {
  const { options } = stackFileStyle(prodYamlText);
  const doc = parseStackFile(prodYamlText);
  doc.setIn([...PROMOTION_PATH, "from"], from);
  for (const p of promotions) {
    const pools = doc.createNode([...p.validatedPools]) as YAMLSeq;
    pools.flow = true;
    const entry = doc.createNode({ digest: p.digest, source: p.source }) as YAMLMap;
    entry.set("validatedPools", pools);
    doc.setIn([...PROMOTION_PATH, "images", p.variant], entry);
  }
  // `images: {}` written by hand is a flow map; entries added to it would stay on one line.
  for (const path of [PROMOTION_PATH, [...PROMOTION_PATH, "images"]]) {
    const node = doc.getIn(path, true);
    if (isMap(node) && node.items.length > 0) node.flow = false;
  }
  const config = doc.get("config", true);
  if (isMap(config) || isSeq(config)) config.flow = false;
  return doc.toString(options);
}

