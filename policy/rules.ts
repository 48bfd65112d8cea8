/**
 * The policy pack's rules as pure functions (issue 4): each takes a resource's type token and its inputs as plain
 * JSON and returns the violation messages, [] when the resource complies or the rule does not apply to its type.
 *
 * Kept free of @pulumi/policy so unit tests (and anything else) can import them without the policy server that
 * `new PolicyPack(...)` starts (see index.ts). The pack is installed and run on its own from this folder, so it
 * imports nothing from the program's lib/ either.
 *
 * What a policy sees (checked against @pulumi/policy 1.21 and the engine's analyzer client):
 * - the resource's inputs after the provider's Check, as JSON (nested objects, arrays, strings, numbers);
 * - a Pulumi secret as its plain value: the engine sends secrets marked, but @pulumi/policy unwraps them before
 *   `validateResource` runs, so a rule cannot tell `pulumi.secret("x")` from `"x"`;
 * - during `pulumi preview`, a value that another resource computes (an image digest not pushed yet, a KMS key ARN
 *   not created yet) as one of the sentinel strings in UNKNOWN_VALUES. These rules skip such values: they cannot be
 *   judged yet, and `pulumi up` runs the pack again on the known values before it creates or updates the resource.
 */

/** `(resourceType, inputs) => violation messages`; [] when fine. */
export type Check = (resourceType: string, props: Record<string, unknown>) => string[];

/** Policy names as `pulumi preview` prints them and as policy config keys them. Never rename a released one. */
export const POLICY_NAMES = {
  ecrImmutableTags: "ecr-immutable-tags",
  ecrScanOnPush: "ecr-scan-on-push",
  ecrKmsEncryption: "ecr-kms-encryption",
  workloadImagesPinned: "workload-images-pinned-by-digest",
  helmImagesPinned: "helm-values-images-pinned-by-digest",
  jobBounded: "job-backoff-limit-and-deadline",
  helmNoPlaintextSecrets: "helm-values-no-plaintext-secrets",
} as const;

export const ECR_REPOSITORY_TYPE = "aws:ecr/repository:Repository";
export const JOB_TYPE = "kubernetes:batch/v1:Job";
export const CRONJOB_TYPE = "kubernetes:batch/v1:CronJob";
export const HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release";
export const HELM_CHART_TYPE = "kubernetes:helm.sh/v4:Chart";
const HELM_TYPES: ReadonlySet<string> = new Set([HELM_RELEASE_TYPE, HELM_CHART_TYPE]);

/** Where each workload kind keeps its PodSpec. */
export const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  "kubernetes:core/v1:Pod": ["spec"],
  "kubernetes:core/v1:ReplicationController": ["spec", "template", "spec"],
  "kubernetes:apps/v1:Deployment": ["spec", "template", "spec"],
  "kubernetes:apps/v1:StatefulSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:DaemonSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:ReplicaSet": ["spec", "template", "spec"],
  [JOB_TYPE]: ["spec", "template", "spec"],
  [CRONJOB_TYPE]: ["spec", "jobTemplate", "spec", "template", "spec"],
};

/** PodSpec fields that hold containers with an `image`. */
export const CONTAINER_LISTS = ["containers", "initContainers", "ephemeralContainers"] as const;

/**
 * The sentinels @pulumi/policy (proxy.js) uses for values unknown during preview; the engine sends every computed
 * value as the string one. Copied because the SDK does not export them; a test checks each against the SDK.
 */
export const UNKNOWN_VALUES: ReadonlySet<string> = new Set([
  "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", // boolean
  "3eeb2bf0-c639-47a8-9e75-3b44932eb421", // number
  "04da6b54-80e4-46f7-96ec-b56ff0331ba9", // string (what the engine sends for any computed value)
  "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", // array
  "030794c1-ac77-496b-92df-f27374a8bd58", // asset
  "e48ece36-62e2-4504-bad9-02848725956a", // archive
  "dd056dcd-154b-4c76-9bd3-c8f88648b5ff", // object
]);

export function isUnknown(value: unknown): boolean {
  return typeof value === "string" && UNKNOWN_VALUES.has(value);
}

// OCI image-spec: a sha256 digest is exactly 64 lowercase hex digits, and in a reference it comes last.
const PINNED_REF = /@sha256:[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** True when an image reference string ends in `@sha256:<64 lowercase hex>`. */
export function isPinnedRef(ref: string): boolean {
  return PINNED_REF.test(ref);
}

type Path = readonly (string | number)[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `values.singleuser.profileList[1].kubespawner_override.image`; keys that are not identifiers in `["..."]`. */
export function formatPath(path: Path): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (!IDENTIFIER.test(segment)) out += `[${JSON.stringify(segment)}]`;
    else out += out === "" ? segment : `.${segment}`;
  }
  return out;
}

const MAX_SHOWN = 120;

/** A received value for a message: `missing`, or JSON cut at 120 characters. Never call it on a secret's value. */
export function show(value: unknown): string {
  if (value === undefined) return "missing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text;
}

function at(root: unknown, path: readonly string[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

// ---------------------------------------------------------------------------------------------------------------
// ECR: immutable tags, with exclusions only for signature and cache tags

/**
 * The only tags allowed to stay mutable, as ECR WILDCARD filters: what cosign writes next to an image
 * (`sha256-<hex>.sig`, `.att`, `.sbom`) and the BuildKit registry cache (`buildcache`, `buildcache-<variant>`).
 * Both are rewritten in place by design; every other tag names an image that was scanned and signed.
 */
export const ALLOWED_MUTABLE_TAG_FILTERS: readonly string[] = [
  "sha256-*",
  "*.sig",
  "*.att",
  "*.sbom",
  "buildcache",
  "buildcache-*",
  "buildcache*",
];

const ALLOWED_FILTERS_TEXT = ALLOWED_MUTABLE_TAG_FILTERS.join(", ");
const MUTABILITY_FIX =
  `set imageTagMutability to "IMMUTABLE", or to "IMMUTABLE_WITH_EXCLUSION" with WILDCARD exclusion filters ` +
  `drawn only from ${ALLOWED_FILTERS_TEXT}`;

export const checkEcrImmutableTags: Check = (resourceType, props) => {
  if (resourceType !== ECR_REPOSITORY_TYPE) return [];
  const mutability = props["imageTagMutability"];
  const filters = props["imageTagMutabilityExclusionFilters"];
  if (isUnknown(mutability)) return [];
  const filterCount = Array.isArray(filters) ? filters.length : 0;

  if (mutability === "IMMUTABLE") {
    if (filterCount === 0) return [];
    return [
      `imageTagMutabilityExclusionFilters has ${filterCount} filter(s) but imageTagMutability is "IMMUTABLE": ` +
        `ECR takes exclusion filters only with "IMMUTABLE_WITH_EXCLUSION"; remove them, or ${MUTABILITY_FIX}`,
    ];
  }
  if (mutability !== "IMMUTABLE_WITH_EXCLUSION") {
    const why = mutability === undefined ? " (ECR's default is MUTABLE)" : "";
    return [`imageTagMutability is ${show(mutability)}${why}: a pushed tag can be moved to another image; ${MUTABILITY_FIX}`];
  }

  // No filters with IMMUTABLE_WITH_EXCLUSION excludes nothing: as strict as IMMUTABLE (ECR itself asks for >= 1).
  if (filters === undefined || filters === null || isUnknown(filters)) return [];
  if (!Array.isArray(filters)) {
    return [`imageTagMutabilityExclusionFilters is ${show(filters)}, expected a list of {filterType, filter}: ${MUTABILITY_FIX}`];
  }
  const messages: string[] = [];
  filters.forEach((entry: unknown, i) => {
    if (isUnknown(entry)) return;
    const filterType = isRecord(entry) ? entry["filterType"] : undefined;
    const filter = isRecord(entry) ? entry["filter"] : undefined;
    if (isUnknown(filterType) || isUnknown(filter)) return;
    if (filterType === "WILDCARD" && typeof filter === "string" && ALLOWED_MUTABLE_TAG_FILTERS.includes(filter)) return;
    messages.push(
      `imageTagMutabilityExclusionFilters[${i}] is ${show(entry)}: only signature and build-cache tags may stay ` +
        `mutable, as WILDCARD filters ${ALLOWED_FILTERS_TEXT}; remove this filter`,
    );
  });
  return messages;
};

// ---------------------------------------------------------------------------------------------------------------
// ECR: scan on push

export const checkEcrScanOnPush: Check = (resourceType, props) => {
  if (resourceType !== ECR_REPOSITORY_TYPE) return [];
  const config = props["imageScanningConfiguration"];
  if (isUnknown(config)) return [];
  const scanOnPush = isRecord(config) ? config["scanOnPush"] : undefined;
  if (scanOnPush === true || isUnknown(scanOnPush)) return [];
  return [
    `imageScanningConfiguration.scanOnPush is ${show(scanOnPush)}: ECR then does not scan pushed images and the ` +
      `scan gate has no findings to read; set imageScanningConfiguration: {scanOnPush: true}`,
  ];
};

// ---------------------------------------------------------------------------------------------------------------
// ECR: KMS encryption

/** ECR encryption types backed by a KMS key (KMS_DSSE: two layers, both KMS). AES256 is S3-managed keys. */
export const KMS_ENCRYPTION_TYPES: readonly string[] = ["KMS", "KMS_DSSE"];

const KMS_FIX = `set encryptionConfigurations: [{encryptionType: "KMS", kmsKey: <KMS key ARN>}]`;

export const checkEcrKmsEncryption: Check = (resourceType, props) => {
  if (resourceType !== ECR_REPOSITORY_TYPE) return [];
  const configs = props["encryptionConfigurations"];
  if (isUnknown(configs)) return [];
  if (!Array.isArray(configs) || configs.length === 0) {
    return [`encryptionConfigurations is ${show(configs)}: ECR then encrypts with AES256 (S3-managed keys); ${KMS_FIX}`];
  }
  const messages: string[] = [];
  configs.forEach((entry: unknown, i) => {
    if (isUnknown(entry)) return;
    const encryptionType = isRecord(entry) ? entry["encryptionType"] : undefined;
    if (isUnknown(encryptionType)) return;
    if (typeof encryptionType === "string" && KMS_ENCRYPTION_TYPES.includes(encryptionType)) return;
    const why = encryptionType === undefined ? " (ECR's default is AES256)" : "";
    messages.push(
      `encryptionConfigurations[${i}].encryptionType is ${show(encryptionType)}${why}: images must be encrypted ` +
        `with a KMS key; ${KMS_FIX}`,
    );
  });
  return messages;
};

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes workloads: every container image pinned by digest

const PIN_FIX = "use <repository>[:<tag>]@sha256:<64 lowercase hex>, the digest that was pushed, scanned and signed";

export const checkWorkloadImagesPinned: Check = (resourceType, props) => {
  const specPath = POD_SPEC_PATHS[resourceType];
  if (specPath === undefined) return [];
  const podSpec = at(props, specPath);
  if (!isRecord(podSpec)) return [];
  const messages: string[] = [];
  for (const list of CONTAINER_LISTS) {
    const containers = podSpec[list];
    if (!Array.isArray(containers)) continue;
    containers.forEach((container: unknown, i) => {
      if (!isRecord(container)) return;
      const image = container["image"];
      if (isUnknown(image)) return;
      if (typeof image === "string" && isPinnedRef(image)) return;
      const name = typeof container["name"] === "string" ? ` (container ${JSON.stringify(container["name"])})` : "";
      messages.push(`${formatPath([...specPath, list, i, "image"])}${name} is ${show(image)}: not pinned by digest; ${PIN_FIX}`);
    });
  }
  return messages;
};

// ---------------------------------------------------------------------------------------------------------------
// Helm values: every image reference pinned by digest

/** Keys that make an object under `image` an image reference (z2jh: name/tag; Bitnami style: repository/digest). */
const IMAGE_OBJECT_KEYS = ["name", "repository", "tag", "digest"] as const;

/**
 * An `image: {...}` object is pinned when the reference the chart renders from it, `<name|repository>[:<tag>]`,
 * ends in a digest (zero-to-jupyterhub renders `name:tag`, so its pin goes in tag: `"4.4.0@sha256:<hex>"`), or when
 * it has `digest: "sha256:<hex>"`, the field charts in the Bitnami style append as `@<digest>`.
 */
function imageObjectPinned(image: Record<string, unknown>): boolean {
  if (IMAGE_OBJECT_KEYS.some((key) => isUnknown(image[key]))) return true; // judged at `pulumi up`
  const digest = image["digest"];
  if (typeof digest === "string" && DIGEST.test(digest)) return true;
  const base = image["name"] ?? image["repository"] ?? "";
  const tag = image["tag"];
  if (typeof base !== "string") return false;
  const rendered = typeof tag === "string" && tag !== "" ? `${base}:${tag}` : base;
  return isPinnedRef(rendered);
}

const HELM_PIN_FIX_STRING = PIN_FIX;
const HELM_PIN_FIX_OBJECT =
  `put the digest in tag as "<tag>@sha256:<64 lowercase hex>" (zero-to-jupyterhub renders name:tag), ` +
  `or set digest: "sha256:<64 lowercase hex>" where the chart has a digest field`;

function walkHelmImages(node: unknown, path: Path, messages: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((item: unknown, i) => walkHelmImages(item, [...path, i], messages));
    return;
  }
  if (!isRecord(node)) return;
  for (const [key, value] of Object.entries(node)) {
    const here = [...path, key];
    if (key === "image" && !isUnknown(value)) {
      if (typeof value === "string") {
        if (!isPinnedRef(value)) {
          messages.push(`${formatPath(here)} is ${show(value)}: not pinned by digest; ${HELM_PIN_FIX_STRING}`);
        }
        continue;
      }
      if (isRecord(value) && IMAGE_OBJECT_KEYS.some((k) => k in value)) {
        if (!imageObjectPinned(value)) {
          messages.push(`${formatPath(here)} is ${show(value)}: not pinned by digest; ${HELM_PIN_FIX_OBJECT}`);
        }
        continue;
      }
    }
    // zero-to-jupyterhub's prePuller.extraImages: a mapping of arbitrary names to {name, tag} image objects.
    if (key === "extraImages" && isRecord(value)) {
      for (const [entry, image] of Object.entries(value)) {
        if (isRecord(image) && !imageObjectPinned(image)) {
          messages.push(`${formatPath([...here, entry])} is ${show(image)}: not pinned by digest; ${HELM_PIN_FIX_OBJECT}`);
        }
      }
      continue;
    }
    walkHelmImages(value, here, messages);
  }
}

/**
 * Only what the resource's own `values` input sets is visible: images the chart takes from its defaults are not.
 * Helm v4 `Chart` also registers the rendered manifests as resources, which checkWorkloadImagesPinned then sees.
 */
export const checkHelmValuesImagesPinned: Check = (resourceType, props) => {
  if (!HELM_TYPES.has(resourceType)) return [];
  const values = props["values"];
  if (!isRecord(values)) return [];
  const messages: string[] = [];
  walkHelmImages(values, ["values"], messages);
  return messages;
};

// ---------------------------------------------------------------------------------------------------------------
// Jobs: bounded retries and run time

/** Where backoffLimit and activeDeadlineSeconds live: a Job's spec, and the JobSpec a CronJob stamps out. */
const JOB_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  [JOB_TYPE]: ["spec"],
  [CRONJOB_TYPE]: ["spec", "jobTemplate", "spec"],
};

export const checkJobBounded: Check = (resourceType, props) => {
  const specPath = JOB_SPEC_PATHS[resourceType];
  if (specPath === undefined) return [];
  const spec = at(props, specPath);
  if (isUnknown(spec)) return [];
  const backoffLimit = isRecord(spec) ? spec["backoffLimit"] : undefined;
  const deadline = isRecord(spec) ? spec["activeDeadlineSeconds"] : undefined;
  const messages: string[] = [];
  if (!isUnknown(backoffLimit) && !(Number.isInteger(backoffLimit) && (backoffLimit as number) >= 0)) {
    messages.push(
      `${formatPath([...specPath, "backoffLimit"])} is ${show(backoffLimit)}, expected a non-negative integer: ` +
        `set it so a failing pod is retried a bounded number of times (Kubernetes defaults to 6 retries)`,
    );
  }
  if (!isUnknown(deadline) && !(Number.isInteger(deadline) && (deadline as number) > 0)) {
    messages.push(
      `${formatPath([...specPath, "activeDeadlineSeconds"])} is ${show(deadline)}, expected a positive integer ` +
        `(seconds): set it so a hung Job cannot hold its node forever (Kubernetes sets no deadline by default)`,
    );
  }
  return messages;
};

// ---------------------------------------------------------------------------------------------------------------
// Helm values: no plaintext secret

/**
 * A key names a secret when one of its trailing word runs, joined, is in this list. Words come from camelCase,
 * snake_case, kebab-case and UPPER_CASE: `cookieSecret` → [cookie, secret], `OPENAI_API_KEY` → [openai, api, key],
 * `client_secret` → [client, secret]. So `apiKey`, `api_key`, `APIKEY`, `hub.services.x.apiToken`, `auth_token`,
 * `proxy.secretToken`, `hub.db.password`, `GitHubOAuthenticator.client_secret` match; `secretName`, `tokenLength`,
 * `pullSecrets`, `secretKeyRef`, `secretSync` do not (their last word is not in the list).
 */
export const SECRET_KEY_WORDS: readonly string[] = [
  "password",
  "passwd",
  "passphrase",
  "secret",
  "token",
  "credential",
  "credentials",
  "apikey",
  "privatekey",
  "secretkey",
  "clientsecret",
  "cookiesecret",
  "secrettoken",
  "apitoken",
  "accesstoken",
  "authtoken",
];
const SECRET_WORDS: ReadonlySet<string> = new Set(SECRET_KEY_WORDS);

/** Splits a key into lowercase words at case changes and separators. */
export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word !== "")
    .map((word) => word.toLowerCase());
}

/**
 * Whether a key's string value would be a secret. Keys whose string is the *name* of a Kubernetes Secret are
 * exempt: `existing...` (z2jh `hub.existingSecret`, Bitnami `auth.existingSecret`) and `...PullSecret`.
 */
export function isSecretKey(key: string): boolean {
  const words = keyWords(key);
  if (words[0] === "existing") return false;
  if (words.length >= 2 && words[words.length - 2] === "pull" && words[words.length - 1] === "secret") return false;
  for (let k = 0; k < words.length; k++) {
    if (SECRET_WORDS.has(words.slice(k).join(""))) return true;
  }
  return false;
}

const SECRET_FIX =
  "Helm keeps values in its release record and prints them with helm get values; reference a Kubernetes Secret " +
  "instead (e.g. hub.existingSecret, or an env entry with valueFrom.secretKeyRef), or leave it empty where the " +
  "chart generates one";

function holdsPlainSecret(value: unknown): boolean {
  return typeof value === "string" && value !== "" && !isUnknown(value);
}

function walkHelmSecrets(node: unknown, path: Path, messages: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((item: unknown, i) => walkHelmSecrets(item, [...path, i], messages));
    return;
  }
  if (!isRecord(node)) return;
  // Env-var lists (`extraEnv: [{name: "API_TOKEN", value: "..."}]`) hide the secret's name in a sibling field.
  const envName = node["name"];
  const envValue = node["value"];
  const envIsSecret = typeof envName === "string" && isSecretKey(envName) && holdsPlainSecret(envValue);
  for (const [key, value] of Object.entries(node)) {
    const here = [...path, key];
    if (key === "value" && envIsSecret) {
      messages.push(`${formatPath(here)} (env var ${JSON.stringify(envName)}) holds a non-empty plain string: ${SECRET_FIX}`);
    } else if (isSecretKey(key) && holdsPlainSecret(value)) {
      messages.push(`${formatPath(here)} holds a non-empty plain string: ${SECRET_FIX}`);
    } else {
      walkHelmSecrets(value, here, messages);
    }
  }
}

/**
 * Flags every secret-named key in `values` that holds a non-empty string. It never prints the value. Because
 * policies receive Pulumi secrets unwrapped (see the top of this file), a value built with `pulumi.secret(...)` is
 * flagged like a literal: the rule is "no secret values in Helm values", references only.
 */
export const checkHelmValuesNoPlaintextSecrets: Check = (resourceType, props) => {
  if (!HELM_TYPES.has(resourceType)) return [];
  const values = props["values"];
  if (!isRecord(values)) return [];
  const messages: string[] = [];
  walkHelmSecrets(values, ["values"], messages);
  return messages;
};

/** Every rule, in the order the pack registers them. */
export const RULES: readonly { name: string; description: string; check: Check }[] = [
  {
    name: POLICY_NAMES.ecrImmutableTags,
    description:
      "ECR repositories have immutable tags; only signature (sha256-*, *.sig, *.att, *.sbom) and build-cache " +
      "(buildcache*) tags may be excluded.",
    check: checkEcrImmutableTags,
  },
  {
    name: POLICY_NAMES.ecrScanOnPush,
    description: "ECR repositories scan every image on push.",
    check: checkEcrScanOnPush,
  },
  {
    name: POLICY_NAMES.ecrKmsEncryption,
    description: "ECR repositories are encrypted with a KMS key.",
    check: checkEcrKmsEncryption,
  },
  {
    name: POLICY_NAMES.workloadImagesPinned,
    description: "Every container, init container and ephemeral container image in a Kubernetes workload is pinned by @sha256 digest.",
    check: checkWorkloadImagesPinned,
  },
  {
    name: POLICY_NAMES.helmImagesPinned,
    description: "Every image reference set in Helm values is pinned by @sha256 digest.",
    check: checkHelmValuesImagesPinned,
  },
  {
    name: POLICY_NAMES.jobBounded,
    description: "Jobs (and CronJob job templates) set backoffLimit and activeDeadlineSeconds.",
    check: checkJobBounded,
  },
  {
    name: POLICY_NAMES.helmNoPlaintextSecrets,
    description: "Helm values carry no secret values; secrets are referenced from Kubernetes Secrets.",
    check: checkHelmValuesNoPlaintextSecrets,
  },
];
