import * as path from "node:path";
import { diffPlans, diffToMarkdown } from "./lib/plan-format";
import type { Plan } from "./lib/plan-runtime";
import { type CliIO, display, parseFlags, readInput, Refused, runCli, runAsScript } from "./lib/cli";

/** npm run plan:diff -- <base.json> <head.json>: markdown for a pull-request comment on stdout. */
const CLI = "plan:diff";
const HELP = "Usage: npm run plan:diff -- <base.json> <head.json> (two files written by `npm run plan -- --format json --out <file>`).";
const REWRITE = "Write it with `npm run plan -- --stack <name> --format json --out <file>`.";

/**
 * Where JSON.parse stopped, without its excerpt of the file: V8 quotes the text around the error, and the file may
 * hold anything (a fork's pull request writes it).
 */
function jsonError(e: Error, text: string): string {
  const at = /at position (\d+)/.exec(e.message);
  const offset = at ? Number(at[1]) : /end of JSON input/.test(e.message) ? text.length : undefined;
  if (offset === undefined) return "is not valid JSON";
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `is not valid JSON (line ${line}, column ${column})`;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** The first way `value` is not a plan (the fields diffPlans and diffToMarkdown read), as `path: must …`, or undefined. */
export function planShapeProblem(value: unknown): { at: string; message: string; received?: unknown } | undefined {
  if (!isObject(value)) return { at: "(top level)", message: "must be a JSON object with project, stack, resources and outputs", received: value };
  for (const key of ["project", "stack"] as const) {
    if (typeof value[key] !== "string") return { at: key, message: "must be a string", received: value[key] };
  }
  if (!Array.isArray(value["resources"])) return { at: "resources", message: "must be a list of resources", received: value["resources"] };
  if (!isObject(value["outputs"])) return { at: "outputs", message: "must be an object", received: value["outputs"] };
  const resources = value["resources"] as unknown[];
  for (let i = 0; i < resources.length; i++) {
    const r = resources[i];
    if (!isObject(r)) return { at: `resources[${i}]`, message: "must be an object", received: r };
    for (const key of ["urn", "type", "name"] as const) {
      if (typeof r[key] !== "string") return { at: `resources[${i}].${key}`, message: "must be a string", received: r[key] };
    }
    if (typeof r["custom"] !== "boolean") return { at: `resources[${i}].custom`, message: "must be true or false", received: r["custom"] };
    if (!Array.isArray(r["dependencies"]) || !(r["dependencies"] as unknown[]).every((d) => typeof d === "string")) {
      return { at: `resources[${i}].dependencies`, message: "must be a list of URNs", received: r["dependencies"] };
    }
    if (!isObject(r["inputs"])) return { at: `resources[${i}].inputs`, message: "must be an object", received: r["inputs"] };
    if (r["options"] !== undefined && !isObject(r["options"])) return { at: `resources[${i}].options`, message: "must be an object", received: r["options"] };
  }
  return undefined;
}

function readPlan(file: string, cwd: string): Plan {
  const shown = display(path.resolve(cwd, file), cwd);
  const text = readInput(path.resolve(cwd, file), shown === "" ? '""' : shown, REWRITE, CLI);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Refused(CLI, [{ where: shown, message: `${jsonError(e as Error, text)}. ${REWRITE}` }]);
  }
  const problem = planShapeProblem(json);
  if (problem !== undefined) {
    throw new Refused(CLI, [
      { where: `${shown}: ${problem.at}`, message: `${problem.message}; this is not a plan. ${REWRITE}`, ...("received" in problem ? { received: problem.received } : {}) },
    ]);
  }
  return json as Plan;
}

function planDiff(argv: readonly string[], io: CliIO): number {
  const cwd = io.cwd ?? process.cwd();
  const { positionals } = parseFlags(CLI, argv, {}, { help: HELP, positionals: { min: 2, max: 2, what: "two plan files, base then head" } });
  const problems: Refused[] = [];
  const plans: Plan[] = [];
  for (const file of positionals) {
    try {
      plans.push(readPlan(file, cwd));
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      problems.push(e);
    }
  }
  if (problems.length > 0) throw new Refused(CLI, problems.flatMap((p) => p.problems));
  io.stdout(diffToMarkdown(diffPlans(plans[0]!, plans[1]!), plans[1]!));
  return 0;
}

/** The CLI as a function (issue #16). Exit 0: the diff on stdout; 2: bad arguments or files, one line each on stderr. */
export function main(argv: readonly string[], io: CliIO): Promise<number> {
  return runCli(CLI, io, () => planDiff(argv, io));
}

if (typeof module !== "undefined" && require.main === module) runAsScript(CLI, main);
