import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadCatalog } from "../../config/catalog";
import { formatProblems } from "../../lib/problems";
import { sanitizeLogin, userRepositoryName, isValidRepositoryName, k8sName } from "../../lib/naming";
import { parseImageRef } from "../../lib/image-ref";
import { PROJECT_ROOT } from "../../lib/paths";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function catalogDir(yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-catalog-"));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, "app"));
  fs.writeFileSync(path.join(dir, "app", "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS base\nFROM base AS runtime\n");
  fs.writeFileSync(path.join(dir, "catalog.yaml"), yaml);
  return dir;
}

const BASE = "docker.io/library/python:3.12-slim@sha256:" + "a".repeat(64);
const entry = (extra: string) => `  - name: app
    family: app
    context: app
    base: { ref: "${BASE}" }
    smoke: { command: [python, -c, "1"] }
    sizeBudgetMB: 100
${extra}`;

function check(yaml: string, requireDigests = true): string {
  const dir = catalogDir(yaml);
  const { catalog, problems } = loadCatalog(path.join(dir, "catalog.yaml"), { repositoryPrefix: "wb", requireDigests, displayPath: "images/catalog.yaml" });
  return catalog ? "valid" : formatProblems("Invalid catalog", problems);
}

describe("loadCatalog", () => {
  it("accepts a minimal entry and fills defaults", () => {
    const dir = catalogDir(`variants:\n${entry("")}`);
    const { catalog } = loadCatalog(path.join(dir, "catalog.yaml"), { repositoryPrefix: "wb", requireDigests: true, displayPath: "c" });
    const { contextDir, dockerfilePath, ...v } = catalog!.variants[0]!;
    expect(v).toEqual({
      name: "app",
      family: "app",
      context: "app",
      dockerfile: "Dockerfile",
      platforms: ["linux/amd64"],
      buildArgs: {},
      base: { arg: "BASE_IMAGE", ref: BASE },
      extraBases: {},
      gpu: false,
      ships: { flashAttn: false },
      smoke: { command: ["python", "-c", "1"], imports: [] },
      sizeBudgetMB: 100,
    });
    expect(contextDir).toBe(path.join(dir, "app"));
    expect(dockerfilePath).toBe(path.join(dir, "app", "Dockerfile"));
  });

  it("reports malformed YAML with its line", () => {
    expect(check("variants:\n  - name: [unclosed\n")).toBe("Invalid catalog (1 problem):\n  - images/catalog.yaml (line 3): is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]. Fix the syntax at that line.");
  });

  it("reports duplicates, bad names, unknown platforms, missing dirs and unknown targets, each with its line", () => {
    const yaml = `variants:
${entry("    target: runtim\n    platforms: [linux/amd64, linux/s390x]")}
${entry("")}
  - name: Bad_Name
    family: app
    context: missing
    base: { ref: "python:3.12" }
    smoke: { command: [x] }
    sizeBudgetMB: 1
`;
    expect(check(yaml)).toBe(
      [
        "Invalid catalog (2 problems):",
        '  - images/catalog.yaml: variants[0].platforms[1] (line 9): must be one of "linux/amd64", "linux/arm64". (got "linux/s390x")',
        "  - images/catalog.yaml: variants[2].name (line 17): must be a valid ECR repository name component: lowercase letters and digits, separated by single '.', '_' or '-'. (got \"Bad_Name\")",
      ].join("\n"),
    );
    const semantic = `variants:
${entry("    target: runtim")}
${entry("")}
  - name: other
    family: app
    context: missing
    base: { ref: "python:3.12" }
    smoke: { command: [x] }
    sizeBudgetMB: 1
`;
    expect(check(semantic)).toBe(
      [
        "Invalid catalog (4 problems):",
        '  - images/catalog.yaml: variants[0].target (line 8): is not a stage of Dockerfile. Use one of: "base", "runtime". (got "runtim")',
        '  - images/catalog.yaml: variants[1].name (line 9): duplicates variants[0].name. Variant names must be unique: rename one. (got "app")',
        `  - images/catalog.yaml: variants[2].context (line 18): directory ${path.relative(process.cwd(), path.join(dirs[1]!, "missing"))} does not exist. Create it or fix the path (relative to the catalog file). (got "missing")`,
        '  - images/catalog.yaml: variants[2].base.ref (line 19): is not pinned by digest, which dev and prod require. Run `npm run pin-bases` on a machine with registry access, or append @sha256:<digest>. (got "python:3.12")',
      ].join("\n"),
    );
  });

  it("requires cuda exactly on GPU variants and guarantees at or below limits", () => {
    const yaml = `variants:
${entry(`    gpu: true
    runAs: { uid: 1000, gid: 100, home: /home/jovyan }
    publish:
      displayName: A
      description: B
      resources:
        cpu: { guarantee: 4, limit: 2 }
        memory: { guarantee: 16G, limit: 8G }`)}
`;
    expect(check(yaml)).toBe(
      [
        "Invalid catalog (3 problems):",
        '  - images/catalog.yaml: variants[0].cuda: is required for a GPU variant (gpu: true). Set the CUDA version the image ships, e.g. "12.8".',
        "  - images/catalog.yaml: variants[0].publish.resources.cpu.guarantee (line 14): is above the limit 2. Lower the guarantee or raise the limit. (got 4)",
        '  - images/catalog.yaml: variants[0].publish.resources.memory.guarantee (line 15): is above the limit 8G. Lower the guarantee or raise the limit. (got "16G")',
      ].join("\n"),
    );
  });

  it("requires runAs on a published variant and checks it against the Dockerfile's USER and WORKDIR", () => {
    const published = `    publish:
      displayName: A
      description: B
      resources:
        cpu: { guarantee: 1, limit: 2 }
        memory: { guarantee: 1G, limit: 2G }`;
    expect(check(`variants:\n${entry(published)}\n`)).toBe(
      [
        "Invalid catalog (1 problem):",
        "  - images/catalog.yaml: variants[0].runAs: is required for a published variant: the hub starts its pods as this user with this home. Add runAs: {uid, gid, home} as the image's Dockerfile (or its base) sets them.",
      ].join("\n"),
    );
    // The target's stage chain sets USER 10001:10001 and WORKDIR /home/ml/work (inherited by "runtime" from "base").
    const dir = catalogDir(`variants:\n${entry("    target: runtime\n    runAs: { uid: 1000, gid: 100, home: /home/jovyan }\n" + published)}\n`);
    fs.writeFileSync(path.join(dir, "app", "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS base\nUSER 10001:10001\nWORKDIR /home/ml/work\nFROM base AS runtime\n");
    const { problems } = loadCatalog(path.join(dir, "catalog.yaml"), { repositoryPrefix: "wb", requireDigests: true, displayPath: "images/catalog.yaml" });
    expect(formatProblems("Invalid catalog", problems)).toBe(
      [
        "Invalid catalog (3 problems):",
        "  - images/catalog.yaml: variants[0].runAs.uid (line 9): differs from Dockerfile's `USER 10001:10001`. Set it to 10001, or change the Dockerfile. (got 1000)",
        "  - images/catalog.yaml: variants[0].runAs.gid (line 9): differs from Dockerfile's `USER 10001:10001`. Set it to 10001, or change the Dockerfile. (got 100)",
        '  - images/catalog.yaml: variants[0].runAs.home (line 9): is not Dockerfile\'s `WORKDIR /home/ml/work` nor a parent of it: the server would start outside the home volume. Set home to /home/ml/work, or change the Dockerfile. (got "/home/jovyan")',
      ].join("\n"),
    );
    // The home may be a parent of the WORKDIR (ml-stack's jupyter target works in ~/work).
    fs.writeFileSync(path.join(dir, "catalog.yaml"), `variants:\n${entry("    target: runtime\n    runAs: { uid: 10001, gid: 10001, home: /home/ml }\n" + published)}\n`);
    expect(loadCatalog(path.join(dir, "catalog.yaml"), { repositoryPrefix: "wb", requireDigests: true, displayPath: "c" }).problems).toEqual([]);
  });

  it("lets the local stack build from tag-only bases", () => {
    expect(check(`variants:\n${entry("").replace(BASE, "python:3.12")}`, false)).toBe("valid");
  });

  it("validates the real catalog: at least 12 variants, every family, every base pinned", () => {
    const file = path.resolve(PROJECT_ROOT, "images", "catalog.yaml");
    const { catalog, problems } = loadCatalog(file, { repositoryPrefix: "workbench", requireDigests: true, displayPath: "images/catalog.yaml" });
    expect(problems).toEqual([]);
    expect(catalog!.variants.length).toBeGreaterThanOrEqual(12);
    expect([...new Set(catalog!.variants.map((v) => v.family))].sort()).toEqual(["jupyter", "ml-stack", "notebook-validator", "universal"]);
  });
});

describe("naming", () => {
  it("sanitizes logins as seed 002 does", () => {
    expect(sanitizeLogin("h.baker@hertie-school.lan")).toBe("h-baker-at-hertie-school-lan");
    expect(sanitizeLogin("Jane Doe+ml@Example.COM")).toBe("jane-doe-ml-at-example-com");
    expect(sanitizeLogin("1234")).toBe("u1234");
    expect(sanitizeLogin("a.very.long.login.name@some-department.example.org")).toBe("a-very-long-login-name-at-some-d");
    expect(sanitizeLogin("a.very.long.login.name@some-department.example.org")).toHaveLength(32);
    expect(sanitizeLogin("---")).toBe("");
  });
  it("names per-user repositories in seed 002's namespace and checks ECR's rules", () => {
    expect(userRepositoryName("workbench", 1722830498, "thesis")).toBe("workbench-1722830498/thesis");
    expect(isValidRepositoryName("workbench/universal")).toBe(true);
    expect(isValidRepositoryName("Workbench/x")).toBe(false);
    expect(isValidRepositoryName("a//b")).toBe(false);
    expect(k8sName("WBV", "ml_stack", "h100")).toBe("wbv-ml-stack-h100");
  });
  it("parses image references", () => {
    expect(parseImageRef(`quay.io/org/img:tag@sha256:${"b".repeat(64)}`)).toEqual({ repository: "quay.io/org/img", tag: "tag", digest: `sha256:${"b".repeat(64)}` });
    expect(parseImageRef("127.0.0.1:5001/wb/app")).toEqual({ repository: "127.0.0.1:5001/wb/app" });
    expect(parseImageRef("img@sha256:short")).toBeUndefined();
  });
});
