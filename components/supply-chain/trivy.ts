import * as crypto from "node:crypto";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { requireDigestRef } from "../../lib/image-ref";
import { shellQuote } from "../../lib/shell";
import { formatPath, type Problem, renderReceived, zodProblems } from "../../lib/problems";
import { strictObject } from "../../lib/zod-util";

/**
 * The Trivy scan gate's command line and the rules for its ignore file (issue #4). Flags are those of `trivy image`
 * (docs/docs/references/configuration/cli/trivy_image.md); the ignore file is Trivy's YAML format
 * (pkg/result/ignore.go: sections of entries with id, paths, purls, statement, expired_at).
 */

export const TRIVY_SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"] as const;
export type TrivySeverity = (typeof TRIVY_SEVERITIES)[number];

/** Trivy reads every flag from a TRIVY_* variable too; these carry registry credentials (TRIVY_PASSWORD, per its help). */
export const TRIVY_USERNAME_ENV = "TRIVY_USERNAME";
export const TRIVY_PASSWORD_ENV = "TRIVY_PASSWORD";

export interface TrivyScanOptions {
  /** `repository@sha256:<64 hex>`; a tag is refused. */
  ref: string;
  /** The ignore file, relative to the directory the command runs in (the project root). */
  ignoreFile: string;
  /** Severities that fail the gate, emitted most severe first. @default ["CRITICAL", "HIGH"] */
  severities?: readonly TrivySeverity[];
  /**
   * Leave out findings that have no fixed version yet (`--ignore-unfixed`).
   * @default false: a HIGH or CRITICAL finding fails the gate whether or not a fix exists (issue #12 point 6); the
   * way to accept one is an expiring, reviewed entry in the ignore file (docs/supply-chain.md).
   */
  ignoreUnfixed?: boolean;
  /** Trivy's own timeout; its 5-minute default is too short for multi-gigabyte CUDA images. @default "30m" */
  timeout?: string;
}

/**
 * The flags of the gate's `trivy image`, checked (throws on bad options). Separate from the reference so a component
 * can check its plain options when it is constructed, before the image digest is known.
 * `--image-src remote` scans exactly what the registry holds under that digest, never a local copy;
 * `--scanners vuln,secret` is pinned so a Trivy upgrade cannot silently change what the gate checks.
 */
export function trivyScanFlags(options: Omit<TrivyScanOptions, "ref">): string[] {
  const wanted = new Set(options.severities ?? ["CRITICAL", "HIGH"]);
  if (wanted.size === 0) throw new Error('args.severities is empty: name at least one severity that fails the gate, e.g. ["CRITICAL", "HIGH"].');
  const severities = TRIVY_SEVERITIES.filter((s) => wanted.has(s));
  if (!/\.ya?ml$/.test(options.ignoreFile)) {
    // Trivy picks the format by extension (pkg/result/ignore.go): any other name is read as the plain line format,
    // which has no statements, and our rules would not apply to what Trivy reads.
    throw new Error(`args.ignoreFile must be a .yaml or .yml file (Trivy reads the YAML format only by that extension), got ${JSON.stringify(options.ignoreFile)}.`);
  }
  const timeout = options.timeout ?? "30m";
  if (!/^\d+(h|m|s)$/.test(timeout)) throw new Error(`args.timeout must be a duration such as "30m", got ${JSON.stringify(timeout)}.`);
  return [
    "--image-src",
    "remote",
    "--scanners",
    "vuln,secret",
    "--severity",
    severities.join(","),
    ...((options.ignoreUnfixed ?? false) ? ["--ignore-unfixed"] : []),
    "--ignorefile",
    shellQuote(options.ignoreFile),
    "--exit-code",
    "1",
    "--no-progress",
    "--timeout",
    timeout,
    "--format",
    "table",
  ];
}

/** `trivy image` that exits 1 when the image has a finding at one of `severities` not covered by the ignore file. */
export function trivyScanCommand(options: TrivyScanOptions): string {
  requireDigestRef(options.ref, "the scan gate scans");
  return ["trivy", "image", ...trivyScanFlags(options), options.ref].join(" ");
}

export interface TrivySbomOptions {
  /** `repository@sha256:<64 hex>`; a tag is refused. */
  ref: string;
  /** The CycloneDX file to write, relative to the directory the command runs in (the project root). */
  output: string;
  /** @default "30m" (see TrivyScanOptions.timeout) */
  timeout?: string;
}

/**
 * `trivy image` writing the CycloneDX SBOM of the registry's copy of a digest. `--format cyclonedx` turns security
 * scanning off unless `--scanners` asks for it (Trivy's SBOM docs), so this needs no vulnerability database and
 * lists packages only: the scan gate is where findings are judged.
 */
export function trivySbomCommand(options: TrivySbomOptions): string {
  requireDigestRef(options.ref, "the SBOM describes");
  if (!/\.json$/.test(options.output)) throw new Error(`args.output must be a .json file (CycloneDX JSON), got ${JSON.stringify(options.output)}.`);
  const timeout = options.timeout ?? "30m";
  if (!/^\d+(h|m|s)$/.test(timeout)) throw new Error(`args.timeout must be a duration such as "30m", got ${JSON.stringify(timeout)}.`);
  return [
    "trivy",
    "image",
    "--image-src",
    "remote",
    "--format",
    "cyclonedx",
    "--output",
    shellQuote(options.output),
    "--no-progress",
    "--timeout",
    timeout,
    options.ref,
  ].join(" ");
}

/** sha256 of the ignore file's bytes: a scan trigger, so editing the file re-runs every scan. */
export function ignoreFileHash(text: string): string {
  return crypto.createHash("sha256").update(text, "utf8").digest("hex");
}

/** The sections Trivy reads from .trivyignore.yaml, in its order. */
export const IGNORE_SECTIONS = ["vulnerabilities", "misconfigurations", "secrets", "licenses"] as const;

// Required fields are optional here and checked by hand below, so each missing one gets a message that says what
// to write; zod reports types and unknown keys (a typo such as `expires_at` would otherwise never expire).
const baseEntry = {
  id: z.string().nullish(),
  statement: z.string().nullish(),
  expired_at: z.unknown().optional(),
  paths: z.array(z.string()).nullish(),
};
// `purls` narrows an entry to packages, which only vulnerabilities have (Trivy ignores it elsewhere).
const vulnerabilityEntry = strictObject({ ...baseEntry, purls: z.array(z.string()).nullish() });
const otherEntry = strictObject(baseEntry);
const section = () =>
  z.array(z.unknown(), { error: "Write the section as a list of entries (\"- id: …\"), or [] when it has none." }).nullish();
const topLevel = strictObject({
  vulnerabilities: section(),
  misconfigurations: section(),
  secrets: section(),
  licenses: section(),
});

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** `YYYY-MM-DD` of a real calendar date, or undefined. A YAML 1.1 timestamp (Date) is taken at its UTC date. */
function isoDate(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString().slice(0, 10);
  if (typeof value !== "string" || !ISO_DATE.test(value)) return undefined;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value ? value : undefined;
}

function blank(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "string" && value.trim() === "");
}

/**
 * Checks a Trivy ignore file against our rules: Trivy's YAML shape, and every entry with an `id`, a `statement` (why
 * the finding is accepted) and an `expired_at` date that has not passed. Trivy itself treats statement and expiry as
 * optional and silently drops expired entries (pkg/result/ignore.go Prune), which would turn the gate red without
 * saying why; here both fail the configuration before any resource is registered. `today` is compared by UTC date:
 * Trivy stops applying an entry from the first instant of its expired_at day.
 */
export function validateIgnoreFile(text: string, fileName: string, today: Date): Problem[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return doc.errors.map((e) => ({
      path: `${fileName}${e.linePos ? ` (line ${e.linePos[0].line})` : ""}`,
      message: `is not valid YAML: ${e.message.split("\n")[0]}. Fix the syntax at that line.`,
    }));
  }
  // The line of the nearest node that exists on the path, so a missing key points at its entry.
  const locate = (p: readonly PropertyKey[]): string => {
    for (let n = p.length; n >= 0; n--) {
      const node = doc.getIn(p.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      const offset = node?.range?.[0];
      if (offset !== undefined) return ` (line ${lineCounter.linePos(offset).line})`;
    }
    return "";
  };
  const prefix = `${fileName}: `;
  let raw: unknown;
  try {
    // yaml throws on aliases that expand past maxAliasCount (a "billion laughs" bomb).
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    return [{ path: fileName, message: `cannot be read: ${(e as Error).message}. Write each entry out instead of expanding aliases.` }];
  }
  if (typeof raw !== "object" || Array.isArray(raw)) {
    return [
      {
        path: fileName,
        message: `must be a mapping of the sections ${IGNORE_SECTIONS.join(", ")}, each a list of entries. A file that ignores nothing is "vulnerabilities: []".`,
        received: renderReceived(raw),
      },
    ];
  }
  // Structure first (unknown sections, a section that is not a list); then every entry of every list, in file order.
  const parsed = topLevel.safeParse(raw, { reportInput: true });
  const problems: Problem[] = parsed.success ? [] : zodProblems(parsed.error, prefix, { locate });
  const at = (p: PropertyKey[], message: string, received?: unknown) =>
    problems.push({ path: `${prefix}${formatPath(p)}${locate(p)}`, message, ...(received !== undefined ? { received: renderReceived(received) } : {}) });
  const todayIso = today.toISOString().slice(0, 10);

  for (const section of IGNORE_SECTIONS) {
    const value = (raw as Record<string, unknown>)[section];
    const entries: unknown[] = Array.isArray(value) ? value : [];
    const schema = section === "vulnerabilities" ? vulnerabilityEntry : otherEntry;
    entries.forEach((entry, index) => {
      const here = [section, index];
      const result = schema.safeParse(entry, { reportInput: true });
      if (!result.success) {
        const issues = result.error.issues.map((issue) => ({ ...issue, path: [...here, ...issue.path] }));
        problems.push(...zodProblems(new z.ZodError(issues), prefix, { locate }));
        if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return;
      }
      const e = entry as Record<string, unknown>;
      if (blank(e["id"])) {
        at([...here, "id"], "is required: the finding's ID as Trivy prints it (CVE-…, GHSA-…, AVD-…, or the secret rule's ID).");
      }
      if (blank(e["statement"])) {
        at(
          [...here, "statement"],
          "is required: say why the finding does not affect these images, or why it is accepted until expired_at, so whoever re-assesses it knows what was decided.",
        );
      }
      const expiry = e["expired_at"];
      if (blank(expiry)) {
        at([...here, "expired_at"], "is required: every ignored finding expires so that it is re-assessed. Set a date such as 2026-06-30 (YYYY-MM-DD).");
      } else {
        const date = isoDate(expiry);
        if (date === undefined) {
          at([...here, "expired_at"], "must be a date written YYYY-MM-DD, such as 2026-06-30.", expiry);
        } else if (date <= todayIso) {
          at(
            [...here, "expired_at"],
            `expired on ${date}: Trivy no longer ignores this finding, so the scan gate fails on it again. Re-assess it: upgrade or rebuild to fix it, or, if it still does not apply, write a new statement and a new expired_at.`,
            date,
          );
        }
      }
    });
  }
  return problems;
}
