import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { planToJson, planToMarkdown, planToMermaid } from "./lib/plan-format";
import { runPlan } from "./lib/plan-runtime";
import { ConfigError } from "../lib/problems";
import { readStackConfig } from "./lib/stack-files";

/**
 * npm run plan -- --stack <name> [--config <file>] [--format json|markdown|mermaid] [--out <file>]
 * Runs index.ts under Pulumi's mock runtime. Exit 0: plan written. Exit 2: bad flags or invalid configuration
 * (every problem on stderr, nothing on stdout).
 */
const USAGE = "usage: npm run plan -- --stack <name> [--config <file>] [--format json|markdown|mermaid] [--out <file>]";
const FORMATS = ["json", "markdown", "mermaid"] as const;
const root = path.resolve(__dirname, "..");

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { stack?: string; config?: string; format?: string; out?: string };
  try {
    ({ values } = parseArgs({
      options: { stack: { type: "string" }, config: { type: "string" }, format: { type: "string" }, out: { type: "string" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail(`plan: ${(e as Error).message}\n${USAGE}`);
  }
  if (!values.stack) fail(`plan: --stack is required (local, dev or prod).\n${USAGE}`);
  const format = values.format ?? "json";
  if (!(FORMATS as readonly string[]).includes(format)) fail(`plan: --format got "${format}"; use one of ${FORMATS.join(", ")}.\n${USAGE}`);
  const stackFile = values.config ? path.resolve(values.config) : path.join(root, `Pulumi.${values.stack}.yaml`);
  try {
    const { project, config, secretKeys } = readStackConfig(root, stackFile);
    const program = require(path.join(root, "index.ts")) as () => unknown;
    const plan = await runPlan({ project, stack: values.stack, config, secretKeys, program });
    const text = format === "json" ? planToJson(plan) : format === "markdown" ? planToMarkdown(plan) : planToMermaid(plan);
    if (values.out) fs.writeFileSync(values.out, text);
    else process.stdout.write(text);
  } catch (e) {
    if (ConfigError.is(e)) fail(e.message);
    throw e;
  }
}

// A failure inside an Output (a bug, not user input) surfaces as an unhandled rejection: one line, not a dump.
process.on("unhandledRejection", (e: unknown) => {
  process.stderr.write(`plan: internal error: ${(e as Error).message ?? String(e)}\n`);
  process.exit(1);
});

main().catch((e: unknown) => {
  process.stderr.write(`plan: internal error: ${(e as Error).message ?? String(e)}\n`);
  process.exit(1);
});
