/**
 * Every CLI in scripts/ on bad flags and bad files (issue #13), in-process through its `main(argv, io)` (issue #16):
 * one line per problem naming the flag or file, the value (control characters escaped) and the fix; exit 2; nothing
 * on stdout; no stack trace; checked before any work (a plan is never run for an --out it cannot write). The
 * process boundary is covered by plan-cli.test.ts and cli-process.test.ts; up:local by up-local.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, describe, expect, it } from "vitest";
import { main as bench } from "../../scripts/bench";
import { main as fixtures } from "../../scripts/fixtures";
import { main as pinChartImages } from "../../scripts/pin-chart-images";
import { main as plan } from "../../scripts/plan";
import { main as planDiff } from "../../scripts/plan-diff";
import { PlanFailure, runPlan } from "../../scripts/lib/plan-runtime";
import { loadProgram, MINI_STACK, ROOT } from "../support/harness";

const PLAN_USAGE = "Usage: npm run plan -- --stack <name> [--config <file>] [--format json|markdown|mermaid] [--out <file>].";
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-cli-main-"));
  dirs.push(dir);
  return dir;
}

type Main<IO> = (argv: readonly string[], io: IO) => Promise<number>;
async function run<IO extends { stdout: (t: string) => void; stderr: (t: string) => void }>(
  main: Main<IO>,
  argv: string[],
  extra: Omit<IO, "stdout" | "stderr"> = {} as Omit<IO, "stdout" | "stderr">,
) {
  let stdout = "";
  let stderr = "";
  const io = { ...extra, stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t) } as unknown as IO;
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** A refusal: exit 2, nothing on stdout, exactly these lines on stderr, none raw with a control character or a stack. */
function refused(r: { code: number; stdout: string; stderr: string }, lines: string[]): void {
  expect(r).toEqual({ code: 2, stdout: "", stderr: `${lines.join("\n")}\n` });
  expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]|\n\s+at /);
}

describe("plan main: flags and files are refused before the plan runs", () => {
  // A program that must never run: a refusal comes before it.
  const never = () => {
    throw new Error("the plan ran");
  };
  const p = (argv: string[], cwd = ROOT) => run(plan, argv, { cwd, program: never });

  it("unknown flag (with a did-you-mean, its value taken with it), missing value, bad enum, extra positional, a flag twice", async () => {
    refused(await p(["--stak", "dev"]), [`plan: --stak: is not an option of plan. Did you mean "--stack"? ${PLAN_USAGE}`]);
    refused(await p(["--stack"]), [`plan: --stack: needs a value after it. Write --stack <value> (or --stack=<value> for a value starting with "-"). ${PLAN_USAGE}`]);
    // The next flag is not taken as the value: --format json still counts, so its own problem shows too.
    refused(await p(["--stack", "--format", "yml"]), [
      `plan: --stack: needs a value after it. Write --stack <value> (or --stack=<value> for a value starting with "-"). ${PLAN_USAGE}`,
      'plan: --format: must be one of json, markdown, mermaid. (got "yml")',
    ]);
    refused(await p(["--stack", "dev", "--format", "jsn"]), ['plan: --format: must be one of json, markdown, mermaid. Did you mean "json"? (got "jsn")']);
    refused(await p(["--stack", "dev", "extra"]), [`plan: extra: is not an argument plan takes. ${PLAN_USAGE}`]);
    refused(await p(["--stack", "dev", "--stack", "prod"]), ['plan: --stack: is given twice. Give it once. (got "prod")']);
    refused(await p([]), [`plan: --stack: is required: the stack to plan, e.g. --stack dev (local, dev or prod). ${PLAN_USAGE}`]);
  });

  it("--stack is a stack name, never a path; control characters in it are escaped", async () => {
    const why = "must be a stack name (letters, digits, '.', '_', '-', starting with a letter or digit), not a path. To plan another file, pass it with --config <file>.";
    for (const bad of ["/etc/passwd", "..", "../dev", "dev/../prod", ".hidden", ""]) {
      const r = await p(["--stack", bad]);
      expect(r.code).toBe(2);
      if (bad !== "") expect(r.stderr).toBe(`plan: --stack: ${why} (got ${JSON.stringify(bad)})\n`);
    }
    refused(await p(["--stack", "dev\u001b[2J\nplan: ok"]), [`plan: --stack: ${why} (got "dev\\u001b[2J\\nplan: ok")`]);
    refused(await p(["--stack", "staging"]), ['plan: --stack: has no stack file: Pulumi.staging.yaml does not exist. Use one of dev, local, prod, or pass the file with --config <file>. (got "staging")']);
  });

  it("--config: missing, a directory, a FIFO, not YAML, an alias bomb, not a mapping: one line naming the file", async () => {
    const dir = tmp();
    const fix = "Pass a stack file such as Pulumi.dev.yaml.";
    refused(await p(["--stack", "dev", "--config", "nope.yaml"], dir), [`plan: --config: does not exist. ${fix} (got "nope.yaml")`]);
    refused(await p(["--stack", "dev", "--config", dir]), [`plan: --config: is a directory, not a file. ${fix} (got ${JSON.stringify(dir)})`]);
    fs.writeFileSync(path.join(dir, "bad.yaml"), "config:\n  workbench-images:environment: [unclosed\n");
    refused(await p(["--stack", "dev", "--config", "bad.yaml"], dir), [
      "plan: bad.yaml: is not valid YAML at line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]. Fix the syntax there.",
    ]);
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (const l of ["b", "c", "d", "e", "f", "g"]) levels.push(`${l}: &${l} [${Array(10).fill(`*${levels.length === 1 ? "a" : String.fromCharCode(l.charCodeAt(0) - 1)}`).join(", ")}]`);
    fs.writeFileSync(path.join(dir, "bomb.yaml"), `${levels.join("\n")}\nconfig:\n  workbench-images:environment: *g\n`);
    refused(await p(["--stack", "dev", "--config", "bomb.yaml"], dir), [
      "plan: bomb.yaml: cannot be expanded: Excessive alias count indicates a resource exhaustion attack. Write the repeated values out instead of nesting aliases.",
    ]);
    fs.writeFileSync(path.join(dir, "list.yaml"), "- config\n");
    refused(await p(["--stack", "dev", "--config", "list.yaml"], dir), ['plan: list.yaml: must be a YAML mapping with a `config:` key (what `pulumi config set` writes). (got ["config"])']);
    fs.writeFileSync(path.join(dir, "scalar.yaml"), "config: dev\n");
    refused(await p(["--stack", "dev", "--config", "scalar.yaml"], dir), ['plan: scalar.yaml: config: must be a mapping of settings (`workbench-images:<key>: <value>`). (got "dev")']);
  });

  it("a FIFO is refused, not read (a read would block for ever)", async () => {
    const dir = tmp();
    const fifo = path.join(dir, "fifo.yaml");
    try {
      require("node:child_process").execFileSync("mkfifo", [fifo]);
    } catch {
      return; // no mkfifo here
    }
    refused(await p(["--stack", "dev", "--config", "fifo.yaml"], dir), ['plan: --config: is not a regular file. Pass a stack file such as Pulumi.dev.yaml. (got "fifo.yaml")']);
  });

  it("--out naming a directory, a file in a missing directory, or an empty name is refused before the plan runs", async () => {
    const dir = tmp();
    const fix = "Name a file in an existing, writable directory, or leave --out out to print the plan.";
    refused(await p(["--stack", "dev", "--out", dir]), [`plan: --out: is a directory. ${fix} (got ${JSON.stringify(dir)})`]);
    refused(await p(["--stack", "dev", "--out", "missing/plan.json"], dir), [
      `plan: --out: is in a directory that does not exist (${path.join(dir, "missing")}). ${fix} (got "missing/plan.json")`,
    ]);
    fs.writeFileSync(path.join(dir, "file"), "");
    refused(await p(["--stack", "dev", "--out", "file/plan.json"], dir), [`plan: --out: is inside a path whose parent is a file, not a directory. ${fix} (got "file/plan.json")`]);
    refused(await p(["--stack", "dev", "--out="]), [`plan: --out: needs a value after it. Write --out <value> (or --out=<value> for a value starting with "-"). ${PLAN_USAGE}`]);
    // Every problem at once: a bad stack, a bad format and a bad --out are three lines.
    const all = await p(["--stack", "../x", "--format", "yaml", "--out", dir]);
    expect(all.code).toBe(2);
    expect(all.stderr.trimEnd().split("\n").map((l) => l.split(": ")[1])).toEqual(["--format", "--stack", "--out"]);
  });

  it("invalid configuration: every problem, one line each, control characters in keys and values escaped", async () => {
    const dir = tmp();
    const file = path.join(dir, "Pulumi.bad.yaml");
    fs.writeFileSync(
      file,
      [
        "config:",
        "  workbench-images:environment: dev",
        '  "workbench-images:regi\\u001bstry": {}',
        '  workbench-images:catalogPath: "x\\ny.yaml\\u001b[31m"',
      ].join("\n"),
    );
    const r = await run(plan, ["--stack", "bad", "--config", file], { program: await loadProgram() });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Invalid configuration for stack "bad" \(\d+ problems?\):$/);
    expect(lines.slice(1).every((l) => /^ {2}- workbench-images:\S+: /.test(l))).toBe(true);
    expect(r.stderr).toContain("workbench-images:regi\\u001bstry: is not a setting of this program.");
    expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
  });

  it("writes the plan to --out and nothing to stdout", async () => {
    const dir = tmp();
    const r = await run(plan, ["--stack", "dev", "--config", path.join(ROOT, MINI_STACK), "--format", "markdown", "--out", "plan.md"], {
      cwd: dir,
      program: await loadProgram(),
    });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: "" });
    expect(fs.readFileSync(path.join(dir, "plan.md"), "utf8")).toMatch(/^# Plan: workbench-images \/ dev\n/);
  });
});

describe("runPlan: a program that fails inside an apply", () => {
  class Thing extends pulumi.CustomResource {
    constructor(name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
      super("test:index:Thing", name, props, opts);
    }
  }
  class Broken extends pulumi.ComponentResource {
    constructor(name: string, where: "input" | "outputs") {
      super("test:index:Broken", name, {});
      const a = new Thing(`${name}-a`, { v: 1 }, { parent: this });
      const bad = a.urn.apply((): string => {
        throw new pulumi.ResourceError("the toleration is not valid", this);
      });
      if (where === "input") new Thing(`${name}-b`, { v: bad }, { parent: this });
      this.registerOutputs(where === "outputs" ? { bad } : {});
    }
  }
  const go = (program: () => unknown) => runPlan({ project: "p", stack: "s", config: {}, secretKeys: [], program });

  it("rejects promptly with the message alone (no resource graph to serialize), wherever the apply is used", async () => {
    for (const [where, message] of [
      ["input", 'error serializing property "v": the toleration is not valid'],
      ["outputs", 'error serializing property "outputs": the toleration is not valid'],
    ] as const) {
      const start = Date.now();
      const e = await go(() => {
        new Broken("c", where);
        return {};
      }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(Date.now() - start).toBeLessThan(5_000);
      expect(e).toBeInstanceOf(PlanFailure);
      expect(e).not.toHaveProperty("resource");
      expect(e).not.toHaveProperty("promise");
      expect((e as Error).message).toBe(message);
    }
  });

  it("a stack output whose apply throws rejects too; the next plan in the same process is unaffected", async () => {
    await expect(
      go(() => {
        const t = new Thing("t", { v: 1 });
        return { x: t.urn.apply(() => Promise.reject(new Error("boom"))) };
      }),
    ).rejects.toThrow(/^boom$/);
    const ok = await go(() => {
      new Thing("fine", { v: 2 });
      return {};
    });
    expect(ok.resources.filter((r) => r.custom).map((r) => r.name)).toEqual(["fine"]);
  });

  it("the plan CLI answers such a failure with one line and exit 1", async () => {
    const r = await run(plan, ["--stack", "dev", "--config", path.join(ROOT, MINI_STACK)], {
      program: () => {
        new Broken("c", "input");
        return {};
      },
    });
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr:
        'plan: the program failed: error serializing property "v": the toleration is not valid. Configuration should have refused this first: report it with the stack file.\n',
    });
  });
});

describe("plan:diff main", () => {
  const USAGE = "Usage: npm run plan:diff -- <base.json> <head.json> (two files written by `npm run plan -- --format json --out <file>`).";
  const REWRITE = "Write it with `npm run plan -- --stack <name> --format json --out <file>`.";
  const PLAN = {
    project: "workbench-images",
    stack: "dev",
    resources: [{ urn: "urn:a", type: "aws:ecr/repository:Repository", name: "a", custom: true, dependencies: [], propertyDependencies: {}, inputs: { name: "a" } }],
    outputs: {},
  };

  it("diffs two plans", async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, "base.json"), JSON.stringify({ ...PLAN, resources: [] }));
    fs.writeFileSync(path.join(dir, "head.json"), JSON.stringify(PLAN));
    const r = await run(planDiff, ["base.json", "head.json"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^### `dev`: 1 to add, 0 to change, 0 to remove\n/);
  });

  it("bad arguments: a flag (it takes none), too few or too many files", async () => {
    const dir = tmp();
    refused(await run(planDiff, ["--base", "a.json", "b.json"], { cwd: dir }), [`plan:diff: --base: is not an option of plan:diff. plan:diff takes no options. ${USAGE}`]);
    refused(await run(planDiff, ["a.json"], { cwd: dir }), [`plan:diff: arguments: needs two plan files, base then head; got 1. ${USAGE}`]);
    refused(await run(planDiff, ["a.json", "b.json", "c.json"], { cwd: dir }), [`plan:diff: c.json: is one argument too many: plan:diff takes two plan files, base then head. ${USAGE}`]);
  });

  it("bad files: missing, a directory, not JSON (position only, never the file's text), not a plan; both files judged", async () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, "sub"));
    fs.writeFileSync(path.join(dir, "head.json"), JSON.stringify(PLAN));
    fs.writeFileSync(path.join(dir, "broken.json"), '{"project": "x",\n "secret": AKIA\u001bSECRET}');
    fs.writeFileSync(path.join(dir, "empty.json"), "");
    fs.writeFileSync(path.join(dir, "shape.json"), JSON.stringify({ ...PLAN, resources: [{ ...PLAN.resources[0], urn: 5 }] }));
    fs.writeFileSync(path.join(dir, "array.json"), "[]");
    refused(await run(planDiff, ["nope.json", "sub"], { cwd: dir }), [`plan:diff: nope.json: does not exist. ${REWRITE}`, `plan:diff: sub: is a directory, not a file. ${REWRITE}`]);
    refused(await run(planDiff, ["broken.json", "head.json"], { cwd: dir }), [`plan:diff: broken.json: is not valid JSON. ${REWRITE}`]);
    fs.writeFileSync(path.join(dir, "cut.json"), '{"project": "x",\n "stack": "y"');
    refused(await run(planDiff, ["cut.json", "head.json"], { cwd: dir }), [`plan:diff: cut.json: is not valid JSON (line 2, column 14). ${REWRITE}`]);
    refused(await run(planDiff, ["empty.json", "head.json"], { cwd: dir }), [`plan:diff: empty.json: is not valid JSON (line 1, column 1). ${REWRITE}`]);
    refused(await run(planDiff, ["head.json", "shape.json"], { cwd: dir }), [`plan:diff: shape.json: resources[0].urn: must be a string; this is not a plan. ${REWRITE} (got 5)`]);
    refused(await run(planDiff, ["array.json", "head.json"], { cwd: dir }), [
      `plan:diff: array.json: (top level): must be a JSON object with project, stack, resources and outputs; this is not a plan. ${REWRITE} (got [])`,
    ]);
  });
});

describe("bench, fixtures and pin-chart-images main", () => {
  it("bench: an unknown flag, an argument, or an internal flag without --child is refused before measuring", async () => {
    const HELP = "Usage: npm run bench (no options; it prints a table of figures).";
    const r = await run(bench, ["--fast"]);
    refused(r, [`bench: --fast: is not an option of bench. ${HELP}`]);
    refused(await run(bench, ["500"]), [`bench: 500: is not an argument bench takes. ${HELP}`]);
    refused(await run(bench, ["--variants", "10"]), [`bench: --variants: is internal to a measuring child (--child). ${HELP} (got "10")`]);
    refused(await run(bench, ["--child", "program", "--variants", "1e9"]), ['bench: --variants: must be a whole number up to 999999. (got "1e9")']);
    refused(await run(bench, ["--child", "prog"]), ['bench: --child: must be one of program, floor. Did you mean "program"? (got "prog")']);
  });

  it("fixtures: takes nothing", async () => {
    refused(await run(fixtures, ["--write"]), ["fixtures: --write: is not an option of fixtures. fixtures takes no options. Usage: npm run fixtures (no options or arguments)."]);
    refused(await run(fixtures, ["x\ny"]), ["fixtures: x\\u000ay: is not an argument fixtures takes. Usage: npm run fixtures (no options or arguments)."]);
  });

  it("pin-chart-images: bad flags; the pin file missing, a directory, not YAML, an alias bomb; a dry run with a fake registry", async () => {
    const dir = tmp();
    const resolver = async (ref: string) => `sha256:${Buffer.from(ref).toString("hex").padEnd(64, "0").slice(0, 64)}`;
    const io = (file: string) => ({ cwd: dir, file: path.join(dir, file), resolver });
    const HELP = "Usage: npm run pin-chart-images -- [--refresh] [--dry-run].";
    const FIX = "Restore it from the repository; docs/chart-images.md says what it holds.";
    refused(await run(pinChartImages, ["--refersh"], io("x.yaml")), [`pin-chart-images: --refersh: is not an option of pin-chart-images. Did you mean "--refresh"? ${HELP}`]);
    refused(await run(pinChartImages, ["--dry-run=no"], io("x.yaml")), ['pin-chart-images: --dry-run: takes no value: write --dry-run alone. (got "no")']);
    refused(await run(pinChartImages, [], io("x.yaml")), [`pin-chart-images: x.yaml: does not exist. ${FIX}`]);
    fs.mkdirSync(path.join(dir, "d.yaml"));
    refused(await run(pinChartImages, [], io("d.yaml")), [`pin-chart-images: d.yaml: is a directory, not a file. ${FIX}`]);
    fs.writeFileSync(path.join(dir, "bad.yaml"), "charts:\n  jupyterhub: [\n");
    const bad = await run(pinChartImages, [], io("bad.yaml"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^pin-chart-images: bad\.yaml \(line \d+\): is not valid YAML: .+\. Fix the syntax there\. Nothing was written\.\n$/);
    fs.writeFileSync(path.join(dir, "bomb.yaml"), "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\ncharts: *c\n");
    refused(await run(pinChartImages, [], io("bomb.yaml")), [
      "pin-chart-images: bomb.yaml: cannot be expanded: Excessive alias count indicates a resource exhaustion attack. Write the repeated values out instead of nesting aliases. Nothing was written.",
    ]);
    const real = fs.readFileSync(path.join(ROOT, "images/chart-images.yaml"), "utf8");
    fs.writeFileSync(path.join(dir, "pins.yaml"), real);
    const dry = await run(pinChartImages, ["--dry-run"], io("pins.yaml"));
    expect(dry.code).toBe(0);
    expect(dry.stderr).toBe("");
    expect(fs.readFileSync(path.join(dir, "pins.yaml"), "utf8")).toBe(real);
  });
});
