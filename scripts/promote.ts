import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { parseStackConfig, parseStackOutputs } from "../config";
import { ConfigError, formatProblems, type Problem } from "../lib/problems";
import {
  applyPromotions,
  PROMOTION_CONFIG_KEY,
  type PromotionChange,
  promotionChanges,
  selectPromotions,
  stackFileStyle,
} from "./lib/promote";
import { readStackConfig } from "./lib/stack-files";

/**
 * npm run promote -- --from dev --to prod [--variants a,b] [--from-file outputs.json] [--stack-file file] [--dry-run]
 *
 * Reads the source stack's validatedImages (`pulumi stack output --json`, or a saved copy with --from-file), refuses
 * anything not validated, scanned and signed, and writes the pinned digests into the target stack file in place,
 * keeping its comments and key order (issue #7). The change is then reviewed and merged as a pull request; prod's
 * `pulumi up` copies the digests. Exit 0: written (or, with --dry-run, shown). Exit 2: bad flags or any refusal,
 * every problem in one message on stderr, nothing written.
 */
const USAGE =
  "usage: npm run promote -- --from <stack> --to <stack> [--variants a,b] [--from-file outputs.json] [--stack-file Pulumi.<to>.yaml] [--dry-run]";
const root = path.resolve(__dirname, "..");
const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

class Refused extends Error {}

function refuse(problems: Problem[]): never {
  throw new Refused(formatProblems("promote: refused, nothing written", problems));
}

interface Flags {
  from: string;
  to: string;
  variants?: string[];
  fromFile?: string;
  stackFile: string;
  dryRun: boolean;
}

function readFlags(argv: string[]): Flags {
  let values: { from?: string; to?: string; variants?: string; "from-file"?: string; "stack-file"?: string; "dry-run"?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        from: { type: "string" },
        to: { type: "string" },
        variants: { type: "string" },
        "from-file": { type: "string" },
        "stack-file": { type: "string" },
        "dry-run": { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new Refused(`promote: ${(e as Error).message}\n${USAGE}`);
  }
  const problems: Problem[] = [];
  for (const key of ["from", "to"] as const) {
    const v = values[key];
    if (v === undefined) problems.push({ path: `--${key}`, message: `is required: the ${key === "from" ? "source" : "target"} stack name, e.g. --${key} ${key === "from" ? "dev" : "prod"}.` });
    else if (!STACK_NAME.test(v)) problems.push({ path: `--${key}`, message: "is not a stack name (letters, digits, '.', '_', '-').", received: JSON.stringify(v) });
  }
  if (values.from !== undefined && values.from === values.to) {
    problems.push({ path: "--to", message: "names the source stack. Promotion copies from one stack to another: --from dev --to prod.", received: JSON.stringify(values.to) });
  }
  if (values.variants !== undefined && values.variants.trim() === "") {
    problems.push({ path: "--variants", message: "is empty. List variant names separated by commas, or leave the flag out to promote every validated image." });
  }
  if (problems.length > 0) throw new Refused(`${formatProblems("promote: bad flags, nothing written", problems)}\n${USAGE}`);
  const to = values.to!;
  return {
    from: values.from!,
    to,
    ...(values.variants !== undefined ? { variants: values.variants.split(",").map((v) => v.trim()) } : {}),
    ...(values["from-file"] !== undefined ? { fromFile: path.resolve(values["from-file"]) } : {}),
    stackFile: values["stack-file"] !== undefined ? path.resolve(values["stack-file"]) : path.join(root, `Pulumi.${to}.yaml`),
    dryRun: values["dry-run"] ?? false,
  };
}

/** The source stack's outputs and a label for error paths. */
function readOutputs(flags: Flags): { json: unknown; source: string } {
  if (flags.fromFile !== undefined) {
    const source = display(flags.fromFile);
    let text: string;
    try {
      text = fs.readFileSync(flags.fromFile, "utf8");
    } catch (e) {
      refuse([{ path: "--from-file", message: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Pass the file \`pulumi stack output --json --stack ${flags.from}\` wrote.`, received: JSON.stringify(source) }]);
    }
    try {
      return { json: JSON.parse(text), source };
    } catch (e) {
      refuse([{ path: source, message: `is not JSON (${(e as Error).message}). Save it with \`pulumi stack output --json --stack ${flags.from} > file\`.` }]);
    }
  }
  const source = `stack "${flags.from}"`;
  let stdout: string;
  try {
    // Never --show-secrets: digests are not secrets, and nothing secret belongs in a pull request.
    stdout = execFileSync("pulumi", ["stack", "output", "--json", "--show-secrets=false", "--stack", flags.from], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; status?: number };
    if (err.code === "ENOENT") {
      refuse([{ path: "pulumi", message: "was not found on PATH: install the Pulumi CLI or pass --from-file with a saved `pulumi stack output --json`." }]);
    }
    const detail = (err.stderr ?? err.message).trim().split("\n").slice(-3).join(" ");
    refuse([{ path: source, message: `\`pulumi stack output --json --stack ${flags.from}\` failed (exit ${err.status ?? "?"}): ${detail} Log in and select the right organization, or pass --from-file.` }]);
  }
  try {
    return { json: JSON.parse(stdout), source };
  } catch (e) {
    refuse([{ path: source, message: `\`pulumi stack output --json\` printed something that is not JSON (${(e as Error).message}).` }]);
  }
}

/** A path for messages: relative to the working directory when inside it, else absolute. */
function display(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel === "" || rel.startsWith("..") || path.isAbsolute(rel) ? file : rel;
}

/**
 * The new stack file must still be a valid configuration of this program, as far as the promotion goes: config/
 * checks that each promoted name is a catalog variant or a user image of the target stack. Problems elsewhere in the
 * file are not promote's to judge (and may be fixed in the same pull request); they are reported as a note.
 */
function checkConfig(file: string, stack: string): { refused: Problem[]; note?: string } {
  const { project, config, secretKeys } = readStackConfig(root, file);
  const ns = `${project}:`;
  const short = (k: string) => (k.startsWith(ns) ? k.slice(ns.length) : k);
  const values = Object.fromEntries(Object.entries(config).filter(([k]) => k.startsWith(ns)).map(([k, v]) => [short(k), v]));
  try {
    parseStackConfig({ project, stack, projectRoot: root, values, secretKeys: new Set(secretKeys.map(short)) });
    return { refused: [] };
  } catch (e) {
    if (!ConfigError.is(e)) throw e;
    const refused = e.problems.filter((p) => p.path.startsWith(PROMOTION_CONFIG_KEY));
    const others = e.problems.length - refused.length;
    return { refused, ...(others > 0 ? { note: `${others} problem(s) elsewhere in the stack configuration; run \`npm run plan -- --stack ${stack}\` to see them.` } : {}) };
  }
}

function main(argv: string[]): void {
  const flags = readFlags(argv);
  const shownStackFile = display(flags.stackFile);
  let before: string;
  try {
    before = fs.readFileSync(flags.stackFile, "utf8");
  } catch {
    refuse([{ path: shownStackFile, message: `does not exist. Create the ${flags.to} stack first (\`pulumi stack init ${flags.to}\`) or pass --stack-file.` }]);
  }
  const { json, source } = readOutputs(flags);
  const outputs = parseStackOutputs(json, source, flags.from);
  const { promotions, problems } = selectPromotions(outputs, flags.variants);
  if (problems.length > 0) refuse(problems);

  let after: string;
  let changes: PromotionChange[];
  let style: ReturnType<typeof stackFileStyle>;
  try {
    changes = promotionChanges(before, promotions);
    style = stackFileStyle(before);
    after = applyPromotions(before, promotions, flags.from);
  } catch (e) {
    refuse([{ path: shownStackFile, message: (e as Error).message }]);
  }

  // Written beside the target and renamed over it only when everything passed: a refusal or a crash can never leave
  // a half-written or unchecked stack file.
  const tmp = path.join(path.dirname(flags.stackFile), `.${path.basename(flags.stackFile)}.promote-${process.pid}.tmp`);
  let note: string | undefined;
  try {
    fs.writeFileSync(tmp, after, { mode: fs.statSync(flags.stackFile).mode & 0o7777 });
    const checked = checkConfig(tmp, flags.to);
    if (checked.refused.length > 0) refuse(checked.refused.map((p) => ({ ...p, path: `${shownStackFile}: ${p.path}` })));
    note = checked.note;
    if (!flags.dryRun && after !== before) fs.renameSync(tmp, flags.stackFile);
  } finally {
    fs.rmSync(tmp, { force: true });
  }

  const lines = changes.map((c) =>
    c.from === undefined ? `  ${c.variant}: (new) → ${c.to}` : c.from === c.to ? `  ${c.variant}: ${c.to} (unchanged)` : `  ${c.variant}: ${c.from} → ${c.to}`,
  );
  const verb = flags.dryRun ? "would promote" : "promoted";
  const out: string[] = [`promote: ${verb} ${changes.length} image(s) from ${flags.from} into ${shownStackFile}:`, ...lines];
  if (!style.exact) {
    out.push(
      `note: the YAML writer re-formats ${style.changedLines} line(s) of ${shownStackFile} outside the promotion (comment ` +
        "spacing, quoting or blank lines); review them in the diff.",
    );
  }
  if (note !== undefined) out.push(`note: ${note}`);
  if (after === before) out.push("promote: the stack file already holds these digests; nothing to write.");
  else if (flags.dryRun) out.push("promote: --dry-run, nothing written.");
  else out.push(`promote: next, open a pull request with ${shownStackFile}; after review and merge, \`pulumi up --stack ${flags.to}\` copies these digests.`);
  process.stdout.write(`${out.join("\n")}\n`);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  if (e instanceof Refused) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`promote: internal error: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
}
