/**
 * Static checks of the image sources under images/ against images/catalog.yaml (issue #3: every family as real,
 * buildable sources, pinned, small, non-root where the family allows it). Nothing is built here: the Dockerfiles
 * are parsed with dockerfile-ast and the catalog with yaml, so this runs in well under a second. Real builds of
 * images/per-user and images/universal/entrypoint.sh happen in test/images/containers.test.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import dockerignore from "@balena/dockerignore";
import { type Dockerfile, DockerfileParser, type From, type Instruction, type JSONInstruction } from "dockerfile-ast";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/paths";

const IMAGES = path.resolve(PROJECT_ROOT, "images");
/** Folders under images/ that other parts of the project own and that hold no image sources. */
const NOT_IMAGES = new Set(["checks", "hub"]);

const CU128 = "https://download.pytorch.org/whl/cu128";
const CPU = "https://download.pytorch.org/whl/cpu";

/** `name==version` or `name[extra]==version`: the only requirement form allowed anywhere under images/. */
const PIN = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9._,-]+\])?==[0-9][A-Za-z0-9.+!_-]*$/;
/** registry/repository:tag@sha256:<64 hex>: the tag for humans and pin-bases, the digest for the build. */
const DIGEST_REF = /^[a-z0-9.-]+(?::[0-9]+)?\/[a-z0-9._/-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}@sha256:[0-9a-f]{64}$/;

// ---------------------------------------------------------------------------------------------------------------
// The catalog, narrowed from YAML without `any`
// ---------------------------------------------------------------------------------------------------------------

interface Variant {
  name: string;
  family: string;
  context: string;
  dockerfile: string;
  target: string | undefined;
  platforms: string[];
  baseArg: string;
  baseRef: string;
  extraBases: Record<string, string>;
  cuda: string | undefined;
  gpu: boolean;
  flashAttn: boolean;
  smokeCommand: string[];
  smokeImports: string[];
  sizeBudgetMB: number;
  publish: { order: number; default: boolean } | undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function field<T>(obj: Record<string, unknown>, key: string, where: string, check: (v: unknown) => v is T): T {
  const v = obj[key];
  if (!check(v)) throw new Error(`images/catalog.yaml: ${where}.${key} has an unexpected value ${JSON.stringify(v)}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === "string";
const isOptString = (v: unknown): v is string | undefined => v === undefined || typeof v === "string";
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isNumber = (v: unknown): v is number => typeof v === "number";
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function loadVariants(): Variant[] {
  const doc: unknown = parseYaml(fs.readFileSync(path.join(IMAGES, "catalog.yaml"), "utf8"));
  if (!isRecord(doc) || !Array.isArray(doc.variants)) throw new Error("images/catalog.yaml has no variants list");
  return doc.variants.map((raw: unknown, i: number): Variant => {
    const where = `variants[${i}]`;
    if (!isRecord(raw)) throw new Error(`images/catalog.yaml: ${where} is not a mapping`);
    const base = field(raw, "base", where, isRecord);
    const extra = raw.extraBases === undefined ? {} : field(raw, "extraBases", where, isRecord);
    const smoke = field(raw, "smoke", where, isRecord);
    const ships = raw.ships === undefined ? {} : field(raw, "ships", where, isRecord);
    const publish = raw.publish === undefined ? undefined : field(raw, "publish", where, isRecord);
    return {
      name: field(raw, "name", where, isString),
      family: field(raw, "family", where, isString),
      context: field(raw, "context", where, isString),
      dockerfile: raw.dockerfile === undefined ? "Dockerfile" : field(raw, "dockerfile", where, isString),
      target: field(raw, "target", where, isOptString),
      platforms: field(raw, "platforms", where, isStrings),
      baseArg: base.arg === undefined ? "BASE_IMAGE" : field(base, "arg", `${where}.base`, isString),
      baseRef: field(base, "ref", `${where}.base`, isString),
      extraBases: Object.fromEntries(
        Object.keys(extra).map((k) => [k, field(extra, k, `${where}.extraBases`, isString)]),
      ),
      cuda: field(raw, "cuda", where, isOptString),
      gpu: raw.gpu === undefined ? false : field(raw, "gpu", where, isBool),
      flashAttn: ships.flashAttn === undefined ? false : field(ships, "flashAttn", `${where}.ships`, isBool),
      smokeCommand: field(smoke, "command", `${where}.smoke`, isStrings),
      smokeImports: smoke.imports === undefined ? [] : field(smoke, "imports", `${where}.smoke`, isStrings),
      sizeBudgetMB: field(raw, "sizeBudgetMB", where, isNumber),
      publish: publish && {
        order: field(publish, "order", `${where}.publish`, isNumber),
        default: publish.default === undefined ? false : field(publish, "default", `${where}.publish`, isBool),
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile model: stages, the chain a target builds through, and what is in force in it
// ---------------------------------------------------------------------------------------------------------------

interface Stage {
  /** `AS name`, or undefined for an unnamed stage. */
  name: string | undefined;
  /** The FROM image exactly as written, e.g. `${BASE_IMAGE}` or `base`. */
  from: string;
  instructions: Instruction[];
}

interface ParsedDockerfile {
  dir: string;
  file: string;
  ast: Dockerfile;
  /** ARGs before the first FROM: name -> default (null when it has none). */
  globalArgs: Map<string, string | null>;
  stages: Stage[];
}

function parseDockerfile(dir: string, file = "Dockerfile"): ParsedDockerfile {
  const full = path.join(IMAGES, dir, file);
  const ast = DockerfileParser.parse(fs.readFileSync(full, "utf8"));
  const globalArgs = new Map<string, string | null>();
  for (const arg of ast.getInitialARGs()) {
    const prop = arg.getProperty();
    if (prop) globalArgs.set(prop.getName(), prop.getValue());
  }
  const stages: Stage[] = [];
  for (const ins of ast.getInstructions()) {
    if (ins.getKeyword() === "FROM") {
      const from = ins as From;
      stages.push({ name: from.getBuildStage() ?? undefined, from: from.getImage() ?? "", instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { dir, file: `images/${dir}/${file}`, ast, globalArgs, stages };
}

/** The stages a target builds, root first: the target (or the last stage) and every stage it is FROM. */
function chainOf(df: ParsedDockerfile, target: string | undefined): Stage[] {
  let stage = target === undefined ? df.stages.at(-1) : df.stages.find((s) => s.name === target);
  if (!stage) throw new Error(`${df.file} has no stage ${target ?? "(last)"}`);
  const chain: Stage[] = [];
  while (stage) {
    chain.unshift(stage);
    const parentName: string = stage.from;
    stage = df.stages.find((s) => s.name !== undefined && s.name === parentName);
  }
  return chain;
}

/** The last instruction with this keyword in force at the end of the chain (inherited from parent stages). */
function inForce(chain: Stage[], keyword: string): Instruction | undefined {
  for (const stage of [...chain].reverse()) {
    const found = stage.instructions.filter((i) => i.getKeyword() === keyword).at(-1);
    if (found) return found;
  }
  return undefined;
}

function content(ins: Instruction): string {
  return ins.getArgumentsContent() ?? "";
}

function jsonStrings(ins: Instruction | undefined): string[] | undefined {
  return ins ? (ins as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue()) : undefined;
}

function runs(chain: Stage[]): Instruction[] {
  return chain.flatMap((s) => s.instructions.filter((i) => i.getKeyword() === "RUN"));
}

function envKeys(chain: Stage[]): Set<string> {
  const keys = new Set<string>();
  for (const stage of chain) {
    for (const env of stage.instructions.filter((i) => i.getKeyword() === "ENV")) {
      for (const m of content(env).matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=/g)) keys.add(m[1] ?? "");
    }
  }
  return keys;
}

/** COPY instructions (not `--from`) as [sources, destination] pairs, context-relative sources. */
function copies(stages: Stage[]): Array<{ sources: string[]; dest: string }> {
  const out: Array<{ sources: string[]; dest: string }> = [];
  for (const stage of stages) {
    for (const ins of stage.instructions.filter((i) => i.getKeyword() === "COPY" || i.getKeyword() === "ADD")) {
      const args = ins.getArguments().map((a) => a.getValue());
      if (args.some((a) => a.startsWith("--from"))) continue;
      const plain = args.filter((a) => !a.startsWith("--"));
      const dest = plain.at(-1);
      if (dest === undefined) continue;
      out.push({ sources: plain.slice(0, -1), dest });
    }
  }
  return out;
}

/** Maps a path inside the image back to the context file COPY put there, if any. */
function contextFileFor(df: ParsedDockerfile, chain: Stage[], imagePath: string): string | undefined {
  for (const { sources, dest } of copies(chain).reverse()) {
    for (const src of sources) {
      const srcFull = path.join(IMAGES, df.dir, src);
      const isDir = src.endsWith("/") || (fs.existsSync(srcFull) && fs.statSync(srcFull).isDirectory());
      if (isDir) {
        const prefix = dest.endsWith("/") ? dest : `${dest}/`;
        if (imagePath.startsWith(prefix)) return path.join(src, imagePath.slice(prefix.length));
      } else if (dest.endsWith("/") ? imagePath === dest + path.basename(src) : imagePath === dest) {
        return src;
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Shell text: pip installs and package-manager caches inside RUN lines
// ---------------------------------------------------------------------------------------------------------------

interface PipInstall {
  text: string;
  flags: string[];
  indexUrls: string[];
  specs: string[];
  requirementFiles: string[];
  constraintFiles: string[];
}

/** Every `pip install` in a shell text, split at `&&`, `||`, `;`, `|` and newlines. */
function pipInstalls(shell: string): PipInstall[] {
  const out: PipInstall[] = [];
  for (const segment of shell.split(/&&|\|\||;|\||\n/)) {
    const m = /(?:^|\s|\))(?:python3?\s+-m\s+)?pip3?\s+install\s+(.*)$/.exec(segment);
    if (!m) continue;
    const tokens = (m[1] ?? "").trim().split(/\s+/).filter((t) => t !== "").map((t) => t.replace(/^["']|["']$/g, ""));
    const pip: PipInstall = { text: segment.trim(), flags: [], indexUrls: [], specs: [], requirementFiles: [], constraintFiles: [] };
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i] ?? "";
      const next = (): string => tokens[++i] ?? "";
      if (t === "-r" || t === "--requirement") pip.requirementFiles.push(next());
      else if (t === "-c" || t === "--constraint") pip.constraintFiles.push(next());
      else if (t === "-i" || t === "--index-url" || t === "--extra-index-url") pip.indexUrls.push(`${t} ${next()}`);
      else if (t.startsWith("-")) pip.flags.push(t);
      else pip.specs.push(t);
    }
    out.push(pip);
  }
  return out;
}

/** Lines of a requirements file that are not comments or blank. */
function requirementLines(file: string): string[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter((l) => l !== "");
}

/**
 * Package-manager installs whose caches are not cleared later in the same shell text. dnf/microdnf need
 * `clean all` (or removing /var/cache/dnf), apt-get needs its lists removed.
 */
function uncleanedInstalls(shell: string): string[] {
  const problems: string[] = [];
  for (const m of shell.matchAll(/\b(microdnf|dnf|yum)\s+(?:-\S+\s+)*install\b/g)) {
    const after = shell.slice((m.index ?? 0) + m[0].length);
    if (!/\b(?:microdnf|dnf|yum)\s+(?:-\S+\s+)*clean\s+all\b|rm\s+-rf\s+\/var\/cache\/(?:dnf|yum)/.test(after)) {
      problems.push(`${m[0]} without a later clean`);
    }
  }
  for (const m of shell.matchAll(/\bapt-get\s+(?:-\S+\s+)*install\b/g)) {
    const after = shell.slice((m.index ?? 0) + m[0].length);
    if (!/rm\s+-rf\s+\/var\/lib\/apt\/lists/.test(after)) problems.push(`${m[0]} without removing /var/lib/apt/lists`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// What each folder must contain, exactly
// ---------------------------------------------------------------------------------------------------------------

interface Expected {
  stages: Array<string | undefined>;
  froms: string[];
  /** Global ARGs that FROM lines use; none may have a default. */
  fromArgs: string[];
  /** Final USER per catalog target ("" when the variant has no target). */
  users: Record<string, string>;
  /** The torch indexes pip installs from, in Dockerfile order. */
  indexUrls: string[];
}

const EXPECTED: Record<string, Expected> = {
  universal: {
    stages: [undefined],
    froms: ["${BASE_IMAGE}"],
    fromArgs: ["BASE_IMAGE"],
    users: { "": "1001" },
    indexUrls: [`--index-url ${CU128}`],
  },
  "notebook-validator": {
    stages: ["base", "tier1", "tier2", "tier3"],
    froms: ["${BASE_IMAGE}", "base", "base", "base"],
    fromArgs: ["BASE_IMAGE"],
    users: { tier1: "1001", tier2: "1001", tier3: "1001" },
    indexUrls: [`--index-url ${CPU}`],
  },
  "ml-stack": {
    stages: ["base", "ml", "full", "jupyter"],
    froms: ["${BASE_IMAGE}", "${CUDA_IMAGE}", "base", "full"],
    fromArgs: ["BASE_IMAGE", "CUDA_IMAGE"],
    users: { base: "10001:10001", ml: "10001:10001", full: "10001:10001", jupyter: "10001:10001" },
    indexUrls: [`--index-url ${CU128}`, `--index-url ${CPU}`],
  },
  "jupyter-ml-cpu": {
    stages: [undefined],
    froms: ["${BASE_IMAGE}"],
    fromArgs: ["BASE_IMAGE"],
    users: { "": "1000:100" },
    indexUrls: [`--index-url ${CPU}`],
  },
  "jupyter-ml-gpu": {
    stages: [undefined],
    froms: ["${BASE_IMAGE}"],
    fromArgs: ["BASE_IMAGE"],
    users: { "": "1000:100" },
    indexUrls: [`--index-url ${CU128}`],
  },
  "jupyter-agent-dev": {
    stages: [undefined],
    froms: ["${BASE_IMAGE}"],
    fromArgs: ["BASE_IMAGE"],
    users: { "": "1000:100" },
    indexUrls: [],
  },
  "jupyter-fine-tuning": {
    stages: [undefined],
    froms: ["${BASE_IMAGE}"],
    fromArgs: ["BASE_IMAGE"],
    users: { "": "1000:100" },
    indexUrls: [`--index-url ${CU128}`],
  },
  "per-user": {
    stages: [undefined],
    froms: ["${BASE_IMAGE}"],
    fromArgs: ["BASE_IMAGE"],
    users: { "": "${USER_UID}:${USER_GID}" },
    indexUrls: [],
  },
};

const variants = loadVariants();
const dockerfiles = new Map(Object.keys(EXPECTED).map((dir) => [dir, parseDockerfile(dir)]));

function dockerfileOf(dir: string): ParsedDockerfile {
  const df = dockerfiles.get(dir);
  if (!df) throw new Error(`no parsed Dockerfile for images/${dir}`);
  return df;
}

function variantNamed(name: string): Variant {
  const v = variants.find((x) => x.name === name);
  if (!v) throw new Error(`images/catalog.yaml has no variant ${name}`);
  return v;
}

/** Every requirement file a Dockerfile's pip installs read, context-relative, with the stage chain it is read in. */
function pipUsage(dir: string): Array<{ pip: PipInstall; chain: Stage[] }> {
  const df = dockerfileOf(dir);
  const out: Array<{ pip: PipInstall; chain: Stage[] }> = [];
  df.stages.forEach((stage) => {
    const chain = chainOf(df, stage.name ?? undefined);
    for (const run of stage.instructions.filter((i) => i.getKeyword() === "RUN")) {
      for (const pip of pipInstalls(content(run))) out.push({ pip, chain });
    }
  });
  return out;
}

function allRequirementFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(IMAGES, dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(r);
      else if (entry.name.endsWith(".txt")) found.push(r);
    }
  };
  walk("");
  return found.sort();
}

// ---------------------------------------------------------------------------------------------------------------

describe("images/catalog.yaml", () => {
  it("lists the twelve variants of issue #3, in this order", () => {
    expect(variants.map((v) => `${v.family}/${v.name}@${v.context}${v.target ? `#${v.target}` : ""}`)).toEqual([
      "universal/universal@universal",
      "notebook-validator/notebook-validator-tier1@notebook-validator#tier1",
      "notebook-validator/notebook-validator-tier2@notebook-validator#tier2",
      "notebook-validator/notebook-validator-tier3@notebook-validator#tier3",
      "ml-stack/ml-stack-base@ml-stack#base",
      "ml-stack/ml-stack-ml@ml-stack#ml",
      "ml-stack/ml-stack-full@ml-stack#full",
      "ml-stack/ml-stack-jupyter@ml-stack#jupyter",
      "jupyter/jupyter-ml-cpu@jupyter-ml-cpu",
      "jupyter/jupyter-ml-gpu@jupyter-ml-gpu",
      "jupyter/jupyter-agent-dev@jupyter-agent-dev",
      "jupyter/jupyter-fine-tuning@jupyter-fine-tuning",
    ]);
  });

  it("pins every base and extra base as registry/repository:tag@sha256:<64 hex>", () => {
    const refs = variants.flatMap((v) => [
      [`${v.name}.base.ref`, v.baseRef],
      ...Object.entries(v.extraBases).map(([k, r]) => [`${v.name}.extraBases.${k}`, r]),
    ]);
    expect(refs.filter(([, r]) => !DIGEST_REF.test(r ?? ""))).toEqual([]);
    // One digest per base image across the catalog, so re-pinning one line cannot leave siblings on another.
    const byRepo = new Map<string, Set<string>>();
    for (const [, ref] of refs) {
      const [repoTag = "", digest = ""] = (ref ?? "").split("@");
      const set = byRepo.get(repoTag) ?? new Set<string>();
      set.add(digest);
      byRepo.set(repoTag, set);
    }
    expect([...byRepo].filter(([, d]) => d.size !== 1).map(([r]) => r)).toEqual([]);
    expect([...byRepo.keys()].sort()).toEqual([
      "docker.io/library/python:3.12-slim-bookworm",
      "docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04",
      "quay.io/jupyter/minimal-notebook:2025-07-28",
      "quay.io/opendatahub/odh-pipeline-runtime-minimal-cpu-py312-ubi9:2025b-v1.40",
      "quay.io/opendatahub/odh-workbench-jupyter-minimal-cuda-py312-ubi9:2025b-v1.40",
    ]);
  });

  it("marks exactly the CUDA images as GPU variants, with cuda 12.8, and cuda nowhere else", () => {
    expect(variants.filter((v) => v.gpu).map((v) => [v.name, v.cuda])).toEqual([
      ["universal", "12.8"],
      ["ml-stack-ml", "12.8"],
      ["jupyter-ml-gpu", "12.8"],
      ["jupyter-fine-tuning", "12.8"],
    ]);
    expect(variants.filter((v) => !v.gpu && v.cuda !== undefined).map((v) => v.name)).toEqual([]);
    expect(variants.filter((v) => v.flashAttn).map((v) => v.name)).toEqual(["universal"]);
  });

  it("gives every GPU variant the imports its GPU check runs", () => {
    expect(variants.filter((v) => v.gpu && v.smokeImports.length === 0).map((v) => v.name)).toEqual([]);
    expect(variantNamed("universal").smokeImports).toEqual([
      "torch", "transformers", "accelerate", "peft", "datasets", "huggingface_hub", "deepspeed", "trl",
    ]);
  });

  it("publishes the notebook images to JupyterHub in order, with jupyter-ml-cpu the only default", () => {
    const published = variants.filter((v) => v.publish).sort((a, b) => (a.publish?.order ?? 0) - (b.publish?.order ?? 0));
    expect(published.map((v) => [v.name, v.publish?.order, v.publish?.default])).toEqual([
      ["jupyter-ml-cpu", 10, true],
      ["jupyter-ml-gpu", 20, false],
      ["jupyter-agent-dev", 30, false],
      ["jupyter-fine-tuning", 40, false],
      ["universal", 50, false],
      ["ml-stack-jupyter", 60, false],
    ]);
  });

  it("keeps seed 004's size budgets for ml-stack", () => {
    expect(variants.filter((v) => v.family === "ml-stack").map((v) => [v.target, v.sizeBudgetMB])).toEqual([
      ["base", 500],
      ["ml", 10000],
      ["full", 3000],
      ["jupyter", 4000],
    ]);
  });

  it("builds amd64 everywhere and arm64 only where every base and wheel exists for it", () => {
    expect(variants.filter((v) => v.platforms.includes("linux/arm64")).map((v) => v.name)).toEqual([
      "ml-stack-base",
      "ml-stack-full",
      "ml-stack-jupyter",
      "jupyter-ml-cpu",
      "jupyter-agent-dev",
    ]);
    expect(variants.filter((v) => !v.platforms.includes("linux/amd64")).map((v) => v.name)).toEqual([]);
  });
});

describe("Dockerfiles under images/", () => {
  it("are exactly the catalog's contexts plus per-user", () => {
    const withDockerfile = fs
      .readdirSync(IMAGES, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !NOT_IMAGES.has(e.name) && fs.existsSync(path.join(IMAGES, e.name, "Dockerfile")))
      .map((e) => e.name)
      .sort();
    expect(withDockerfile).toEqual(Object.keys(EXPECTED).sort());
    expect([...new Set(variants.map((v) => v.context)), "per-user"].sort()).toEqual(withDockerfile);
    expect(variants.filter((v) => v.dockerfile !== "Dockerfile").map((v) => v.name)).toEqual([]);
  });

  for (const [dir, want] of Object.entries(EXPECTED)) {
    describe(`images/${dir}/Dockerfile`, () => {
      const df = dockerfileOf(dir);

      it("has exactly the expected stages and FROM lines", () => {
        expect(df.stages.map((s) => s.name)).toEqual(want.stages);
        expect(df.stages.map((s) => s.from)).toEqual(want.froms);
      });

      it("takes every base from a global ARG without a default, or from an earlier stage", () => {
        const stageNames = new Set<string>();
        for (const stage of df.stages) {
          const arg = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(stage.from)?.[1];
          if (arg === undefined) expect(stageNames.has(stage.from), `${stage.from} must be an earlier stage`).toBe(true);
          else expect(df.globalArgs.get(arg), `ARG ${arg} must have no default`).toBeNull();
          if (stage.name) stageNames.add(stage.name);
        }
        expect([...df.globalArgs.keys()]).toEqual(want.fromArgs);
      });

      it("installs with pip only exact pins and pinned requirement files, without a cache", () => {
        const usage = pipUsage(dir);
        const bad: string[] = [];
        for (const { pip, chain } of usage) {
          for (const spec of pip.specs) if (!PIN.test(spec)) bad.push(`unpinned "${spec}" in: ${pip.text}`);
          for (const flag of pip.flags) {
            if (!["--no-cache-dir", "--no-build-isolation"].includes(flag)) bad.push(`unexpected flag ${flag} in: ${pip.text}`);
          }
          if (!pip.flags.includes("--no-cache-dir") && !envKeys(chain).has("PIP_NO_CACHE_DIR")) {
            bad.push(`no --no-cache-dir (and no PIP_NO_CACHE_DIR) in: ${pip.text}`);
          }
          for (const file of [...pip.requirementFiles, ...pip.constraintFiles]) {
            const rel = contextFileFor(df, chain, file);
            if (rel === undefined) {
              bad.push(`${file} was not COPY'd from the context before: ${pip.text}`);
              continue;
            }
            for (const line of requirementLines(path.join(IMAGES, dir, rel))) {
              if (!PIN.test(line)) bad.push(`images/${dir}/${rel}: "${line}" is not an exact == pin`);
            }
          }
        }
        expect(bad).toEqual([]);
        expect(usage.flatMap(({ pip }) => pip.indexUrls)).toEqual(want.indexUrls);
      });

      it("reads every requirement file it ships, and nothing else there is unpinned", () => {
        const used = new Set(
          pipUsage(dir).flatMap(({ pip, chain }) =>
            [...pip.requirementFiles, ...pip.constraintFiles].map((f) => contextFileFor(df, chain, f) ?? f),
          ),
        );
        expect([...used].sort()).toEqual(allRequirementFiles(dir));
      });

      it("clears package-manager caches in the same RUN as every install", () => {
        const bad = df.stages.flatMap((s) => runs([s]).flatMap((r) => uncleanedInstalls(content(r))));
        expect(bad).toEqual([]);
      });

      it("ends every target as the expected non-root user", () => {
        const targets = Object.keys(want.users);
        const users = Object.fromEntries(
          targets.map((t) => {
            const user = inForce(chainOf(df, t === "" ? undefined : t), "USER");
            return [t, user ? content(user) : "(no USER: the base's, which this file cannot vouch for)"];
          }),
        );
        expect(users).toEqual(want.users);
        for (const user of Object.values(users)) {
          const name = user.split(":")[0] ?? "";
          expect(["", "0", "root"]).not.toContain(name);
        }
      });

      it("has a .dockerignore that sends only what the Dockerfile copies", () => {
        const file = path.join(IMAGES, dir, ".dockerignore");
        expect(fs.existsSync(file)).toBe(true);
        const patterns = requirementLines(file);
        expect(patterns[0]).toBe("*");
        const ig = dockerignore({ ignorecase: false }).add(patterns);
        const sent: string[] = [];
        for (const { sources } of copies(df.stages)) {
          for (const src of sources) {
            const full = path.join(IMAGES, dir, src);
            if (fs.statSync(full).isDirectory()) {
              for (const f of fs.readdirSync(full)) sent.push(path.join(src, f));
            } else sent.push(src);
          }
        }
        expect(sent.length).toBeGreaterThan(0);
        expect(sent.filter((f) => ig.ignores(f))).toEqual([]);
        for (const stray of ["README.md", "notes.ipynb", ".git/config", ".venv/bin/python", ".env"]) {
          expect(ig.ignores(stray), stray).toBe(true);
        }
      });
    });
  }

  it("matches every catalog variant's target and base arguments to its Dockerfile", () => {
    const seen: Record<string, unknown> = {};
    for (const v of variants) {
      const df = dockerfileOf(v.context);
      const chain = chainOf(df, v.target);
      seen[v.name] = {
        // BuildKit resolves every FROM, even of stages the target does not use: all must be passed.
        args: [v.baseArg, ...Object.keys(v.extraBases)].sort(),
        root: chain[0]?.from,
        target: v.target === undefined ? null : df.stages.some((s) => s.name === v.target),
      };
      expect((seen[v.name] as { args: string[] }).args, v.name).toEqual([...df.globalArgs.keys()].sort());
      expect(chain[0]?.from, v.name).toBe(`\${${v.baseArg}}`);
    }
    expect(seen["ml-stack-ml"]).toEqual({ args: ["BASE_IMAGE", "CUDA_IMAGE"], root: "${CUDA_IMAGE}", target: true });
    expect(seen["ml-stack-jupyter"]).toEqual({ args: ["BASE_IMAGE", "CUDA_IMAGE"], root: "${BASE_IMAGE}", target: true });
    expect(seen["notebook-validator-tier2"]).toEqual({ args: ["BASE_IMAGE"], root: "${BASE_IMAGE}", target: true });
    expect(seen["universal"]).toEqual({ args: ["BASE_IMAGE"], root: "${BASE_IMAGE}", target: null });
  });

  it("pins one torch train everywhere: torch 2.8.0, torchvision 0.23.0, torchaudio 2.8.0", () => {
    const pins = new Set<string>();
    for (const dir of Object.keys(EXPECTED)) {
      for (const { pip } of pipUsage(dir)) for (const s of pip.specs) pins.add(s);
      for (const rel of allRequirementFiles(dir)) for (const l of requirementLines(path.join(IMAGES, dir, rel))) pins.add(l);
    }
    expect([...pins].filter((p) => /^torch(vision|audio)?==/.test(p)).sort()).toEqual([
      "torch==2.8.0",
      "torchaudio==2.8.0",
      "torchvision==0.23.0",
    ]);
  });
});

describe("universal (seed 000)", () => {
  const df = dockerfileOf("universal");
  const instructions = df.stages.flatMap((s) => s.instructions);

  it("runs the entrypoint wrapper in exec form with the notebook as default CMD", () => {
    expect(instructions.filter((i) => i.getKeyword() === "ENTRYPOINT").map((i) => jsonStrings(i))).toEqual([
      ["/usr/local/bin/entrypoint.sh"],
    ]);
    expect(instructions.filter((i) => i.getKeyword() === "CMD").map((i) => jsonStrings(i))).toEqual([["start-notebook.sh"]]);
    expect(copies(df.stages)).toEqual([{ sources: ["entrypoint.sh"], dest: "/usr/local/bin/entrypoint.sh" }]);
  });

  it("ships entrypoint.sh as an executable POSIX sh script", () => {
    const file = path.join(IMAGES, "universal", "entrypoint.sh");
    expect(fs.readFileSync(file, "utf8").split("\n")[0]).toBe("#!/bin/sh");
    expect(fs.statSync(file).mode & 0o111).toBe(0o111);
  });

  it("layers exactly seed 000's training set, pinned, from the cu128 index for torch", () => {
    const pins = pipUsage("universal").map(({ pip }) => [pip.indexUrls.join(" "), ...pip.specs]);
    expect(pins).toEqual([
      [`--index-url ${CU128}`, "torch==2.8.0"],
      [
        "",
        "torch==2.8.0",
        "accelerate==1.10.1",
        "transformers==4.56.2",
        "peft==0.17.1",
        "datasets==4.1.1",
        "huggingface-hub==0.35.3",
        "deepspeed==0.17.6",
        "trl==0.23.0",
        "jupyterhub==5.3.0",
        "nvidia-ml-py==13.615.71",
      ],
      ["", "flash-attn==2.8.3", "einops==0.8.1"],
    ]);
  });

  it("makes flash-attn mandatory on amd64 by TARGETARCH and checks it imports at 2.8.3", () => {
    const run = runs(df.stages).map(content).find((t) => t.includes("flash-attn=="));
    expect(run).toBeDefined();
    expect(run).toContain("${TARGETARCH:-$(uname -m)}");
    expect(run).toMatch(/amd64\|x86_64\)\s+pip install/);
    expect(run).toContain('flash_attn.__version__ == "2.8.3"');
    expect(instructions.filter((i) => i.getKeyword() === "ARG").map(content)).toEqual(["TARGETARCH", "INSTALL_NVCC=auto"]);
  });

  it("installs the RDMA/InfiniBand userspace in one cleaned dnf layer", () => {
    const dnf = runs(df.stages).map(content).filter((t) => /\bdnf\s+install\b/.test(t));
    expect(dnf).toHaveLength(1);
    const packages = /dnf install (?:-\S+\s+)*((?:[a-z0-9-]+\s+)+)&&/.exec(dnf[0] ?? "")?.[1]?.trim().split(/\s+/);
    expect(packages).toEqual([
      "rdma-core",
      "libibverbs",
      "libibverbs-utils",
      "librdmacm",
      "librdmacm-utils",
      "libibumad",
      "infiniband-diags",
    ]);
  });

  it("keeps the base's NVIDIA_REQUIRE_CUDA and switches back to USER 1001 after the root step", () => {
    expect(envKeys(df.stages).has("NVIDIA_REQUIRE_CUDA")).toBe(false);
    expect(instructions.filter((i) => i.getKeyword() === "USER").map(content)).toEqual(["0", "1001"]);
  });
});

describe("ml-stack (seed 004)", () => {
  const df = dockerfileOf("ml-stack");

  it("has a HEALTHCHECK in force for every target", () => {
    expect(df.stages.filter((s) => s.instructions.some((i) => i.getKeyword() === "HEALTHCHECK")).map((s) => s.name)).toEqual([
      "base",
      "ml",
      "jupyter",
    ]);
    for (const target of ["base", "ml", "full", "jupyter"]) {
      expect(inForce(chainOf(df, target), "HEALTHCHECK"), target).toBeDefined();
    }
  });

  it("exposes JupyterLab on 8888 in the jupyter target only", () => {
    const exposed = df.stages.map((s) => [s.name, s.instructions.filter((i) => i.getKeyword() === "EXPOSE").map(content)]);
    expect(exposed).toEqual([
      ["base", []],
      ["ml", []],
      ["full", []],
      ["jupyter", ["8888"]],
    ]);
    expect(jsonStrings(inForce(chainOf(df, "jupyter"), "CMD"))).toEqual([
      "jupyter",
      "lab",
      "--ip=0.0.0.0",
      "--port=8888",
      "--no-browser",
    ]);
  });

  it("installs only Python 3.12 and CA certificates with apt in the CUDA stage, lists removed", () => {
    const apt = df.stages.map((s) => [s.name, runs([s]).map(content).filter((t) => /apt-get/.test(t)).length]);
    expect(apt).toEqual([
      ["base", 0],
      ["ml", 1],
      ["full", 0],
      ["jupyter", 0],
    ]);
    const run = runs(chainOf(df, "ml")).map(content).find((t) => /apt-get install/.test(t)) ?? "";
    expect(/apt-get install (?:-\S+\s+)*((?:[a-z0-9.+-]+\s+)+)&&/.exec(run)?.[1]?.trim().split(/\s+/)).toEqual([
      "ca-certificates",
      "python3.12",
      "python3.12-venv",
    ]);
  });

  it("keeps NumPy below 2.0 in every target (seed 004 Risk 2)", () => {
    expect(requirementLines(path.join(IMAGES, "ml-stack", "requirements", "base.txt"))).toEqual([
      "numpy==1.26.4",
      "dimtensor==3.2.0",
    ]);
    // full and jupyter pass base.txt as a constraint, ml installs it directly.
    const withBase = pipUsage("ml-stack")
      .filter(({ pip }) => !pip.requirementFiles.some((f) => f.endsWith("torch.txt")))
      .map(({ pip }) => [...pip.requirementFiles, ...pip.constraintFiles].some((f) => f.endsWith("/base.txt")));
    expect(withBase).toEqual([true, true, true, true]);
  });
});

describe("per-user (seed 002)", () => {
  const df = dockerfileOf("per-user");
  const instructions = df.stages.flatMap((s) => s.instructions);

  it("takes the user as build args, sudo off by default", () => {
    expect(instructions.filter((i) => i.getKeyword() === "ARG").map(content)).toEqual([
      "USER_NAME",
      "USER_UID",
      "USER_GID",
      "ENABLE_SUDO=false",
    ]);
  });

  it("records the bake in our labels and the seed's DS01 labels", () => {
    const labels = Object.fromEntries(
      [...instructions.filter((i) => i.getKeyword() === "LABEL").map(content).join(" ").matchAll(/([A-Za-z0-9._-]+)="([^"]*)"/g)].map(
        (m) => [m[1], m[2]],
      ),
    );
    expect(labels).toEqual({
      "dev.workbench-images.user-setup": "true",
      "dev.workbench-images.user.uid": "${USER_UID}",
      "dev.workbench-images.user.gid": "${USER_GID}",
      "dev.workbench-images.user.name": "${USER_NAME}",
      "aime.mlc.DS01_HAS_USER_SETUP": "true",
      "aime.mlc.DS01_USER_ID": "${USER_UID}",
      "aime.mlc.DS01_GROUP_ID": "${USER_GID}",
      "aime.mlc.DS01_USERNAME": "${USER_NAME}",
    });
  });

  it("runs setup-user.sh as root, then runs as the user in their home with ~/.local/bin on PATH", () => {
    expect(instructions.map((i) => `${i.getKeyword()} ${content(i)}`).filter((t) => /^(USER|WORKDIR|RUN|COPY)/.test(t))).toEqual([
      "USER 0",
      "COPY setup-user.sh /tmp/setup-user.sh",
      'RUN sh /tmp/setup-user.sh "${USER_NAME}" "${USER_UID}" "${USER_GID}" "${ENABLE_SUDO}"     && rm -f /tmp/setup-user.sh',
      "USER ${USER_UID}:${USER_GID}",
      "WORKDIR /home/${USER_NAME}",
    ]);
    const env = instructions.filter((i) => i.getKeyword() === "ENV").map(content).join(" ");
    expect(env).toContain("HOME=/home/${USER_NAME}");
    // An imported rootfs has no PATH at all: the fallback keeps /usr/bin reachable.
    expect(env).toContain("PATH=/home/${USER_NAME}/.local/bin:${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}");
  });

  it("uses no BuildKit-only syntax, so --network=none builds work on any builder", () => {
    const text = fs.readFileSync(path.join(IMAGES, "per-user", "Dockerfile"), "utf8");
    expect(text).not.toMatch(/^\s*#\s*syntax=/m);
    expect(text).not.toMatch(/--mount=|--chmod=|<<[A-Z'"-]/);
  });

  it("creates the user without lastlog entries and installs sudo only when asked, cleaning caches", () => {
    const script = fs.readFileSync(path.join(IMAGES, "per-user", "setup-user.sh"), "utf8");
    expect(script).toMatch(/useradd --no-log-init /);
    const installLines = script.split("\n").filter((l) => /\b(?:micro)?dnf install|apt-get install/.test(l));
    expect(installLines).toHaveLength(3);
    expect(installLines.flatMap((l) => uncleanedInstalls(l))).toEqual([]);
    expect(script).toMatch(/if \[ "\$sudo" = true \]; then\n\s+command -v sudo >\/dev\/null 2>&1 \|\| install_packages sudo/);
  });
});
