/**
 * Promotion as data (issue #7): dev's validated digests are written into prod's stack file by `npm run promote`, and
 * prod copies exactly those digests into its own registry. Everything here is pure: the CLI (scripts/promote.ts) and
 * the PromotedImage component call it, the tests check its exact output.
 */
import { type Document, isMap, isScalar, isSeq, parseDocument, type ToStringOptions, YAMLMap, YAMLSeq } from "yaml";
import { PROMOTED_TAG_PREFIX, RELEASE_TAG_PREFIX } from "../registry/ecr";
import { DIGEST_DESCRIPTION, digestHex, isDigest, parseImageRef } from "../../lib/image-ref";
import { shellJoin, shellQuote } from "../../lib/shell";
import { type Problem, renderReceived } from "../../lib/problems";

/** The config key promote writes, as Pulumi stores it in a stack file. Mirrors config.ts `promotion`. */
export const PROMOTION_CONFIG_KEY = "workbench-images:promotion";

// Registry tag grammar (distribution/reference).
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
// Loopback registries speak plain http (the local stack's registry, test registries); everything else keeps TLS.
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost)(:\d+)?\//;

// ---------------------------------------------------------------------------------------------------------------
// The copy command

export interface CopyImageOptions {
  /** `repository@sha256:…`: what dev validated. A tag beside the digest is dropped (skopeo refuses both at once). */
  source: string;
  /** The destination repository, without tag or digest: `host[:port]/path`. */
  destination: string;
  /** The tag the copy gets in the destination (`promoted-<12 hex>`), so lifecycle rules keep it. */
  tag: string;
  /** @default true: verify TLS to the source registry */
  srcTlsVerify?: boolean;
  /** @default true: verify TLS to the destination registry */
  destTlsVerify?: boolean;
  /**
   * Name of an environment variable holding `USER:PASSWORD` for the source registry.
   * @default none: skopeo uses the caller's own registry login (auth.json / docker config)
   */
  srcCredsEnv?: string;
  /** As `srcCredsEnv`, for the destination registry. @default none */
  destCredsEnv?: string;
}

export interface CopyCommand {
  /** argv: run it without a shell (execFile). */
  command: string[];
  /** Extra environment the command needs beyond the credential variables the caller sets. @default none */
  env?: Record<string, string>;
}

interface CheckedCopy {
  source: string;
  digest: string;
  destination: string;
  tag: string;
  /** skopeo copy's flags without credentials. */
  flags: string[];
}

function checkCopy(o: CopyImageOptions): CheckedCopy {
  const src = parseImageRef(o.source);
  if (src?.digest === undefined) {
    throw new Error(
      `copyImageCommand: source "${o.source}" is not pinned by digest. Promotion copies exactly the digest that was ` +
        "validated: pass repository@sha256:<64 hex>.",
    );
  }
  const dest = parseImageRef(o.destination);
  if (dest === undefined || dest.tag !== undefined || dest.digest !== undefined) {
    throw new Error(
      `copyImageCommand: destination "${o.destination}" must be a repository (host[:port]/path) without tag or ` +
        "digest; the tag is passed separately.",
    );
  }
  if (!TAG.test(o.tag)) {
    throw new Error(`copyImageCommand: tag "${o.tag}" is not a valid tag (letters, digits, '_', '.', '-'; at most 128).`);
  }
  for (const [key, name] of [["srcCredsEnv", o.srcCredsEnv], ["destCredsEnv", o.destCredsEnv]] as const) {
    if (name !== undefined && !ENV_NAME.test(name)) {
      throw new Error(`copyImageCommand: ${key} "${name}" is not an environment variable name (A-Z, 0-9, _).`);
    }
  }
  const flags = ["--all", "--preserve-digests"];
  if (o.srcTlsVerify === false) flags.push("--src-tls-verify=false");
  if (o.destTlsVerify === false) flags.push("--dest-tls-verify=false");
  return { source: `${src.repository}@${src.digest}`, digest: src.digest, destination: dest.repository, tag: o.tag, flags };
}

/**
 * `skopeo copy --all --preserve-digests … docker://<source@digest> docker://<destination>:<tag>`.
 *
 * `--all` copies every platform of an index and `--preserve-digests` makes skopeo fail rather than re-encode anything
 * (skopeo-copy(1)): the digest prod serves must be the digest dev validated and signed. Credentials never appear in
 * argv, where `ps` and Pulumi's state would show them: with `srcCredsEnv`/`destCredsEnv` the command becomes
 * `sh -c 'exec skopeo copy --src-creds "$VAR" … "$@"' …`, so the shell expands the variable into skopeo's own argv.
 */
export function copyImageCommand(o: CopyImageOptions): CopyCommand {
  const c = checkCopy(o);
  const refs = [`docker://${c.source}`, `docker://${c.destination}:${c.tag}`];
  const creds = credsFlags(o);
  if (creds === "") return { command: ["skopeo", "copy", ...c.flags, ...refs] };
  return { command: ["sh", "-c", `exec skopeo copy${creds} "$@"`, "skopeo-copy", ...c.flags, ...refs] };
}

function credsFlags(o: Pick<CopyImageOptions, "srcCredsEnv" | "destCredsEnv">, inspect = false): string {
  let out = "";
  if (!inspect && o.srcCredsEnv !== undefined) out += ` --src-creds "$${o.srcCredsEnv}"`;
  if (o.destCredsEnv !== undefined) out += ` ${inspect ? "--creds" : "--dest-creds"} "$${o.destCredsEnv}"`;
  return out;
}

/**
 * The shell script PromotedImage runs (local.Command `create`). It copies only when the destination tag does not
 * already hold the digest: ECR refuses to push a tag that exists in an immutable repository even when the digest is
 * the same (moby/buildkit#3776, aws/containers-roadmap#2179), and the command runs again whenever its inputs change
 * (ECR's 12-hour login token is one of them), so a blind copy would fail every later `pulumi up`. The check compares
 * the manifest bytes behind the tag with those behind the digest. Credentials reach skopeo only through variables.
 */
export function copyImageScript(o: CopyImageOptions): string {
  const c = checkCopy(o);
  const destTls = o.destTlsVerify === false ? " --tls-verify=false" : "";
  const inspect = (ref: string) => `skopeo inspect --raw${destTls}${credsFlags(o, true)} ${shellQuote(ref)} 2>/dev/null`;
  const tagged = `${c.destination}:${c.tag}`;
  const copy = `skopeo copy${credsFlags(o)} ${shellJoin([...c.flags, `docker://${c.source}`, `docker://${tagged}`])}`;
  return [
    "set -eu",
    `tagged=$(${inspect(`docker://${tagged}`)}) || tagged=`,
    `pinned=$(${inspect(`docker://${c.destination}@${c.digest}`)}) || pinned=`,
    'if [ -n "$tagged" ] && [ "$tagged" = "$pinned" ]; then',
    `  echo ${shellQuote(`${tagged} already holds ${c.digest}`)}`,
    "else",
    `  ${copy}`,
    "fi",
    `echo ${shellQuote(`${c.destination}@${c.digest}`)}`,
  ].join("\n");
}


/** The copy in prod is tagged `promoted-<first 12 hex of the digest>`; ECR lifecycle never expires these tags. */
export function promotedTag(digest: string): string {
  return digestTag("promotedTag", PROMOTED_TAG_PREFIX, digest);
}

/** A digest published to JupyterHub in dev is tagged `release-<first 12 hex>`, which ECR lifecycle never expires. */
export function releaseTag(digest: string): string {
  return digestTag("releaseTag", RELEASE_TAG_PREFIX, digest);
}

function digestTag(fn: string, prefix: string, digest: string): string {
  if (!isDigest(digest)) throw new Error(`${fn}: "${digest}" is not ${DIGEST_DESCRIPTION}.`);
  return `${prefix}${digestHex(digest, 12)}`;
}

/** Whether a registry speaks plain http: only loopback addresses (the local stack, tests). */
export function isLoopbackRepository(repository: string): boolean {
  return LOOPBACK.test(`${repository}/`);
}

// ---------------------------------------------------------------------------------------------------------------
// The source stack's outputs

/** One entry of the dev stack's `validatedImages` output (index.ts exports exactly these fields). */
export interface ValidatedImage {
  imageRef: string;
  digest: string;
  validatedPools: string[];
  scanned: boolean;
  signed: boolean;
}

export interface StackOutputs {
  /** Where the outputs came from, for error paths: `stack "dev"` or a file name. */
  source: string;
  /** The source stack's name, for messages ("dev did not validate it"). */
  stack: string;
  /** Entries whose fields have the right types; their values are judged by selectPromotions. */
  images: Record<string, ValidatedImage>;
  /** Problems with the document as a whole (not an object, no validatedImages). */
  problems: Problem[];
  /** Problems with one entry's shape, by entry name; such entries are left out of `images`. */
  entryProblems: Record<string, Problem[]>;
}

const FIELD_TYPES = {
  imageRef: ["string", "a string (repository@sha256:…)"],
  digest: ["string", 'a string ("sha256:" and 64 hex characters)'],
  validatedPools: ["string[]", "a list of pool names"],
  scanned: ["boolean", "true or false"],
  signed: ["boolean", "true or false"],
} as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Reads `pulumi stack output --json` of the source stack. Only the shape is checked here; whether an entry may be
 * promoted is selectPromotions' decision. Secret outputs (shown as "[secret]" without --show-secrets) are refused:
 * digests are not secrets, and a promotion must be readable in review.
 */
export function parseStackOutputs(json: unknown, source: string, stack = "the source stack"): StackOutputs {
  const out: StackOutputs = { source, stack, images: {}, problems: [], entryProblems: {} };
  const at = (p: string) => `${source}: ${p}`;
  if (!isObject(json)) {
    out.problems.push({
      path: source,
      message: "is not a JSON object of stack outputs. Pass what `pulumi stack output --json --stack <from>` prints.",
      received: renderReceived(json),
    });
    return out;
  }
  const validated = json["validatedImages"];
  if (validated === undefined) {
    out.problems.push({
      path: at("validatedImages"),
      message:
        `is missing: ${stack} exports no validated images. Run \`pulumi up\` on it first; it exports ` +
        `validatedImages once its images are scanned, signed and validated.${Object.keys(json).length > 0 ? ` Outputs found: ${Object.keys(json).sort().join(", ")}.` : ""}`,
    });
    return out;
  }
  if (!isObject(validated)) {
    out.problems.push({
      path: at("validatedImages"),
      message: 'expected a mapping of image name to { imageRef, digest, validatedPools, scanned, signed }. If it reads "[secret]", the output is a secret: export it in plain text.',
      received: renderReceived(validated),
    });
    return out;
  }
  for (const [name, entry] of Object.entries(validated)) {
    const problems: Problem[] = [];
    if (!isObject(entry)) {
      problems.push({
        path: at(`validatedImages.${name}`),
        message: "expected a mapping { imageRef, digest, validatedPools, scanned, signed }.",
        received: renderReceived(entry),
      });
    } else {
      for (const [field, [type, expected]] of Object.entries(FIELD_TYPES)) {
        const value = entry[field];
        const ok =
          type === "string[]"
            ? Array.isArray(value) && value.every((x) => typeof x === "string")
            : typeof value === type;
        if (!ok) {
          problems.push({
            path: at(`validatedImages.${name}.${field}`),
            message: value === undefined ? `is missing: expected ${expected}.` : `expected ${expected}.`,
            ...(value !== undefined ? { received: renderReceived(value) } : {}),
          });
        }
      }
    }
    if (problems.length > 0) {
      out.entryProblems[name] = problems;
      continue;
    }
    const e = entry as unknown as ValidatedImage;
    out.images[name] = {
      imageRef: e.imageRef,
      digest: e.digest,
      validatedPools: [...e.validatedPools],
      scanned: e.scanned,
      signed: e.signed,
    };
  }
  return out;
}

/** One image to promote: what prod's stack file records under promotion.images.<variant>. */
export interface Promotion {
  variant: string;
  digest: string;
  /** `repository@sha256:…` in the source registry. */
  source: string;
  validatedPools: string[];
}

/**
 * Decides what to promote: the requested variants, or every validated image when none is requested. Refuses (as
 * problems, every one of them) a variant the source did not validate, an unscanned or unsigned image, a malformed
 * digest, and an imageRef that names another digest than `digest`.
 */
export function selectPromotions(outputs: StackOutputs, variants?: readonly string[]): { promotions: Promotion[]; problems: Problem[] } {
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
 * <variant>: { digest, source, validatedPools } } } (config.ts `promotion`). Uses the yaml library's document API
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
