import * as path from "node:path";
import * as dockerBuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import type { Platform, RegistryConfig, RegistryCredentials } from "../../lib/registry";
export type { RegistryCredentials } from "../../lib/registry";
import { contentTag } from "./content-hash";
import { CACHE_TAG } from "../registry/ecr";
import { parseImageRef } from "../../lib/image-ref";
import { RegistryRepository } from "../registry/registry-repository";
import { combine } from "../../lib/outputs";

/** What to build: a catalog variant, or a per-user layer over another variant's digest. Plain data. */
export interface BuildSpec {
  /** Absolute project root: used only to read the build inputs for the content hash, never sent as an input. */
  root: string;
  /** Paths relative to the project root (Pulumi's working directory), so plans do not depend on the checkout path. */
  context: string;
  dockerfile: string;
  target?: string;
  platforms: Platform[];
  buildArgs: Record<string, string>;
  /** The build arg that receives the base image (`BASE_IMAGE`). */
  baseArg: string;
  /** Further base images by build arg, pinned by digest. */
  extraBases: Record<string, string>;
  /** `org.opencontainers.image.title` and `.description`. */
  title: string;
  description: string;
  /** `org.opencontainers.image.source`. */
  sourceUrl: string;
  /** `org.opencontainers.image.revision`. @default the content hash of the build inputs */
  revision?: string;
}

export interface ImageVariantArgs {
  build: BuildSpec;
  /**
   * The base image, pinned by digest. An Output when the base is itself built here (per-user images), which makes
   * this image wait for it and re-tag when its digest changes.
   */
  baseRef: pulumi.Input<string>;
  repositoryName: string;
  registry: RegistryConfig;
  /** Push credentials (ECR); the local registry needs none. */
  credentials?: RegistryCredentials;
  /** @default false: see RegistryRepository */
  protect?: boolean;
  /**
   * Resources the build must wait for (the local registry container). Passed to the build itself: a component's
   * own dependsOn does not hold back its children.
   * @default none
   */
  waitFor?: pulumi.Resource[];
  /**
   * Build the image during `pulumi preview` too (docker-build's `buildOnPreview`), to catch a broken Dockerfile
   * before `up`. A preview build pushes nothing, and its cache is never exported (see `cacheTo` below).
   * @default false: previews only validate the Dockerfile; the build happens in `up` (issue #12)
   */
  buildOnPreview?: boolean;
}

/**
 * One image variant: its repository, and the image built from the catalog entry and pushed under a tag that is the
 * hash of exactly its build inputs (issue #2). Everything downstream uses `imageRef` (`repository@sha256:…`).
 */
export class ImageVariant extends pulumi.ComponentResource {
  readonly repository: RegistryRepository;
  readonly image: dockerBuild.Image;
  readonly repositoryUrl: pulumi.Output<string>;
  /** `build-<hash>`: the content-addressed tag. */
  readonly tag: pulumi.Output<string>;
  /** `sha256:…` of the pushed manifest (index, for multi-platform builds). */
  readonly digest: pulumi.Output<string>;
  /** `repository@sha256:…`: the only reference that reaches Kubernetes. */
  readonly imageRef: pulumi.Output<string>;

  constructor(name: string, args: ImageVariantArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:image:ImageVariant", name, {}, opts);
    const b = args.build;
    this.repository = new RegistryRepository(
      `${name}-repository`,
      { repositoryName: args.repositoryName, registry: args.registry, ...(args.protect !== undefined ? { protect: args.protect } : {}) },
      { parent: this },
    );
    // A catalog variant's base is plain text: hash and labels are computed here and now. A per-user image's base is
    // another image's Output, so they wait for it (fewer Outputs also keeps large plans fast: see scripts/bench.ts).
    const tagFor = (base: string) =>
      contentTag({
        contextDir: path.resolve(b.root, b.context),
        dockerfile: path.resolve(b.root, b.dockerfile),
        ...(b.target !== undefined ? { target: b.target } : {}),
        buildArgs: b.buildArgs,
        platforms: b.platforms,
        bases: { [b.baseArg]: base, ...b.extraBases },
      });
    const labelsFor = (base: string, tag: string) => ({
      "org.opencontainers.image.source": b.sourceUrl,
      "org.opencontainers.image.revision": b.revision ?? tag,
      "org.opencontainers.image.version": tag,
      "org.opencontainers.image.title": b.title,
      "org.opencontainers.image.description": b.description,
      "org.opencontainers.image.base.name": baseName(base),
      "org.opencontainers.image.base.digest": parseImageRef(base)?.digest ?? "",
    });
    const argsFor = (base: string) => ({ ...b.buildArgs, ...b.extraBases, [b.baseArg]: base });
    const plainBase = typeof args.baseRef === "string" ? args.baseRef : undefined;
    let hash: pulumi.Input<string>;
    let labels: pulumi.Input<Record<string, string>>;
    let buildArgs: pulumi.Input<Record<string, string>>;
    if (plainBase !== undefined) {
      hash = tagFor(plainBase);
      labels = labelsFor(plainBase, hash);
      buildArgs = argsFor(plainBase);
    } else {
      const baseRef = pulumi.output(args.baseRef);
      const tagOut = baseRef.apply(tagFor);
      hash = tagOut;
      labels = pulumi.all([baseRef, tagOut]).apply(([base, tag]) => labelsFor(base, tag));
      buildArgs = baseRef.apply(argsFor);
    }
    this.tag = pulumi.output(hash);
    const repoUrl = this.repository.repositoryUrl;
    const cacheRef = repoUrl.apply((u) => `${u}:${CACHE_TAG}`);
    const ecr = args.registry.kind === "ecr";
    const buildOnPreview = args.buildOnPreview ?? false;
    // Previews export no cache (issue #12): docker-build exports cache manifests from preview builds ("Images built
    // during previews are never exported to registries, however cache manifests are still exported", its
    // `buildOnPreview` docs), so a preview that builds gets no cacheTo. One that does not build (the default) keeps
    // it: the provider returns before building (provider/internal/image.go, Create: `req.DryRun &&
    // !input.shouldBuildOnPreview()`), so nothing is exported, and its Diff compares cacheTo with the state's, so
    // dropping it would show every image as changed in every preview.
    const exportCache = !(buildOnPreview && pulumi.runtime.isDryRun());
    this.image = new dockerBuild.Image(
      `${name}-image`,
      {
        push: true,
        buildOnPreview,
        tags: [combine(repoUrl, hash, (u, h) => `${u}:${h}`)],
        context: { location: b.context },
        dockerfile: { location: b.dockerfile },
        ...(b.target !== undefined ? { target: b.target } : {}),
        platforms: b.platforms,
        buildArgs,
        labels,
        cacheFrom: [{ registry: { ref: cacheRef } }],
        // ECR accepts BuildKit's cache only as an OCI image manifest (docker/buildx#271; AWS ECR cache docs). The
        // local stack builds with Docker's default `docker` driver, which cannot export a registry cache: it embeds
        // an inline cache in the pushed image instead.
        ...(exportCache
          ? {
              cacheTo: ecr
                ? [{ registry: { ref: cacheRef, mode: dockerBuild.CacheMode.Max, imageManifest: true, ociMediaTypes: true } }]
                : [{ inline: {} }],
            }
          : {}),
        ...(args.credentials !== undefined ? { registries: [args.credentials] } : {}),
      },
      { parent: this, dependsOn: [this.repository, ...(args.waitFor ?? [])] },
    );
    this.repositoryUrl = repoUrl;
    this.digest = this.image.digest;
    this.imageRef = combine(repoUrl, this.image.digest, (u, d) => `${u}@${d}`);
    this.registerOutputs({ repositoryUrl: this.repositoryUrl, tag: this.tag, digest: this.digest, imageRef: this.imageRef });
  }
}

function baseName(ref: string): string {
  const parsed = parseImageRef(ref);
  if (!parsed) return ref;
  return parsed.tag !== undefined ? `${parsed.repository}:${parsed.tag}` : parsed.repository;
}
