// First: before anything loads @pulumi/pulumi (scripts/lib/lean-sdk.ts).
import "./lib/lean-sdk";
import * as fs from "node:fs";
import * as path from "node:path";
import { planToJson, planToMarkdown, planToMermaid } from "./lib/plan-format";
import { PlanFailure, runPlan } from "./lib/plan-runtime";
import { ConfigError, formatProblems, type Problem } from "../lib/problems";
import { readStackConfig } from "./lib/stack-files";
import { type CliIO, display, escapeControls, checkFlags, internalLine, Refused, runCli, STACK_NAME, unreadable, unwritable } from "./lib/cli";
import { PROJECT_ROOT } from "../lib/paths";

/**
 * npm run plan -- --stack <name> [--config <file>] [--format json|markdown|mermaid] [--out <file>]
 * Runs index.ts under Pulumi's mock runtime. Exit 0: plan written. Exit 2: bad flags, a bad file or invalid
 * configuration (every problem on stderr, one line each, nothing on stdout). Exit 1: the program itself failed.
 */
const CLI = "plan";
const HELP = "Usage: npm run plan -- --stack <name> [--config <file>] [--format json|markdown|mermaid] [--out <file>].";
const FORMATS = ["json", "markdown", "mermaid"] as const;
const root = PROJECT_ROOT;

export interface PlanIO extends CliIO {
  /** index.ts's program. @default required from the project root (tests pass the one they imported) */
  program?: () => unknown;
}

/** A configuration error, one line per problem, control characters escaped (the user's keys and values reach it). */
function configMessage(e: ConfigError): string {
  const header = e.message.split("\n")[0]!.replace(/ \(\d+ problems?\):$/, "");
  const escaped: Problem[] = e.problems.map((p) => ({
    path: escapeControls(p.path),
    message: escapeControls(p.message),
    ...(p.received !== undefined ? { received: escapeControls(p.received) } : {}),
  }));
  return formatProblems(escapeControls(header), escaped);
}

async function plan(argv: readonly string[], io: PlanIO): Promise<number> {
  const cwd = io.cwd ?? process.cwd();
  // Flags, the stack and every file are judged together, so one run lists every problem.
  const { values, problems } = checkFlags(
    CLI,
    argv,
    { stack: { type: "string" }, config: { type: "string" }, format: { type: "string", choices: FORMATS }, out: { type: "string" } },
    { help: HELP },
  );
  const stack = values.stack as string | undefined;
  const format = (values.format as (typeof FORMATS)[number] | undefined) ?? "json";
  // Not when a flag problem already names --stack (a missing value, or a typo answered with "Did you mean").
  if (stack === undefined) {
    if (!problems.some((p) => p.where === "--stack" || p.message.includes('"--stack"'))) {
      problems.push({ where: "--stack", message: `is required: the stack to plan, e.g. --stack dev (local, dev or prod). ${HELP}` });
    }
  } else if (!STACK_NAME.test(stack)) {
    problems.push({
      where: "--stack",
      message: "must be a stack name (letters, digits, '.', '_', '-', starting with a letter or digit), not a path. To plan another file, pass it with --config <file>.",
      received: stack,
    });
  }
  // Every file is checked before the plan runs: a plan is seconds of work, and its output must have somewhere to go.
  let stackFile: string | undefined;
  if (values.config !== undefined) {
    const config = values.config as string;
    stackFile = path.resolve(cwd, config);
    const why = config === "" ? "is empty" : unreadable(stackFile);
    if (why !== undefined) problems.push({ where: "--config", message: `${why}. Pass a stack file such as Pulumi.dev.yaml.`, received: config });
  } else if (stack !== undefined && STACK_NAME.test(stack)) {
    stackFile = path.join(root, `Pulumi.${stack}.yaml`);
    const why = unreadable(stackFile);
    if (why !== undefined) {
      const existing = fs
        .readdirSync(root)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
      problems.push({
        where: "--stack",
        message: `has no stack file: ${display(stackFile, cwd)} ${why}. Use ${existing.length > 0 ? `one of ${existing.join(", ")}` : "an existing stack"}, or pass the file with --config <file>.`,
        received: stack,
      });
    }
  }
  const out = values.out as string | undefined;
  if (out !== undefined) {
    const why = out === "" ? "is empty" : unwritable(path.resolve(cwd, out));
    if (why !== undefined) problems.push({ where: "--out", message: `${why}. Name a file in an existing, writable directory, or leave --out out to print the plan.`, received: out });
  }
  if (problems.length > 0) throw new Refused(CLI, problems);

  let read: ReturnType<typeof readStackConfig>;
  try {
    read = readStackConfig(root, stackFile!);
  } catch (e) {
    if (!ConfigError.is(e)) throw e;
    // The stack file (or Pulumi.yaml) is not YAML: one line naming the file, the fix in the message.
    throw new Refused(
      CLI,
      e.problems.map((p) => ({ where: display(p.path, cwd), message: `${p.message}${p.received !== undefined ? ` (got ${p.received})` : ""}` })),
    );
  }
  // "../index": index.ts under tsx, dist/index.js when compiled (scripts/build-dist.cjs).
  const program = io.program ?? (require("../index") as () => unknown);
  let text: string;
  try {
    const result = await runPlan({ project: read.project, stack: stack!, config: read.config, secretKeys: read.secretKeys, program });
    text = format === "json" ? planToJson(result) : format === "markdown" ? planToMarkdown(result) : planToMermaid(result);
  } catch (e) {
    if (ConfigError.is(e)) {
      io.stderr(`${configMessage(e)}\n`);
      return 2;
    }
    if (e instanceof PlanFailure) {
      io.stderr(`${CLI}: the program failed: ${escapeControls(e.message.split("\n")[0] ?? "")}. Configuration should have refused this first: report it with the stack file.\n`);
      return 1;
    }
    throw e;
  }
  if (out !== undefined) {
    try {
      fs.writeFileSync(path.resolve(cwd, out), text);
    } catch (e) {
      throw new Refused(CLI, [{ where: "--out", message: `cannot be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Name a file in a writable directory.`, received: out }]);
    }
  } else io.stdout(text);
  return 0;
}

/**
 * The CLI as a function (issue #16: tests call it in-process). Returns the exit code: 0 plan written, 2 refused
 * (stderr only), 1 the program failed or an internal error.
 */
export function main(argv: readonly string[], io: PlanIO): Promise<number> {
  return runCli(CLI, io, () => plan(argv, io));
}

if (typeof module !== "undefined" && require.main === module) {
  // Outside a plan (runPlan captures its own), a stray rejection is still one line, never a stack trace.
  process.on("unhandledRejection", (e: unknown) => {
    process.stderr.write(`${internalLine(CLI, e)}\n`);
    process.exit(1);
  });
  main(process.argv.slice(2), { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }).then(
    (code) => {
      process.exitCode = code;
    },
    () => {
      process.exitCode = 1;
    },
  );
}
