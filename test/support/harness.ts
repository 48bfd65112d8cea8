import * as path from "node:path";
import { stringify } from "yaml";
import * as fs from "node:fs";
import * as os from "node:os";
import type { Plan, PlannedResource } from "../../scripts/lib/plan-runtime";
import { runPlan } from "../../scripts/lib/plan-runtime";
import { readStackConfig } from "../../scripts/lib/stack-files";
import { PROJECT_ROOT } from "../../lib/paths";

/** The project root: tests run the real index.ts against real stack files or fixtures. */
export const ROOT = PROJECT_ROOT;

// index.ts exports the program as a function, so one import serves every run (no module-cache resets).
let programPromise: Promise<() => unknown> | undefined;
export function loadProgram(): Promise<() => unknown> {
  programPromise ??= import(path.join(ROOT, "index.ts")).then((mod: { default?: () => unknown }) => (mod.default ?? mod) as () => unknown);
  return programPromise;
}

/** Plans a stack from a stack file (absolute, or relative to the project root). */
export async function planStackFile(stack: string, stackFile: string): Promise<Plan> {
  const { project, config, secretKeys } = readStackConfig(ROOT, path.resolve(ROOT, stackFile));
  return runPlan({ project, stack, config, secretKeys, program: await loadProgram() });
}

/**
 * Plans of stack files shared by the tests of one file (issue #16: a dev plan takes about a second, and most tests only
 * read it). Call it once at the top of a test file; each (stack, stack file) is planned at most once, on first use.
 * The plan is deeply frozen, so a test that changed it would throw instead of handing its change to the next test.
 * Tests about planning itself (determinism, what a change re-plans) keep planning afresh with planStackFile.
 */
export function sharedPlans(): (stack: string, stackFile: string) => Promise<Plan> {
  const plans = new Map<string, Promise<Plan>>();
  return (stack, stackFile) => {
    const key = `${stack}\0${path.resolve(ROOT, stackFile)}`;
    let plan = plans.get(key);
    if (plan === undefined) {
      plan = planStackFile(stack, stackFile).then(deepFreeze);
      plans.set(key, plan);
    }
    return plan;
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Plans a stack from a config object written as a stack file would hold it (keys with or without namespace). */
export async function planConfig(stack: string, config: Record<string, unknown>): Promise<Plan> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-plan-"));
  const file = path.join(dir, `Pulumi.${stack}.yaml`);
  const namespaced = Object.fromEntries(Object.entries(config).map(([k, v]) => [k.includes(":") ? k : `workbench-images:${k}`, v]));
  fs.writeFileSync(file, stringify({ config: namespaced }));
  try {
    return await planStackFile(stack, file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function byType(plan: Plan, type: string): PlannedResource[] {
  return plan.resources.filter((r) => r.type === type);
}

export function byName(plan: Plan, name: string): PlannedResource {
  const found = plan.resources.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}`);
  return found[0]!;
}

/** Every URN a resource depends on, transitively (through explicit and implicit dependencies and parents' deps). */
export function transitiveDependencies(plan: Plan, urn: string): Set<string> {
  const by = new Map(plan.resources.map((r) => [r.urn, r]));
  const seen = new Set<string>();
  const stack = [urn];
  while (stack.length > 0) {
    const r = by.get(stack.pop()!);
    if (!r) continue;
    for (const d of r.dependencies) {
      if (!seen.has(d)) {
        seen.add(d);
        stack.push(d);
        // Depending on a component means depending on everything inside it.
        for (const child of plan.resources.filter((x) => x.parent === d)) {
          if (!seen.has(child.urn)) {
            seen.add(child.urn);
            stack.push(child.urn);
          }
        }
      }
    }
  }
  return seen;
}

/** The mini fixture's stack config: two variants, one GPU pool, one user (test/fixtures/mini). */
export const MINI_STACK = "test/fixtures/mini/Pulumi.test.yaml";
