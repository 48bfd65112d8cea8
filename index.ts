import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ImageVariant } from "./components/build";
import { JupyterHub } from "./components/hub";
import { PromotedImage, ReleaseTag } from "./components/promotion";
import { createProviders, type Providers } from "./components/providers";
import { LocalRegistry } from "./components/registry";
import { AdmissionPolicy, ecrRegistryHost, type GatedImage, gateImage, type ImageOrigin, imageReferencePatterns, readProgramBuilder, SigningKey, type StoredImage } from "./components/supply-chain";
import { GpuValidationSuite, RuntimeGates } from "./components/validation";
import { type ImageSpec, loadStackConfig, type StackConfig, type StackOutputsInput } from "./config";
import { yieldToRuntime } from "./lib/pacing";
import { PROJECT_ROOT } from "./lib/paths";

/**
 * The whole graph, top-down in the order it runs (issue #10): configuration → providers → registry → signing key and
 * admission → each image built (or copied) and gated → GPU validation → JupyterHub → release tags → outputs.
 * Pulumi calls the exported function and uses what it returns as the stack outputs (config/stack-outputs.ts).
 */
export = async function main(): Promise<StackOutputsInput> {
  // 1. Configuration: stack file and catalog parsed, cross-checked and resolved into image specs before any resource.
  const cfg = loadStackConfig(PROJECT_ROOT);
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
          requireAttestations: cfg.admission.requireAttestations,
          chartImages: cfg.chartImages,
        }, { provider: providers.kubernetes })
      : undefined;

  // 4. Images: each spec built (or, in promote mode, copied by digest) and run through scan → sign → admission, then
  //    (GPU images) a CUDA check Job per pool, CPU mode on the local stack. An image is usable only through the ref
  //    that passed all of that: a GPU image's validated ref, a CPU image's gated ref. Images built on another spec
  //    (per-user layers, seed 002) come in a second wave, over their base's passed ref (issue #11): what was
  //    validated is what gets extended.
  const gated: Record<string, GatedImage> = {};
  const gateSettings = {
    ...(cfg.scan.scanner === "trivy" ? { scan: { projectRoot: cfg.projectRoot, ignoreFile: cfg.scan.ignoreFile, severities: cfg.scan.severities, ignoreUnfixed: cfg.scan.ignoreUnfixed } } : {}),
    ...(signingKey && cfg.signing.mode === "cosign-kms" ? { signing: { keyRef: signingKey.cosignKeyRef, tlogUpload: cfg.signing.tlogUpload, cosignVersion: cfg.signing.cosignVersion } } : {}),
    // SBOM and provenance (issue #12): attested with the signing key; without one only written to files. The SBOM needs
    // trivy, so a stack with neither a signing key nor the trivy scanner (local, by default) generates none.
    ...(signingKey || cfg.scan.scanner === "trivy"
      ? { attestations: { outputDir: `.attestations/${cfg.stack}`, builder: readProgramBuilder(cfg.projectRoot, cfg.source.url) } }
      : {}),
    ...(admission ? { admitted: admission.policyName } : {}),
    ...credentials,
  };
  const builtOnSpec = (s: ImageSpec) => s.source.kind === "build" && s.source.base.kind === "image";
  // Run-time gates (issue #14): every image's size is measured from the registry against its budget; CPU images then
  // run their smoke test in a Job, notebook-validator tiers their tier's notebooks. GPU images get the size gate
  // before their GPU check Jobs, which run the smoke test themselves.
  const runtime: Record<string, RuntimeGates> = {};
  // Looked up by name for every image: maps, not scans of the catalog (a 3,000-variant plan spent 0.3 s in finds).
  const variantByName = new Map(cfg.variants.map((v) => [v.name, v] as const));
  const specById = new Map(cfg.images.map((s) => [s.id, s] as const));
  const runtimeImage = (spec: ImageSpec) => {
    const v = spec.kind === "variant" ? variantByName.get(spec.id) : undefined;
    // config/catalog.ts requires runAs on notebook-validator tiers: its gid is the notebook Job's fsGroup.
    const tier = v?.family === "notebook-validator" && v.target !== undefined && v.runAs !== undefined ? { tier: v.target, fsGroup: v.runAs.gid } : undefined;
    return { id: spec.id, gpu: spec.gpu, smoke: spec.checks.smoke, sizeBudgetMB: spec.checks.sizeBudgetMB, ...(tier !== undefined ? { notebooks: tier } : {}) };
  };
  const runtimeGates = (spec: ImageSpec, namespace?: pulumi.Input<string>) => {
    runtime[spec.id] = new RuntimeGates(`${spec.id}-runtime`, {
      image: runtimeImage(spec),
      imageRef: gated[spec.id]!.imageRef,
      ...(namespace !== undefined ? { namespace } : {}),
      settings: cfg.validation,
      ...(providers.credentials ? { credentials: providers.credentials } : {}),
    }, { providers: [providers.kubernetes] });
  };
  // The first wave's suite always exists when there is any image: it owns the validation namespace (and the check
  // ConfigMap), which CPU images' gates use too, so adding a stack's first GPU image never moves the namespace.
  const validate = (name: string, specs: ImageSpec[], continues?: GpuValidationSuite) =>
    specs.some((s) => s.gpu) || (continues === undefined && specs.length > 0)
      ? new GpuValidationSuite(name, {
          validation: cfg.validation,
          checksDir: path.join(cfg.projectRoot, "images", "checks"),
          targets: specs.filter((s) => s.gpu).map((s) => ({ variant: s.checks, imageRef: runtime[s.id]!.checkedRef, pools: s.pools })),
          ...(continues ? { continues } : {}),
          // The measured figures are attested to each GPU image's digest with the stack's key (issue #15).
          attestation: {
            outputDir: `.attestations/${cfg.stack}`,
            ...(signingKey && cfg.signing.mode === "cosign-kms" ? { signing: { keyRef: signingKey.cosignKeyRef, tlogUpload: cfg.signing.tlogUpload, cosignVersion: cfg.signing.cosignVersion } } : {}),
            ...credentials,
          },
        }, { providers: [providers.kubernetes] })
      : undefined;
  const suites: GpuValidationSuite[] = [];
  const validationNamespace = (): pulumi.Input<string> => suites[0]!.namespace.metadata.name;
  const passedRef = (id: string) => (specById.get(id)!.gpu ? suites.find((v) => v.validatedRefs[id])?.validatedRefs[id] : runtime[id]?.checkedRef);
  const waves = [cfg.images.filter((s) => !builtOnSpec(s)), cfg.images.filter(builtOnSpec)];
  // After each image's resources the program yields (lib/pacing.ts): a plan then holds one image's pending
  // registrations at a time, not the whole catalog's (issue #16).
  for (const [i, wave] of waves.entries()) {
    for (const spec of wave) {
      gated[spec.id] = gateImage(spec.id, storeImage(cfg, spec, passedRef, providers, localRegistry), gateSettings, imageOrigin(cfg, spec, passedRef));
      await yieldToRuntime();
    }
    for (const spec of wave.filter((s) => s.gpu)) runtimeGates(spec);
    const suite = validate(i === 0 ? "gpu-validation" : "gpu-validation-users", wave, suites[0]);
    if (suite) suites.push(suite);
    for (const spec of wave.filter((s) => !s.gpu)) {
      runtimeGates(spec, validationNamespace());
      await yieldToRuntime();
    }
  }
  const validated = cfg.images.flatMap((spec) => {
    const ref = passedRef(spec.id);
    const pools = spec.gpu ? (suites.find((v) => v.validatedPools[spec.id])?.validatedPools[spec.id] ?? []) : [];
    return ref === undefined ? [] : [{ spec, ref, gated: gated[spec.id]!, pools }];
  });
  const offered = validated.filter((v) => v.spec.offer?.publish !== undefined);

  // 5. JupyterHub: profiles from validated digests only, per-user profiles for their owners, the discovery catalog.
  //    Never a hub without a shared profile: KubeSpawner would serve the chart's sample image (issue #11).
  const publishable = offered.filter((v) => !v.spec.gpu || v.spec.pools.length > 0);
  if (cfg.jupyterhub.enabled && publishable.length === 0) {
    pulumi.log.warn(
      cfg.mode === "promote"
        ? "jupyterhub: not deployed yet: no published image has been promoted to this stack. Run `npm run promote` and merge its pull request; the hub is deployed with the first promoted published image."
        : "jupyterhub: not deployed: no published image of the catalog is built and validated on this stack (every one is disabled or has no pool). Enable one, or add a pool.",
    );
  }
  const hub = cfg.jupyterhub.enabled && publishable.length > 0
    ? new JupyterHub("jupyterhub", {
        hub: cfg.jupyterhub,
        secrets: cfg.jupyterhubSecrets,
        valuesSecret: cfg.jupyterhubValuesSecret,
        images: offered.map((v) => ({ variant: v.spec.offer!, ref: v.ref, tag: v.gated.stored.tag, pools: v.spec.pools })),
        users: validated.flatMap((v) => (v.spec.owner ? [{ user: v.spec.owner, ref: v.ref }] : [])),
        shmSize: cfg.validation.shmSize,
        protect,
        chartImages: cfg.chartImages,
        ...(cfg.discovery !== undefined ? { discovery: cfg.discovery } : {}),
        ...(cfg.discoveryToken !== undefined ? { discoveryToken: cfg.discoveryToken } : {}),
      }, { provider: providers.kubernetes })
    : undefined;

  // 6. Published digests built here, shared and per-user, get a release-* tag, which the ECR lifecycle never expires
  //    (promoted ones carry promoted-* already); only after the hub release succeeded: the tag means "offered to users".
  if (hub && cfg.mode === "build" && cfg.registry.kind === "ecr") {
    for (const v of [...offered, ...validated.filter((x) => x.spec.owner)]) new ReleaseTag(`${v.spec.id}-release`, { imageRef: v.ref, ...credentials, after: [hub] });
  }

  // 7. Outputs: the typed contract `npm run promote` reads.
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
    ...(suites.length > 0 ? { validation: Object.fromEntries(suites.flatMap((s) => Object.entries(s.figures))) } : {}),
    ...(signingKey
      ? { signing: { keyArn: signingKey.keyArn, aliasName: signingKey.aliasName, cosignKeyRef: signingKey.cosignKeyRef, publicKeyPem: signingKey.publicKeyPem } }
      : {}),
  };
};

/**
 * What the provenance records about how a spec's image came to be (components/supply-chain/provenance.ts): the build's
 * inputs, with the very base reference storeImage builds over, or the promotion's source.
 */
function imageOrigin(cfg: StackConfig, spec: ImageSpec, passedRef: (id: string) => pulumi.Output<string> | undefined): ImageOrigin<pulumi.Input<string>> {
  if (spec.source.kind === "promoted") {
    const p = spec.source.promoted;
    const source = { url: cfg.source.url, ...(cfg.source.revision !== undefined ? { revision: cfg.source.revision } : {}) };
    return { kind: "promotion", sourceRef: p.source, fromStack: cfg.promotion.from, validatedPools: p.validatedPools, source };
  }
  const b = spec.source.build;
  const base = spec.source.base;
  return {
    kind: "build",
    context: b.context,
    dockerfile: b.dockerfile,
    ...(b.target !== undefined ? { target: b.target } : {}),
    platforms: b.platforms,
    buildArgs: b.buildArgs,
    bases: { ...b.extraBases, [b.baseArg]: base.kind === "external" ? base.ref : passedRef(base.id)! },
    source: { url: b.sourceUrl, ...(b.revision !== undefined ? { revision: b.revision } : {}) },
  };
}

/**
 * Builds a spec (over a pinned base, or over another spec's passed ref) or copies its promoted digest into this
 * registry. `passedRef(id)` is the ref of an image that passed its scan, signature and (GPU) validation.
 */
function storeImage(cfg: StackConfig, spec: ImageSpec, passedRef: (id: string) => pulumi.Output<string> | undefined, providers: Providers, localRegistry?: LocalRegistry): StoredImage {
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
  // config/load.ts refuses a per-user image whose GPU base has no pool to pass validation on.
  const baseRef = base.kind === "external" ? base.ref : passedRef(base.id)!;
  const waitFor = localRegistry ? { waitFor: [localRegistry.container] } : {};
  return new ImageVariant(spec.id, { build: spec.source.build, baseRef, repositoryName: spec.repositoryName, registry: cfg.registry, buildOnPreview: cfg.buildOnPreview, ...credentials, ...waitFor }, opts);
}
