import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import type { ChartImages } from "../lib/chart-images";
import { type GpuPool, gpuPoolSchema } from "../lib/gpu-pool";
import { isDigestPinned } from "../lib/image-ref";
import { MAX_LINUX_ID } from "../lib/k8s-names";
import type { Problem } from "../lib/problems";
import { type RegistryConfig, registrySchema } from "../lib/registry";
import { dnsLabel, sha256Digest, strictObject } from "../lib/zod-util";
import type { Catalog, CatalogVariant } from "./catalog";
import type { ImageSpec } from "./images";
export type { GpuPool, Toleration } from "../lib/gpu-pool";
export { DEFAULT_LOCAL_REGISTRY_IMAGE, type EcrRegistryConfig, type LocalRegistryConfig, type RegistryConfig } from "../lib/registry";

/**
 * The stack configuration's schema and types. Every stack key, parsed once with zod into typed data (issue #2).
 * Components receive this data and never read pulumi.Config (GUIDE §3.5). Each top-level key is one Pulumi config key under the `workbench-images:` namespace;
 * objects are structured config (`pulumi config set --path 'workbench-images:registry.region' us-east-1`).
 * Later issues extend the schema by adding keys to `stackSchema`.
 */

export const PROJECT = "workbench-images";
export const ENVIRONMENTS = ["local", "dev", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Kubernetes contexts that name a cluster on the user's own machine (kind, k3d, minikube, desktop distributions). */
export const LOCAL_CONTEXT = /^(kind-.+|k3d-.+|minikube|docker-desktop|rancher-desktop|orbstack|colima(-.+)?)$/;

/** A Helm chart version: semver (https://semver.org), as Helm requires of Chart.yaml `version`. */
const chartVersion = z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, {
  error: 'must be a chart version such as "4.4.0" (semver).',
});

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
      /** The cosign release every sign command requires on PATH (the one .github/tool-versions.env pins). */
      cosignVersion: z.string().regex(/^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, { error: 'must be a cosign release such as "v2.5.3".' }).default("v2.5.3"),
    }),
  ],
  { error: (iss) => (iss.code === "invalid_union" ? 'needs mode: "cosign-kms" or mode: "none".' : undefined) },
);

const scan = strictObject({
  scanner: z.enum(["trivy", "none"]).default("trivy"),
  severities: z.array(z.enum(["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"])).min(1).default(["CRITICAL", "HIGH"]),
  /** Trivy ignore file (YAML) relative to the project root; every entry needs an expiry and a statement. */
  ignoreFile: z.string().default(".trivyignore.yaml"),
  /**
   * Let HIGH/CRITICAL findings that have no fixed version yet pass (trivy --ignore-unfixed). Off by default: seed 004
   * fails the scan on HIGH and CRITICAL, fixed or not; accept a single finding with an expiring ignore-file entry instead.
   */
  ignoreUnfixed: z.boolean().default(false),
});

const admission = strictObject({
  /** Install Kyverno from its Helm chart; false when the cluster already runs it. */
  installKyverno: z.boolean().default(true),
  kyvernoChartVersion: chartVersion.default("3.5.2"),
  kyvernoNamespace: dnsLabel.default("kyverno"),
  /**
   * IAM role (IRSA) annotated on Kyverno's admission-controller service account, so it can read signatures and
   * attestations from ECR. Without it Kyverno uses its node's credentials, which usually cannot read ECR, and admission
   * then fails closed for every pod of ours.
   */
  kyvernoServiceAccountRoleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, { error: "must be an IAM role ARN." }).optional(),
  /** PEM public keys also accepted while a signing-key rotation overlaps (the old key's PEM). */
  additionalPublicKeysPem: z
    .array(z.string().regex(/^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/, { error: "must be a PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----)." }))
    .default([]),
  /** metadata.name of the ClusterPolicy; give each stack its own when stacks share a cluster. */
  policyName: dnsLabel.default("workbench-images-signed"),
  /** How long the API server waits for Kyverno's verdict (Kubernetes allows 1–30 s). */
  webhookTimeoutSeconds: z.number().int().min(1).max(30).default(30),
  /** Also require the SBOM and provenance attestations on every image of ours. Default: on for prod, off elsewhere. */
  requireAttestations: z.boolean().optional(),
});

const validation = strictObject({
  namespace: dnsLabel.default("workbench-validation"),
  /** `gpu` runs every check on GPU nodes; `cpu` (local stack, CI) runs what needs no GPU. */
  mode: z.enum(["gpu", "cpu"]).optional(),
  matmulFraction: z.number().gt(0).max(1).default(0.7),
  bandwidthFraction: z.number().gt(0).max(1).default(0.8),
  /** Stack-wide defaults of the check's other thresholds (gpuPools[].thresholds override per pool); unset: the check's own. */
  sustainedRatio: z.number().gt(0).max(1).optional(),
  busbwFraction: z.number().gt(0).max(1).optional(),
  sustainSeconds: z.number().min(0).max(3600).optional(),
  /**
   * How long the check itself may run once its container started (after the pull). The Job's activeDeadlineSeconds
   * adds pod start-up and the pull of the image's size budget at pullMBps; Pulumi's create timeout is a little longer.
   */
  deadlineSeconds: z.number().int().min(60).max(7200).default(900),
  /** Registry throughput a node reaches pulling and unpacking an image (MB/s): budgets the pull from sizeBudgetMB. */
  pullMBps: z.number().gt(0).max(10000).default(25),
  /**
   * Scheduling and pod start before the pull, in each Job's activeDeadlineSeconds. Raise it for node pools that scale
   * from zero (a new GPU node, its driver and GPU Feature Discovery labels take minutes).
   */
  podStartSeconds: z.number().int().min(0).max(3600).default(120),
  /**
   * Failed check pods retried before the Job (and `pulumi up`) fails. 0: the first failure fails at once, with the
   * check's verdict; evicted or preempted pods are always replaced and never count.
   */
  backoffLimit: z.number().int().min(0).max(3).default(0),
  shmSize: z.string().regex(/^\d+(Mi|Gi)$/, { error: 'must be a quantity like "8Gi".' }).default("8Gi"),
});

const jupyterhub = strictObject({
  enabled: z.boolean().default(true),
  namespace: dnsLabel.default("jupyterhub"),
  releaseName: dnsLabel.default("jupyterhub"),
  chartVersion: chartVersion.default("4.4.0"),
  /** Where Helm fetches the chart: an https repository or an oci:// registry, without credentials in the URL. */
  chartRepository: z
    .string()
    .regex(/^(?:https|oci):\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~\/-]*)?$/, {
      error: 'must be an https:// Helm repository or an oci:// registry URL without credentials, e.g. "https://hub.jupyter.org/helm-chart/".',
    })
    .default("https://hub.jupyter.org/helm-chart/"),
  timeoutSeconds: z.number().int().min(60).max(3600).default(900),
  /** The stack's own chart values; generated values (profileList, pre-puller, extraConfig) are merged over them. */
  values: z.record(z.string(), z.unknown()).default({}),
  prePuller: z.boolean().default(true),
});

const user = strictObject({
  /** The Linux login of seed 002 (user name and home baked into the image are derived from it). */
  login: z.string().min(1),
  /**
   * The owner's JupyterHub username, as the hub's authenticator produces it (a GitHub login with the GitHub
   * authenticator): only this user is offered the personal profile. Default: `login`, when the authenticator allows it.
   */
  hubUsername: z.string().min(1).optional(),
  /** Linux uid, as Kubernetes accepts it in runAsUser (0..2147483647; ≥ 1000 checked with the fix). */
  uid: z.number().int().min(0).max(MAX_LINUX_ID, { error: `must be at most ${MAX_LINUX_ID}: Kubernetes refuses larger ids in runAsUser. Use the user's own uid.` }),
  gid: z.number().int().min(0, { error: "must be 0 or more: use the user's own gid." }).max(MAX_LINUX_ID, { error: `must be at most ${MAX_LINUX_ID}: Kubernetes refuses larger ids in runAsGroup and fsGroup. Use the user's own gid.` }),
  project: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, { error: "must be lowercase letters and digits joined by '.', '_' or '-'." }),
  baseVariant: z.string().min(1),
  sudo: z.boolean().default(false),
});

const promotedImage = strictObject({
  /** The digest dev validated; the copy in prod keeps it. */
  digest: sha256Digest,
  /** Where dev pushed it: repository@sha256:… */
  source: z.string().refine(isDigestPinned, { error: "must be repository@sha256:<digest>." }),
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
  /** The source repository, an https URL (OCI `org.opencontainers.image.source` label and provenance). */
  url: z
    .string()
    .regex(/^https:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~\/-]*)?$/, {
      error: 'must be the https URL of the source repository, without credentials, e.g. "https://github.com/org/repo".',
    })
    .default("https://github.com/workbench-images/workbench-images"),
  /** VCS revision for `org.opencontainers.image.revision`: a commit id or ref name. Default: the variant's content hash. */
  revision: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._\/-]{0,199}$/, { error: "must be a commit id or ref name: letters, digits, '.', '_', '/', '-'." })
    .refine((r) => !r.includes(".."), { error: "must not contain '..' (not a valid git ref)." })
    .optional(),
});

export const stackSchema = strictObject({
  environment: z.enum(ENVIRONMENTS).optional(),
  mode: z.enum(["build", "promote"]).optional(),
  catalogPath: z.string().min(1).default("images/catalog.yaml"),
  /**
   * Build images during `pulumi preview` too. Off by default: previews of branch code must not spend an hour on
   * multi-GB CUDA builds, and never export the build cache that deploys read (issue #12).
   */
  buildOnPreview: z.boolean().default(false),
  registry: registrySchema,
  cluster: cluster.default({ kubeconfigPath: "~/.kube/config" }),
  /** Secret: a whole kubeconfig (`pulumi config set --secret workbench-images:kubeconfig < file`). */
  kubeconfig: z.string().min(1).optional(),
  gpuPools: z.array(gpuPoolSchema).default([]),
  signing: signing.default({ mode: "none" }),
  scan: scan.default({ scanner: "trivy", severities: ["CRITICAL", "HIGH"], ignoreFile: ".trivyignore.yaml", ignoreUnfixed: false }),
  admission: admission.default({
    installKyverno: true,
    kyvernoChartVersion: "3.5.2",
    kyvernoNamespace: "kyverno",
    additionalPublicKeysPem: [],
    policyName: "workbench-images-signed",
    webhookTimeoutSeconds: 30,
  }),
  validation: validation.default({
    namespace: "workbench-validation",
    matmulFraction: 0.7,
    bandwidthFraction: 0.8,
    deadlineSeconds: 900,
    pullMBps: 25,
    podStartSeconds: 120,
    backoffLimit: 0,
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
  /**
   * Seed 003's discovery service: after the hub release succeeded, each offered image's record is registered there
   * (and removed when the image is no longer offered). Unset: the records are only published in the catalog ConfigMap
   * and the `catalog` output.
   */
  discovery: strictObject({
    /** Base URL of the control service's API; records go to `<url>/images/<name>`. https, except http on 127.0.0.1/localhost. */
    url: z.string().url(),
    /** Per-request timeout. */
    timeoutSeconds: z.number().int().min(1).max(300).default(30),
  }).optional(),
  /** Secret: the bearer token for discovery.url (`pulumi config set --secret workbench-images:discoveryToken`). */
  discoveryToken: z.string().min(1).optional(),
  users: z.array(user).default([]),
  promotion: promotion.default({ from: "dev", images: {} }),
  variants: z.record(z.string(), variantOverride).default({}),
  source: source.default({ url: "https://github.com/workbench-images/workbench-images" }),
});

export type StackInput = z.infer<typeof stackSchema>;
export type SigningConfig = StackInput["signing"];
export type ScanConfig = StackInput["scan"];
/** admission.* with requireAttestations resolved (on for prod unless set). */
export type AdmissionConfig = Omit<StackInput["admission"], "requireAttestations"> & { requireAttestations: boolean };
export type JupyterHubConfig = StackInput["jupyterhub"];
export type PromotionConfig = StackInput["promotion"];
export type PromotedImage = z.infer<typeof promotedImage>;
export type ValidationConfig = Omit<StackInput["validation"], "mode"> & { mode: "gpu" | "cpu" };

/** A configured user with the names derived from its login (seed 002). */
export interface UserConfig extends Omit<z.infer<typeof user>, "hubUsername"> {
  /** JupyterHub username (normalized as JupyterHub's default normalize_username does: lowercase). */
  hubUsername: string;
  /** Sanitized Linux username baked into the image. */
  username: string;
  /** `<prefix>-<uid>/<project>`, the per-user namespace of seed 002. */
  repositoryName: string;
  /** Stable id of the image: `user-<username>-<project>`. */
  id: string;
}

/** Everything the program needs, parsed and cross-checked. Plain data except the two secrets. */
export interface StackConfig {
  /** The resolved model: every image this stack builds or copies, bases before the images built on them. */
  images: ImageSpec[];
  project: string;
  stack: string;
  environment: Environment;
  mode: "build" | "promote";
  /** Build images in previews too (default false). */
  buildOnPreview: boolean;
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
  /** A value inside jupyterhub was set with --secret: the chart values are then a Pulumi secret as a whole. */
  jupyterhubValuesSecret: boolean;
  /** Seed 003's discovery service, when configured. */
  discovery?: { url: string; timeoutSeconds: number };
  /** Its bearer token, a Pulumi secret. */
  discoveryToken?: pulumi.Output<string>;
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
