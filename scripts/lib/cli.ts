import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { didYouMean, renderReceived } from "../../lib/problems";

/**
 * What every CLI in scripts/ shares (issue #13): flags and files are checked before any work, and each problem is one
 * line `<cli>: <flag or file>: <what is wrong and the fix> (got <value>)` on stderr, exit 2, nothing on stdout, never
 * a stack trace. Each CLI exports `main(argv, io)` returning its exit code, so tests run it in-process (issue #16).
 */

/** Where a CLI writes and what it runs in: the process's own streams in the CLI, buffers in tests. */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Relative paths in flags resolve against it, and messages show paths relative to it. @default process.cwd() */
  cwd?: string;
}

// argv and files are input from outside: a newline or a terminal escape must not forge a line or reach the terminal
// raw. C0 and C1 controls, DEL and the Unicode line separators are written as \uXXXX.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
export const escapeControls = (text: string): string =>
  text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** A value for a message: JSON, shortened, control characters escaped (lib/problems renderReceived). */
export const shown = (value: unknown): string => escapeControls(renderReceived(value));

/** One problem with the command line or a file the command line names. */
export interface CliProblem {
  /** The flag (`--out`) or file (`plan.json`) the problem is about. */
  where: string;
  /** What is wrong and how to fix it. */
  message: string;
  /** The value received, raw (rendered by `shown`). */
  received?: unknown;
}

/** Thrown by a CLI's steps: `main` prints its lines and returns 2. */
export class Refused extends Error {
  readonly problems: readonly CliProblem[];
  constructor(
    readonly cli: string,
    problems: readonly CliProblem[],
  ) {
    super(problems.map((p) => problemLine(cli, p)).join("\n"));
    this.name = "Refused";
    this.problems = problems;
  }
}

export function problemLine(cli: string, p: CliProblem): string {
  return `${cli}: ${escapeControls(p.where)}: ${escapeControls(p.message)}${p.received !== undefined ? ` (got ${shown(p.received)})` : ""}`;
}

/** An internal error: one line, no stack (a stack trace is for our bugs, and goes nowhere a user must read it). */
export function internalLine(cli: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return `${cli}: internal error: ${escapeControls(message.split("\n")[0] ?? "")}. Report it with the command line you ran.`;
}

/**
 * Runs a CLI body: its exit code, a Refused as its lines with 2, anything else as one internal-error line with 1.
 */
export async function runCli(cli: string, io: CliIO, body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof Refused) {
      io.stderr(`${e.message}\n`);
      return 2;
    }
    io.stderr(`${internalLine(cli, e)}\n`);
    return 1;
  }
}

export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
  /** For a string flag: the only values accepted. */
  choices?: readonly string[];
}

export interface ParsedFlags {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * node:util parseArgs in its tokens mode, checked here rather than by parseArgs' strict mode: its messages vary between
 * Node versions, name no fix, and a flag given twice silently keeps the last value (`--stack dev --stack prod`). Every
 * problem is collected: unknown flags, missing values (including a value that is the next flag), a value given to a
 * boolean, a flag given twice, a value outside `choices`, and positionals beyond `positionals.max`.
 */
export function parseFlags(
  cli: string,
  argv: readonly string[],
  specs: Record<string, FlagSpec>,
  options: { positionals?: { min: number; max: number; what: string }; help: string },
): ParsedFlags {
  const { problems, ...parsed } = checkFlags(cli, argv, specs, options);
  if (problems.length > 0) throw new Refused(cli, problems);
  return parsed;
}

/** parseFlags without the throw: the flags that are good, and a problem for each one that is not. */
export function checkFlags(
  cli: string,
  argv: readonly string[],
  specs: Record<string, FlagSpec>,
  options: { positionals?: { min: number; max: number; what: string }; help: string },
): ParsedFlags & { problems: CliProblem[] } {
  const parseOptions: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) parseOptions[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) };
  // A string flag followed by another flag (`--stack --format json`): parseArgs takes the next flag as the value. The
  // flag is rewritten as `--stack=` (no value, reported below) and the rest parsed again, so `--format json` counts.
  let args = [...argv];
  let tokens = parseArgs({ args, options: parseOptions, strict: false, allowPositionals: true, tokens: true }).tokens;
  for (;;) {
    const swallowed = tokens.find(
      (t) => t.kind === "option" && specs[t.name]?.type === "string" && t.rawName.startsWith("--") && !t.inlineValue && t.value !== undefined && t.value.startsWith("-") && t.value !== "-",
    );
    if (swallowed === undefined || swallowed.kind !== "option") break;
    args = [...args.slice(0, swallowed.index), `${swallowed.rawName}=`, ...args.slice(swallowed.index + 1)];
    tokens = parseArgs({ args, options: parseOptions, strict: false, allowPositionals: true, tokens: true }).tokens;
  }
  const problems: CliProblem[] = [];
  const values: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  const seen = new Set<string>();
  const names = Object.keys(specs).map((n) => `--${n}`);
  let unknownAt = -2;
  for (const t of tokens) {
    if (t.kind === "option-terminator") continue;
    if (t.kind === "positional") {
      // The value of an unknown flag (`--stak dev`) is part of that one mistake, for a CLI that takes no arguments.
      if (t.index === unknownAt + 1 && (options.positionals?.max ?? 0) === 0) continue;
      positionals.push(t.value);
      continue;
    }
    const spec = specs[t.name];
    const isShort = !t.rawName.startsWith("--");
    if (spec === undefined || (isShort && spec.short === undefined)) {
      if (!t.inlineValue) unknownAt = t.index;
      const hint = didYouMean(t.rawName.replace(/=.*$/, ""), names);
      problems.push({ where: t.rawName, message: `is not an option of ${cli}.${hint} ${names.length === 0 ? `${cli} takes no options. ` : ""}${options.help}` });
      continue;
    }
    const flag = `--${t.name}`;
    if (seen.has(t.name)) {
      problems.push({ where: flag, message: "is given twice. Give it once.", ...(t.value !== undefined ? { received: t.value } : {}) });
      continue;
    }
    seen.add(t.name);
    if (spec.type === "boolean") {
      if (t.inlineValue) problems.push({ where: flag, message: `takes no value: write ${flag} alone.`, received: t.value });
      else values[t.name] = true;
      continue;
    }
    if (t.value === undefined || t.value === "") {
      const hint = spec.choices ? `one of ${spec.choices.join(", ")}` : "a value";
      problems.push({ where: flag, message: `needs ${hint} after it. Write ${flag} <value> (or ${flag}=<value> for a value starting with "-"). ${options.help}` });
      continue;
    }
    if (spec.choices && !spec.choices.includes(t.value)) {
      problems.push({ where: flag, message: `must be one of ${spec.choices.join(", ")}.${didYouMean(t.value, spec.choices)}`, received: t.value });
      continue;
    }
    values[t.name] = t.value;
  }
  const pos = options.positionals ?? { min: 0, max: 0, what: "" };
  if (positionals.length > pos.max) {
    for (const extra of positionals.slice(pos.max)) {
      problems.push({
        where: extra === "" ? '""' : extra,
        message: pos.max === 0 ? `is not an argument ${cli} takes. ${options.help}` : `is one argument too many: ${cli} takes ${pos.what}. ${options.help}`,
      });
    }
  } else if (positionals.length < pos.min) {
    problems.push({ where: "arguments", message: `needs ${pos.what}; got ${positionals.length}. ${options.help}` });
  }
  return { values, positionals, problems };
}

/** A path for messages: relative to the working directory when inside it, else absolute. */
export function display(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel === "" || rel.startsWith("..") || path.isAbsolute(rel) ? file : rel;
}

/**
 * Why a file the command line names cannot be read as input, or undefined when it can: missing, not a regular file (a
 * directory, a FIFO that would block, a device), unreadable, or larger than `maxBytes`.
 */
export function unreadable(file: string, maxBytes = 256 * 1024 * 1024): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "does not exist";
    if (code === "ENOTDIR") return "does not exist (a part of its path is a file, not a directory)";
    return `cannot be read (${code ?? (e as Error).message})`;
  }
  if (st.isDirectory()) return "is a directory, not a file";
  if (!st.isFile()) return "is not a regular file";
  if (st.size > maxBytes) return `is ${st.size} bytes, more than the ${maxBytes} this reads`;
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    return `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  return undefined;
}

/** Reads a file checked with `unreadable`; a failure between the check and the read becomes the same kind of problem. */
export function readInput(file: string, where: string, fix: string, cli: string): string {
  const why = unreadable(file);
  if (why !== undefined) throw new Refused(cli, [{ where, message: `${why}. ${fix}` }]);
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Refused(cli, [{ where, message: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). ${fix}` }]);
  }
}

/**
 * Why `file` cannot be written as an output, or undefined: an empty name, a directory, something that is not a regular
 * file, a file in a missing directory, or a place this user may not write. Checked before any work, so a long run is
 * never thrown away at the end.
 */
export function unwritable(file: string): string | undefined {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") return "is inside a path whose parent is a file, not a directory";
    if (code !== "ENOENT") return `cannot be checked (${code ?? (e as Error).message})`;
  }
  if (st !== undefined) {
    if (st.isDirectory()) return "is a directory";
    if (!st.isFile()) return "is not a regular file";
    try {
      fs.accessSync(file, fs.constants.W_OK);
    } catch {
      return "is a file this user may not write";
    }
    return undefined;
  }
  const dir = path.dirname(file);
  let dst: fs.Stats;
  try {
    dst = fs.statSync(dir);
  } catch {
    return `is in a directory that does not exist (${dir})`;
  }
  if (!dst.isDirectory()) return `is in ${dir}, which is not a directory`;
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    return `is in ${dir}, which this user may not write`;
  }
  return undefined;
}

/** Pulumi's rule for a stack name (letters, digits, '-', '_', '.'), starting with a letter or digit: never a path. */
export const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** The process's own stdout and stderr as a CliIO. */
export const PROCESS_IO: CliIO = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

/**
 * Runs a CLI's `main` as the process: its exit code becomes the process's; anything it throws is one line
 * (internalLine) and exit 1, never a stack trace.
 */
export function runAsScript(cli: string, main: (argv: readonly string[], io: CliIO) => Promise<number>): void {
  main(process.argv.slice(2), PROCESS_IO).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${internalLine(cli, e)}\n`);
      process.exitCode = 1;
    },
  );
}
