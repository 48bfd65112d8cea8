/**
 * ImageVariant's docker-build inputs in previews and updates (issue #12, point 4). docker-build builds during previews
 * unless told not to (its SDK sends `buildOnPreview: true` when the input is absent) and exports cache manifests from
 * preview builds ("Images built during previews are never exported to registries, however cache manifests are still
 * exported", the `buildOnPreview` input's docs). Previews here build nothing by default and never export cache.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ImageVariant, type ImageVariantArgs } from "../../../components/build/image-variant";
import { contentTag } from "../../../components/build/content-hash";
import type { RegistryConfig } from "../../../lib/registry";
import { PROJECT_ROOT } from "../../../lib/paths";
import { ECR_HOST, runUnderMocks, type Registered } from "./mock-program";

const BASE = "docker.io/library/python:3.12-slim-bookworm@sha256:0000000000000000000000000000000000000000000000000000000000000001";
const CONTEXT = "test/fixtures/mini/images/app";

const ecr: RegistryConfig = {
  kind: "ecr",
  region: "eu-west-1",
  accountId: "111122223333",
  repositoryPrefix: "wb",
  lifecycle: { keepTagged: 30, untaggedExpireDays: 1 },
  forceDelete: false,
  pullAccountIds: [],
};
const local: RegistryConfig = {
  kind: "local",
  host: "127.0.0.1",
  port: 5001,
  repositoryPrefix: "wb",
  run: false,
  image: "docker.io/library/registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373",
  dockerHost: "unix:///var/run/docker.sock",
  platforms: ["linux/amd64"],
  clusterNetwork: null,
};

const TAG = contentTag({
  contextDir: path.join(PROJECT_ROOT, CONTEXT),
  dockerfile: path.join(PROJECT_ROOT, CONTEXT, "Dockerfile"),
  target: "runtime",
  buildArgs: {},
  platforms: ["linux/amd64"],
  bases: { BASE_IMAGE: BASE },
});

function args(registry: RegistryConfig, extra: Partial<ImageVariantArgs> = {}): ImageVariantArgs {
  return {
    build: {
      root: PROJECT_ROOT,
      context: CONTEXT,
      dockerfile: `${CONTEXT}/Dockerfile`,
      target: "runtime",
      platforms: ["linux/amd64"],
      buildArgs: {},
      baseArg: "BASE_IMAGE",
      extraBases: {},
      title: "App",
      description: "The app",
      sourceUrl: "https://example.invalid/workbench-images",
    },
    baseRef: BASE,
    repositoryName: "wb/app",
    registry,
    ...extra,
  };
}

async function imageInputs(preview: boolean, a: ImageVariantArgs): Promise<Record<string, unknown>> {
  const seen: Registered[] = await runUnderMocks(preview, () => {
    new ImageVariant("app", a);
  });
  const images = seen.filter((r) => r.type === "docker-build:index:Image");
  expect(images.map((r) => r.name)).toEqual(["app-image"]);
  return images[0]!.inputs;
}

/** Everything but the cache and preview settings, which the cases below vary. */
function common(repo: string): Record<string, unknown> {
  return {
    push: true,
    tags: [`${repo}:${TAG}`],
    context: { location: CONTEXT },
    dockerfile: { location: `${CONTEXT}/Dockerfile` },
    target: "runtime",
    platforms: ["linux/amd64"],
    buildArgs: { BASE_IMAGE: BASE },
    labels: {
      "org.opencontainers.image.source": "https://example.invalid/workbench-images",
      "org.opencontainers.image.revision": TAG,
      "org.opencontainers.image.version": TAG,
      "org.opencontainers.image.title": "App",
      "org.opencontainers.image.description": "The app",
      "org.opencontainers.image.base.name": "docker.io/library/python:3.12-slim-bookworm",
      "org.opencontainers.image.base.digest": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
    },
    network: "default",
  };
}

const ECR_REPO = `${ECR_HOST}/wb/app`;
const ECR_CACHE_FROM = [{ registry: { ref: `${ECR_REPO}:buildcache` } }];
const ECR_CACHE_TO = [{ registry: { ref: `${ECR_REPO}:buildcache`, mode: "max", imageManifest: true, ociMediaTypes: true } }];
const LOCAL_REPO = "127.0.0.1:5001/wb/app";

describe("ImageVariant on ECR (issue #12: previews)", () => {
  it("update, by default: builds with buildOnPreview false, imports and exports the registry cache", async () => {
    expect(await imageInputs(false, args(ecr))).toEqual({
      ...common(ECR_REPO),
      buildOnPreview: false,
      cacheFrom: ECR_CACHE_FROM,
      cacheTo: ECR_CACHE_TO,
    });
  });

  it("preview, by default: no preview build; cacheTo stays as in the update so the preview shows no change", async () => {
    // The provider returns before building when `buildOnPreview` is false, so nothing is exported; its Diff compares
    // cacheTo with the state's, so the same inputs as the update keep an unchanged image unchanged in the preview.
    expect(await imageInputs(true, args(ecr))).toEqual({
      ...common(ECR_REPO),
      buildOnPreview: false,
      cacheFrom: ECR_CACHE_FROM,
      cacheTo: ECR_CACHE_TO,
    });
  });

  it("preview, opted in: builds on preview, keeps cacheFrom, and has no cacheTo", async () => {
    const inputs = await imageInputs(true, args(ecr, { buildOnPreview: true }));
    expect(inputs).toEqual({ ...common(ECR_REPO), buildOnPreview: true, cacheFrom: ECR_CACHE_FROM });
    expect(inputs).not.toHaveProperty("cacheTo");
  });

  it("update, opted in: exports the cache as usual", async () => {
    expect(await imageInputs(false, args(ecr, { buildOnPreview: true }))).toEqual({
      ...common(ECR_REPO),
      buildOnPreview: true,
      cacheFrom: ECR_CACHE_FROM,
      cacheTo: ECR_CACHE_TO,
    });
  });

  it("explicit false is the default", async () => {
    expect(await imageInputs(true, args(ecr, { buildOnPreview: false }))).toEqual(await imageInputs(true, args(ecr)));
  });
});

describe("ImageVariant on the local registry (inline cache)", () => {
  it.each([
    ["update", false, undefined, { buildOnPreview: false, cacheTo: [{ inline: {} }] }],
    ["preview", true, undefined, { buildOnPreview: false, cacheTo: [{ inline: {} }] }],
    ["preview, opted in", true, true, { buildOnPreview: true }],
    ["update, opted in", false, true, { buildOnPreview: true, cacheTo: [{ inline: {} }] }],
  ] as const)("%s", async (_case, preview, buildOnPreview, expected) => {
    const a = args(local, buildOnPreview !== undefined ? { buildOnPreview } : {});
    expect(await imageInputs(preview, a)).toEqual({
      ...common(LOCAL_REPO),
      cacheFrom: [{ registry: { ref: `${LOCAL_REPO}:buildcache` } }],
      ...expected,
    });
  });
});
