/**
 * What policy.test.ts (the rules, in-process) and policy.real.test.ts (the pack over gRPC, in the process the Pulumi
 * CLI starts) both assert with: resource types, the resources they check and the exact fix texts of the messages.
 */

export const ECR = "aws:ecr/repository:Repository";
export const RELEASE = "kubernetes:helm.sh/v3:Release";
export const CHART = "kubernetes:helm.sh/v4:Chart";
export const HEX = "0123456789abcdef".repeat(4);
export const DIGEST = `sha256:${HEX}`;
export const PINNED = `123456789012.dkr.ecr.us-east-1.amazonaws.com/workbench/pytorch@${DIGEST}`;
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export const MUTABILITY_FIX =
  'set imageTagMutability to "IMMUTABLE", or to "IMMUTABLE_WITH_EXCLUSION" with WILDCARD exclusion filters drawn ' +
  "only from sha256-*, *.sig, *.att, *.sbom, buildcache, buildcache-*, buildcache*";
export const FILTER_TAIL =
  "only signature and build-cache tags may stay mutable, as WILDCARD filters sha256-*, *.sig, *.att, *.sbom, " +
  "buildcache, buildcache-*, buildcache*; remove this filter";
export const KMS_FIX = 'set encryptionConfigurations: [{encryptionType: "KMS", kmsKey: <KMS key ARN>}]';
export const PIN_FIX = "not pinned by digest; use <repository>[:<tag>]@sha256:<64 lowercase hex>, the digest that was pushed, scanned and signed";
export const OBJECT_PIN_FIX =
  'not pinned by digest; put the digest in tag as "<tag>@sha256:<64 lowercase hex>" (zero-to-jupyterhub renders ' +
  'name:tag), or set digest: "sha256:<64 lowercase hex>" where the chart has a digest field';
export const BACKOFF_TAIL =
  "expected a non-negative integer: set it so a failing pod is retried a bounded number of times (Kubernetes " +
  "defaults to 6 retries)";
export const DEADLINE_TAIL =
  "expected a positive integer (seconds): set it so a hung Job cannot hold its node forever (Kubernetes sets no " +
  "deadline by default)";
export const SECRET_TAIL =
  "holds a non-empty plain string: Helm keeps values in its release record and prints them with helm get values; " +
  "reference a Kubernetes Secret instead (e.g. hub.existingSecret, or an env entry with valueFrom.secretKeyRef), " +
  "or leave it empty where the chart generates one";

/** What the program registers for each image variant's repository (components' RegistryRepository). */
export function ecrRepository(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "workbench/pytorch",
    imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
    imageTagMutabilityExclusionFilters: [
      { filterType: "WILDCARD", filter: "sha256-*" },
      { filterType: "WILDCARD", filter: "buildcache*" },
    ],
    imageScanningConfiguration: { scanOnPush: true },
    encryptionConfigurations: [{ encryptionType: "KMS", kmsKey: "arn:aws:kms:us-east-1:123456789012:key/abcd" }],
    ...overrides,
  };
}

export function podSpec(...images: (string | undefined)[]): Record<string, unknown> {
  return { containers: images.map((image, i) => ({ name: `c${i}`, ...(image === undefined ? {} : { image }) })) };
}
