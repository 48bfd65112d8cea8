import { z } from "zod";

/**
 * Kubernetes' own syntax rules for what our configuration passes into object fields, as the API server validates them
 * (k8s.io/apimachinery/pkg/util/validation/validation.go: IsQualifiedName, IsValidLabelValue, IsDNS1123Subdomain;
 * documented at https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
 * Checked at plan time so a bad node selector or toleration is a configuration error, not a failed `pulumi up`.
 */

/** A label name: alphanumeric at both ends, `-`, `_`, `.` inside, at most 63 characters. */
const NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A DNS-1123 subdomain (a label key's optional prefix): lowercase labels joined by dots, at most 253 characters. */
const SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a valid label key (qualified name: `[prefix/]name`), or undefined. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !SUBDOMAIN.test(prefix))) {
    return "has a prefix that is not a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)";
  }
  if (!NAME.test(name)) {
    return "is not a Kubernetes label key: the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** Why `value` is not a valid label value (empty, or a name as above), or undefined. */
export function labelValueProblem(value: string): string | undefined {
  return value === "" || NAME.test(value)
    ? undefined
    : "is not a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
}

/** A label key, refused with Kubernetes' rule. */
export const labelKey = z.string().superRefine((key, ctx) => {
  const problem = labelKeyProblem(key);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: `${problem}.` });
});

/** A label value, refused with Kubernetes' rule. */
export const labelValue = z.string().superRefine((value, ctx) => {
  const problem = labelValueProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: `${problem}.` });
});

/**
 * Linux user and group ids as Kubernetes accepts them in a pod's securityContext (runAsUser, runAsGroup, fsGroup:
 * "must be between 0 and 2147483647, inclusive", apimachinery validation IsValidUserID/IsValidGroupID).
 */
export const MAX_LINUX_ID = 2147483647;
