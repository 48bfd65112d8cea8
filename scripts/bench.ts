// First: before anything loads @pulumi/pulumi (scripts/lib/lean-sdk.ts).
import "./lib/lean-sdk";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { runPlan } from "./lib/plan-runtime";
import { readStackConfig } from "./lib/stack-files";
import { type Recording, replay, startRecording } from "./lib/replay";
import { type CliIO, type CliProblem, parseFlags, Refused, runCli, runAsScript } from "./lib/cli";
import { PROJECT_ROOT } from "../lib/paths";

/**
 * npm run bench (issue #16): the program's plan cost per dev-like variant against the honest floor, the SDK's own cost
 * for the very registrations the program makes. For each size a recording run captures the program's registrations
 * (scripts/lib/replay.ts); then, repeated and interleaved, one process plans the program and another replays the
 * recording with no project logic (the same types, names, parents, providers, declared outputs, inputs as plain
 * values, dependencies). Each measurement runs in its own process, so its peak RSS is its own. The slopes (seconds and
 * MB per variant, least squares over the sizes, medians of the repeats) and their ratio are printed; nothing is
 * asserted (targets: ≤ 1.1× the floor, ≤ 0.8 MB per variant).
 *
 * Sizes and repeats: BENCH_SIZES (comma-separated variant counts, default 50,100,200,500) and BENCH_REPEAT (default 3),
 * e.g. `BENCH_SIZES=1000,2000 BENCH_REPEAT=1 npm run bench`.
 */
const root = PROJECT_ROOT;
const DEFAULT_SIZES = [50, 100, 200, 500];
const DEFAULT_REPEAT = 3;

const CLI = "bench";
const HELP = "Usage: npm run bench (no options; it prints a table of figures).";

/** The internal flags a measuring child gets from its parent; a user runs `npm run bench` without any. */
interface ChildFlags {
  child: "program" | "floor";
  variants: number;
}

function readFlags(argv: readonly string[]): ChildFlags | undefined {
  const { values } = parseFlags(CLI, argv, { child: { type: "string", choices: ["program", "floor"] }, variants: { type: "string" } }, { help: HELP });
  if (values.child === undefined) {
    if (values.variants !== undefined) {
      throw new Refused(CLI, [{ where: "--variants", message: `is internal to a measuring child (--child). ${HELP}`, received: values.variants }]);
    }
    return undefined;
  }
  const raw = (values.variants as string | undefined) ?? "0";
  if (!/^\d{1,6}$/.test(raw)) throw new Refused(CLI, [{ where: "--variants", message: "must be a whole number up to 999999.", received: raw }]);
  return { child: values.child as ChildFlags["child"], variants: Number(raw) };
}

/** BENCH_SIZES and BENCH_REPEAT, checked before anything runs. */
function readEnv(env: NodeJS.ProcessEnv): { sizes: number[]; repeat: number } {
  const problems: CliProblem[] = [];
  let sizes = DEFAULT_SIZES;
  if (env.BENCH_SIZES !== undefined) {
    const parts = env.BENCH_SIZES.split(",").map((s) => s.trim());
    if (parts.some((s) => !/^[1-9]\d{0,5}$/.test(s)) || new Set(parts).size !== parts.length) {
      problems.push({ where: "BENCH_SIZES", message: "must be distinct whole numbers of variants (1 to 999999), comma-separated, e.g. 50,100,200,500.", received: env.BENCH_SIZES });
    } else sizes = parts.map(Number).sort((a, b) => a - b);
  }
  let repeat = DEFAULT_REPEAT;
  if (env.BENCH_REPEAT !== undefined) {
    if (!/^[1-9]\d?$/.test(env.BENCH_REPEAT)) problems.push({ where: "BENCH_REPEAT", message: "must be a whole number from 1 to 99.", received: env.BENCH_REPEAT });
    else repeat = Number(env.BENCH_REPEAT);
  }
  if (problems.length > 0) throw new Refused(CLI, problems);
  return { sizes, repeat };
}

function makeCatalog(dir: string, n: number): string {
  fs.mkdirSync(path.join(dir, "images", "app"), { recursive: true });
  fs.writeFileSync(path.join(dir, "images", "app", "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n");
  fs.writeFileSync(path.join(dir, "images", "app", "main.py"), "print('bench')\n");
  const variants = Array.from({ length: n }, (_, i) => ({
    name: `v${String(i).padStart(4, "0")}`,
    family: "bench",
    context: "app",
    platforms: ["linux/amd64"],
    buildArgs: { VARIANT: String(i) },
    base: { ref: `docker.io/library/python:3.12-slim@sha256:${"c".repeat(64)}` },
    smoke: { command: ["python", "-c", "1"] },
    sizeBudgetMB: 500,
  }));
  fs.writeFileSync(path.join(dir, "images", "catalog.yaml"), stringify({ variants }));
  const stackFile = path.join(dir, "Pulumi.bench.yaml");
  fs.writeFileSync(
    stackFile,
    stringify({
      config: {
        "workbench-images:environment": "dev",
        "workbench-images:catalogPath": path.relative(root, path.join(dir, "images", "catalog.yaml")),
        "workbench-images:registry": { kind: "ecr", region: "us-east-1", accountId: "111122223333" },
        "workbench-images:cluster": { context: "bench" },
        "workbench-images:signing": { mode: "cosign-kms", keyAlias: "alias/bench", signerRoleArns: ["arn:aws:iam::111122223333:role/bench"] },
        "workbench-images:jupyterhub": { enabled: false },
        "workbench-images:admission": { installKyverno: false },
      },
    }),
  );
  return stackFile;
}

interface Measurement {
  resources: number;
  seconds: number;
  maxRssMB: number;
}

/**
 * A measuring child. `program`: plans a synthetic catalog of `variants` (recording its registrations into the file
 * named by BENCH_RECORD_OUT when set). `floor`: replays the recording in BENCH_RECORD.
 */
async function child(values: ChildFlags, io: CliIO): Promise<void> {
  // Module loading is a fixed cost, timed apart from planning: both children load the program's modules.
  const program = require("../index") as () => unknown;
  let resources: number;
  let start: bigint;
  if (values.child === "program") {
    const dir = fs.mkdtempSync(path.join(root, ".bench-"));
    try {
      const stackFile = makeCatalog(dir, values.variants);
      const { project, config, secretKeys } = readStackConfig(root, stackFile);
      const out = process.env.BENCH_RECORD_OUT;
      let recorder: ReturnType<typeof startRecording> | undefined;
      start = process.hrtime.bigint();
      const plan = await runPlan({
        project,
        stack: "bench",
        config,
        secretKeys,
        program: () => {
          if (out !== undefined) recorder = startRecording();
          return program();
        },
      });
      resources = plan.resources.length;
      if (out !== undefined && recorder !== undefined) fs.writeFileSync(out, JSON.stringify(await recorder.finish(plan.outputs)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const recording = JSON.parse(fs.readFileSync(process.env.BENCH_RECORD!, "utf8")) as Recording;
    start = process.hrtime.bigint();
    const plan = await runPlan({ project: "workbench-images", stack: "bench", config: {}, secretKeys: [], program: () => replay(recording) });
    resources = plan.resources.length;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const m: Measurement = { resources, seconds, maxRssMB: process.resourceUsage().maxRSS / 1024 };
  io.stdout(JSON.stringify(m));
}

function run(args: string[], env: Record<string, string> = {}): Measurement {
  // The same runtime as this process: node on compiled JavaScript, or node --import tsx on the TypeScript source.
  const out = execFileSync(process.execPath, [...process.execArgv, __filename, ...args], { cwd: root, encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out) as Measurement;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

const range = (xs: number[], digits: number): string => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

function parent(io: CliIO, sizes: number[], repeat: number): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-bench-"));
  try {
    const recordings = new Map<number, string>();
    const resources = new Map<number, number>();
    for (const n of sizes) {
      const file = path.join(dir, `record-${n}.json`);
      const r = run(["--child", "program", "--variants", String(n)], { BENCH_RECORD_OUT: file });
      recordings.set(n, file);
      resources.set(n, r.resources);
    }
    const program = new Map<number, Measurement[]>(sizes.map((n) => [n, []]));
    const floor = new Map<number, Measurement[]>(sizes.map((n) => [n, []]));
    // Interleaved: every repeat visits every size, program and floor alternating which goes first.
    for (let rep = 0; rep < repeat; rep++) {
      for (const n of sizes) {
        const p = () => program.get(n)!.push(run(["--child", "program", "--variants", String(n)]));
        const f = () => floor.get(n)!.push(run(["--child", "floor", "--variants", String(n)], { BENCH_RECORD: recordings.get(n)! }));
        if (rep % 2 === 0) (p(), f());
        else (f(), p());
      }
    }
    const rows: string[] = [];
    rows.push("| variants | resources | program plan s | floor plan s | program peak RSS MB | floor peak RSS MB |");
    rows.push("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const n of sizes) {
      const p = program.get(n)!;
      const f = floor.get(n)!;
      rows.push(
        `| ${n} | ${resources.get(n)} | ${median(p.map((m) => m.seconds)).toFixed(2)} (${range(p.map((m) => m.seconds), 2)}) | ${median(f.map((m) => m.seconds)).toFixed(2)} (${range(f.map((m) => m.seconds), 2)}) | ${median(p.map((m) => m.maxRssMB)).toFixed(0)} | ${median(f.map((m) => m.maxRssMB)).toFixed(0)} |`,
      );
    }
    const lines: string[] = [rows.join("\n"), ""];
    if (sizes.length >= 2) {
      const xs = sizes;
      const perVariant = (m: Map<number, Measurement[]>, pick: (x: Measurement) => number) => slope(xs, xs.map((n) => median(m.get(n)!.map(pick))));
      const perResource = slope(xs, xs.map((n) => resources.get(n)!));
      const pt = perVariant(program, (m) => m.seconds) * 1000;
      const ft = perVariant(floor, (m) => m.seconds) * 1000;
      const pm = perVariant(program, (m) => m.maxRssMB);
      const fm = perVariant(floor, (m) => m.maxRssMB);
      // Per-repeat slopes show the spread the medians hide.
      const repSlopes = (m: Map<number, Measurement[]>) => Array.from({ length: repeat }, (_, r) => slope(xs, xs.map((n) => m.get(n)![r]!.seconds)) * 1000);
      const pr = repSlopes(program);
      const fr = repSlopes(floor);
      const ratios = pr.map((p, i) => p / fr[i]!);
      lines.push(`resources per variant: ${perResource.toFixed(1)}`);
      lines.push(`plan time per variant: program ${pt.toFixed(2)} ms (repeats ${range(pr, 2)}), honest floor ${ft.toFixed(2)} ms (repeats ${range(fr, 2)})`);
      lines.push(`plan time per resource: program ${(pt / perResource).toFixed(3)} ms, honest floor ${(ft / perResource).toFixed(3)} ms`);
      lines.push(`program / honest floor: ${(pt / ft).toFixed(2)}× (per repeat ${range(ratios, 2)}×; target ≤ 1.1×)`);
      lines.push(`peak RSS per variant: program ${pm.toFixed(2)} MB, honest floor ${fm.toFixed(2)} MB (target ≤ 0.8 MB)`);
    }
    lines.push("", `node ${process.version}, ${os.cpus().length} CPU(s), ${repeat} repeat(s), medians (range)`);
    io.stdout(`${lines.join("\n")}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The CLI as a function (issue #16): flags are checked before any measurement. Exit 0 figures printed, 2 bad flags. */
export function main(argv: readonly string[], io: CliIO, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runCli(CLI, io, async () => {
    const flags = readFlags(argv);
    if (flags !== undefined) await child(flags, io);
    else {
      const { sizes, repeat } = readEnv(env);
      parent(io, sizes, repeat);
    }
    return 0;
  });
}

if (typeof module !== "undefined" && require.main === module) runAsScript(CLI, main);
