/**
 * The README's promise, "Invalid configuration exits 2 with every problem on stderr and nothing on stdout", as a
 * property over generated bad inputs (issue #13), not only case by case. Each input is the mini fixture stack
 * (test/fixtures/mini/Pulumi.test.yaml) mutated at a random key path: a value of the wrong type, an out-of-range
 * number, a string with control characters, a key removed, or an unknown key (its name with control characters too).
 *
 * - parseStackConfig (config/load.ts) either accepts the input or throws one ConfigError whose every line after the
 *   header is `  - <key path>: <message>`: no other exception, no stack trace, no raw control character.
 * - The plan CLI (scripts/plan.ts main, in-process) answers each rejected input with exit 2, nothing on stdout, and the
 *   same one-line-per-problem form on stderr.
 * fast-check's seed is printed on failure; `fc.assert(..., { seed, path })` replays a counterexample.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterAll, describe, it } from "vitest";
import { parse, stringify } from "yaml";
import { parseStackConfig } from "../../config";
import { ConfigError } from "../../lib/problems";
import { main as plan } from "../../scripts/plan";
import { loadProgram, MINI_STACK, ROOT } from "../support/harness";

const NS = "workbench-images:";
const BASE: Record<string, unknown> = Object.fromEntries(
  Object.entries((parse(fs.readFileSync(path.join(ROOT, MINI_STACK), "utf8")) as { config: Record<string, unknown> }).config).map(([k, v]) => [
    k.slice(NS.length),
    v,
  ]),
);

type Key = string | number;
/** Every key path in the fixture, containers and leaves alike: where a mutation may land. */
function paths(value: unknown, prefix: Key[] = []): Key[][] {
  const out: Key[][] = prefix.length > 0 ? [prefix] : [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}
const PATHS = paths(BASE);
/** Containers (the root included) where an unknown key can be added. */
const OBJECT_PATHS: Key[][] = [[], ...PATHS.filter((p) => {
  const v = p.reduce<unknown>((node, k) => (node as Record<Key, unknown>)[k], BASE);
  return v !== null && typeof v === "object" && !Array.isArray(v);
})];

// Control characters a terminal acts on or a line reader splits at, among ordinary ones.
const CONTROL_CHARS = ["\u0000", "\u0007", "\t", "\n", "\r", "\u001b", "\u001b[2J", "\u007f", "\u0085", "\u009b", "\u2028"];
const nasty = fc
  .array(fc.oneof(fc.constantFrom(...CONTROL_CHARS), fc.constantFrom("a", "Z", "0", "-", ".", "/", ":", " ", "é", "{", "[")), { minLength: 1, maxLength: 12 })
  .map((parts) => parts.join(""));
const badValue = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, 1e21, -2147483649, 4294967296, "", [], {}, [[]], { "": 1 }),
  fc.integer(),
  nasty,
  fc.array(nasty, { maxLength: 3 }),
  fc.dictionary(nasty, fc.oneof(nasty, fc.integer()), { maxKeys: 2 }),
);

type Mutation = { kind: "set"; at: Key[]; value: unknown } | { kind: "delete"; at: Key[] } | { kind: "add"; at: Key[]; key: string; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("set" as const), at: fc.constantFrom(...PATHS), value: badValue }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), at: fc.constantFrom(...PATHS) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("add" as const), at: fc.constantFrom(...OBJECT_PATHS), key: nasty, value: badValue }) },
);

function mutate(base: Record<string, unknown>, mutations: Mutation[]): Record<string, unknown> {
  const config = structuredClone(base);
  for (const m of mutations) {
    const at = m.at;
    const parentPath = m.kind === "add" ? at : at.slice(0, -1);
    const parent = parentPath.reduce<unknown>((node, k) => (node !== null && typeof node === "object" ? (node as Record<Key, unknown>)[k] : undefined), config);
    if (parent === null || typeof parent !== "object") continue; // an earlier mutation replaced it
    const container = parent as Record<Key, unknown>;
    if (m.kind === "add") container[m.key] = m.value;
    else if (m.kind === "delete") {
      if (Array.isArray(container)) container.splice(at[at.length - 1] as number, 1);
      else delete container[at[at.length - 1]!];
    } else container[at[at.length - 1]!] = m.value;
  }
  return config;
}

/** Config values as Pulumi hands them to the program (scripts/lib/stack-files.ts): strings, structured ones as JSON. */
const asValues = (config: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));

const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/;
/** Why a refusal's text breaks the promised form, or undefined when it keeps it. */
function formProblem(text: string, problems: number): string | undefined {
  if (RAW_CONTROL.test(text)) return `raw control character ${JSON.stringify(RAW_CONTROL.exec(text)![0])}`;
  if (/\n\s+at \S/.test(text)) return "a stack trace";
  const lines = text.replace(/\n$/, "").split("\n");
  if (!/^Invalid configuration for stack "dev" \(\d+ problems?\):$/.test(lines[0]!)) return `header ${JSON.stringify(lines[0])}`;
  if (lines.length !== problems + 1) return `${lines.length - 1} lines for ${problems} problems (a line was forged or split)`;
  const bad = lines.slice(1).find((l) => !/^ {2}- \S[^\n]*?: \S/.test(l));
  return bad === undefined ? undefined : `line ${JSON.stringify(bad)}`;
}

type Outcome = { ok: true } | { ok: false; error: unknown };
function parseOutcome(config: Record<string, unknown>): Outcome {
  try {
    parseStackConfig({ project: "workbench-images", stack: "dev", projectRoot: ROOT, values: asValues(config), secretKeys: new Set() });
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

/** The property on parseStackConfig alone; returns a description of the failure or undefined. */
function violation(outcome: Outcome): string | undefined {
  if (outcome.ok) return undefined;
  const e = outcome.error;
  if (!ConfigError.is(e)) return `threw ${e instanceof Error ? `${e.name}: ${e.message.split("\n")[0]}` : String(e)} instead of a ConfigError`;
  return formProblem(e.message, e.problems.length);
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe("bad stack configuration, generated (issue #13)", () => {
  it("parseStackConfig accepts it or throws one ConfigError, one well-formed line per problem, nothing raw", () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const why = violation(parseOutcome(mutate(BASE, mutations)));
        if (why !== undefined) throw new Error(`${why}\nmutations: ${JSON.stringify(mutations)}`);
      }),
      { numRuns: 150 },
    );
  });

  it("the plan CLI exits 2 on each rejected one, every problem on stderr in that form, nothing on stdout", async () => {
    const program = await loadProgram();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-property-"));
    dirs.push(dir);
    const file = path.join(dir, "Pulumi.dev.yaml");
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const config = mutate(BASE, mutations);
        const outcome = parseOutcome(config);
        fc.pre(!outcome.ok && ConfigError.is(outcome.error)); // accepted inputs plan for seconds; they are not bad input
        fs.writeFileSync(file, stringify({ config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`${NS}${k}`, v])) }));
        let stdout = "";
        let stderr = "";
        const code = await plan(["--stack", "dev", "--config", file], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), program });
        const expected = (outcome as { error: ConfigError }).error.problems.length;
        const why = code !== 2 ? `exit ${code}: ${stderr.split("\n")[0]}` : stdout !== "" ? "stdout not empty" : formProblem(stderr, expected);
        if (why !== undefined) throw new Error(`${why}\nmutations: ${JSON.stringify(mutations)}`);
      }),
      { numRuns: 25 },
    );
  });
});
