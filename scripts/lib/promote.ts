/**
 * `npm run promote` as data (issue #7): which of the source stack's validated digests to promote, and how they are
 * written into prod's stack file, comments and layout kept. Everything here is pure; scripts/promote.ts does the I/O.
 */
import { type Document, isMap, isScalar, isSeq, parseDocument, type ToStringOptions, YAMLMap, YAMLSeq } from "yaml";
import { type ParsedStackOutputs } from "../../config/stack-outputs";
import { isDigest, parseImageRef } from "../../lib/image-ref";
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

/**
 * Decides what to promote: the requested variants, or every validated image when none is requested. Refuses (as
 * problems, every one of them) a variant the source did not validate, an unscanned or unsigned image, a malformed
 * digest, and an imageRef that names another digest than `digest`.
 */
export function selectPromotions(outputs: ParsedStackOutputs, variants?: readonly string[]): { promotions: Promotion[]; problems: Problem[] } {
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

