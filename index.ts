import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ImageVariant } from "./components/build";
import { JupyterHub } from "./components/hub";
import { PromotedImage, ReleaseTag } from "./components/promotion";
import { createProviders, type Providers } from "./components/providers";
import { LocalRegistry } from "./components/registry";
import { AdmissionPolicy, ecrRegistryHost, type GatedImage, gateImage, imageReferencePatterns, SigningKey, type StoredImage } from "./components/supply-chain";
import { GpuValidationSuite } from "./components/validation";
import { type ImageSpec, loadStackConfig, type StackConfig, type StackOutputsInput } from "./config";

/**
 * The whole graph, top-down in the order it runs (issue #10): configuration → providers → registry → signing key and
 * admission → each image built (or copied) and gated → GPU validation → JupyterHub → release tags → outputs.
 * Pulumi calls the exported function and uses what it returns as the stack outputs (config/stack-outputs.ts).
 */
export = async function main(): Promise<StackOutputsInput> {
  // 1. Configuration: stack file and catalog parsed, cross-checked and resolved into image specs before any resource.
  const cfg = loadStackConfig(__dirname);
  for (const w of cfg.warnings) pulumi.log.warn(`${w.path}: ${w.message}`);
  const providers = createProviders({ stack: cfg.stack, registry: cfg.registry, cluster: cfg.cluster, ...(cfg.kubeconfig ? { kubeconfig: cfg.kubeconfig } : {}) });
  const credentials = providers.credentials ? { credentials: providers.credentials } : {};
  const protect = cfg.environment === "prod";

  // 2. Registry: the local stack's registry container, which every local build waits for.
  const localRegistry =
    cfg.registry.kind === "local" && cfg.registry.run && providers.docker
      ? new LocalRegistry("local-registry", { registry: cfg.registry }, { provider: providers.docker })
      : undefined;

  // 3. Supply chain: the stack's KMS signing key, and the admission policy that admits only what it signed.
  const signingKey =
    cfg.signing.mode === "cosign-kms" && cfg.registry.kind === "ecr"
      ? new SigningKey("signing-key", { keyAlias: cfg.signing.keyAlias, signerRoleArns: cfg.signing.signerRoleArns, accountId: cfg.registry.accountId, protect }, { provider: providers.aws! })
      : undefined;
  const admission =
    signingKey && cfg.registry.kind === "ecr" && cfg.signing.mode === "cosign-kms"
      ? new AdmissionPolicy("admission", {
          admission: cfg.admission,
          imageReferences: imageReferencePatterns(ecrRegistryHost(cfg.registry.accountId, cfg.registry.region), cfg.registry.repositoryPrefix),
          namespaces: [cfg.validation.namespace, ...(cfg.jupyterhub.enabled ? [cfg.jupyterhub.namespace] : [])],
          publicKeyPem: signingKey.publicKeyPem,
          additionalPublicKeysPem: cfg.admission.additionalPublicKeysPem,
          tlogUpload: cfg.signing.tlogUpload,
          ...(cfg.admission.kyvernoServiceAccountRoleArn !== undefined ? { kyvernoServiceAccountRoleArn: cfg.admission.kyvernoServiceAccountRoleArn } : {}),
          policyName: cfg.admission.policyName,
          webhookTimeoutSeconds: cfg.admission.webhookTimeoutSeconds,
          chartImages: cfg.chartImages,
        }, { provider: providers.kubernetes })
      : undefined;

  // 4. Images: each spec built (or, in promote mode, copied by digest) and run through scan → sign → admission.
  const gated: Record<string, GatedImage> = {};
  for (const spec of cfg.images) {
    gated[spec.id] = gateImage(spec.id, storeImage(cfg, spec, gated, providers, localRegistry), {
      ...(cfg.scan.scanner === "trivy" ? { scan: { projectRoot: cfg.projectRoot, ignoreFile: cfg.scan.ignoreFile, severities: cfg.scan.severities } } : {}),
      ...(signingKey && cfg.signing.mode === "cosign-kms" ? { signing: { keyRef: signingKey.cosignKeyRef, tlogUpload: cfg.signing.tlogUpload } } : {}),
      ...(admission ? { admitted: admission.policyName } : {}),
      ...credentials,
    });
  }

  // 5. GPU validation: a CUDA check Job per GPU image × pool (CPU mode on the local stack). A GPU image is
  //    publishable only through its validated ref; a CPU image through its gated ref.
  const gpuImages = cfg.images.filter((s) => s.gpu);
  const validation =
    gpuImages.length > 0
      ? new GpuValidationSuite("gpu-validation", {
          validation: cfg.validation,
          checksDir: path.join(cfg.projectRoot, "images", "checks"),
          targets: gpuImages.map((s) => ({ variant: s.checks, imageRef: gated[s.id]!.imageRef, pools: s.pools })),
        }, { providers: [providers.kubernetes] })
      : undefined;
  const validated = cfg.images.flatMap((spec) => {
    const ref = spec.gpu ? validation?.validatedRefs[spec.id] : gated[spec.id]!.imageRef;
    return ref === undefined ? [] : [{ spec, ref, gated: gated[spec.id]!, pools: spec.gpu ? (validation?.validatedPools[spec.id] ?? []) : [] }];
  });
  const offered = validated.filter((v) => v.spec.offer?.publish !== undefined);

  // 6. JupyterHub: profiles from validated digests only, per-user profiles for their owners, the discovery catalog.
  const hub = cfg.jupyterhub.enabled
    ? new JupyterHub("jupyterhub", {
        hub: cfg.jupyterhub,
        secrets: cfg.jupyterhubSecrets,
        images: offered.map((v) => ({ variant: v.spec.offer!, ref: v.ref, tag: v.gated.stored.tag, pools: v.spec.pools })),
        users: validated.flatMap((v) => (v.spec.owner ? [{ user: v.spec.owner, ref: v.ref }] : [])),
        shmSize: cfg.validation.shmSize,
        protect,
        chartImages: cfg.chartImages,
      }, { provider: providers.kubernetes })
    : undefined;

  // 7. Published digests built here get a release-* tag, which the ECR lifecycle never expires (promoted ones carry
  //    promoted-* already); only after the hub release succeeded, because the tag means "offered to users".
  if (hub && cfg.mode === "build" && cfg.registry.kind === "ecr") {
    for (const v of offered) new ReleaseTag(`${v.spec.id}-release`, { imageRef: v.ref, ...credentials, after: [hub] });
  }

  // 8. Outputs: the typed contract `npm run promote` reads.
  const describe = (s: StoredImage) => ({ imageRef: s.imageRef, repositoryUrl: s.repositoryUrl, tag: s.tag, digest: s.digest });
  const byKind = (kind: ImageSpec["kind"]) =>
    Object.fromEntries(cfg.images.filter((s) => s.kind === kind).map((s) => [s.id, describe(gated[s.id]!.stored)]));
  return {
    environment: cfg.environment,
    images: byKind("variant"),
    userImages: byKind("user"),
    validatedImages: Object.fromEntries(
      validated.map((v) => [v.spec.id, { imageRef: v.ref, digest: v.gated.stored.digest, validatedPools: v.pools, ...v.gated.evidence }]),
    ),
    ...(hub ? { catalog: hub.catalog } : {}),
    ...(signingKey
      ? { signing: { keyArn: signingKey.keyArn, aliasName: signingKey.aliasName, cosignKeyRef: signingKey.cosignKeyRef, publicKeyPem: signingKey.publicKeyPem } }
      : {}),
  };
};

/** Builds a spec (over a pinned base, or over another spec's digest) or copies its promoted digest into this registry. */
function storeImage(cfg: StackConfig, spec: ImageSpec, stored: Record<string, GatedImage>, providers: Providers, localRegistry?: LocalRegistry): StoredImage {
  const opts: pulumi.ComponentResourceOptions = { providers: providers.list };
  const credentials = providers.credentials ? { credentials: providers.credentials } : {};
  if (spec.source.kind === "promoted") {
    // An ECR token is valid for every registry the principal may read: dev's repositories grant prod's account
    // pull access (registry.pullAccountIds on the dev stack).
    const sourceCredentials = providers.credentials ? { sourceCredentials: providers.credentials } : {};
    const args = { name: spec.id, promoted: spec.source.promoted, repositoryName: spec.repositoryName, registry: cfg.registry, protect: cfg.environment === "prod" };
    return new PromotedImage(spec.id, { ...args, ...credentials, ...sourceCredentials }, opts);
  }
  const base = spec.source.base;
  // A per-user layer builds over its base's pushed digest (issue #8 of the cluster issue tightens this to the gated one).
  const baseRef = base.kind === "external" ? base.ref : stored[base.id]!.stored.imageRef;
  const waitFor = localRegistry ? { waitFor: [localRegistry.container] } : {};
  return new ImageVariant(spec.id, { build: spec.source.build, baseRef, repositoryName: spec.repositoryName, registry: cfg.registry, ...credentials, ...waitFor }, opts);
}
