import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ImageVariant, type RegistryCredentials } from "./components/build/image-variant";
import * as docker from "@pulumi/docker";
import { AdmissionPolicy } from "./components/supply-chain/admission-policy";
import { GpuValidationSuite } from "./components/validation/gpu-validation-suite";
import { LocalRegistry } from "./components/registry/local-registry";
import { PromotedImage } from "./components/promotion/promoted-image";
import { ScanGate } from "./components/supply-chain/scan-gate";
import { SigningKey } from "./components/supply-chain/signing-key";
import { SigningPolicy } from "./components/supply-chain/signing-policy";
import { ReleaseTag } from "./components/promotion/release-tag";
import { ecrRegistryHost, imageReferencePatterns } from "./components/supply-chain/kyverno";
import { JupyterHub } from "./components/hub/jupyter-hub";
import { loadStackConfig, type StackConfig, type UserConfig } from "./config/stack";
import type { CatalogVariant, Platform } from "./config/catalog";

/**
 * The whole graph, in the order it runs: configuration → image variants (repository, build, push) → per-user
 * images over their base's digest → exports. Signing, GPU validation, JupyterHub and promotion hang off these.
 * Pulumi calls the exported function and uses what it returns as the stack outputs.
 */
export = async function main() {
  // 1. Configuration: every key and the catalog are parsed and cross-checked before any resource is registered.
  const cfg = loadStackConfig(__dirname);
  for (const w of cfg.warnings) pulumi.log.warn(`${w.path}: ${w.message}`);

  // 2. Explicit providers: nothing reads ambient AWS or Kubernetes settings.
  const providers = createProviders(cfg);

  // 3. The local registry container (local stack), which every local build waits for.
  const localRegistry =
    cfg.registry.kind === "local" && cfg.registry.run && providers.docker
      ? new LocalRegistry("local-registry", { registry: cfg.registry }, { provider: providers.docker })
      : undefined;
  const imageOpts: pulumi.ComponentResourceOptions = { providers: providers.list };
  const waitFor = localRegistry ? { waitFor: [localRegistry.container] } : {};
  const protect = cfg.environment === "prod";

  // 4. Images. Build mode: one ImageVariant per catalog entry and per user (a thin layer over the base's digest).
  //    Promote mode (prod): copy each promoted digest into this stack's repository; nothing is built.
  const images: Record<string, BuiltImage> = {};
  if (cfg.mode === "build") {
    for (const v of cfg.variants) {
      images[v.name] = new ImageVariant(v.name, {
        build: {
          root: cfg.projectRoot,
          context: rel(cfg, v.contextDir),
          dockerfile: rel(cfg, v.dockerfilePath),
          ...(v.target !== undefined ? { target: v.target } : {}),
          platforms: platformsFor(cfg, v.platforms),
          buildArgs: v.buildArgs,
          baseArg: v.base.arg,
          extraBases: v.extraBases,
          title: v.publish?.displayName ?? v.name,
          description: v.publish?.description ?? `${v.family} image ${v.name}`,
          sourceUrl: cfg.source.url,
          ...(cfg.source.revision !== undefined ? { revision: cfg.source.revision } : {}),
        },
        baseRef: v.base.ref,
        repositoryName: `${cfg.registry.repositoryPrefix}/${v.name}`,
        registry: cfg.registry,
        ...(providers.credentials ? { credentials: providers.credentials } : {}),
        ...waitFor,
      }, imageOpts);
    }

    for (const u of cfg.users) {
      const base = images[u.baseVariant]!;
      const baseVariant = cfg.variants.find((v) => v.name === u.baseVariant)!;
      images[u.id] = new ImageVariant(u.id, {
        build: {
          root: cfg.projectRoot,
          context: rel(cfg, cfg.perUserContext),
          dockerfile: rel(cfg, path.join(cfg.perUserContext, "Dockerfile")),
          platforms: platformsFor(cfg, baseVariant.platforms),
          buildArgs: {
            USER_NAME: u.username,
            USER_UID: String(u.uid),
            USER_GID: String(u.gid),
            ENABLE_SUDO: String(u.sudo),
          },
          baseArg: "BASE_IMAGE",
          extraBases: {},
          title: `${baseVariant.publish?.displayName ?? baseVariant.name} for ${u.username} (${u.project})`,
          description: `${baseVariant.name} with user ${u.username} (uid ${u.uid}, gid ${u.gid}) baked in`,
          sourceUrl: cfg.source.url,
          ...(cfg.source.revision !== undefined ? { revision: cfg.source.revision } : {}),
        },
        baseRef: base.imageRef,
        repositoryName: u.repositoryName,
        registry: cfg.registry,
        ...(providers.credentials ? { credentials: providers.credentials } : {}),
        ...waitFor,
      }, imageOpts);
    }
  } else {
    for (const [id, promoted] of Object.entries(cfg.promotion.images)) {
      const user = cfg.users.find((u) => u.id === id);
      images[id] = new PromotedImage(id, {
        name: id,
        promoted,
        repositoryName: user?.repositoryName ?? `${cfg.registry.repositoryPrefix}/${id}`,
        registry: cfg.registry,
        ...(providers.credentials ? { credentials: providers.credentials } : {}),
        // An ECR token is valid for every registry the principal may read: dev's repositories grant prod's account
        // pull access (registry.pullAccountIds on the dev stack).
        ...(providers.credentials ? { sourceCredentials: providers.credentials } : {}),
        protect,
      }, imageOpts);
    }
  }

  // 5. Supply chain: scan gate, then a cosign signature of the digest with the stack's KMS key (issue #4).
  const signingKey =
    cfg.signing.mode === "cosign-kms" && cfg.registry.kind === "ecr"
      ? new SigningKey("signing-key", {
          keyAlias: cfg.signing.keyAlias,
          signerRoleArns: cfg.signing.signerRoleArns,
          accountId: cfg.registry.accountId,
          protect,
        }, { provider: providers.aws! })
      : undefined;
  const gatedRefs: Record<string, pulumi.Output<string>> = {};
  for (const [name, img] of Object.entries(images)) {
    let ref: pulumi.Output<string> = img.imageRef;
    if (cfg.scan.scanner === "trivy") {
      ref = new ScanGate(`${name}-scan`, {
        ref,
        projectRoot: cfg.projectRoot,
        ignoreFile: cfg.scan.ignoreFile,
        severities: cfg.scan.severities,
        ...(providers.credentials ? { credentials: providers.credentials } : {}),
      }).scannedRef;
    }
    if (signingKey && cfg.signing.mode === "cosign-kms") {
      ref = new SigningPolicy(`${name}-sign`, {
        ref,
        keyRef: signingKey.cosignKeyRef,
        tlogUpload: cfg.signing.tlogUpload,
        ...(providers.credentials ? { credentials: providers.credentials } : {}),
      }).signedRef;
    }
    gatedRefs[name] = ref;
  }

  // 6. Admission: the cluster refuses any image of our repositories that this stack's key did not sign. Pods of
  //    ours start only once the policy that checks them exists: every ref that reaches Kubernetes waits for it.
  if (signingKey && cfg.registry.kind === "ecr") {
    const admission = new AdmissionPolicy("admission", {
      admission: cfg.admission,
      imageReferences: imageReferencePatterns(ecrRegistryHost(cfg.registry.accountId, cfg.registry.region), cfg.registry.repositoryPrefix),
      namespaces: [cfg.validation.namespace, ...(cfg.jupyterhub.enabled ? [cfg.jupyterhub.namespace] : [])],
      publicKeyPem: signingKey.publicKeyPem,
      tlogUpload: cfg.signing.mode === "cosign-kms" ? cfg.signing.tlogUpload : false,
      chartImages: cfg.chartImages,
    }, { provider: providers.kubernetes });
    for (const name of Object.keys(gatedRefs)) {
      gatedRefs[name] = pulumi.all([gatedRefs[name]!, admission.policyName]).apply(([ref]) => ref);
    }
  }

  // 7. GPU validation: a CUDA check Job per GPU variant × compatible pool (CPU mode on the local stack). Only
  //    refs that come out of it reach the hub, so a failed check holds publication back.
  // A per-user image over a GPU variant is validated like its base: the user layer can break what the base passed.
  const baseOf = (u: UserConfig) => cfg.variants.find((v) => v.name === u.baseVariant)!;
  const gpuTargets = [
    ...cfg.variants
      .filter((v) => v.gpu && gatedRefs[v.name] !== undefined)
      .map((v) => ({ id: v.name, variant: v, pools: cfg.poolsByVariant[v.name] ?? [] })),
    ...cfg.users
      .filter((u) => baseOf(u).gpu && gatedRefs[u.id] !== undefined)
      .map((u) => ({ id: u.id, variant: { ...baseOf(u), name: u.id }, pools: cfg.poolsByVariant[u.baseVariant] ?? [] })),
  ];
  const validation =
    gpuTargets.length > 0
      ? new GpuValidationSuite("gpu-validation", {
          validation: cfg.validation,
          checksDir: path.join(cfg.projectRoot, "images", "checks"),
          targets: gpuTargets.map((t) => ({ variant: t.variant, imageRef: gatedRefs[t.id]!, pools: t.pools })),
        }, { providers: [providers.kubernetes] })
      : undefined;
  const publishable = (v: CatalogVariant): pulumi.Input<string> | undefined =>
    gatedRefs[v.name] === undefined ? undefined : v.gpu ? validation?.validatedRefs[v.name] : gatedRefs[v.name];

  // 8. JupyterHub: profiles from gated digests only, per-user profiles, the discovery catalog.
  const hub = cfg.jupyterhub.enabled
    ? new JupyterHub("jupyterhub", {
        hub: cfg.jupyterhub,
        secrets: cfg.jupyterhubSecrets,
        images: cfg.variants
          .filter((v) => v.publish !== undefined && publishable(v) !== undefined)
          .map((v) => ({ variant: v, ref: publishable(v)!, tag: images[v.name]!.tag, pools: v.gpu ? (cfg.poolsByVariant[v.name] ?? []) : [] })),
        users: cfg.users
          .map((u) => ({ user: u, ref: baseOf(u).gpu ? validation?.validatedRefs[u.id] : gatedRefs[u.id] }))
          .filter((u): u is { user: UserConfig; ref: pulumi.Output<string> } => u.ref !== undefined),
        shmSize: cfg.validation.shmSize,
        protect: cfg.environment === "prod",
        chartImages: cfg.chartImages,
      }, { provider: providers.kubernetes })
    : undefined;

  // 9. Published digests built here get a release-* tag, which the ECR lifecycle never expires (promoted ones carry
  //    promoted-* already). Only after the hub release succeeded: a tag means "offered to users".
  if (hub && cfg.mode === "build" && cfg.registry.kind === "ecr") {
    for (const v of cfg.variants.filter((x) => x.publish !== undefined && publishable(x) !== undefined)) {
      new ReleaseTag(`${v.name}-release`, {
        imageRef: publishable(v)!,
        ...(providers.credentials ? { credentials: providers.credentials } : {}),
        after: [hub],
      });
    }
  }

  // 10. Exports: every image by digest, and the catalog users discover.
  const describe = (img: BuiltImage) => ({
    imageRef: img.imageRef,
    repositoryUrl: img.repositoryUrl,
    tag: img.tag,
    digest: img.digest,
  });
  return {
    environment: cfg.environment,
    images: Object.fromEntries(Object.entries(images).filter(([n]) => !n.startsWith("user-")).map(([n, img]) => [n, describe(img)])),
    userImages: Object.fromEntries(Object.entries(images).filter(([n]) => n.startsWith("user-")).map(([n, img]) => [n, describe(img)])),
    validatedImages: Object.fromEntries(
      cfg.variants
        .filter((v) => publishable(v) !== undefined)
        .map((v) => [
          v.name,
          {
            imageRef: publishable(v)!,
            digest: images[v.name]!.digest,
            validatedPools: v.gpu ? (validation?.validatedPools[v.name] ?? []) : [],
            scanned: cfg.scan.scanner !== "none",
            signed: cfg.signing.mode !== "none",
          },
        ]),
    ),
    ...(hub ? { catalog: hub.catalog } : {}),
    ...(signingKey
      ? { signing: { keyArn: signingKey.keyArn, aliasName: signingKey.aliasName, cosignKeyRef: signingKey.cosignKeyRef, publicKeyPem: signingKey.publicKeyPem } }
      : {}),
  };
};

/** What every image source (build or promotion) provides downstream. */
interface BuiltImage {
  imageRef: pulumi.Output<string>;
  repositoryUrl: pulumi.Output<string>;
  tag: pulumi.Input<string>;
  digest: pulumi.Input<string>;
}

interface Providers {
  aws?: aws.Provider;
  docker?: docker.Provider;
  kubernetes: k8s.Provider;
  credentials?: RegistryCredentials;
  list: pulumi.ProviderResource[];
}

function createProviders(cfg: StackConfig): Providers {
  // The ambient kubeconfig is never used: the provider gets the stack's kubeconfig secret, or the named context
  // from an explicit kubeconfig path (issue #2).
  const kubernetes = new k8s.Provider("cluster", {
    kubeconfig: cfg.kubeconfig ?? cfg.cluster.kubeconfigPath,
    ...(cfg.cluster.context !== undefined ? { context: cfg.cluster.context } : {}),
    enableServerSideApply: true,
  });
  if (cfg.registry.kind === "local") {
    const dockerProvider = new docker.Provider("local-docker", { host: cfg.registry.dockerHost });
    return { kubernetes, docker: dockerProvider, list: [kubernetes] };
  }
  const registry = cfg.registry;
  const awsProvider = new aws.Provider("aws", {
    region: registry.region as aws.Region,
    allowedAccountIds: [registry.accountId],
    defaultTags: { tags: { "workbench-images:stack": cfg.stack } },
  });
  const token = aws.ecr.getAuthorizationTokenOutput({ registryId: registry.accountId }, { provider: awsProvider });
  const credentials: RegistryCredentials = {
    address: token.proxyEndpoint.apply((e) => e.replace(/^https:\/\//, "")),
    username: token.userName,
    // The ECR token is a credential for 12 hours: secret from the moment it exists, and only it.
    password: pulumi.secret(token.password),
  };
  return { aws: awsProvider, kubernetes, credentials, list: [awsProvider, kubernetes] };
}

function rel(cfg: StackConfig, file: string): string {
  return path.relative(cfg.projectRoot, file).split(path.sep).join("/");
}

function platformsFor(cfg: StackConfig, platforms: CatalogVariant["platforms"]): Platform[] {
  if (cfg.registry.kind !== "local") return [...platforms];
  const local = platforms.filter((p) => cfg.registry.kind === "local" && cfg.registry.platforms.includes(p));
  return local.length > 0 ? local : [platforms[0]!];
}
