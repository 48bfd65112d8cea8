import * as fs from "node:fs";
import { diffPlans, diffToMarkdown } from "./lib/plan-format";
import type { Plan } from "./lib/plan-runtime";

/** npm run plan:diff -- <base.json> <head.json>: markdown for a pull-request comment on stdout. */
const USAGE = "usage: npm run plan:diff -- <base.json> <head.json>";

function read(file: string): Plan {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    process.stderr.write(`plan:diff: cannot read ${file}.\n${USAGE}\n`);
    process.exit(2);
  }
  try {
    const plan = JSON.parse(text) as Plan;
    if (!Array.isArray(plan.resources)) throw new Error("no resources array");
    return plan;
  } catch (e) {
    process.stderr.write(`plan:diff: ${file} is not a plan written by \`npm run plan -- --format json\` (${(e as Error).message}).\n`);
    process.exit(2);
  }
}

const args = process.argv.slice(2);
if (args.length !== 2) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const base = read(args[0]!);
const head = read(args[1]!);
process.stdout.write(diffToMarkdown(diffPlans(base, head), head));
