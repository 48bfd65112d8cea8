import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { parseStackConfig, parseStackOutputs } from "../config";
import { ConfigError, formatProblems, type Problem } from "../lib/problems";
import {
  applyPromotions,
  explainTargetProblem,
  PROMOTION_CONFIG_KEY,
  type PromotionChange,
  type PromotionSource,
  promotionChanges,
  promotionSource,
  selectPromotions,
  stackFileStyle,
  targetModeProblems,
} from "./lib/promote";
import { readStackConfig } from "./lib/stack-files";
import { PROJECT_ROOT } from "../lib/paths";

/**
 * npm run promote -- --from dev --to prod [--variants a,b] [--from-file outputs.json] [--stack-file file]
 *   [--from-stack-file file] [--dry-run]
 *
 * Reads the source stack's validatedImages (`pulumi stack output --json`, or a saved copy with --from-file), refuses
 * anything not validated, scanned and signed, anything outside the repositories the source's own stack file declares
 * (registry.*: host, account, region, prefix; the image's own repository), a GPU image without the pools it was
 * validated on, and any target not in promote mode (issue #12 point 5). Then writes the pinned digests into the
 * target stack file in place, keeping its comments and key order (issue #7). The change is reviewed and merged as a
 * pull request; prod's `pulumi up` copies the digests. Exit 0: written (or, with --dry-run, shown). Exit 2: bad flags
 * or any refusal, every problem at once on stderr, one line each, nothing on stdout, nothing written.
 */
const USAGE =
  "usage: npm run promote -- --from <stack> --to <stack> [--variants a,b] [--from-file outputs.json] [--stack-file Pulumi.<to>.yaml] [--from-stack-file Pulumi.<from>.yaml] [--dry-run]";
const root = PROJECT_ROOT;
const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Where main writes and what it runs in: the process's own streams in the CLI, buffers in tests. */
export interface PromoteIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Relative paths in flags resolve against it, and messages show paths relative to it. @default process.cwd() */
  cwd?: string;
  /** The environment `pulumi stack output` runs in (PATH finds the CLI). @default process.env */
  env?: NodeJS.ProcessEnv;
}

class Refused extends Error {}

// Outputs and argv are input from outside: a value with a newline or a terminal escape must not forge a line or
// reach the terminal raw. renderReceived already JSON-escapes C0 controls; paths and messages carry output keys too.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const escapeControls = (text: string) => text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** One line per problem, whatever the problem quotes. */
function formatRefusal(header: string, problems: readonly Problem[]): string {
  const escaped = problems.map((p) => ({
    path: escapeControls(p.path),
    message: escapeControls(p.message),
    ...(p.received !== undefined ? { received: escapeControls(p.received) } : {}),
  }));
  return formatProblems(header, escaped);
}

function refusal(problems: readonly Problem[]): Refused {
  return new Refused(formatRefusal("promote: refused, nothing written", problems));
}

interface Flags {
  from: string;
  to: string;
  variants?: string[];
  fromFile?: string;
  stackFile: string;
  fromStackFile: string;
  dryRun: boolean;
}

function readFlags(argv: readonly string[], cwd: string): Flags {
  let values: { from?: string; to?: string; variants?: string; "from-file"?: string; "stack-file"?: string; "from-stack-file"?: string; "dry-run"?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        from: { type: "string" },
        to: { type: "string" },
        variants: { type: "string" },
        "from-file": { type: "string" },
        "stack-file": { type: "string" },
        "from-stack-file": { type: "string" },
        "dry-run": { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    // node:util's own words, except for the common case of a mistyped flag (their text varies between Node versions).
    const err = e as NodeJS.ErrnoException;
    const option = /'(-[^' ]*)/.exec(err.message)?.[1] ?? "flags";
    const message = err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? "is not an option of promote; the usage line lists them." : `${err.message}.`;
    throw new Refused(`${formatRefusal("promote: bad flags, nothing written", [{ path: option, message }])}\n${USAGE}`);
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
  if (problems.length > 0) throw new Refused(`${formatRefusal("promote: bad flags, nothing written", problems)}\n${USAGE}`);
  const { from, to } = values as { from: string; to: string };
  const file = (flag: string | undefined, stack: string) => (flag !== undefined ? path.resolve(cwd, flag) : path.join(root, `Pulumi.${stack}.yaml`));
  return {
    from,
    to,
    ...(values.variants !== undefined ? { variants: values.variants.split(",").map((v) => v.trim()) } : {}),
    ...(values["from-file"] !== undefined ? { fromFile: path.resolve(cwd, values["from-file"]) } : {}),
    stackFile: file(values["stack-file"], to),
    fromStackFile: file(values["from-stack-file"], from),
    dryRun: values["dry-run"] ?? false,
  };
}

/** The source stack's outputs and a label for error paths, or why they cannot be read. */
function readOutputs(flags: Flags, cwd: string, env: NodeJS.ProcessEnv): { json: unknown; source: string } | { problems: Problem[] } {
  if (flags.fromFile !== undefined) {
    const source = display(flags.fromFile, cwd);
    let text: string;
    try {
      text = fs.readFileSync(flags.fromFile, "utf8");
    } catch (e) {
      return { problems: [{ path: "--from-file", message: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Pass the file \`pulumi stack output --json --stack ${flags.from}\` wrote.`, received: JSON.stringify(source) }] };
    }
    try {
      return { json: JSON.parse(text), source };
    } catch (e) {
      return { problems: [{ path: source, message: `is not JSON (${(e as Error).message}). Save it with \`pulumi stack output --json --stack ${flags.from} > file\`.` }] };
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
      cwd,
      env,
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; status?: number };
    if (err.code === "ENOENT") {
      return { problems: [{ path: "pulumi", message: "was not found on PATH: install the Pulumi CLI or pass --from-file with a saved `pulumi stack output --json`." }] };
    }
    const detail = (err.stderr ?? err.message).trim().split("\n").slice(-3).join(" ");
    return { problems: [{ path: source, message: `\`pulumi stack output --json --stack ${flags.from}\` failed (exit ${err.status ?? "?"}): ${detail} Log in and select the right organization, or pass --from-file.` }] };
  }
  try {
    return { json: JSON.parse(stdout), source };
  } catch (e) {
    return { problems: [{ path: source, message: `\`pulumi stack output --json\` printed something that is not JSON (${(e as Error).message}).` }] };
  }
}

/** A path for messages: relative to the working directory when inside it, else absolute. */
function display(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel === "" || rel.startsWith("..") || path.isAbsolute(rel) ? file : rel;
}

/** A stack file parsed by config/ as the program would parse it for `stack`; a ConfigError's problems otherwise. */
function parseStackFileConfig(file: string, stack: string): { cfg: ReturnType<typeof parseStackConfig> } | { problems: readonly Problem[] } {
  const { project, config, secretKeys } = readStackConfig(root, file);
  const ns = `${project}:`;
  const short = (k: string) => (k.startsWith(ns) ? k.slice(ns.length) : k);
  const values = Object.fromEntries(Object.entries(config).filter(([k]) => k.startsWith(ns)).map(([k, v]) => [short(k), v]));
  try {
    return { cfg: parseStackConfig({ project, stack, projectRoot: root, values, secretKeys: new Set(secretKeys.map(short)) }) };
  } catch (e) {
    if (!ConfigError.is(e)) throw e;
    return { problems: e.problems };
  }
}

/**
 * The source stack as its own file declares it. An invalid source configuration is refused whole: promote cannot
 * tell which repositories the source pushes to, and the source could not have deployed from it either.
 */
function readSource(flags: Flags, cwd: string): { source?: PromotionSource; problems: Problem[] } {
  const shown = display(flags.fromStackFile, cwd);
  if (!fs.existsSync(flags.fromStackFile)) {
    return {
      problems: [
        {
          path: shown,
          message: `does not exist. promote checks ${flags.from}'s outputs against ${flags.from}'s own stack file (registry, catalog, users, GPU pools): run it in the project root or pass --from-stack-file.`,
        },
      ],
    };
  }
  const parsed = parseStackFileConfig(flags.fromStackFile, flags.from);
  if ("problems" in parsed) {
    return {
      problems: parsed.problems.map((p) => ({
        ...p,
        path: `${shown}: ${p.path}`,
        message: `${p.message} (promote checks ${flags.from}'s outputs against this file: fix it, \`npm run plan -- --stack ${flags.from}\` shows the same.)`,
      })),
    };
  }
  return { source: promotionSource(parsed.cfg, shown), problems: [] };
}

/**
 * The new stack file must still be a valid configuration of this program, as far as the promotion goes: config/
 * checks that each promoted name is a catalog variant or a user image of the target stack. Problems elsewhere in the
 * file are not promote's to judge (and may be fixed in the same pull request); they are reported as a note.
 */
function checkConfig(file: string, stack: string): { refused: Problem[]; note?: string } {
  const parsed = parseStackFileConfig(file, stack);
  if (!("problems" in parsed)) return { refused: [] };
  const refused = parsed.problems.filter((p) => p.path.startsWith(PROMOTION_CONFIG_KEY));
  const others = parsed.problems.length - refused.length;
  return { refused, ...(others > 0 ? { note: `${others} problem(s) elsewhere in the stack configuration; run \`npm run plan -- --stack ${stack}\` to see them.` } : {}) };
}

function promote(flags: Flags, io: PromoteIO, cwd: string): void {
  const shownStackFile = display(flags.stackFile, cwd);
  // Every problem is collected before anything is decided, so one run reports all of them (GUIDE §3.6).
  const problems: Problem[] = [];
  let before: string | undefined;
  try {
    before = fs.readFileSync(flags.stackFile, "utf8");
  } catch {
    problems.push({ path: shownStackFile, message: `does not exist. Create the ${flags.to} stack first (\`pulumi stack init ${flags.to}\`) or pass --stack-file.` });
  }
  const modeProblems = before !== undefined ? targetModeProblems(before, flags.to, shownStackFile) : [];
  problems.push(...modeProblems);
  const { source, problems: sourceFileProblems } = readSource(flags, cwd);
  problems.push(...sourceFileProblems);
  const read = readOutputs(flags, cwd, io.env ?? process.env);
  if ("problems" in read) throw refusal([...problems, ...read.problems]);
  const outputs = parseStackOutputs(read.json, read.source, flags.from);
  const { promotions, problems: selected } = selectPromotions(outputs, flags.variants, source);
  problems.push(...selected);
  if (before === undefined || modeProblems.length > 0) throw refusal(problems);

  let after: string;
  let changes: PromotionChange[];
  let style: ReturnType<typeof stackFileStyle>;
  try {
    changes = promotionChanges(before, promotions);
    style = stackFileStyle(before);
    after = applyPromotions(before, promotions, flags.from);
  } catch (e) {
    throw refusal([...problems, { path: shownStackFile, message: (e as Error).message }]);
  }

  // Written beside the target and renamed over it only when everything passed: a refusal or a crash can never leave
  // a half-written or unchecked stack file.
  const tmp = path.join(path.dirname(flags.stackFile), `.${path.basename(flags.stackFile)}.promote-${process.pid}.tmp`);
  let note: string | undefined;
  try {
    fs.writeFileSync(tmp, after, { mode: fs.statSync(flags.stackFile).mode & 0o7777 });
    const checked = checkConfig(tmp, flags.to);
    problems.push(...checked.refused.map((p) => ({ ...explainTargetProblem(p, source, flags.to, shownStackFile), path: `${shownStackFile}: ${p.path}` })));
    if (problems.length > 0) throw refusal(problems);
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
  io.stdout(`${out.map(escapeControls).join("\n")}\n`);
}

/**
 * The CLI as a function (issue #16: tests call it in-process instead of spawning tsx). Returns the exit code: 0
 * written or shown, 2 refused (stderr only), 1 internal error.
 */
export function main(argv: readonly string[], io: PromoteIO): number {
  const cwd = io.cwd ?? process.cwd();
  try {
    promote(readFlags(argv, cwd), io, cwd);
    return 0;
  } catch (e) {
    if (e instanceof Refused) {
      io.stderr(`${e.message}\n`);
      return 2;
    }
    io.stderr(`promote: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

if (typeof module !== "undefined" && require.main === module) {
  process.exitCode = main(process.argv.slice(2), { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
}
