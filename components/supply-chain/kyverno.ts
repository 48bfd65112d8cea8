import { mergeHubValues } from "../hub/hub-values";
import { ATTESTATION_PREDICATE_TYPES } from "./cosign";
/**
 * The admission policy as data (issue #4): Kyverno's ClusterPolicy that admits an image of ours only when it is
 * signed by the stack's key, and the Kyverno chart's values. Pure, so tests validate the exact objects against
 * Kyverno's schema (@kubernetes-models/kyverno).
 *
 * Field names were checked against Kyverno's API types (api/kyverno/v1 at v1.15.2, the app version of chart 3.5.2).
 */

export const KYVERNO_CHART_REPOSITORY = "https://kyverno.github.io/kyverno/";
export const KYVERNO_CHART = "kyverno";
/** The annotation EKS's pod identity webhook reads to give a service account's pods an IAM role (IRSA). */
export const IRSA_ANNOTATION = "eks.amazonaws.com/role-arn";
export const PUBLIC_REKOR_URL = "https://rekor.sigstore.dev";

/**
 * Which policy fields the Kyverno behind a chart version reads. Kyverno 1.13 (chart 3.3.0) deprecated the
 * policy-wide `validationFailureAction`, `failurePolicy` and `webhookTimeoutSeconds` in favour of the per-rule
 * `verifyImages[].failureAction` and `spec.webhookConfiguration.{failurePolicy,timeoutSeconds}`, and refuses a
 * policy that sets both forms of one setting (Spec.validateDeprecatedFields). "current" writes only the new fields,
 * "legacy" only the old ones: never both.
 */
export type PolicyFieldStyle = "current" | "legacy";

const FIRST_CURRENT_CHART: readonly [number, number, number] = [3, 3, 0];

/** The field style for a Kyverno chart version (`3.5.2`, `v3.5.2`); undefined when it is not a version. */
export function kyvernoFieldStyle(chartVersion: string): PolicyFieldStyle | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(chartVersion);
  if (!m) return undefined;
  const v = [Number(m[1]), Number(m[2]), Number(m[3])];
  for (let i = 0; i < 3; i++) {
    if (v[i]! !== FIRST_CURRENT_CHART[i]) return v[i]! > FIRST_CURRENT_CHART[i]! ? "current" : "legacy";
  }
  return "current";
}

/** The ECR registry host of an account and region (China regions live under amazonaws.com.cn). */
export function ecrRegistryHost(accountId: string, region: string): string {
  return `${accountId}.dkr.ecr.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
}

/**
 * Every repository this program pushes to: `<registry>/<prefix>/*` (catalog variants) and `<registry>/<prefix>-*\/*`
 * (per-user images, `<prefix>-<uid>/<project>`, seed 002). Kyverno's `*` also matches '/' and the tag or digest.
 * Patterns rather than the current list of repositories, so that a repository added later, or one a pod names before
 * this program created it, is covered too: the policy fails closed.
 */
export function imageReferencePatterns(registryHost: string, repositoryPrefix: string): string[] {
  return [`${registryHost}/${repositoryPrefix}/*`, `${registryHost}/${repositoryPrefix}-*/*`];
}

export interface ClusterPolicyOptions {
  /** metadata.name of the ClusterPolicy. */
  name: string;
  /** Image reference patterns whose images must be signed (imageReferencePatterns). */
  imageReferences: readonly string[];
  /** The signing key's public key, PEM. */
  publicKeyPem: string;
  /**
   * Further keys accepted during a key rotation: a signature by any one key admits the image.
   * @default none
   */
  additionalPublicKeysPem?: readonly string[];
  /** Namespaces whose pods are checked (the validation and JupyterHub namespaces). */
  namespaces: readonly string[];
  /**
   * Whether signatures were uploaded to Rekor. Kyverno checks the transparency log for a key attestor unless told
   * not to (engine/internal/imageverifier.go: no `rekor` means the public log and ignoreTlog=false), so signatures
   * made with `--tlog-upload=false` need `ignoreTlog: true` or every pod is refused.
   */
  tlogUpload: boolean;
  /**
   * Also require, on every image the policy checks, a CycloneDX SBOM and a SLSA v1 provenance attestation signed by
   * one of the same keys (admission.requireAttestations; issue #12). @default false: the signature alone admits
   */
  requireAttestations?: boolean;
  /** Admission webhook timeout; image verification fetches from the registry, so allow the maximum. @default 30 */
  webhookTimeoutSeconds?: number;
  /** @default "current" (Kyverno 1.13+, chart 3.3.0+) */
  fieldStyle?: PolicyFieldStyle;
}

/** A ClusterPolicy (kyverno.io/v1) as plain JSON. */
export interface ClusterPolicyDocument {
  apiVersion: "kyverno.io/v1";
  kind: "ClusterPolicy";
  metadata: { name: string; annotations: Record<string, string> };
  spec: Record<string, unknown>;
}

/** Renders a string list as a CEL list literal of single-quoted strings. */
function celList(items: readonly string[]): string {
  return `[${items.map((s) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`).join(", ")}]`;
}

/**
 * The ClusterPolicy: in `namespaces`, a Pod (and, through Kyverno's autogen, a Job or Deployment template) may run
 * an image matching `imageReferences` only when the image is referenced by a digest signed by one of the keys.
 * Images of other repositories (the hub's own, for example) are not this policy's concern.
 */
export function clusterPolicy(options: ClusterPolicyOptions): ClusterPolicyDocument {
  const problems: string[] = [];
  if (options.imageReferences.length === 0) problems.push("imageReferences is empty: the policy would check no image.");
  if (options.namespaces.length === 0) problems.push("namespaces is empty: the policy would check no pod.");
  const keys = [options.publicKeyPem, ...(options.additionalPublicKeysPem ?? [])];
  keys.forEach((k, i) => {
    if (!/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/.test(k)) {
      problems.push(`${i === 0 ? "publicKeyPem" : `additionalPublicKeysPem[${i - 1}]`} is not a PEM public key ("-----BEGIN PUBLIC KEY-----" … "-----END PUBLIC KEY-----").`);
    }
  });
  const timeout = options.webhookTimeoutSeconds ?? 30;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 30) {
    problems.push(`webhookTimeoutSeconds must be a whole number from 1 to 30 (the API server's limit), got ${timeout}.`);
  }
  if (problems.length > 0) throw new Error(`Kyverno ClusterPolicy "${options.name}": ${problems.join(" ")}`);

  const style = options.fieldStyle ?? "current";
  const attestors = () => [
    {
      // One entry per accepted key; count 1: a signature by any one of them admits the image (key rotation).
      count: 1,
      entries: keys.map((pem) => ({
        keys: {
          publicKeys: pem,
          rekor: options.tlogUpload ? { url: PUBLIC_REKOR_URL } : { url: PUBLIC_REKOR_URL, ignoreTlog: true },
          // A key signature carries no certificate, so there is no certificate timestamp to check.
          ctlog: { ignoreSCT: true },
        },
      })),
    },
  ];
  const verifyImages: Record<string, unknown> = {
    ...(style === "current" ? { failureAction: "Enforce" } : {}),
    type: "Cosign",
    imageReferences: [...options.imageReferences],
    attestors: attestors(),
    // Kyverno 1.15 ImageVerification.attestations: each entry's `type` is the in-toto predicate type, and without
    // `conditions` an attestation of that type signed by the attestors satisfies it (the CRD's own description).
    ...(options.requireAttestations === true
      ? {
          attestations: [
            { type: ATTESTATION_PREDICATE_TYPES.cyclonedx, attestors: attestors() },
            { type: ATTESTATION_PREDICATE_TYPES.slsaprovenance1, attestors: attestors() },
          ],
        }
      : {}),
    // Pods must name a digest; a tag is resolved and replaced by its digest, so what runs is what was verified.
    mutateDigest: true,
    verifyDigest: true,
    required: true,
  };
  const rule = {
    name: "signed-by-stack-key",
    match: { any: [{ resources: { kinds: ["Pod"], namespaces: [...options.namespaces] } }] },
    verifyImages: [verifyImages],
  };
  const spec: Record<string, unknown> =
    style === "current"
      ? {
          // Admission is the gate; a background re-check would need registry credentials on the reports controller too.
          background: false,
          webhookConfiguration: {
            failurePolicy: "Fail",
            timeoutSeconds: timeout,
            // Kyverno gives a policy with match conditions its own webhook (controllers/webhook newWebhookPerPolicy),
            // so with failurePolicy Fail an unavailable Kyverno blocks pods in these namespaces only, not everywhere.
            matchConditions: [{ name: "workbench-namespaces", expression: `request.namespace in ${celList(options.namespaces)}` }],
          },
          rules: [rule],
        }
      : {
          background: false,
          validationFailureAction: "Enforce",
          failurePolicy: "Fail",
          webhookTimeoutSeconds: timeout,
          rules: [rule],
        };
  return { apiVersion: "kyverno.io/v1", kind: "ClusterPolicy", metadata: clusterPolicyMetadata(options.name, options.requireAttestations ?? false), spec };
}

/** The ClusterPolicy's metadata: plain data, known before the key exists (so a preview shows the name). */
export function clusterPolicyMetadata(name: string, requireAttestations = false): ClusterPolicyDocument["metadata"] {
  const signed = "Pods in the workbench namespaces run images of this program's repositories only by a digest signed with the stack's cosign KMS key";
  return {
    name,
    annotations: {
      "policies.kyverno.io/title": requireAttestations ? "Workbench images are signed and attested" : "Workbench images are signed",
      "policies.kyverno.io/description": requireAttestations
        ? `${signed}, with a CycloneDX SBOM and a SLSA provenance attestation signed by the same key.`
        : `${signed}.`,
    },
  };
}

/**
 * Chart values for the Kyverno release. Kyverno fetches signatures from ECR with its built-in Amazon credential
 * helper (chart value features.registryClient.credentialHelpers includes "amazon"), which needs AWS credentials in
 * the admission controller: IRSA on its service account.
 */
export function kyvernoChartValues(options: { serviceAccountRoleArn?: string; imageValues?: Record<string, unknown> }): Record<string, unknown> {
  const irsa =
    options.serviceAccountRoleArn === undefined
      ? {}
      : { admissionController: { rbac: { serviceAccount: { annotations: { [IRSA_ANNOTATION]: options.serviceAccountRoleArn } } } } };
  // Helm's merge (mappings merge, the rest replaces) serves any chart's values.
  return mergeHubValues({}, options.imageValues ?? {}, irsa);
}
