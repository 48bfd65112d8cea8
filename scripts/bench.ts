import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { runPlan } from "./lib/plan-runtime";
import { readStackConfig } from "./lib/stack-files";
import { type CliIO, type CliProblem, internalLine, parseFlags, Refused, runCli } from "./lib/cli";

/**
 * npm run bench: plan time and peak RSS for synthetic catalogs of 10, 100 and 500 variants, next to the SDK's floor
 * measured in the same run (the same number of bare resources, custom and component alike, through the same mocks). Each measurement runs in its
 * own process so peak RSS is its own. Prints figures; asserts nothing (targets: ≤ 1.2× the floor per resource,
 * linear growth, 500 variants under 10 s and 1 GB).
 */
const root = path.resolve(__dirname, "..");
const SIZES = [10, 100, 500];

const CLI = "bench";
const HELP = "Usage: npm run bench (no options; it prints a table of figures).";

/** The internal flags a measuring child gets from its parent; a user runs `npm run bench` without any. */
interface ChildFlags {
  child: "program" | "floor";
  variants: number;
  custom: number;
  components: number;
}

function readFlags(argv: readonly string[]): ChildFlags | undefined {
  const { values } = parseFlags(
    CLI,
    argv,
    { child: { type: "string", choices: ["program", "floor"] }, variants: { type: "string" }, custom: { type: "string" }, components: { type: "string" } },
    { help: HELP },
  );
  if (values.child === undefined) {
    const stray = ["variants", "custom", "components"].filter((k) => values[k] !== undefined);
    if (stray.length > 0) throw new Refused(CLI, stray.map((k) => ({ where: `--${k}`, message: `is internal to a measuring child (--child). ${HELP}`, received: values[k] })));
    return undefined;
  }
  const problems: CliProblem[] = [];
  const count = (key: string): number => {
    const raw = values[key] as string | undefined;
    if (raw === undefined) return 0;
    if (!/^\d{1,6}$/.test(raw)) problems.push({ where: `--${key}`, message: "must be a whole number up to 999999.", received: raw });
    return Number(raw);
  };
  const flags = { child: values.child as ChildFlags["child"], variants: count("variants"), custom: count("custom"), components: count("components") };
  if (problems.length > 0) throw new Refused(CLI, problems);
  return flags;
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

/** The SDK's floor: a custom resource with one plain input and nothing else. */
class Bare extends pulumi.CustomResource {
  constructor(name: string, props: { value: number }) {
    super("bench:index:Bare", name, props);
  }
}

/** The floor for components: a component with no children and no outputs. */
class BareComponent extends pulumi.ComponentResource {
  constructor(name: string) {
    super("bench:index:BareComponent", name, {});
    this.registerOutputs({});
  }
}

async function child(values: ChildFlags, io: CliIO): Promise<void> {
  // Module loading (@pulumi/aws alone is ≈ 0.5 s) is a fixed cost, timed apart from planning.
  const program = require("../index") as () => unknown;
  const start = process.hrtime.bigint();
  let resources: number;
  let components = 0;
  if (values.child === "program") {
    const dir = fs.mkdtempSync(path.join(root, ".bench-"));
    try {
      const stackFile = makeCatalog(dir, values.variants);
      const { project, config, secretKeys } = readStackConfig(root, stackFile);
      const plan = await runPlan({ project, stack: "bench", config, secretKeys, program });
      resources = plan.resources.length;
      components = plan.resources.filter((r) => !r.custom).length;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const count = values.custom;
    const comps = values.components;
    const plan = await runPlan({
      project: "workbench-images",
      stack: "bench",
      config: {},
      secretKeys: [],
      program: () => {
        for (let i = 0; i < count; i++) new Bare(`bare-${i}`, { value: i });
        for (let i = 0; i < comps; i++) new BareComponent(`component-${i}`);
        return {};
      },
    });
    resources = plan.resources.length;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  io.stdout(JSON.stringify({ resources, components, seconds, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
}

function run(args: string[]): { resources: number; components: number; seconds: number; maxRssMB: number } {
  const out = execFileSync(process.execPath, ["--import", "tsx", __filename, ...args], { cwd: root, encoding: "utf8" });
  return JSON.parse(out) as { resources: number; components: number; seconds: number; maxRssMB: number };
}

function parent(io: CliIO): void {
  const rows: string[] = [];
  rows.push("| variants | resources | plan s | peak RSS MB | floor s (same count) | floor RSS MB | cost/resource vs floor |");
  rows.push("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const n of SIZES) {
    const prog = run(["--child", "program", "--variants", String(n)]);
    // The floor registers the same mix: as many bare custom resources and bare components as the program did.
    const floor = run(["--child", "floor", "--custom", String(prog.resources - prog.components), "--components", String(prog.components)]);
    rows.push(
      `| ${n} | ${prog.resources} | ${prog.seconds.toFixed(2)} | ${prog.maxRssMB.toFixed(0)} | ${floor.seconds.toFixed(2)} | ${floor.maxRssMB.toFixed(0)} | ${(prog.seconds / floor.seconds).toFixed(2)}× |`,
    );
  }
  io.stdout(`${rows.join("\n")}\n\nnode ${process.version}, ${os.cpus().length} CPU(s)\n`);
}

/** The CLI as a function (issue #16): flags are checked before any measurement. Exit 0 figures printed, 2 bad flags. */
export function main(argv: readonly string[], io: CliIO): Promise<number> {
  return runCli(CLI, io, async () => {
    const flags = readFlags(argv);
    if (flags !== undefined) await child(flags, io);
    else parent(io);
    return 0;
  });
}

if (typeof module !== "undefined" && require.main === module) {
  main(process.argv.slice(2), { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${internalLine(CLI, e)}\n`);
      process.exitCode = 1;
    },
  );
}
