/**
 * run_notebooks.py --termination-log (images/notebook-validator/run_notebooks.py): the one-line verdict the notebook
 * Job's termination message carries, which pulumi-kubernetes quotes when the Job fails. Real: small notebooks executed
 * by Debian's /usr/bin/python3 with python3-nbclient and python3-ipykernel, as test/images/notebooks.test.ts does.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../../lib/paths";

const PYTHON = "/usr/bin/python3";
const RUNNER = path.join(PROJECT_ROOT, "images", "notebook-validator", "run_notebooks.py");
const ok = fs.existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import nbclient, ipykernel, nbformat"]).status === 0;

function notebook(cells: Array<{ source: string; tags?: string[] }>): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" } },
    cells: cells.map((c, i) => ({ cell_type: "code", id: `c${i}`, metadata: c.tags ? { tags: c.tags } : {}, source: c.source, outputs: [], execution_count: null })),
  });
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nb-runner-"));
  const t = (tier: string, files: Record<string, string>) => {
    fs.mkdirSync(path.join(dir, "notebooks", tier), { recursive: true });
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, "notebooks", tier, name), text);
  };
  t("good", { "01-a.ipynb": notebook([{ source: "x = 1", tags: ["parameters"] }, { source: "assert x == 1" }]) });
  t("bad", {
    "01-fails.ipynb": notebook([{ source: "x = 1", tags: ["parameters"] }, { source: "\n# check\nassert x == 2, 'x is not 2'" }]),
    "02-passes.ipynb": notebook([{ source: "y = 1", tags: ["parameters"] }]),
    "03-fails.ipynb": notebook([{ source: "raise ValueError('boom')" }]),
  });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(tier: string, extra: string[] = []) {
  const tl = path.join(dir, `${tier}-termination-log`);
  const r = spawnSync(
    PYTHON,
    [RUNNER, tier, "--notebooks-dir", path.join(dir, "notebooks"), "--output-dir", path.join(dir, "out"), "--engine", "nbclient", "--termination-log", tl, ...extra],
    { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" }, timeout: 240_000 },
  );
  return { code: r.status, stdout: r.stdout, verdict: fs.existsSync(tl) ? fs.readFileSync(tl, "utf8") : null };
}

describe.skipIf(!ok)(`run_notebooks.py --termination-log (skipped without ${PYTHON} and python3-nbclient/ipykernel)`, () => {
  it("writes PASSED with the count when every notebook passed", () => {
    const r = run("good");
    expect(r.code).toBe(0);
    expect(r.verdict).toBe("PASSED good: 1 of 1 notebook(s) passed\n");
  }, 120_000);

  it("writes the first failing notebook's stdout line, naming the others that failed", () => {
    const r = run("bad");
    expect(r.code).toBe(1);
    const first = 'FAILED bad/01-fails.ipynb cell 1 "# check": AssertionError: x is not 2';
    expect(r.stdout).toContain(`${first}\n`);
    expect(r.verdict).toBe(`${first} (+1 more failed: bad/03-fails.ipynb)\n`);
  }, 180_000);

  it("writes ERROR on bad usage (exit 2)", () => {
    const r = run("nosuchtier");
    expect(r.code).toBe(2);
    expect(r.verdict).toBe(`ERROR run_notebooks.py: no tier 'nosuchtier' under ${path.join(dir, "notebooks")} (tiers there: bad, good)\n`);
  });

  it("names the running notebook when its deadline kills the run (INCOMPLETE, or the interrupted cell FAILED)", () => {
    fs.mkdirSync(path.join(dir, "notebooks", "slow"), { recursive: true });
    fs.writeFileSync(path.join(dir, "notebooks", "slow", "01-sleeps.ipynb"), notebook([{ source: "import time; time.sleep(60)" }]));
    const tl = path.join(dir, "slow-termination-log");
    // coreutils timeout, as in the Job: SIGTERM at the deadline.
    const r = spawnSync(
      "timeout",
      ["5s", PYTHON, RUNNER, "slow", "--notebooks-dir", path.join(dir, "notebooks"), "--output-dir", path.join(dir, "out"), "--engine", "nbclient", "--termination-log", tl],
      { encoding: "utf8", timeout: 120_000 },
    );
    expect(r.status).toBe(124);
    // Killed while the runner waits: INCOMPLETE stays. Kernel interrupted first: the cell fails and is named.
    expect(fs.readFileSync(tl, "utf8")).toMatch(
      /^(INCOMPLETE slow: stopped while running slow\/01-sleeps\.ipynb \(0 of 1 passed before it\)|FAILED slow\/01-sleeps\.ipynb cell 0 "import time; time\.sleep\(60\)": \w+:.*)\n$/,
    );
  }, 120_000);
});
