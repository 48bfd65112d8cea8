import * as path from "node:path";
import { runPlan } from "./plan-runtime";
import { readStackConfig } from "./stack-files";

/**
 * The promotion tests' source outputs, generated (issue #10): what `pulumi stack output --json` prints for the mini
 * dev stack (test/fixtures/mini/Pulumi.test.yaml), taken from its offline plan, so the file `npm run promote` is
 * tested on is exactly what the program exports and cannot drift from it. `npm run fixtures` rewrites it; a test
 * fails when the committed file differs from a fresh generation.
 */
export const PROMOTION_SOURCE_STACK = "test/fixtures/mini/Pulumi.test.yaml";
export const PROMOTION_FIXTURE = "test/fixtures/promotion/dev-plan-outputs.json";

/** The fixture's text. `program` is index.ts's function (the CLI requires it; tests pass the one they imported). */
export async function promotionFixtureText(root: string, program: () => unknown): Promise<string> {
  const { project, config, secretKeys } = readStackConfig(root, path.join(root, PROMOTION_SOURCE_STACK));
  const plan = await runPlan({ project, stack: "dev", config, secretKeys, program });
  return `${JSON.stringify(plan.outputs, null, 2)}\n`;
}
