import * as pulumi from "@pulumi/pulumi";
import { closest, distance } from "fastest-levenshtein";
import type { z } from "zod";

/**
 * One thing wrong with the user's input. Every problem names where it is (`path`), what was received and how to
 * fix it (inside `message`), so a user can act on it without reading our code (GUIDE §3.6).
 */
export interface Problem {
  /** Where: `workbench-images:registry.kind`, `images/catalog.yaml: variants[3].name (line 41)`. */
  path: string;
  /** What is wrong and how to fix it, as one or two sentences. */
  message: string;
  /** The value received, already rendered (never a secret's value). */
  received?: string;
}

/** Prefix of an unrecognized-keys message that carries one sentence per key as a JSON array (see perKeyMessages). */
export const PER_KEY_MARKER = "\u0000per-key:";

/** The per-key sentences of an unrecognized-keys issue written by strictObject, or undefined for any other message. */
export function perKeyMessages(message: string): string[] | undefined {
  if (!message.startsWith(PER_KEY_MARKER)) return undefined;
  try {
    const parsed: unknown = JSON.parse(message.slice(PER_KEY_MARKER.length));
    return Array.isArray(parsed) ? parsed.map(String) : undefined;
  } catch {
    return undefined;
  }
}

/** Paths whose values are secrets: problems there never echo the value. */
export type SecretPathTest = (path: readonly PropertyKey[]) => boolean;

const MAX_RECEIVED = 80;

/**
 * Control characters (C0, DEL, C1) and line/paragraph separators as `\uXXXX`: a key or value from a stack file
 * reaches the terminal and PR comments, where a raw escape sequence or newline could rewrite what the reader sees.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Renders a received value for an error line: JSON, shortened, never multi-line. */
export function renderReceived(value: unknown): string {
  if (value === undefined) return "nothing";
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_RECEIVED ? `${text.slice(0, MAX_RECEIVED - 1)}…` : text;
}

/** The known word a typo most likely meant: within edit distance 3 and half its own length, else undefined. */
export function nearest(word: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const best = closest(word, [...known]);
  const d = distance(word.toLowerCase(), best.toLowerCase());
  return d <= Math.min(3, Math.max(1, Math.floor(best.length / 2))) ? best : undefined;
}

/** ` Did you mean "x"?` for a near miss, else "". */
export function didYouMean(word: string, known: readonly string[]): string {
  const best = nearest(word, known);
  return best !== undefined ? ` Did you mean "${best}"?` : "";
}

/** Formats a path the way users write it in `pulumi config set --path`: a.b[0].c */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    // A key that is not a plain word (a label key with '/' or '.', a space) is written ["…"], as --path reads it.
    else if (out !== "" && !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(part))) out += `[${JSON.stringify(String(part))}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** The value at `path` inside `root`, or undefined. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const part of path) node = node !== null && typeof node === "object" ? (node as Record<PropertyKey, unknown>)[part] : undefined;
  return node;
}

function describeExpected(expected: string): string {
  switch (expected) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "int":
      return "a whole number";
    case "boolean":
      return "true or false";
    case "object":
      return "a mapping (key: value)";
    case "array":
      return "a list";
    case "record":
      return "a mapping (key: value)";
    default:
      return expected;
  }
}

/**
 * Turns zod issues into problems. `prefix` is prepended to every path (e.g. `workbench-images:`), `locate` may add a
 * source position, and values under secret paths are never shown.
 */
export function zodProblems(
  error: z.ZodError,
  prefix: string,
  options: { isSecret?: SecretPathTest; locate?: (path: readonly PropertyKey[]) => string } = {},
): Problem[] {
  const problems: Problem[] = [];
  for (const issue of error.issues) {
    const path = issue.path;
    const where = (p: readonly PropertyKey[]) => `${prefix}${formatPath(p)}${options.locate?.(p) ?? ""}`;
    const secret = options.isSecret?.(path) ?? false;
    const received = (v: unknown) => (secret ? "[secret]" : renderReceived(v));
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case "unrecognized_keys": {
        // The object-level error callback (strictObject below) already wrote one sentence per key with its
        // "did you mean"; split them so each unknown key is its own line at its own path.
        const perKey = perKeyMessages(issue.message) ?? [];
        issue.keys.forEach((key, i) => {
          const value = (input as Record<string, unknown> | undefined)?.[key];
          problems.push({
            path: where([...path, key]),
            message: `${perKey[i] ?? `unknown key "${key}".`} Remove it or correct the spelling.`,
            received: received(value),
          });
        });
        break;
      }
      case "invalid_type": {
        const expected = describeExpected(issue.expected);
        if (input === undefined) {
          problems.push({ path: where(path), message: `is required but missing: set it to ${expected}.` });
        } else {
          // A schema's own message for a wrong type: a whole sentence ("must be …") replaces the generic one, a fix
          // ("Write it as …") follows it.
          const custom = issue.message.startsWith("Invalid input") ? undefined : issue.message;
          const quoted = typeof input === "string" && (issue.expected === "number" || issue.expected === "int" || issue.expected === "boolean");
          const generic = `must be ${expected}.${quoted ? " Write it without quotes." : ""}`;
          problems.push({
            path: where(path),
            message: custom === undefined ? generic : custom.startsWith("must ") ? custom : `${generic} ${custom}`,
            received: received(input),
          });
        }
        break;
      }
      case "invalid_value": {
        const options_ = issue.values.map((v) => JSON.stringify(v));
        const hint =
          typeof input === "string" ? didYouMean(input, issue.values.filter((v): v is string => typeof v === "string")) : "";
        problems.push({
          path: where(path),
          message: `must be one of ${options_.join(", ")}.${hint}`,
          received: received(input),
        });
        break;
      }
      case "invalid_union": {
        // Discriminated unions report a bad discriminator at the discriminator's path with the whole object as
        // input: show the discriminator's own value.
        const last = path[path.length - 1];
        const value =
          typeof last === "string" && input !== null && typeof input === "object" && last in (input as object)
            ? (input as Record<string, unknown>)[last]
            : input;
        problems.push({ path: where(path), message: issue.message, received: received(value) });
        break;
      }
      case "invalid_key": {
        // A record key that fails its schema (a label key): the key's own issues, at the key's path.
        const key = (issue as { key?: unknown; path: PropertyKey[] }).path;
        const inner = (issue as { issues?: Array<{ message: string }> }).issues ?? [];
        const keyPath = [...key];
        problems.push({
          path: where(keyPath),
          message: inner.map((i) => i.message).join(" ") || issue.message,
          received: received(keyPath[keyPath.length - 1]),
        });
        break;
      }
      case "too_big":
      case "too_small": {
        const bound = (issue as { maximum?: unknown; minimum?: unknown }).maximum ?? (issue as { minimum?: unknown }).minimum;
        const inclusive = (issue as { inclusive?: boolean }).inclusive !== false;
        const origin = (issue as { origin?: string }).origin;
        const custom = issue.message.startsWith("Too ") ? undefined : issue.message;
        const what = origin === "string" ? "characters" : origin === "array" ? "entries" : undefined;
        const generic =
          what !== undefined
            ? `must have ${issue.code === "too_big" ? "at most" : "at least"} ${String(bound)} ${what}.`
            : `must be a number ${issue.code === "too_big" ? (inclusive ? "at most" : "below") : inclusive ? "at least" : "above"} ${String(bound)}.`;
        problems.push({ path: where(path), message: custom ?? generic, received: received(input) });
        break;
      }
      default: {
        // A custom issue raised on an object for one of its fields carries the object as input: show the field.
        const shown = issue.code === "custom" && input !== null && typeof input === "object" ? valueAt(input, path.slice(-1)) ?? input : input;
        problems.push({
          path: where(path),
          message: issue.message,
          ...(shown !== undefined || issue.code === "custom" ? { received: received(shown) } : {}),
        });
      }
    }
  }
  return problems.map((p) => (p.received === undefined ? withoutReceived(p) : p));
}

function withoutReceived(p: Problem): Problem {
  const { received: _ignored, ...rest } = p;
  return rest;
}

/** One message listing every problem: the header, then one line per problem, sorted for stable output. */
export function formatProblems(header: string, problems: readonly Problem[]): string {
  const lines = problems.map((p) => escapeControl(`  - ${p.path}: ${p.message}${p.received !== undefined ? ` (got ${p.received})` : ""}`));
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return `${header} (${count}):\n${lines.join("\n")}`;
}

/**
 * Bad user input. A RunError, so the Pulumi CLI prints the message without a stack trace
 * (@pulumi/pulumi cmd/run/run.js hides the stack for RunErrors); our plan tool exits 2 on it.
 */
export class ConfigError extends pulumi.RunError {
  readonly problems: readonly Problem[];
  constructor(header: string, problems: readonly Problem[]) {
    super(formatProblems(header, problems));
    this.name = "ConfigError";
    this.problems = problems;
  }
  static is(err: unknown): err is ConfigError {
    return err instanceof Error && err.name === "ConfigError" && Array.isArray((err as ConfigError).problems);
  }
}
