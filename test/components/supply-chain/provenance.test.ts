import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  BUILD_TYPE_DOCKER_BUILD,
  BUILD_TYPE_PROMOTION,
  type BuildOrigin,
  programBuilder,
  provenanceJson,
  provenancePredicate,
  readProgramBuilder,
  unknownPredicateFields,
} from "../../../components/supply-chain/provenance";
import { PROJECT_ROOT } from "../../../lib/paths";

const HEX = "0123456789abcdef".repeat(4);
const DIGEST = `sha256:${HEX}`;
const CUDA_HEX = "fedcba9876543210".repeat(4);
const CUDA = `nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04@sha256:${CUDA_HEX}`;
const UV = `ghcr.io/astral-sh/uv:0.5.0@sha256:${"11".repeat(32)}`;
const COMMIT = "a".repeat(40);
const BUILDER = { id: "https://github.com/workbench-images/workbench-images/pulumi-program@v0.1.0", version: { "workbench-images": "0.1.0" } };
const BUILD: BuildOrigin = {
  kind: "build",
  context: "images/jupyter-ml",
  dockerfile: "images/jupyter-ml/Dockerfile",
  target: "gpu",
  platforms: ["linux/amd64", "linux/arm64"],
  buildArgs: { PYTHON_VERSION: "3.11", CUDA_FLAVOR: "runtime" },
  bases: { UV_IMAGE: UV, BASE_IMAGE: CUDA },
  source: { url: "https://github.com/workbench-images/workbench-images", revision: COMMIT },
};

describe("the SLSA v1 provenance predicate", () => {
  it("records exactly what a build knows: tag, paths, target, platforms, build args and every base by digest", () => {
    const predicate = provenancePredicate({ builder: BUILDER, tag: "build-0123456789abcdef0123", digest: DIGEST, origin: BUILD });
    expect(predicate).toEqual({
      buildDefinition: {
        buildType: BUILD_TYPE_DOCKER_BUILD,
        externalParameters: {
          source: { url: "https://github.com/workbench-images/workbench-images", revision: COMMIT },
          tag: "build-0123456789abcdef0123",
          context: "images/jupyter-ml",
          dockerfile: "images/jupyter-ml/Dockerfile",
          target: "gpu",
          platforms: ["linux/amd64", "linux/arm64"],
          buildArgs: { CUDA_FLAVOR: "runtime", PYTHON_VERSION: "3.11" },
          bases: { BASE_IMAGE: CUDA, UV_IMAGE: UV },
        },
        resolvedDependencies: [
          { uri: `git+https://github.com/workbench-images/workbench-images@${COMMIT}`, digest: { gitCommit: COMMIT }, name: "source" },
          { uri: CUDA, digest: { sha256: CUDA_HEX }, name: "BASE_IMAGE" },
          { uri: UV, digest: { sha256: "11".repeat(32) }, name: "UV_IMAGE" },
        ],
      },
      runDetails: { builder: BUILDER },
    });
    // Key order is fixed (sorted maps), so the same facts give the same bytes and `pulumi up` re-attests nothing.
    const again = provenancePredicate({
      builder: BUILDER,
      tag: "build-0123456789abcdef0123",
      digest: DIGEST,
      origin: { ...BUILD, buildArgs: { CUDA_FLAVOR: "runtime", PYTHON_VERSION: "3.11" }, bases: { BASE_IMAGE: CUDA, UV_IMAGE: UV } },
    });
    expect(provenanceJson(again)).toBe(provenanceJson(predicate));
    expect(provenanceJson(predicate).endsWith("}\n")).toBe(true);
  });

  it("records no revision it was not told, no target when the last stage is built, and a non-commit revision without a digest", () => {
    const { target: _target, ...untargeted } = BUILD;
    const bare = provenancePredicate({ builder: BUILDER, tag: "build-1", digest: DIGEST, origin: { ...untargeted, source: { url: "https://example.org/r" } } });
    expect(bare.buildDefinition.externalParameters).not.toHaveProperty("target");
    expect(bare.buildDefinition.externalParameters["source"]).toEqual({ url: "https://example.org/r" });
    expect(bare.buildDefinition.resolvedDependencies.map((d) => d.name)).toEqual(["BASE_IMAGE", "UV_IMAGE"]);
    const tagged = provenancePredicate({ builder: BUILDER, tag: "build-1", digest: DIGEST, origin: { ...BUILD, source: { url: "https://example.org/r", revision: "v1.2.0" } } });
    expect(tagged.buildDefinition.resolvedDependencies[0]).toEqual({ uri: "git+https://example.org/r@v1.2.0", name: "source" });
  });

  it("records a promotion's source stack, reference and pools (prod re-attests what it copied)", () => {
    const source = `111122223333.dkr.ecr.us-east-1.amazonaws.com/workbench/universal@${DIGEST}`;
    const predicate = provenancePredicate({
      builder: BUILDER,
      tag: "promoted-0123456789ab",
      digest: DIGEST,
      origin: { kind: "promotion", sourceRef: source, fromStack: "dev", validatedPools: ["h100", "l4"], source: { url: "https://github.com/workbench-images/workbench-images" } },
    });
    expect(predicate).toEqual({
      buildDefinition: {
        buildType: BUILD_TYPE_PROMOTION,
        externalParameters: {
          source: { url: "https://github.com/workbench-images/workbench-images" },
          tag: "promoted-0123456789ab",
          promotedFrom: { stack: "dev", ref: source, validatedPools: ["h100", "l4"] },
        },
        resolvedDependencies: [{ uri: source, digest: { sha256: HEX }, name: "promotion-source" }],
      },
      runDetails: { builder: BUILDER },
    });
  });

  it("writes only fields cosign keeps (in-toto-golang slsa_provenance/v1), with both required fields", () => {
    for (const origin of [BUILD, { kind: "promotion" as const, sourceRef: `r/x@${DIGEST}`, fromStack: "dev", validatedPools: [], source: { url: "https://x.org", revision: COMMIT } }]) {
      const predicate = JSON.parse(provenanceJson(provenancePredicate({ builder: BUILDER, tag: "t", digest: DIGEST, origin })));
      expect(unknownPredicateFields(predicate)).toEqual([]);
      expect(Object.keys(predicate).sort()).toEqual(["buildDefinition", "runDetails"]);
    }
    // The checker itself: a field outside the structs is reported with its path.
    expect(unknownPredicateFields({ buildDefinition: { buildType: "x", resolvedDependencies: [{ uri: "u", sha: "1" }] }, runDetails: { builder: { id: "i", name: "n" } }, extra: 1 })).toEqual([
      "buildDefinition.resolvedDependencies[0].sha",
      "runDetails.builder.name",
      "extra",
    ]);
  });

  it("refuses, all at once, a base not pinned by digest, a build arg that is not a plain string, a bad digest and an empty tag", () => {
    expect(() =>
      provenancePredicate({
        builder: BUILDER,
        tag: " ",
        digest: "sha256:abc",
        origin: { ...BUILD, buildArgs: { TOKEN: { secret: true } as unknown as string }, bases: { BASE_IMAGE: "ubuntu:22.04" } },
      }),
    ).toThrow(
      'provenance: digest must be "sha256:" and 64 lowercase hex characters, got "sha256:abc". tag is empty: pass the registry tag that holds the digest. ' +
        "origin.buildArgs.TOKEN must be a plain string, got object. " +
        'origin.bases.BASE_IMAGE must be an image reference pinned by digest (repository[:tag]@sha256:<64 hex>), got "ubuntu:22.04".',
    );
  });

  it("refuses a promotion whose source names another digest", () => {
    const other = `sha256:${"ff".repeat(32)}`;
    expect(() =>
      provenancePredicate({ builder: BUILDER, tag: "t", digest: DIGEST, origin: { kind: "promotion", sourceRef: `r/x@${other}`, fromStack: "", validatedPools: [], source: { url: "https://x.org" } } }),
    ).toThrow(
      `provenance: origin.sourceRef is pinned to ${other} but the promoted digest is ${DIGEST}: a promotion keeps the digest. ` +
        "origin.fromStack is empty: name the stack the digest was promoted from (promotion.from).",
    );
  });
});

describe("the build types", () => {
  it("point at headings of docs/supply-chain.md that say what their externalParameters mean", () => {
    const slugs = fs
      .readFileSync(path.join(PROJECT_ROOT, "docs", "supply-chain.md"), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("#"))
      .map((l) => l.replace(/^#+\s*/, "").toLowerCase().replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-"));
    for (const type of [BUILD_TYPE_DOCKER_BUILD, BUILD_TYPE_PROMOTION]) {
      const [doc, anchor] = type.split("#");
      expect(doc).toBe("https://github.com/workbench-images/workbench-images/blob/main/docs/supply-chain.md");
      expect(slugs).toContain(anchor);
    }
  });
});

describe("the builder", () => {
  it("is this program at its package.json version", () => {
    expect(programBuilder({ name: "workbench-images", version: "0.1.0" }, "https://github.com/workbench-images/workbench-images/")).toEqual(BUILDER);
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as { name: string; version: string };
    expect(readProgramBuilder(PROJECT_ROOT, "https://example.org/fork")).toEqual({
      id: `https://example.org/fork/pulumi-program@v${pkg.version}`,
      version: { [pkg.name]: pkg.version },
    });
  });

  it("refuses a version, name or URL it could not record", () => {
    expect(() => programBuilder({ name: "Workbench Images", version: "1" }, "git@github.com:x/y")).toThrow(
      'provenance builder: package.json name must be an npm package name, got "Workbench Images". ' +
        'package.json version must be a semantic version such as "0.1.0", got "1". source.url must be an http(s) URL, got "git@github.com:x/y".',
    );
  });
});
