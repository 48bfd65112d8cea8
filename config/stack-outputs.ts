import type { ValidationFigures } from "../components/validation/validation-report";
import type * as pulumi from "@pulumi/pulumi";
import type { CatalogEntry } from "../components/hub/jupyter-hub";
import { type Problem, renderReceived } from "../lib/problems";

/**
 * The stack-outputs contract (issue #10), one definition: `index.ts` exports a value of type StackOutputsInput, and
 * `npm run promote` reads `pulumi stack output --json` of the source stack with parseStackOutputs. A field added to
 * ValidatedImage without a check here, or exported under another name, fails to compile.
 */

/** One image in `images` / `userImages`: every image this stack built or copied, by digest. */
export interface ImageOutput {
  imageRef: string;
  repositoryUrl: string;
  tag: string;
  digest: string;
}

/** What the program exports (`pulumi stack output --json`). */
export interface StackOutputs {
  environment: string;
  /** Catalog variants, by name. */
  images: Record<string, ImageOutput>;
  /** Per-user images (seed 002), by id `user-<username>-<project>`. */
  userImages: Record<string, ImageOutput>;
  /** Every image (catalog and per-user) that passed scan, signature and (GPU images) validation: what may be promoted. */
  validatedImages: Record<string, ValidatedImage>;
  /** The published catalog, when the stack deploys a hub. */
  catalog?: CatalogEntry[];
  /** The stack's signing key, when it signs. */
  signing?: { keyArn: string; aliasName: string; cosignKeyRef: string; publicKeyPem: string };
  /** What each GPU image's validation Jobs measured, by image id then pool (issue #15). Absent without GPU images. */
  validation?: Record<string, Record<string, ValidationFigures>>;
}

/** A value whose leaves may be Outputs: what a Pulumi program returns for a StackOutputs. */
export type DeepInput<T> = [T] extends [string | number | boolean]
  ? pulumi.Input<T>
  : T extends readonly (infer E)[]
    ? pulumi.Input<DeepInput<E>[]>
    : pulumi.Input<{ [K in keyof T]: DeepInput<T[K]> }>;
export type StackOutputsInput = { [K in keyof StackOutputs]: DeepInput<StackOutputs[K]> };

/** One entry of the `validatedImages` output: an image that passed every gate, with the gates' evidence. */
export interface ValidatedImage {
  imageRef: string;
  digest: string;
  validatedPools: string[];
  scanned: boolean;
  signed: boolean;
}

/** `parseStackOutputs`'s result: the entries, and every problem found reading them. */
export interface ParsedStackOutputs {
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

/** How `parseStackOutputs` checks each field of a ValidatedImage: every field of the type, and only those. */
const FIELD_TYPES: Record<keyof ValidatedImage, readonly ["string" | "string[]" | "boolean", string]> = {
  imageRef: ["string", "a string (repository@sha256:…)"],
  digest: ["string", 'a string ("sha256:" and 64 hex characters)'],
  validatedPools: ["string[]", "a list of pool names"],
  scanned: ["boolean", "true or false"],
  signed: ["boolean", "true or false"],
};

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Reads `pulumi stack output --json` of the source stack. Only the shape is checked here; whether an entry may be
 * promoted is selectPromotions' decision. Secret outputs (shown as "[secret]" without --show-secrets) are refused:
 * digests are not secrets, and a promotion must be readable in review.
 */
export function parseStackOutputs(json: unknown, source: string, stack = "the source stack"): ParsedStackOutputs {
  const out: ParsedStackOutputs = { source, stack, images: {}, problems: [], entryProblems: {} };
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

