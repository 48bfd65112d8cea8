import * as apiextensions from "@pulumi/kubernetes/apiextensions";
// The Release module alone: helm/v3/index also loads the v3 Chart, which loads every Kubernetes API group (~100 modules).
import * as helmv3 from "@pulumi/kubernetes/helm/v3/release";
import * as pulumi from "@pulumi/pulumi";
import { type ChartImages, chartImageValues } from "../../lib/chart-images";
import { clusterPolicy, clusterPolicyMetadata, KYVERNO_CHART, KYVERNO_CHART_REPOSITORY, kyvernoChartValues, kyvernoFieldStyle } from "./kyverno";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** How Kyverno is provided (the stack's `admission.*` keys). */
export interface AdmissionSettings {
  /** Install Kyverno from its Helm chart; false when the cluster already runs it. */
  installKyverno: boolean;
  /** The Kyverno chart version (3.5.2 ships Kyverno 1.15.2, whose ClusterPolicy CRD our policy is checked against). */
  kyvernoChartVersion: string;
  kyvernoNamespace: string;
}

export interface AdmissionPolicyArgs {
  /** admission.*: whether to install Kyverno, its chart version and namespace. */
  admission: AdmissionSettings;
  /** Image reference patterns that must be signed (components/supply-chain/kyverno.ts imageReferencePatterns). */
  imageReferences: string[];
  /** Namespaces this program runs pods in: the validation and JupyterHub namespaces. */
  namespaces: string[];
  /** SigningKey.publicKeyPem. */
  publicKeyPem: pulumi.Input<string>;
  /** Keys also accepted while a rotation overlaps (the old key's PEM). @default none */
  additionalPublicKeysPem?: pulumi.Input<string>[];
  /** signing.tlogUpload: whether the signatures are in Rekor. */
  tlogUpload: boolean;
  /**
   * IAM role (IRSA) for Kyverno's admission controller, so it can read signatures and attestations from ECR. The role
   * needs ecr:GetAuthorizationToken and ecr:BatchGetImage/GetDownloadUrlForLayer on the repositories (docs/supply-chain.md).
   * Used only when this program installs Kyverno.
   * @default none: Kyverno reads ECR with whatever credentials its pods already have (node role)
   */
  kyvernoServiceAccountRoleArn?: pulumi.Input<string>;
  /** metadata.name of the ClusterPolicy; one per stack when stacks share a cluster. @default "workbench-images-signed" */
  policyName?: string;
  /** @default 30 */
  webhookTimeoutSeconds?: number;
  /**
   * Also require the CycloneDX SBOM and SLSA provenance attestations, signed by the same key(s) (admission.requireAttestations).
   * @default false: the signature alone admits
   */
  requireAttestations?: boolean;
  /** Kyverno's own images pinned by digest (images/chart-images.yaml); unpinned ones keep the chart's tags. */
  chartImages: ChartImages;
}

/**
 * Admission enforcement (issue #4): Kyverno, installed from its chart unless admission.installKyverno is false, and a
 * ClusterPolicy that refuses a pod in our namespaces whose image of ours is not signed by the stack's key (and, with
 * requireAttestations, has no SBOM and provenance attestations signed by it).
 */
export class AdmissionPolicy extends pulumi.ComponentResource {
  /** The Kyverno release; undefined when the cluster already runs Kyverno. */
  readonly release?: helmv3.Release;
  readonly policy: apiextensions.CustomResource;
  readonly policyName: pulumi.Output<string>;

  constructor(name: string, args: AdmissionPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:admission:AdmissionPolicy", name, {}, opts);
    const a = args.admission;
    const problems: string[] = [];
    const fieldStyle = kyvernoFieldStyle(a.kyvernoChartVersion);
    if (fieldStyle === undefined) {
      problems.push(`admission.kyvernoChartVersion must be a chart version such as "3.5.2", got ${JSON.stringify(a.kyvernoChartVersion)}.`);
    }
    if (args.imageReferences.length === 0) problems.push("args.imageReferences is empty: the policy would check no image.");
    if (args.namespaces.length === 0) problems.push("args.namespaces is empty: the policy would check no pod.");
    args.namespaces.forEach((ns, i) => {
      if (!DNS_LABEL.test(ns)) problems.push(`args.namespaces[${i}] must be a namespace name (a DNS label), got ${JSON.stringify(ns)}.`);
    });
    if (problems.length > 0) throw new pulumi.ResourceError(`AdmissionPolicy "${name}": ${problems.join(" ")}`, this);

    if (a.installKyverno) {
      const roleArn = args.kyvernoServiceAccountRoleArn;
      const imageValues = chartImageValues("kyverno", args.chartImages);
      this.release = new helmv3.Release(
        `${name}-kyverno`,
        {
          name: "kyverno",
          chart: KYVERNO_CHART,
          version: a.kyvernoChartVersion,
          repositoryOpts: { repo: KYVERNO_CHART_REPOSITORY },
          namespace: a.kyvernoNamespace,
          createNamespace: true,
          // A half-installed admission controller with failurePolicy Fail would block pods: roll back on failure.
          atomic: true,
          timeout: 600,
          values:
            roleArn === undefined
              ? kyvernoChartValues({ imageValues })
              : pulumi.output(roleArn).apply((arn) => kyvernoChartValues({ serviceAccountRoleArn: arn, imageValues })),
        },
        { parent: this },
      );
    }

    const policyName = args.policyName ?? "workbench-images-signed";
    const doc = pulumi
      .all([pulumi.output(args.publicKeyPem), pulumi.all(args.additionalPublicKeysPem ?? [])])
      .apply(([pem, extra]) => {
        try {
          return clusterPolicy({
            name: policyName,
            imageReferences: args.imageReferences,
            publicKeyPem: pem,
            additionalPublicKeysPem: extra,
            namespaces: args.namespaces,
            tlogUpload: args.tlogUpload,
            ...(args.webhookTimeoutSeconds !== undefined ? { webhookTimeoutSeconds: args.webhookTimeoutSeconds } : {}),
            requireAttestations: args.requireAttestations ?? false,
            fieldStyle: fieldStyle!,
          });
        } catch (e) {
          throw new pulumi.ResourceError(`AdmissionPolicy "${name}": ${e instanceof Error ? e.message : String(e)}`, this);
        }
      });
    this.policy = new apiextensions.CustomResource(
      `${name}-policy`,
      { apiVersion: "kyverno.io/v1", kind: "ClusterPolicy", metadata: clusterPolicyMetadata(policyName, args.requireAttestations ?? false), spec: doc.spec },
      // The ClusterPolicy CRD and the webhook that enforces it come with the release.
      { parent: this, ...(this.release !== undefined ? { dependsOn: [this.release] } : {}) },
    );
    this.policyName = this.policy.metadata.name;
    this.registerOutputs({ policyName: this.policyName });
  }
}
