import { z } from "zod";
import { DIGEST_DESCRIPTION, DIGEST_PATTERN } from "./image-ref";
import { didYouMean, PER_KEY_MARKER } from "./problems";

/**
 * A strict object whose unknown keys are reported one per line with a "did you mean" drawn from this object's own
 * keys: a typo in stack config (`registy`) must be caught, not silently ignored (issue #2, "Bad input").
 */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== "unrecognized_keys") return undefined;
      // One sentence per key, JSON-encoded: a key may itself contain a newline (zodProblems splits them again).
      return PER_KEY_MARKER + JSON.stringify(issue.keys.map((key) => `unknown key ${JSON.stringify(key)}.${didYouMean(key, known) || ` Known keys here: ${known.join(", ")}.`}`));
    },
  });
}

/** A DNS-1123 label: Kubernetes names of namespaces, pools and Jobs. */
export const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
    error: "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters.",
  });

export const sha256Digest = z
  .string()
  .regex(DIGEST_PATTERN, { error: `must be ${DIGEST_DESCRIPTION}.` });
