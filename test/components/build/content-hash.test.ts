/**
 * Per-target content hashes (issue #16): a target's tag covers only the context files its stages read, found by
 * parsing the Dockerfile; what cannot be resolved statically hashes the whole context. Checked on synthetic
 * Dockerfiles, on listings, and on temporary copies of the real images/ml-stack and images/notebook-validator.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  clearContextCache,
  contentTag,
  contextDigests,
  dockerfileContextReads,
  selectContextFiles,
  targetContextFiles,
  type BuildInputs,
} from "../../../components/build/content-hash";
import { loadCatalog, type CatalogVariant } from "../../../config/catalog";
import { PROJECT_ROOT } from "../../../lib/paths";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  clearContextCache();
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "wb-hash-"));
  dirs.push(d);
  return d;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the stage graph
// ---------------------------------------------------------------------------------------------------------------

describe("dockerfileContextReads", () => {
  const multi = [
    "ARG BASE_IMAGE",
    "FROM ${BASE_IMAGE} AS deps",
    "COPY requirements/ /r/",
    "FROM ${BASE_IMAGE} AS tools",
    "COPY tools/ /tools/",
    "FROM golang:1.22@sha256:" + "a".repeat(64) + " AS gobuild",
    "RUN --mount=type=bind,source=cmd,target=/src --mount=type=cache,target=/root/.cache go build /src",
    "FROM deps AS App",
    "COPY --from=tools /tools /tools",
    "COPY --from=docker.io/library/busybox:1.36 /bin/busybox /bin/busybox",
    'COPY ["app dir/main.py", "./conf.yaml", "/app/"]',
    "ADD https://example.invalid/data.tar.gz /data/",
    "FROM app AS test",
    "RUN --mount=from=gobuild,source=/out,target=/gobin true",
    "COPY --from=1 /tools/x /x",
    "COPY tests/ /tests/",
    "FROM ${BASE_IMAGE}",
    "COPY . /everything/",
  ].join("\n");
  const args = { BASE_IMAGE: "python:3.12@sha256:" + "b".repeat(64) };

  it("follows FROM <stage> and COPY --from=<stage>, not images; reads COPY and ADD sources of those stages only", () => {
    expect(dockerfileContextReads(multi, "app", args)).toEqual({
      kind: "sources",
      stages: ["deps", "tools", "app"],
      sources: ["app dir/main.py", "conf.yaml", "requirements", "tools"],
    });
  });

  it("matches --target and stage names case-insensitively, follows RUN --mount from= and COPY --from=<index>", () => {
    expect(dockerfileContextReads(multi, "TEST", args)).toEqual({
      kind: "sources",
      stages: ["deps", "tools", "gobuild", "app", "test"],
      sources: ["app dir/main.py", "cmd", "conf.yaml", "requirements", "tests", "tools"],
    });
  });

  it("builds the last stage when no target is given; `.` is the whole context", () => {
    expect(dockerfileContextReads(multi, undefined, args)).toEqual({ kind: "sources", stages: ["5"], sources: ["."] });
  });

  it("resolves a stage named by a build arg in FROM, with the arg's default or the value passed", () => {
    const text = ["ARG FLAVOUR=cpu", "FROM scratch AS base-cpu", "COPY cpu.txt /", "FROM scratch AS base-gpu", "COPY gpu.txt /", "FROM base-${FLAVOUR}", "COPY app.py /"].join("\n");
    expect(dockerfileContextReads(text, undefined, {})).toEqual({ kind: "sources", stages: ["base-cpu", "2"], sources: ["app.py", "cpu.txt"] });
    expect(dockerfileContextReads(text, undefined, { FLAVOUR: "gpu" })).toEqual({ kind: "sources", stages: ["base-gpu", "2"], sources: ["app.py", "gpu.txt"] });
  });

  it("ignores build args the Dockerfile does not declare, and still tells declared ones apart (one analysis per declared set)", () => {
    const text = ["ARG FLAVOUR=cpu", "FROM scratch AS base-cpu", "COPY cpu.txt /", "FROM scratch AS base-gpu", "COPY gpu.txt /", "FROM base-${FLAVOUR}", "COPY app.py /"].join("\n");
    const cpu = { kind: "sources", stages: ["base-cpu", "2"], sources: ["app.py", "cpu.txt"] };
    const gpu = { kind: "sources", stages: ["base-gpu", "2"], sources: ["app.py", "gpu.txt"] };
    expect(dockerfileContextReads(text, undefined, { VARIANT: "1" })).toEqual(cpu);
    expect(dockerfileContextReads(text, undefined, { VARIANT: "2", FLAVOUR: "gpu" })).toEqual(gpu);
    expect(dockerfileContextReads(text, undefined, { VARIANT: "3", FLAVOUR: "cpu" })).toEqual(cpu);
    expect(dockerfileContextReads(text, undefined, { VARIANT: "4", FLAVOUR: "gpu" })).toEqual(gpu);
  });

  it("a bind mount without from= reads the context (its root by default); cache, secret and tmpfs mounts do not", () => {
    const text = [
      "FROM scratch",
      "RUN --mount=type=bind,src=lock.txt,target=/l --mount=type=secret,id=npm --mount=type=tmpfs,target=/t true",
      "RUN --mount=target=/ctx true",
    ].join("\n");
    expect(dockerfileContextReads(text, undefined, {})).toEqual({ kind: "sources", stages: ["0"], sources: [".", "lock.txt"] });
  });

  it.each([
    ["a variable in a COPY source", "ARG F=a\nFROM scratch\nCOPY ${F} /", 'COPY source "${F}" uses a variable'],
    ["ONBUILD", "FROM scratch\nONBUILD COPY . /", "ONBUILD instruction"],
    ["a here-document", "FROM scratch\nCOPY <<EOF /x\nhi\nEOF", "COPY with a here-document"],
    ["a target that is not a stage", "FROM scratch AS a\nCOPY a /", 'target "b" is not a stage of the Dockerfile'],
    ["a FROM variable with no value", "ARG BASE\nFROM ${BASE}\nCOPY a /", "FROM ${BASE}: build arg BASE has no value here (in \"${BASE}\")"],
    ["an unsupported expansion", "ARG B=x\nFROM ${B%%y}\nCOPY a /", 'FROM ${B%%y}: unsupported variable form ${B%%y} in "${B%%y}"'],
  ])("falls back to the whole context on %s", (_what, text, reason) => {
    expect(dockerfileContextReads(text, text.includes("AS a") ? "b" : undefined, {})).toEqual({ kind: "all", reason });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Matching sources against a listing
// ---------------------------------------------------------------------------------------------------------------

describe("selectContextFiles", () => {
  const listing = [
    ["a.py", "1"],
    ["b.py", "2"],
    ["c.txt", "3"],
    ["lib/x/deep.py", "4"],
    ["lib/y.py", "5"],
    ["req1/r.txt", "6"],
    ["req2/r.txt", "7"],
    ["reqs/r.txt", "8"],
  ] as const;
  const pick = (...sources: string[]) => selectContextFiles(listing, { kind: "sources", stages: ["0"], sources }).files.map(([p]) => p);

  it("takes files, whole directories and Go filepath.Match globs per path segment", () => {
    expect(pick("c.txt")).toEqual(["c.txt"]);
    expect(pick("lib")).toEqual(["lib/x/deep.py", "lib/y.py"]);
    expect(pick("*.py")).toEqual(["a.py", "b.py"]);
    expect(pick("[ab].py")).toEqual(["a.py", "b.py"]);
    expect(pick("[!a].py")).toEqual(["b.py"]);
    expect(pick("req?")).toEqual(["req1/r.txt", "req2/r.txt", "reqs/r.txt"]);
    expect(pick("req[0-9]/*.txt")).toEqual(["req1/r.txt", "req2/r.txt"]);
    expect(pick("lib/*")).toEqual(["lib/x/deep.py", "lib/y.py"]);
    expect(pick("**/*.py")).toEqual(["a.py", "b.py", "lib/x/deep.py", "lib/y.py"]);
    expect(pick("nothing")).toEqual([]);
    expect(pick(".")).toEqual(listing.map(([p]) => p));
  });

  it("keeps a symlink inside a copied directory as a link, and hashes the whole context when a source follows one", () => {
    const withLink = [...listing, ["lib/link", "link:abc"] as const].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const reads = (sources: string[]) => selectContextFiles(withLink, { kind: "sources", stages: ["0"], sources });
    expect(reads(["lib"]).files.map(([p]) => p)).toEqual(["lib/link", "lib/x/deep.py", "lib/y.py"]);
    expect(reads(["lib/link"])).toEqual({ files: withLink, wholeContext: "source lib/link reaches the symlink lib/link" });
    expect(reads(["lib/link/inner.txt"]).wholeContext).toBe("source lib/link/inner.txt reaches the symlink lib/link");
    expect(reads(["a.py"]).files.map(([p]) => p)).toEqual(["a.py"]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Tags on real contexts
// ---------------------------------------------------------------------------------------------------------------

const { catalog } = loadCatalog(path.join(PROJECT_ROOT, "images", "catalog.yaml"), {
  repositoryPrefix: "workbench",
  requireDigests: false,
  displayPath: "images/catalog.yaml",
});
const variants = catalog!.variants;

function inputs(v: CatalogVariant, contextDir: string): BuildInputs {
  return {
    contextDir,
    dockerfile: path.join(contextDir, v.dockerfile),
    ...(v.target !== undefined ? { target: v.target } : {}),
    buildArgs: v.buildArgs,
    platforms: v.platforms,
    bases: { [v.base.arg]: v.base.ref, ...v.extraBases },
  };
}

/** A temporary copy of one catalog context and a way to read every target's tag in it. */
function copyOf(context: string): { dir: string; tags(): Record<string, string> } {
  const dir = path.join(tmpDir(), context);
  fs.cpSync(path.join(PROJECT_ROOT, "images", context), dir, { recursive: true });
  const mine = variants.filter((v) => v.context === context);
  return {
    dir,
    tags() {
      clearContextCache();
      return Object.fromEntries(mine.map((v) => [v.target ?? v.name, contentTag(inputs(v, dir))]));
    },
  };
}

/** The targets whose tag differs after `edit`. */
function retagged(copy: ReturnType<typeof copyOf>, edit: (dir: string) => void): string[] {
  const before = copy.tags();
  edit(copy.dir);
  const after = copy.tags();
  return Object.keys(before)
    .filter((t) => before[t] !== after[t])
    .sort();
}

const append = (file: string, text = "\n# edited\n") => (dir: string) => fs.appendFileSync(path.join(dir, file), text);

describe("notebook-validator: one target per tier over a shared base stage", () => {
  it("gives each tier its own tag", () => {
    const tags = copyOf("notebook-validator").tags();
    expect(Object.keys(tags).sort()).toEqual(["tier1", "tier2", "tier3"]);
    expect(new Set(Object.values(tags)).size).toBe(3);
  });

  it("re-tags only the tier whose notebooks changed", () => {
    const copy = copyOf("notebook-validator");
    expect(retagged(copy, append("notebooks/tier2/01-train-classifier.ipynb", " "))).toEqual(["tier2"]);
    expect(retagged(copy, (d) => fs.writeFileSync(path.join(d, "notebooks/tier3/03-new.ipynb"), "{}"))).toEqual(["tier3"]);
    expect(retagged(copy, (d) => fs.rmSync(path.join(d, "notebooks/tier1/02-prometheus-query.ipynb")))).toEqual(["tier1"]);
  });

  it("re-tags every tier when a file the base stage copies changes", () => {
    const copy = copyOf("notebook-validator");
    expect(retagged(copy, append("run_notebooks.py"))).toEqual(["tier1", "tier2", "tier3"]);
    // The base stage copies requirements/ whole, so every tier's image holds every tier's requirement file.
    expect(retagged(copy, append("requirements/tier1.txt"))).toEqual(["tier1", "tier2", "tier3"]);
    expect(retagged(copy, append("Dockerfile"))).toEqual(["tier1", "tier2", "tier3"]);
    expect(retagged(copy, append(".dockerignore", "\n# comment\n"))).toEqual(["tier1", "tier2", "tier3"]);
  });

  it("re-tags nothing for files the builder never receives", () => {
    const copy = copyOf("notebook-validator");
    expect(retagged(copy, append("README.md"))).toEqual([]);
    expect(
      retagged(copy, (d) => {
        fs.mkdirSync(path.join(d, "notebooks/tier1/.ipynb_checkpoints"));
        fs.writeFileSync(path.join(d, "notebooks/tier1/.ipynb_checkpoints/01-kubernetes-client-checkpoint.ipynb"), "{}");
      }),
    ).toEqual([]);
    expect(retagged(copy, (d) => fs.chmodSync(path.join(d, "run_notebooks.py"), 0o700))).toEqual([]);
  });
});

describe("ml-stack: base, ml, full and jupyter in one Dockerfile", () => {
  /** Whether the committed Dockerfile's `stage` copies requirements/ whole (a plain text check, not the parser). */
  const stageCopiesAllRequirements = (text: string, stage: string) =>
    (text.split(/^FROM /m).find((s) => new RegExp(`^\\S+ AS ${stage}\\b`).test(s)) ?? "").includes("COPY requirements/ ");

  it("re-tags full and jupyter when full.txt changes, and base and ml only if their stages copy it", () => {
    const copy = copyOf("ml-stack");
    const text = fs.readFileSync(path.join(copy.dir, "Dockerfile"), "utf8");
    // As committed, base and ml copy requirements/ whole: full.txt is then part of their images, so their tags
    // must change too. Narrowing those COPY lines (see the next test) is a Dockerfile change, not a hash change.
    const expected = ["full", "jupyter", ...["base", "ml"].filter((s) => stageCopiesAllRequirements(text, s))].sort();
    expect(retagged(copy, append("requirements/full.txt"))).toEqual(expected);
  });

  it("with each stage copying only its own requirement files, a file re-tags exactly the targets that read it", () => {
    const copy = copyOf("ml-stack");
    const file = path.join(copy.dir, "Dockerfile");
    let text = fs.readFileSync(file, "utf8");
    const copyAll = "COPY requirements/ /opt/ml-stack/requirements/\n";
    if (text.includes(copyAll)) {
      const narrowed = [
        "COPY requirements/base.txt /opt/ml-stack/requirements/\n",
        "COPY requirements/torch.txt requirements/base.txt requirements/gpu.txt /opt/ml-stack/requirements/\n",
      ];
      text = text.replace(copyAll, narrowed[0]!).replace(copyAll, narrowed[1]!);
      text = text.replace("FROM base AS full\nUSER 0:0\n", "FROM base AS full\nUSER 0:0\nCOPY requirements/torch.txt requirements/full.txt /opt/ml-stack/requirements/\n");
      text = text.replace("FROM full AS jupyter\nUSER 0:0\n", "FROM full AS jupyter\nUSER 0:0\nCOPY requirements/jupyter.txt /opt/ml-stack/requirements/\n");
      expect(text).not.toContain(copyAll);
      expect(text.match(/^COPY /gm)).toHaveLength(4);
      fs.writeFileSync(file, text);
    }
    expect(retagged(copy, append("requirements/full.txt"))).toEqual(["full", "jupyter"]);
    expect(retagged(copy, append("requirements/jupyter.txt"))).toEqual(["jupyter"]);
    expect(retagged(copy, append("requirements/gpu.txt"))).toEqual(["ml"]);
    expect(retagged(copy, append("requirements/torch.txt"))).toEqual(["full", "jupyter", "ml"]);
    expect(retagged(copy, append("requirements/base.txt"))).toEqual(["base", "full", "jupyter", "ml"]);
    expect(retagged(copy, append("Dockerfile"))).toEqual(["base", "full", "jupyter", "ml"]);
  });

  it("hashes the Dockerfile and .dockerignore even though .dockerignore excludes both from the context", () => {
    const v = variants.find((x) => x.name === "ml-stack-base")!;
    const dir = path.join(PROJECT_ROOT, "images", "ml-stack");
    clearContextCache();
    expect(contextDigests(dir).map(([p]) => p)).not.toContain("Dockerfile");
    const { files, reads } = targetContextFiles(inputs(v, dir));
    expect(reads).toEqual({ kind: "sources", stages: ["base"], sources: ["requirements/base.txt"] });
    expect(files.map(([p]) => p)).toEqual([".dockerignore", "Dockerfile", "requirements/base.txt"]);
  });
});

describe("tags that did not narrow", () => {
  it("are unchanged from before issue #16 where a target reads all it is sent (the mini fixture's variants)", () => {
    // The tags test/fixtures/promotion/dev-plan-outputs.json held for the mini stack before this change, pinned here
    // so that the canonical form (v1) cannot drift unnoticed: each target reads every file it is sent.
    const before = { "app-cpu": "build-c4b9e3fb7735e89a8a3b", "app-gpu": "build-da75630b0b2c02cf1f48" };
    const mini = path.join(PROJECT_ROOT, "test/fixtures/mini/images");
    clearContextCache();
    expect(
      contentTag({
        contextDir: path.join(mini, "app"),
        dockerfile: path.join(mini, "app", "Dockerfile"),
        target: "runtime",
        buildArgs: { PIP_INDEX_URL: "https://pypi.org/simple" },
        platforms: ["linux/amd64", "linux/arm64"],
        bases: { BASE_IMAGE: "docker.io/library/python:3.12-slim-bookworm@sha256:0000000000000000000000000000000000000000000000000000000000000001" },
      }),
    ).toBe(before["app-cpu"]);
    expect(
      contentTag({
        contextDir: path.join(mini, "tools"),
        dockerfile: path.join(mini, "tools", "Dockerfile"),
        buildArgs: {},
        platforms: ["linux/amd64"],
        bases: { BASE_IMAGE: "docker.io/nvidia/cuda:12.8.1-runtime-ubuntu24.04@sha256:0000000000000000000000000000000000000000000000000000000000000002" },
      }),
    ).toBe(before["app-gpu"]);
  });

  it("is deterministic: the same inputs give the same tag in a fresh process state and from a copy elsewhere", () => {
    const v = variants.find((x) => x.name === "notebook-validator-tier2")!;
    clearContextCache();
    const here = contentTag(inputs(v, path.join(PROJECT_ROOT, "images", "notebook-validator")));
    clearContextCache();
    expect(contentTag(inputs(v, path.join(PROJECT_ROOT, "images", "notebook-validator")))).toBe(here);
    expect(copyOf("notebook-validator").tags()["tier2"]).toBe(here);
  });
});
