import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT_ROOT } from "../lib/paths";
import { z } from "zod";
import { type Catalog, type CatalogVariant, loadCatalog } from "./catalog";
import { type GpuPool, gpuPoolSchema } from "../lib/gpu-pool";
import { type RegistryConfig, registrySchema } from "../lib/registry";
export type { GpuPool, Toleration } from "../lib/gpu-pool";
export { DEFAULT_LOCAL_REGISTRY_IMAGE, type EcrRegistryConfig, type LocalRegistryConfig, type RegistryConfig } from "../lib/registry";
import { type ChartImages, chartImageProblems, loadChartImages } from "../lib/chart-images";
import { checkPoolCompatibility, GPU_DATASHEETS } from "../lib/cuda";
import { loadChartDefaults, mergeHubValues, validateHubValues } from "../components/hub/hub-values";
import { validateIgnoreFile } from "../components/supply-chain/trivy";
import { parseImageRef } from "../lib/image-ref";
import { isValidRepositoryName, sanitizeLogin, userRepositoryName } from "../lib/naming";
import { ConfigError, didYouMean, type Problem, renderReceived, zodProblems } from "../lib/problems";
import { dnsLabel, sha256Digest, strictObject } from "../lib/zod-util";

/**
 * Every stack key, parsed once with zod into typed data (issue #2). Components receive this data and never read
 * pulumi.Config (GUIDE §3.5). Each top-level key is one Pulumi config key under the `workbench-images:` namespace;
 * objects are structured config (`pulumi config set --path 'workbench-images:registry.region' us-east-1`).
 * Later issues extend the schema by adding keys to `stackSchema`.
 */

export const PROJECT = "workbench-images";
export const ENVIRONMENTS = ["local", "dev", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Kubernetes contexts that name a cluster on the user's own machine (kind, k3d, minikube, desktop distributions). */
const LOCAL_CONTEXT = /^(kind-.+|k3d-.+|minikube|docker-desktop|rancher-desktop|orbstack|colima(-.+)?)$/;

const cluster = strictObject({
  /** Context name inside the kubeconfig. With a `kubeconfig` secret, selects a context in it. */
  context: z.string().min(1).optional(),
  /** Path of the kubeconfig file holding `context`; never the ambient KUBECONFIG variable. */
  kubeconfigPath: z.string().min(1).default("~/.kube/config"),
});

const signing = z.discriminatedUnion(
  "mode",
  [
    strictObject({ mode: z.literal("none") }),
    strictObject({
      mode: z.literal("cosign-kms"),
      /** KMS alias of the stack's signing key, created by this program. */
      keyAlias: z.string().regex(/^alias\/[A-Za-z0-9/_-]+$/, { error: 'must be a KMS alias such as "alias/workbench-images-dev".' }),
      /** IAM role ARNs allowed to sign (the deploying role); nobody else may use the key. */
      signerRoleArns: z
        .array(z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, { error: "must be an IAM role ARN." }))
        .min(1),
      /** Upload signatures to the public Rekor transparency log. Off for private registries: see README. */
      tlogUpload: z.boolean().default(false),
      cosignVersion: z.string().default("v2.5.3"),
    }),
  ],
  { error: (iss) => (iss.code === "invalid_union" ? 'needs mode: "cosign-kms" or mode: "none".' : undefined) },
);

const scan = strictObject({
  scanner: z.enum(["trivy", "none"]).default("trivy"),
  severities: z.array(z.enum(["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"])).min(1).default(["CRITICAL", "HIGH"]),
  /** Trivy ignore file (YAML) relative to the project root; every entry needs an expiry and a statement. */
  ignoreFile: z.string().default(".trivyignore.yaml"),
});

const admission = strictObject({
  /** Install Kyverno from its Helm chart; false when the cluster already runs it. */
  installKyverno: z.boolean().default(true),
  kyvernoChartVersion: z.string().default("3.5.2"),
  kyvernoNamespace: dnsLabel.default("kyverno"),
});

const validation = strictObject({
  namespace: dnsLabel.default("workbench-validation"),
  /** `gpu` runs every check on GPU nodes; `cpu` (local stack, CI) runs what needs no GPU. */
  mode: z.enum(["gpu", "cpu"]).optional(),
  matmulFraction: z.number().gt(0).max(1).default(0.7),
  bandwidthFraction: z.number().gt(0).max(1).default(0.8),
  /** The Job's activeDeadlineSeconds; Pulumi's create timeout is set a little longer. */
  deadlineSeconds: z.number().int().min(60).max(7200).default(900),
  backoffLimit: z.number().int().min(0).max(3).default(1),
  shmSize: z.string().regex(/^\d+(Mi|Gi)$/, { error: 'must be a quantity like "8Gi".' }).default("8Gi"),
});

const jupyterhub = strictObject({
  enabled: z.boolean().default(true),
  namespace: dnsLabel.default("jupyterhub"),
  releaseName: dnsLabel.default("jupyterhub"),
  chartVersion: z.string().default("4.4.0"),
  chartRepository: z.string().url().default("https://hub.jupyter.org/helm-chart/"),
  timeoutSeconds: z.number().int().min(60).max(3600).default(900),
  /** The stack's own chart values; generated values (profileList, pre-puller, extraConfig) are merged over them. */
  values: z.record(z.string(), z.unknown()).default({}),
  prePuller: z.boolean().default(true),
});

const user = strictObject({
  login: z.string().min(1),
  uid: z.number().int(),
  gid: z.number().int(),
  project: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, { error: "must be lowercase letters and digits joined by '.', '_' or '-'." }),
  baseVariant: z.string().min(1),
  sudo: z.boolean().default(false),
});

const promotedImage = strictObject({
  /** The digest dev validated; the copy in prod keeps it. */
  digest: sha256Digest,
  /** Where dev pushed it: repository@sha256:… */
  source: z.string().refine((s) => parseImageRef(s)?.digest !== undefined, { error: "must be repository@sha256:<digest>." }),
  /** Pools dev validated it on (informational; prod validates again on its own pools). */
  validatedPools: z.array(z.string()).default([]),
});

const promotion = strictObject({
  from: z.string().min(1).default("dev"),
  /** Written by `npm run promote`: variant → digest to copy. Review it in the pull request. */
  images: z.record(z.string(), promotedImage).default({}),
});

const variantOverride = strictObject({
  /** Pools this variant is never validated on or offered on (e.g. a driver too old for its CUDA). */
  excludePools: z.array(z.string()).default([]),
  /** false: the variant is skipped in this stack entirely. */
  enabled: z.boolean().default(true),
});

const source = strictObject({
  url: z.string().url().default("https://github.com/workbench-images/workbench-images"),
  /** VCS revision for `org.opencontainers.image.revision`; default: the variant's content hash. */
  revision: z.string().optional(),
});

const stackSchema = strictObject({
  environment: z.enum(ENVIRONMENTS).optional(),
  mode: z.enum(["build", "promote"]).optional(),
  catalogPath: z.string().min(1).default("images/catalog.yaml"),
  registry: registrySchema,
  cluster: cluster.default({ kubeconfigPath: "~/.kube/config" }),
  /** Secret: a whole kubeconfig (`pulumi config set --secret workbench-images:kubeconfig < file`). */
  kubeconfig: z.string().min(1).optional(),
  gpuPools: z.array(gpuPoolSchema).default([]),
  signing: signing.default({ mode: "none" }),
  scan: scan.default({ scanner: "trivy", severities: ["CRITICAL", "HIGH"], ignoreFile: ".trivyignore.yaml" }),
  admission: admission.default({ installKyverno: true, kyvernoChartVersion: "3.5.2", kyvernoNamespace: "kyverno" }),
  validation: validation.default({
    namespace: "workbench-validation",
    matmulFraction: 0.7,
    bandwidthFraction: 0.8,
    deadlineSeconds: 900,
    backoffLimit: 1,
    shmSize: "8Gi",
  }),
  jupyterhub: jupyterhub.default({
    enabled: true,
    namespace: "jupyterhub",
    releaseName: "jupyterhub",
    chartVersion: "4.4.0",
    chartRepository: "https://hub.jupyter.org/helm-chart/",
    timeoutSeconds: 900,
    values: {},
    prePuller: true,
  }),
  /** Secret chart values by dotted path (`hub.config.GitHubOAuthenticator.client_secret`): never in plain config. */
  jupyterhubSecrets: z.record(z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/), z.string()).default({}),
  users: z.array(user).default([]),
  promotion: promotion.default({ from: "dev", images: {} }),
  variants: z.record(z.string(), variantOverride).default({}),
  source: source.default({ url: "https://github.com/workbench-images/workbench-images" }),
});

type StackInput = z.infer<typeof stackSchema>;
export type SigningConfig = StackInput["signing"];
export type ScanConfig = StackInput["scan"];
export type AdmissionConfig = StackInput["admission"];
export type JupyterHubConfig = StackInput["jupyterhub"];
export type PromotionConfig = StackInput["promotion"];
export type PromotedImage = z.infer<typeof promotedImage>;
export type ValidationConfig = Omit<StackInput["validation"], "mode"> & { mode: "gpu" | "cpu" };

/** A configured user with the names derived from its login (seed 002). */
export interface UserConfig extends z.infer<typeof user> {
  /** Sanitized Linux username baked into the image. */
  username: string;
  /** `<prefix>-<uid>/<project>`, the per-user namespace of seed 002. */
  repositoryName: string;
  /** Stable id of the image: `user-<username>-<project>`. */
  id: string;
}

/** Everything the program needs, parsed and cross-checked. Plain data except the two secrets. */
export interface StackConfig {
  project: string;
  stack: string;
  environment: Environment;
  mode: "build" | "promote";
  projectRoot: string;
  catalog: Catalog;
  /** Variants this stack handles (catalog order; disabled ones dropped). */
  variants: CatalogVariant[];
  registry: RegistryConfig;
  cluster: { context?: string; kubeconfigPath: string };
  kubeconfig?: pulumi.Output<string>;
  gpuPools: GpuPool[];
  /** GPU variant name → the pools it is validated and offered on (compatible and not excluded). */
  poolsByVariant: Record<string, GpuPool[]>;
  signing: SigningConfig;
  scan: ScanConfig;
  admission: AdmissionConfig;
  validation: ValidationConfig;
  jupyterhub: JupyterHubConfig;
  jupyterhubSecrets: Record<string, pulumi.Output<string>>;
  users: UserConfig[];
  promotion: PromotionConfig;
  source: { url: string; revision?: string };
  /** The per-user layer's build context, `per-user/` beside the catalog (seed 002). */
  perUserContext: string;
  /** The Helm charts' own images, pinned by digest where a digest is known. */
  chartImages: ChartImages;
  /** What is not wrong enough to stop the stack but must be seen (printed by the program as warnings). */
  warnings: Problem[];
}

/** Raw input: config values by key without the namespace, as Pulumi stores them (structured values as JSON text). */
export interface RawConfig {
  project: string;
  stack: string;
  projectRoot: string;
  values: Record<string, string>;
  secretKeys: ReadonlySet<string>;
}

const SECRET_KEYS = ["kubeconfig", "jupyterhubSecrets"] as const;

function decode(value: string): unknown {
  const trimmed = value.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return value;
    }
  }
  return value;
}

const KNOWN_KEYS = Object.keys(stackSchema.shape);

/** Parses and cross-checks a stack's configuration. Throws one ConfigError listing every problem. */
export function parseStackConfig(raw: RawConfig): Omit<StackConfig, "kubeconfig" | "jupyterhubSecrets"> & {
  kubeconfig?: string;
  jupyterhubSecrets: Record<string, string>;
} {
  const ns = `${raw.project}:`;
  const problems: Problem[] = [];
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw.values)) input[key] = decode(value);
  for (const key of SECRET_KEYS) {
    if (input[key] !== undefined && !raw.secretKeys.has(key)) {
      problems.push({
        path: `${ns}${key}`,
        message: `holds a secret but is stored in plain text. Set it with \`pulumi config set --secret ${ns}${key} …\` (and remove the plain value).`,
      });
    }
  }
  const isSecret = (p: readonly PropertyKey[]) => SECRET_KEYS.includes(p[0] as (typeof SECRET_KEYS)[number]);
  const parsed = stackSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    // Top-level unknown keys are separate Pulumi config keys: report them under their own name, with the value.
    for (const issue of parsed.error.issues) {
      if (issue.code === "unrecognized_keys" && issue.path.length === 0) {
        for (const k of issue.keys) {
          problems.push({
            path: `${ns}${k}`,
            message: `is not a setting of this program.${didYouMean(k, KNOWN_KEYS) || ` Known settings: ${KNOWN_KEYS.join(", ")}.`} Remove it or correct the spelling.`,
            received: renderReceived(input[k]),
          });
        }
      }
    }
    const nested = parsed.error.issues.filter((i) => !(i.code === "unrecognized_keys" && i.path.length === 0));
    problems.push(...zodProblems(new z.ZodError(nested), ns, { isSecret }));
    throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);
  }
  const c = parsed.data;
  const stackIsEnvironment = (ENVIRONMENTS as readonly string[]).includes(raw.stack);
  const environment: Environment | undefined = c.environment ?? (stackIsEnvironment ? (raw.stack as Environment) : undefined);
  if (environment === undefined) {
    problems.push({
      path: `${ns}environment`,
      message: `is required for a stack not named local, dev or prod. Set it to "local", "dev" or "prod".`,
    });
    throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);
  }
  const mode = c.mode ?? (environment === "prod" ? "promote" : "build");
  const at = (key: string, message: string, received?: unknown) =>
    problems.push({ path: `${ns}${key}`, message, ...(received !== undefined ? { received: renderReceived(received) } : {}) });

  // Environment rules (issues #4, #7): prod never builds; only a local stack may go without cloud, signing or scans.
  if (environment === "prod" && mode === "build") {
    at("mode", 'is "build" on a prod stack. Prod never builds: it promotes digests that dev validated. Set mode: promote.', mode);
  }
  if (environment === "local") {
    if (c.registry.kind !== "local") at("registry.kind", 'must be "local" on the local stack, which uses no cloud.', c.registry.kind);
    if (c.kubeconfig !== undefined) at("kubeconfig", "is set on the local stack. The local stack talks only to a local cluster context: remove it and set cluster.context.");
    if (c.cluster.context === undefined || !LOCAL_CONTEXT.test(c.cluster.context)) {
      at("cluster.context", 'must name a local cluster (kind-*, k3d-*, minikube, docker-desktop, rancher-desktop, orbstack, colima) on the local stack. Point it at your kind or k3d cluster, e.g. "kind-workbench".', c.cluster.context ?? null);
    }
    if (mode === "promote") at("mode", 'is "promote" on the local stack, which has nothing to promote from. Set mode: build.', mode);
  } else {
    if (c.registry.kind !== "ecr") at("registry.kind", `must be "ecr" on the ${environment} stack. The local registry is for the local stack only.`, c.registry.kind);
    if (c.signing.mode === "none") at("signing.mode", `is "none" on the ${environment} stack. Only the local stack may skip signing: set mode: cosign-kms with keyAlias and signerRoleArns.`, "none");
    if (c.scan.scanner === "none") at("scan.scanner", `is "none" on the ${environment} stack. Only the local stack may skip the scan gate: set scanner: trivy.`, "none");
    if (c.cluster.context === undefined && c.kubeconfig === undefined) {
      at("cluster", "names no cluster. Set the kubeconfig secret (`pulumi config set --secret workbench-images:kubeconfig < kubeconfig`) or cluster.context.");
    }
  }
  if (c.registry.kind === "local" && c.signing.mode !== "none") {
    at("signing.mode", 'is "cosign-kms" with a local registry. KMS signing needs ECR; set mode: none on the local stack.', c.signing.mode);
  }

  const catalogFile = path.resolve(raw.projectRoot, c.catalogPath);
  const { catalog, problems: catalogProblems } = loadCatalog(catalogFile, {
    repositoryPrefix: c.registry.repositoryPrefix,
    requireDigests: environment !== "local",
    displayPath: c.catalogPath,
  });
  problems.push(...catalogProblems);
  if (!catalog) throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);

  const byName = new Map(catalog.variants.map((v) => [v.name, v]));
  const names = [...byName.keys()];
  for (const [name, override] of Object.entries(c.variants)) {
    if (!byName.has(name)) at(`variants.${name}`, `names no catalog variant.${didYouMean(name, names) || ` Catalog variants: ${names.join(", ")}.`}`, name);
    override.excludePools.forEach((p, i) => {
      if (!c.gpuPools.some((pool) => pool.name === p)) {
        at(`variants.${name}.excludePools[${i}]`, `names no GPU pool.${didYouMean(p, c.gpuPools.map((x) => x.name)) || " Use a name from gpuPools."}`, p);
      }
    });
  }
  const variants = catalog.variants.filter((v) => c.variants[v.name]?.enabled ?? true);

  // GPU pools: unique names, known products, and the driver floor of every (variant, pool) pair (issue #5).
  const products = Object.keys(GPU_DATASHEETS);
  const poolNames = new Set<string>();
  c.gpuPools.forEach((pool, i) => {
    if (poolNames.has(pool.name)) at(`gpuPools[${i}].name`, "duplicates another pool's name. Pool names must be unique.", pool.name);
    poolNames.add(pool.name);
    if (!products.includes(pool.product)) {
      at(`gpuPools[${i}].product`, `is not a GPU product we have datasheet figures for.${didYouMean(pool.product, products) || ` Known: ${products.join(", ")}.`}`, pool.product);
    }
  });
  const poolsByVariant: Record<string, GpuPool[]> = {};
  for (const v of variants.filter((x) => x.gpu)) {
    const excluded = new Set(c.variants[v.name]?.excludePools ?? []);
    poolsByVariant[v.name] = [];
    for (const pool of c.gpuPools) {
      if (excluded.has(pool.name)) continue;
      const compat = checkPoolCompatibility({ name: v.name, cuda: v.cuda ?? "" }, pool);
      if (compat.ok) poolsByVariant[v.name]!.push(pool);
      else at(`gpuPools[${c.gpuPools.indexOf(pool)}].driverVersion`, compat.message, pool.driverVersion);
    }
  }

  // Users (seed 002): sanitized names must be unique, ids outside the system range, bases in the catalog.
  const users: UserConfig[] = [];
  const byUsername = new Map<string, number>();
  c.users.forEach((u, i) => {
    const username = sanitizeLogin(u.login);
    if (username === "") at(`users[${i}].login`, "sanitizes to an empty username. Use a login with letters or digits.", u.login);
    const prior = byUsername.get(username);
    if (prior !== undefined && c.users[prior]!.login !== u.login) {
      at(`users[${i}].login`, `sanitizes to "${username}", the same username as users[${prior}].login. Two users cannot share a Linux username: change one login.`, u.login);
    } else byUsername.set(username, i);
    if (u.uid < 1000) at(`users[${i}].uid`, "is below 1000, the range of system accounts. Use the user's own UID (≥ 1000).", u.uid);
    if (u.gid < 1000) at(`users[${i}].gid`, "is below 1000, the range of system groups. Use the user's own GID (≥ 1000).", u.gid);
    if (!byName.has(u.baseVariant)) {
      at(`users[${i}].baseVariant`, `names no catalog variant.${didYouMean(u.baseVariant, names) || ` Catalog variants: ${names.join(", ")}.`}`, u.baseVariant);
    } else if (!variants.some((v) => v.name === u.baseVariant)) {
      at(`users[${i}].baseVariant`, "names a variant disabled on this stack. Enable it or choose another base.", u.baseVariant);
    }
    const repositoryName = userRepositoryName(c.registry.repositoryPrefix, u.uid, u.project);
    if (!isValidRepositoryName(repositoryName)) at(`users[${i}].project`, `gives repository "${repositoryName}", which is not a valid repository name. Shorten the project.`, u.project);
    users.push({ ...u, username, repositoryName, id: `user-${username}-${u.project}` });
  });
  // The scan gate's ignore file: every entry states why and expires (issue #4), checked before anything runs.
  if (c.scan.scanner === "trivy") {
    const ignorePath = path.resolve(raw.projectRoot, c.scan.ignoreFile);
    if (!fs.existsSync(ignorePath)) at("scan.ignoreFile", "does not exist. Create it (`vulnerabilities: []` when nothing is ignored) or fix the path.", c.scan.ignoreFile);
    else problems.push(...validateIgnoreFile(fs.readFileSync(ignorePath, "utf8"), c.scan.ignoreFile, new Date()));
  }
  // The stack's own hub values must pass the chart's schema now, not as a Helm failure at deploy time (issue #6).
  if (c.jupyterhub.enabled) {
    for (const message of validateHubValues(mergeHubValues(loadChartDefaults(), c.jupyterhub.values, {}))) {
      const [where, ...rest] = message.split(": ");
      problems.push({ path: `${ns}jupyterhub.values.${where}`, message: `${rest.join(": ")}. Fix the value; it must satisfy the zero-to-jupyterhub ${c.jupyterhub.chartVersion} chart schema.` });
    }
  }
  const perUserContext = path.join(path.dirname(catalogFile), "per-user");
  if (users.length > 0 && !fs.existsSync(path.join(perUserContext, "Dockerfile"))) {
    at("users", `need the per-user layer ${path.relative(raw.projectRoot, path.join(perUserContext, "Dockerfile"))} beside the catalog. Add it, or remove the users.`);
  }
  const ids = new Set<string>();
  users.forEach((u, i) => {
    // Same login twice with one project; different logins that collide were reported above.
    if (ids.has(u.id) && users.some((o, j) => j < i && o.id === u.id && o.login === u.login)) at(`users[${i}].project`, `repeats the project of another entry for ${u.login}. Each (user, project) pair needs one entry.`, u.project);
    ids.add(u.id);
  });

  for (const name of Object.keys(c.promotion.images)) {
    if (!byName.has(name) && !users.some((u) => u.id === name)) {
      at(`promotion.images.${name}`, `names no catalog variant or user image.${didYouMean(name, names) || ""} Re-run \`npm run promote\`.`, name);
    }
  }

  // The charts' own images (issue standard: every image reaching Kubernetes pinned by digest). A malformed pin file
  // is an error; an image still without a digest is listed as a warning until `npm run pin-chart-images` has run on a
  // machine with registry access (docs/chart-images.md), since only such a machine can resolve it.
  let chartImages: ChartImages | undefined;
  try {
    chartImages = loadChartImages(path.join(raw.projectRoot, "images", "chart-images.yaml"));
  } catch (e) {
    if (!ConfigError.is(e)) throw e;
    problems.push(...e.problems);
  }
  const chartImageWarnings =
    chartImages !== undefined && environment !== "local"
      ? chartImageProblems(chartImages, {
          ...(c.jupyterhub.enabled ? { jupyterhub: c.jupyterhub.chartVersion } : {}),
          ...(c.admission.installKyverno && c.signing.mode !== "none" ? { kyverno: c.admission.kyvernoChartVersion } : {}),
        })
      : [];
  // A version mismatch is an error: pins of another chart version say nothing about the one deployed.
  problems.push(...chartImageWarnings.filter((p) => p.path.endsWith(".version")));

  if (problems.length > 0) throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);

  const validationMode = c.validation.mode ?? (environment === "local" ? "cpu" : "gpu");
  const { mode: _m, ...validationRest } = c.validation;
  return {
    project: raw.project,
    stack: raw.stack,
    environment,
    mode,
    projectRoot: raw.projectRoot,
    catalog,
    variants,
    registry: c.registry,
    cluster: c.cluster,
    ...(c.kubeconfig !== undefined ? { kubeconfig: c.kubeconfig } : {}),
    gpuPools: c.gpuPools,
    poolsByVariant,
    signing: c.signing,
    scan: c.scan,
    admission: c.admission,
    validation: { ...validationRest, mode: validationMode },
    jupyterhub: c.jupyterhub,
    jupyterhubSecrets: c.jupyterhubSecrets,
    users,
    promotion: c.promotion,
    source: c.source,
    perUserContext,
    chartImages: chartImages!,
    warnings: chartImageWarnings.filter((p) => !p.path.endsWith(".version")),
  };
}

/**
 * Reads this stack's configuration from the Pulumi runtime, once. Secret values are wrapped as Pulumi secrets here,
 * the only place that sees them in plain form.
 */
export function loadStackConfig(projectRoot: string = PROJECT_ROOT): StackConfig {
  const project = pulumi.getProject();
  const ns = `${project}:`;
  const values: Record<string, string> = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!key.startsWith(ns)) continue;
    const short = key.slice(ns.length);
    values[short] = value;
    if (isConfigSecret(key)) secretKeys.add(short);
  }
  const { kubeconfig, jupyterhubSecrets, ...parsed } = parseStackConfig({ project, stack: pulumi.getStack(), projectRoot, values, secretKeys });
  return {
    ...parsed,
    ...(kubeconfig !== undefined ? { kubeconfig: pulumi.secret(kubeconfig) } : {}),
    jupyterhubSecrets: Object.fromEntries(Object.entries(jupyterhubSecrets).map(([k, v]) => [k, pulumi.secret(v)])),
  };
}

function isConfigSecret(key: string): boolean {
  // @pulumi/pulumi keeps the list of secret keys in the runtime config store (runtime/config.js isConfigSecret).
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (k: string) => boolean };
  return runtimeConfig.isConfigSecret?.(key) ?? false;
}
