import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { clearContextCache } from "../../components/build/content-hash";
import { diffPlans, planToJson } from "../../scripts/lib/plan-format";
import { byName, byType, MINI_STACK, planConfig, planStackFile, ROOT, sharedPlans, transitiveDependencies } from "../support/harness";
import { parse } from "yaml";

const ACCOUNT_URL = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
// The mini stack is planned once for the tests that only read it; determinism and re-tagging plan afresh.
const plans = sharedPlans();

describe("the program under mocks (mini fixture)", () => {
  it("registers one repository and one image per variant and user, each image depending on its repository", async () => {
    const plan = await plans("test", MINI_STACK);
    const repos = byType(plan, "aws:ecr/repository:Repository").map((r) => r.inputs["name"]).sort();
    expect(repos).toEqual(["wb-1722830498/thesis", "wb/app-cpu", "wb/app-gpu"].sort());
    const images = byType(plan, "docker-build:index:Image");
    expect(images.map((r) => r.name).sort()).toEqual(["app-cpu-image", "app-gpu-image", "user-h-baker-at-hertie-school-lan-thesis-image"]);
    for (const image of images) {
      const repo = byName(plan, image.name.replace(/-image$/, "-repository-ecr"));
      expect(image.dependencies).toContain(repo.urn);
      expect(image.propertyDependencies["tags"]).toContain(repo.urn);
    }
  });

  it("creates ECR repositories immutable with signature and cache exclusions, scanned and KMS-encrypted", async () => {
    const plan = await plans("test", MINI_STACK);
    const repo = byName(plan, "app-cpu-repository-ecr");
    expect(repo.inputs).toEqual({
      encryptionConfigurations: [{ encryptionType: "KMS" }],
      forceDelete: false,
      imageScanningConfiguration: { scanOnPush: true },
      imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
      imageTagMutabilityExclusionFilters: [
        { filter: "sha256-*", filterType: "WILDCARD" },
        { filter: "buildcache*", filterType: "WILDCARD" },
      ],
      name: "wb/app-cpu",
      tags: { "workbench-images/repository": "wb/app-cpu" },
    });
  });

  it("builds with the catalog's target, platforms, build args, OCI labels and the ECR registry cache", async () => {
    const plan = await plans("test", MINI_STACK);
    const image = byName(plan, "app-cpu-image");
    const tag = (image.inputs["tags"] as string[])[0]!;
    expect(tag).toMatch(new RegExp(`^${ACCOUNT_URL}/wb/app-cpu:build-[0-9a-f]{20}$`));
    const version = tag.split(":").pop();
    expect(image.inputs["target"]).toBe("runtime");
    expect(image.inputs["platforms"]).toEqual(["linux/amd64", "linux/arm64"]);
    expect(image.inputs["push"]).toBe(true);
    expect(image.inputs["buildArgs"]).toEqual({
      BASE_IMAGE: "docker.io/library/python:3.12-slim-bookworm@sha256:0000000000000000000000000000000000000000000000000000000000000001",
      PIP_INDEX_URL: "https://pypi.org/simple",
    });
    expect(image.inputs["labels"]).toEqual({
      "org.opencontainers.image.base.digest": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
      "org.opencontainers.image.base.name": "docker.io/library/python:3.12-slim-bookworm",
      "org.opencontainers.image.description": "The app on CPU",
      "org.opencontainers.image.revision": version,
      "org.opencontainers.image.source": "https://github.com/workbench-images/workbench-images",
      "org.opencontainers.image.title": "App (CPU)",
      "org.opencontainers.image.version": version,
    });
    expect(image.inputs["cacheTo"]).toEqual([
      { registry: { imageManifest: true, mode: "max", ociMediaTypes: true, ref: `${ACCOUNT_URL}/wb/app-cpu:buildcache` } },
    ]);
    expect(image.inputs["cacheFrom"]).toEqual([{ registry: { ref: `${ACCOUNT_URL}/wb/app-cpu:buildcache` } }]);
    expect(image.inputs["registries"]).toEqual([{ address: ACCOUNT_URL, password: "[secret]", username: "AWS" }]);
  });

  it("builds the per-user layer over the base variant's digest with the sanitized user baked in", async () => {
    const plan = await plans("test", MINI_STACK);
    const base = plan.outputs["images"] as Record<string, { imageRef: string }>;
    const image = byName(plan, "user-h-baker-at-hertie-school-lan-thesis-image");
    expect(image.inputs["buildArgs"]).toEqual({
      BASE_IMAGE: base["app-cpu"]!.imageRef,
      ENABLE_SUDO: "false",
      USER_GID: "1722830498",
      USER_NAME: "h-baker-at-hertie-school-lan",
      USER_UID: "1722830498",
    });
    expect(image.dependencies).toContain(byName(plan, "app-cpu-image").urn);
  });

  it("exports every image pinned by digest and never a secret", async () => {
    const plan = await plans("test", MINI_STACK);
    const images = plan.outputs["images"] as Record<string, { imageRef: string; digest: string }>;
    for (const img of Object.values(images)) expect(img.imageRef).toBe(`${img.imageRef.split("@")[0]}@${img.digest}`);
    expect(JSON.stringify(plan)).not.toContain("mock-ecr-password");
  });

  it("is byte-identical across runs", async () => {
    const a = planToJson(await planStackFile("test", MINI_STACK));
    const b = planToJson(await planStackFile("test", MINI_STACK));
    expect(a).toBe(b);
  });

  it("re-tags only the variant whose context changed; ignored files and permission bits change nothing", async () => {
    const work = fs.mkdtempSync(path.join(ROOT, ".plan-test-"));
    try {
      fs.cpSync(path.join(ROOT, "test/fixtures/mini/images"), path.join(work, "images"), { recursive: true });
      const rel = path.relative(ROOT, work);
      const stack = parse(fs.readFileSync(path.join(ROOT, MINI_STACK), "utf8")).config as Record<string, unknown>;
      stack["workbench-images:catalogPath"] = `${rel}/images/catalog.yaml`;
      clearContextCache();
      const before = await planConfig("test", stack);
      fs.chmodSync(path.join(work, "images/tools/check.sh"), 0o755);
      fs.writeFileSync(path.join(work, "images/app/notes/todo.txt"), "still ignored, edited");
      clearContextCache();
      const same = await planConfig("test", stack);
      expect(diffPlans(before, same).changed).toEqual([]);
      fs.appendFileSync(path.join(work, "images/tools/check.sh"), "echo changed\n");
      clearContextCache();
      const after = await planConfig("test", stack);
      const diff = diffPlans(before, after);
      expect(diff.added).toEqual([]);
      expect(diff.removed).toEqual([]);
      // Only app-gpu is rebuilt; what changes besides is downstream of its new digest (profiles, catalog, pre-pull).
      const builds = diff.changed.filter((c) => c.resource.type === "docker-build:index:Image");
      expect(builds.map((c) => [c.resource.name, c.paths])).toEqual([
        ["app-gpu-image", ["labels.org.opencontainers.image.revision", "labels.org.opencontainers.image.version", "tags[0]"]],
      ]);
      expect(diff.changed.filter((c) => c.resource.type.startsWith("aws:"))).toEqual([]);
      expect(diff.outputs).toEqual([
        "catalog[1].imageRef",
        "images.app-gpu.digest",
        "images.app-gpu.imageRef",
        "images.app-gpu.tag",
        "validatedImages.app-gpu.digest",
        "validatedImages.app-gpu.imageRef",
        // The validation Job of a new digest is a new Job (its name carries the digest).
        "validation.app-gpu.h100.job",
      ]);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
      clearContextCache();
    }
  });
});


describe("the dev stack graph", () => {
  it("validates every GPU variant on every compatible pool and publishes only through those Jobs", async () => {
    const plan = await planStackFile("dev", "Pulumi.dev.yaml");
    const jobs = byType(plan, "kubernetes:batch/v1:Job").filter((j) => j.name.startsWith("gpu-validation-"));
    expect(jobs.map((j) => j.name).sort()).toEqual(
      // Every GPU variant, and the per-user image built over jupyter-ml-gpu, on both compatible pools.
      ["jupyter-fine-tuning", "jupyter-ml-gpu", "ml-stack-ml", "universal", "user-h-baker-at-hertie-school-lan-thesis"]
        .flatMap((v) => [`gpu-validation-${v}-h100-job`, `gpu-validation-${v}-l40s-job`])
        .sort(),
    );
    for (const job of jobs) {
      const spec = job.inputs["spec"] as { template: { spec: { containers: Array<{ image: string }> } } };
      expect(spec.template.spec.containers[0]!.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    }
    const release = byName(plan, "jupyterhub-release");
    const upstream = transitiveDependencies(plan, release.urn);
    const published = ["jupyter-fine-tuning", "jupyter-ml-gpu", "universal", "user-h-baker-at-hertie-school-lan-thesis"];
    for (const v of published) {
      expect(upstream.has(byName(plan, `gpu-validation-${v}-h100-job`).urn)).toBe(true);
      expect(upstream.has(byName(plan, `gpu-validation-${v}-l40s-job`).urn)).toBe(true);
    }
    const catalog = plan.outputs["catalog"] as Array<{ name: string; imageRef: string; pools: string[] }>;
    expect(catalog.map((c) => c.name).sort()).toEqual(
      ["jupyter-agent-dev", "jupyter-fine-tuning", "jupyter-ml-cpu", "jupyter-ml-gpu", "ml-stack-jupyter", "universal"].sort(),
    );
    for (const c of catalog) expect(c.imageRef).toMatch(/@sha256:[0-9a-f]{64}$/);
  });
});
