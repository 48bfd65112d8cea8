/**
 * The notebook-validator images' content (seed 001, ADR-031 option D): the notebooks each tier executes and the
 * runner that executes them, images/notebook-validator/{notebooks/<tier>/*.ipynb, run_notebooks.py}.
 *
 * Static: papermill's conventions (first code cell tagged `parameters`, no injected or executed state shipped),
 * nbformat 4 validity by nbformat's own schema, each tier exercising its own libraries, and the Dockerfile and
 * .dockerignore putting each tier's notebooks into that tier's target.
 *
 * Real: every shipped notebook is executed by the runner with Debian's /usr/bin/python3 (python3-nbclient,
 * python3-ipykernel and the libraries the notebooks import; .ci/run installs them), exactly as the image's
 * papermill would run it; without them this file fails rather than skips. Debian packages neither
 * prometheus-api-client nor tritonclient: where a host lacks them the notebooks' own `allow_missing` parameter
 * lets them take their documented fallback (plain requests / skip the Triton section), and a separate test shows
 * that without the parameter their absence fails the notebook, as it must in the image.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import dockerignore from "@balena/dockerignore";
import { DockerfileParser, type From } from "dockerfile-ast";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/paths";

const ROOT = PROJECT_ROOT;
const CONTEXT = path.join(ROOT, "images", "notebook-validator");
const NOTEBOOKS = path.join(CONTEXT, "notebooks");
const RUNNER = path.join(CONTEXT, "run_notebooks.py");
const PYTHON = "/usr/bin/python3";

/** What ships, exactly: adding a notebook means adding it here too, so a stray file cannot slip in unnoticed. */
const SHIPPED: Record<string, string[]> = {
  tier1: ["01-kubernetes-client.ipynb", "02-prometheus-query.ipynb"],
  tier2: ["01-train-classifier.ipynb", "02-torch-regression.ipynb"],
  tier3: ["01-http-inference.ipynb", "02-grpc-inference.ipynb"],
};

/** Seed 001's libraries per tier, as import names: each tier's notebooks together must import all of them. */
const TIER_LIBRARIES: Record<string, string[]> = {
  tier1: ["kubernetes", "prometheus_api_client", "yaml"],
  tier2: ["joblib", "seaborn", "sklearn", "torch"],
  tier3: ["grpc", "requests", "tritonclient"],
};

/** Modules the images install but Debian does not package; tolerated here only through `allow_missing`. */
const OPTIONAL_HERE: Record<string, string> = { tier1: "prometheus_api_client", tier3: "tritonclient" };

// ---------------------------------------------------------------------------------------------------------------

interface Cell {
  id?: string;
  cell_type: string;
  source: string | string[];
  metadata: { tags?: string[] } & Record<string, unknown>;
  outputs?: unknown[];
  execution_count?: number | null;
}

interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: { kernelspec?: { name?: string; language?: string } } & Record<string, unknown>;
  cells: Cell[];
}

function readNotebook(file: string): Notebook {
  return JSON.parse(fs.readFileSync(file, "utf8")) as Notebook;
}

function source(cell: Cell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

function shipped(): Array<{ tier: string; name: string; file: string }> {
  return Object.entries(SHIPPED).flatMap(([tier, names]) =>
    names.map((name) => ({ tier, name, file: path.join(NOTEBOOKS, tier, name) })),
  );
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell and collects its output; never rejects for a non-zero exit. */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 150_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Quiets debugpy's frozen-modules notice, which the kernel prints to stderr on every start.
    const child = spawn(file, args, { env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: "1", ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${file}: ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

function runner(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(PYTHON, [RUNNER, ...args], env);
}

/** stdout lines with the per-notebook seconds replaced, so they can be compared exactly. */
function lines(stdout: string): string[] {
  return stdout
    .trimEnd()
    .split("\n")
    .map((l) => l.replace(/ \(\d+\.\d s\)$/, " (N s)"));
}

async function importable(modules: string[]): Promise<Record<string, boolean>> {
  const code = `import importlib.util, json, sys; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))`;
  const res = await run(PYTHON, ["-c", code, ...modules]);
  if (res.code !== 0) throw new Error(`${PYTHON} failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as Record<string, boolean>;
}

let tmp = "";
let hostHas: Record<string, boolean> = {};
let engine = "";

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nbval-test-"));
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: .ci/run installs Debian's python3`);
  hostHas = await importable(["nbclient", "ipykernel", "papermill", ...Object.values(OPTIONAL_HERE)]);
  const missing = ["nbclient", "ipykernel"].filter((m) => !hostHas[m]);
  if (missing.length > 0) {
    throw new Error(`${PYTHON} cannot import ${missing.join(", ")}: install python3-nbclient and python3-ipykernel (.ci/run does)`);
  }
  engine = hostHas.papermill ? "papermill" : "nbclient";
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------

describe("shipped notebooks: layout and papermill conventions", () => {
  it("has one folder per catalog tier of notebook-validator, holding exactly the shipped notebooks", () => {
    const catalog = parseYaml(fs.readFileSync(path.join(ROOT, "images", "catalog.yaml"), "utf8")) as {
      variants: Array<{ family: string; target?: string }>;
    };
    const tiers = catalog.variants.filter((v) => v.family === "notebook-validator").map((v) => v.target);
    expect(tiers).toEqual(["tier1", "tier2", "tier3"]);
    const onDisk = fs
      .readdirSync(NOTEBOOKS, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(onDisk).toEqual(tiers);
    for (const tier of onDisk) {
      // Dot entries (.ipynb_checkpoints from a local Jupyter) are neither run nor sent to the builder.
      const entries = fs.readdirSync(path.join(NOTEBOOKS, tier)).filter((f) => !f.startsWith("."));
      expect(entries.sort(), tier).toEqual(SHIPPED[tier]);
    }
  });

  for (const { tier, name, file } of shipped()) {
    describe(`${tier}/${name}`, () => {
      const nb = readNotebook(file);
      const code = nb.cells.filter((c) => c.cell_type === "code");

      it("is nbformat 4.5 with a Python 3 kernelspec", () => {
        expect([nb.nbformat, nb.nbformat_minor]).toEqual([4, 5]);
        expect(nb.metadata.kernelspec).toEqual({ display_name: "Python 3 (ipykernel)", language: "python", name: "python3" });
      });

      it("starts with its one `parameters` cell: plain assignments papermill can override", () => {
        expect(nb.cells[0]?.cell_type).toBe("code");
        expect(code[0]?.metadata.tags).toEqual(["parameters"]);
        expect(nb.cells.filter((c) => (c.metadata.tags ?? []).length > 0).map((c) => c.metadata.tags)).toEqual([["parameters"]]);
        const statements = source(code[0] as Cell)
          .split("\n")
          .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));
        expect(statements.length).toBeGreaterThan(0);
        expect(statements.filter((l) => !/^[a-z_][a-z0-9_]* = \S/.test(l))).toEqual([]);
      });

      it("ships clean: no outputs, no execution counts, unique cell ids", () => {
        expect(code.filter((c) => (c.outputs ?? []).length > 0 || c.execution_count !== null).length).toBe(0);
        const ids = nb.cells.map((c) => c.id);
        expect(ids.every((id) => typeof id === "string" && /^[A-Za-z0-9-_]{1,64}$/.test(id))).toBe(true);
        expect(new Set(ids).size).toBe(ids.length);
      });

      it("asserts its results", () => {
        expect(code.filter((c) => /^\s*assert /m.test(source(c))).length).toBeGreaterThan(0);
      });
    });
  }

  it("passes nbformat's own schema validation", async () => {
    const files = shipped().map((s) => s.file);
    const check =
      "import sys, nbformat\n" +
      "for f in sys.argv[1:]:\n" +
      "    nbformat.validate(nbformat.read(f, as_version=nbformat.NO_CONVERT))\n" +
      "    print('valid', f)\n";
    const res = await run(PYTHON, ["-c", check, ...files]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout.trim().split("\n")).toEqual(files.map((f) => `valid ${f}`));
  });

  it("exercises every library of its tier (seed 001) across the tier's notebooks", () => {
    const imported: Record<string, string[]> = {};
    for (const [tier, names] of Object.entries(SHIPPED)) {
      const found = new Set<string>();
      for (const name of names) {
        for (const cell of readNotebook(path.join(NOTEBOOKS, tier, name)).cells.filter((c) => c.cell_type === "code")) {
          for (const m of source(cell).matchAll(/^\s*(?:import|from)\s+([A-Za-z_][A-Za-z0-9_]*)/gm)) found.add(m[1] ?? "");
        }
      }
      imported[tier] = (TIER_LIBRARIES[tier] ?? []).filter((lib) => found.has(lib));
    }
    expect(imported).toEqual(TIER_LIBRARIES);
  });

  it("copies the runner into the base stage and each tier's notebooks into that tier's target only", () => {
    const ast = DockerfileParser.parse(fs.readFileSync(path.join(CONTEXT, "Dockerfile"), "utf8"));
    let stage = "";
    const copied: string[] = [];
    for (const ins of ast.getInstructions()) {
      if (ins.getKeyword() === "FROM") stage = (ins as From).getBuildStage() ?? "";
      if (ins.getKeyword() === "COPY") copied.push(`${stage}: ${ins.getArguments().map((a) => a.getValue()).join(" ")}`);
    }
    expect(copied).toEqual([
      "base: requirements/ /opt/app-root/requirements/",
      "base: run_notebooks.py /opt/app-root/notebook-validator/run_notebooks.py",
      "tier1: notebooks/tier1/ /opt/app-root/notebook-validator/notebooks/tier1/",
      "tier2: notebooks/tier2/ /opt/app-root/notebook-validator/notebooks/tier2/",
      "tier3: notebooks/tier3/ /opt/app-root/notebook-validator/notebooks/tier3/",
    ]);
  });

  it("sends the runner and the notebooks to the builder, and no checkpoints or stray files", () => {
    const patterns = fs
      .readFileSync(path.join(CONTEXT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    const ig = dockerignore({ ignorecase: false }).add(patterns);
    const sent = ["run_notebooks.py", ...shipped().map((s) => path.join("notebooks", s.tier, s.name))];
    expect(sent.filter((f) => ig.ignores(f))).toEqual([]);
    const stray = [
      "notebooks/tier1/.ipynb_checkpoints/01-kubernetes-client-checkpoint.ipynb",
      "notebooks/tier2/data.csv",
      "notebooks/README.md",
      "notes.ipynb",
      "executed/tier1/01-kubernetes-client.ipynb",
    ];
    expect(stray.filter((f) => !ig.ignores(f))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("run_notebooks.py executes every shipped notebook for real", () => {
  for (const tier of Object.keys(SHIPPED)) {
    it(`passes ${tier}`, async () => {
      const optional = OPTIONAL_HERE[tier];
      const allow = optional !== undefined && !hostHas[optional] ? [optional] : [];
      const out = path.join(tmp, "all");
      const res = await runner([tier, "--output-dir", out, "--timeout", "120", ...(allow.length ? ["-p", "allow_missing", JSON.stringify(allow)] : [])]);
      const names = SHIPPED[tier] ?? [];
      expect({ code: res.code, stdout: lines(res.stdout) }, res.stderr).toEqual({
        code: 0,
        stdout: [
          `${tier}: ${names.length} notebook(s) with ${engine}, output in ${path.join(out, tier)}`,
          ...names.map((n) => `PASSED ${tier}/${n} (N s)`),
          `${tier}: ${names.length} of ${names.length} notebook(s) passed`,
        ],
      });

      // Output layout: OUTPUT/TIER/<notebook> and OUTPUT/TIER/summary.json.
      expect(fs.readdirSync(path.join(out, tier)).sort()).toEqual([...names, "summary.json"].sort());
      const summary = JSON.parse(fs.readFileSync(path.join(out, tier, "summary.json"), "utf8")) as {
        notebooks: Array<Record<string, unknown>>;
      } & Record<string, unknown>;
      expect({ ...summary, notebooks: summary.notebooks.map((n) => ({ ...n, seconds: typeof n.seconds })) }).toEqual({
        tier,
        engine,
        passed: names.length,
        failed: 0,
        notebooks: names.map((n) => ({ notebook: `${tier}/${n}`, output: path.join(out, tier, n), status: "passed", seconds: "number" })),
      });

      for (const n of names) {
        const executed = readNotebook(path.join(out, tier, n));
        const code = executed.cells.filter((c) => c.cell_type === "code");
        expect(code.every((c) => typeof c.execution_count === "number"), n).toBe(true);
        const injected = executed.cells.filter((c) => (c.metadata.tags ?? []).includes("injected-parameters"));
        // papermill quotes strings with ", the nbclient fallback with ' (Python's repr): both are the same list.
        expect(injected.map((c) => source(c).replace(/"/g, "'")), n).toEqual(
          allow.map((m) => `# Parameters\nallow_missing = ['${m}']\n`),
        );
        // A skipped section must say so in the executed notebook, where a reviewer looks.
        const text = JSON.stringify(code.map((c) => c.outputs));
        if (optional !== undefined && allow.length > 0 && source(readNotebook(path.join(NOTEBOOKS, tier, n)).cells[0] as Cell).includes("allow_missing")) {
          expect(text, n).toContain(`SKIPPED ${optional} (not installed; allowed by allow_missing)`);
        } else {
          expect(text, n).not.toContain("SKIPPED");
        }
      }
    });
  }

  it("fails a notebook whose library is missing unless allow_missing names it, as the images need", async () => {
    // A module that raises on import stands in for a missing one, on any host (installed or not).
    const shim = path.join(tmp, "shim");
    for (const mod of ["prometheus_api_client", "tritonclient"]) {
      fs.mkdirSync(path.join(shim, mod), { recursive: true });
      fs.writeFileSync(path.join(shim, mod, "__init__.py"), 'raise ImportError("blocked by the test")\n');
    }
    const nbs = path.join(tmp, "only-prometheus");
    fs.mkdirSync(path.join(nbs, "tier1"), { recursive: true });
    fs.copyFileSync(path.join(NOTEBOOKS, "tier1", "02-prometheus-query.ipynb"), path.join(nbs, "tier1", "02-prometheus-query.ipynb"));
    const env = { PYTHONPATH: shim };

    const strict = await runner(["tier1", "--notebooks-dir", nbs, "--output-dir", path.join(tmp, "strict")], env);
    expect({ code: strict.code, failed: lines(strict.stdout).filter((l) => l.startsWith("FAILED")) }, strict.stderr).toEqual({
      code: 1,
      failed: ['FAILED tier1/02-prometheus-query.ipynb cell 3 "import requests": ImportError: blocked by the test'],
    });

    const allowed = await runner(
      ["tier1", "--notebooks-dir", nbs, "--output-dir", path.join(tmp, "allowed"), "-p", "allow_missing", '["prometheus_api_client"]'],
      env,
    );
    expect({ code: allowed.code, passed: lines(allowed.stdout).filter((l) => l.startsWith("PASSED")) }, allowed.stderr).toEqual({
      code: 0,
      passed: ["PASSED tier1/02-prometheus-query.ipynb (N s)"],
    });
  }, 300_000);

  it("names the notebook and the failing cell of a deliberately broken copy, runs the rest, and exits 1", async () => {
    // The bug: the model server subtracts the bias instead of adding it. The client cell's assertion catches it.
    const original = readNotebook(path.join(NOTEBOOKS, "tier3", "01-http-inference.ipynb"));
    const broken = structuredClone(original);
    const server = broken.cells[2] as Cell;
    const fixed = source(server);
    const bug = fixed.replace("for w, x in zip(weights, r)) + bias]", "for w, x in zip(weights, r)) - bias]");
    expect(bug).not.toBe(fixed);
    server.source = bug;
    const nbs = path.join(tmp, "broken");
    fs.mkdirSync(path.join(nbs, "tier3"), { recursive: true });
    fs.writeFileSync(path.join(nbs, "tier3", "01-http-inference.ipynb"), JSON.stringify(broken, null, 1));
    fs.writeFileSync(path.join(nbs, "tier3", "02-http-inference-intact.ipynb"), JSON.stringify(original, null, 1));
    const out = path.join(tmp, "broken-out");

    const res = await runner(["tier3", "--notebooks-dir", nbs, "--output-dir", out]);
    expect({ code: res.code, stdout: lines(res.stdout) }).toEqual({
      code: 1,
      stdout: [
        `tier3: 2 notebook(s) with ${engine}, output in ${path.join(out, "tier3")}`,
        'FAILED tier3/01-http-inference.ipynb cell 3 "session = requests.Session()": AssertionError: ([4.25, -0.25, 6.75, -5.25], [4.75, 0.25, 7.25, -4.75])',
        "PASSED tier3/02-http-inference-intact.ipynb (N s)",
        "tier3: 1 of 2 notebook(s) passed",
      ],
    });
    // The traceback goes to stderr, the executed notebook keeps the error in the failing cell.
    expect(res.stderr).toContain("AssertionError");
    const executed = readNotebook(path.join(out, "tier3", "01-http-inference.ipynb"));
    const failing = executed.cells.filter((c) => (c.outputs ?? []).some((o) => (o as { output_type?: string }).output_type === "error"));
    expect(failing.map((c) => source(c).split("\n")[0])).toEqual(["session = requests.Session()"]);
    const summary = JSON.parse(fs.readFileSync(path.join(out, "tier3", "summary.json"), "utf8")) as {
      notebooks: Array<Record<string, unknown>>;
    };
    expect(summary.notebooks.map(({ notebook, status, cell_index, first_line, ename }) => ({ notebook, status, cell_index, first_line, ename }))).toEqual([
      {
        notebook: "tier3/01-http-inference.ipynb",
        status: "failed",
        cell_index: 3,
        first_line: "session = requests.Session()",
        ename: "AssertionError",
      },
      { notebook: "tier3/02-http-inference-intact.ipynb", status: "passed", cell_index: undefined, first_line: undefined, ename: undefined },
    ]);
  }, 300_000);

  it("exits 2 on bad usage, naming the problem", async () => {
    const empty = path.join(tmp, "empty");
    fs.mkdirSync(path.join(empty, "tier1"), { recursive: true });
    const cases = await Promise.all([
      runner(["tier9"]),
      runner(["tier1", "--notebooks-dir", empty]),
      runner(["tier1", "-p", "not-a-name", "1"]),
      runner(["../tier1"]),
      runner([]),
    ]);
    expect(cases.map((c) => [c.code, c.stdout, c.stderr.trim().split("\n").at(-1)])).toEqual([
      [2, "", "run_notebooks.py: error: no tier 'tier9' under " + NOTEBOOKS + " (tiers there: tier1, tier2, tier3)"],
      [2, "", `run_notebooks.py: error: ${path.join(empty, "tier1")} holds no .ipynb notebooks: nothing to validate`],
      [2, "", "run_notebooks.py: error: -p not-a-name: a parameter name must be a Python identifier"],
      [2, "", "run_notebooks.py: error: tier '../tier1' is not a folder name (letters, digits, '.', '_', '-')"],
      [2, "", "run_notebooks.py: error: the following arguments are required: tier"],
    ]);
  });
});
