/**
 * Values for the JupyterHub Helm chart (zero-to-jupyterhub 4.4.0): merged the way Helm merges them and checked
 * against the chart's own values.schema.json at plan time, so a bad value fails `pulumi preview` instead of
 * `helm upgrade`. The schema and defaults are vendored in schemas/zero-to-jupyterhub-4.4.0/ (see its README).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { default as Ajv, ErrorObject, Options, ValidateFunction } from "ajv";
import { closest, distance } from "fastest-levenshtein";
import { formatValuePath, renderValue, validateProfileList } from "./kubespawner";
import { PROFILE_FILTER_MARKER } from "./profiles";
import { PROJECT_ROOT } from "../../lib/paths";

export const CHART_VERSION = "4.4.0";

/** Resolved from this module, not the working directory: the program runs from wherever Pulumi starts it. */
export const CHART_SCHEMA_DIR = path.join(PROJECT_ROOT, "schemas", `zero-to-jupyterhub-${CHART_VERSION}`);

export type HubValues = { [key: string]: unknown };

function isPlainObject(value: unknown): value is HubValues {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The chart's default values (values.yaml as JSON); a fresh copy on each call, so callers may change it. */
export function loadChartDefaults(): HubValues {
  const parsed: unknown = JSON.parse(fs.readFileSync(path.join(CHART_SCHEMA_DIR, "values.json"), "utf8"));
  if (!isPlainObject(parsed)) throw new Error(`${path.join(CHART_SCHEMA_DIR, "values.json")}: expected a JSON object`);
  return parsed;
}

/**
 * One layer over another as Helm coalesces values (helm pkg/chartutil coalesce.go): mappings merge key by key, a
 * list or scalar replaces whatever was there, and `null` deletes a key the lower layer has (Helm's way to drop a
 * chart default) while a `null` for a key the lower layer lacks stays `null`, as Helm passes it to the schema.
 */
function coalesce(lower: HubValues, upper: HubValues): HubValues {
  const out: HubValues = structuredClone(lower);
  for (const [key, value] of Object.entries(upper)) {
    const below = out[key];
    if (value === null && key in out) delete out[key];
    else if (isPlainObject(value) && isPlainObject(below)) out[key] = coalesce(below, value);
    else out[key] = structuredClone(value);
  }
  return out;
}

/**
 * chart defaults ← stack values ← generated values, each merged over the previous as Helm does. Arrays replace rather
 * than concatenate because that is what Helm does with lists: concatenating (tolerations, profileList, …) would preview
 * values that `helm upgrade` never renders. Generated values come last: they are computed from validated digests and
 * must not be shadowed by stack config. Inputs are not modified.
 */
export function mergeHubValues(defaults: HubValues, stackValues: HubValues, generated: HubValues): HubValues {
  const layers: [string, unknown][] = [
    ["defaults", defaults],
    ["stackValues", stackValues],
    ["generated", generated],
  ];
  for (const [name, layer] of layers) {
    if (!isPlainObject(layer)) throw new TypeError(`mergeHubValues: ${name} must be a values mapping, got ${renderValue(layer)}`);
  }
  return coalesce(coalesce(defaults, stackValues), generated);
}

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

/**
 * Where the chart's schema is looser than what the hub accepts at run time; applied to our in-memory copy only.
 * - hub.extraConfig: the schema allows any value, but z2jh's jupyterhub_config.py runs each one with exec(), which
 *   raises TypeError on anything but a string, and the hub pod crash-loops.
 */
function tightened(schema: HubValues): HubValues {
  const copy = structuredClone(schema);
  const extraConfig = (copy as { properties?: { hub?: { properties?: { extraConfig?: HubValues } } } }).properties?.hub
    ?.properties?.extraConfig;
  if (extraConfig === undefined) throw new Error("values.schema.json: hub.extraConfig is missing; is this the 4.4.0 schema?");
  extraConfig.additionalProperties = { type: "string" };
  return copy;
}

/**
 * Ajv's options for the chart's schema, at run time and at build time alike (the precompiled validator must report
 * the same errors), and part of the fingerprint that ties a precompiled validator to what it was compiled with.
 */
const AJV_OPTIONS = {
  allErrors: true,
  // error.data and error.parentSchema: the value received and the allowed keys for "did you mean".
  verbose: true,
  // Ajv's strict mode lints schema style (strictRequired, strictTypes), which this third-party schema, written for
  // Helm's validator, does not follow; strictSchema stays on so a keyword Ajv would ignore still fails loudly.
  strict: false,
  strictSchema: true,
  // hub.config has properties (JupyterHub) that also match its patternProperties (^[A-Z].*$), as intended.
  allowMatchingProperties: true,
  // Ajv's code optimizer takes ~1.3 s on this 47 KB schema and saves nothing measurable for the one validation a
  // plan makes (measured: compile 1.65 s → 0.34 s). Nor does it speed up the precompiled validator (measured: load
  // and first validation 25-35 ms either way), so build and run time compile alike.
  code: { optimize: false },
} as const satisfies Options;

/**
 * The validator scripts/build-dist.cjs precompiles (writePrecompiledValidator) beside the compiled module, in
 * dist/components/hub/ (issue #16): a plan then loads generated code instead of loading Ajv and compiling the
 * schema (~80 ms of a ~1 s plan). Sources run by tsx or vitest have none beside them and compile at run time.
 */
export const PRECOMPILED_VALIDATOR_FILE = "values-schema.validate.js";

/** The chart's values.schema.json, tightened; what both the run-time and the precompiled validator compile. */
function valuesSchema(): HubValues {
  const file = path.join(CHART_SCHEMA_DIR, "values.schema.json");
  const schema: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
  if (!isPlainObject(schema) || schema.$schema !== "http://json-schema.org/draft-07/schema#") {
    // Ajv's default class implements draft-07; a newer chart schema needs Ajv2019/Ajv2020 instead.
    throw new Error(`${file}: expected a draft-07 JSON schema, got $schema ${renderValue(isPlainObject(schema) ? schema.$schema : schema)}`);
  }
  return tightened(schema);
}

/**
 * What a validator compiled from `schema` depends on: the schema, Ajv's options and the Ajv and ajv-formats
 * releases (whose generated code and error objects may differ). A precompiled validator with another fingerprint
 * (dist/ built before an edit or an `npm install`, and not rebuilt since) is not used.
 */
function fingerprint(schema: HubValues): string {
  const version = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;
  return createHash("sha256")
    .update(JSON.stringify([version("ajv"), version("ajv-formats"), AJV_OPTIONS, schema]))
    .digest("hex");
}

/**
 * Compiles `schema` with Ajv. Ajv and ajv-formats are required here, not imported at the top: a plan that finds
 * the precompiled validator never loads them. `source` keeps the generated code for standalone output.
 */
function compile(schema: HubValues, source: boolean): { ajv: Ajv; validate: ValidateFunction } {
  const { default: AjvClass } = require("ajv") as typeof import("ajv");
  const { default: addFormats } = require("ajv-formats") as typeof import("ajv-formats");
  const ajv = new AjvClass({ ...AJV_OPTIONS, code: { ...AJV_OPTIONS.code, source } });
  // With code.source, ajv-formats makes the generated code require its formats itself (ajv.opts.code.formats).
  addFormats(ajv);
  return { ajv, validate: ajv.compile(schema) };
}

/** The chart's validator compiled now: what tsx and vitest use, and a plan whose dist/ has no matching precompiled one. */
export function compileValuesValidator(): ValidateFunction {
  return compile(valuesSchema(), false).validate;
}

/**
 * The standalone module of the chart's validator (https://ajv.js.org/standalone.html): a CommonJS module exporting
 * the validate function, which requires only Ajv's runtime helpers and ajv-formats' formats it uses, with the
 * fingerprint of what it was compiled from. Written to `file` through a temporary name, so a concurrent plan never
 * loads half a file. Run by scripts/build-dist.cjs from the compiled module.
 */
export function writePrecompiledValidator(file: string): void {
  const schema = valuesSchema();
  const { ajv, validate } = compile(schema, true);
  const { default: standaloneCode } = require("ajv/dist/standalone") as typeof import("ajv/dist/standalone");
  const code = [
    "// Generated by scripts/build-dist.cjs with components/hub/hub-values.ts (writePrecompiledValidator); do not edit.",
    standaloneCode(ajv, validate),
    `module.exports.fingerprint = ${JSON.stringify(fingerprint(schema))};`,
    "",
  ].join("\n");
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, code);
  fs.renameSync(tmp, file);
}

/** The validator precompiled into `file`, if there is one compiled from the chart's schema as it is now. */
export function loadPrecompiledValidator(file: string): ValidateFunction | undefined {
  return precompiled(file, fingerprint(valuesSchema()));
}

function precompiled(file: string, expected: string): ValidateFunction | undefined {
  if (!fs.existsSync(file)) return undefined;
  let loaded: unknown;
  try {
    loaded = require(file);
  } catch {
    // A module that does not load (edited by hand): compiling at run time gives the same validator.
    return undefined;
  }
  const matches = typeof loaded === "function" && (loaded as { fingerprint?: unknown }).fingerprint === expected;
  return matches ? (loaded as ValidateFunction) : undefined;
}

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled !== undefined) return compiled;
  const schema = valuesSchema();
  compiled = precompiled(path.join(__dirname, PRECOMPILED_VALIDATOR_FILE), fingerprint(schema)) ?? compile(schema, false).validate;
  return compiled;
}

function pathSegments(root: unknown, pointer: string): (string | number)[] {
  if (pointer === "") return [];
  const out: (string | number)[] = [];
  let here: unknown = root;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(here)) {
      out.push(Number(key));
      here = here[Number(key)];
    } else {
      out.push(key);
      here = isPlainObject(here) ? here[key] : undefined;
    }
  }
  return out;
}

function orList(items: readonly unknown[]): string {
  const parts = items.map((i) => (typeof i === "string" ? i : JSON.stringify(i)));
  return parts.length <= 1 ? (parts[0] ?? "") : `${parts.slice(0, -1).join(", ")} or ${parts[parts.length - 1]}`;
}

function suggestion(key: string, known: readonly string[]): string {
  if (known.length === 0) return "this mapping allows no keys";
  const best = closest(key, [...known]);
  if (distance(key, best) <= Math.min(3, Math.max(1, Math.floor(best.length / 2)))) return `did you mean "${best}"?`;
  return known.length <= 12 ? `allowed keys: ${known.join(", ")}` : "see the chart's values.yaml for the allowed keys";
}

/** One line per schema error, `<path>: <what>, got <value>`; branch errors of a reported oneOf are folded into it. */
function schemaMessages(errors: readonly ErrorObject[], values: unknown): string[] {
  const oneOfPaths = errors.filter((e) => e.keyword === "oneOf").map((e) => `${e.schemaPath}/`);
  const out: string[] = [];
  for (const e of errors) {
    // "must match then schema" repeats the error inside `then`, which is reported on its own.
    if (e.keyword === "if") continue;
    if (oneOfPaths.some((p) => e.schemaPath.startsWith(p))) continue;
    const at = pathSegments(values, e.instancePath);
    const where = formatValuePath("", at) || "(root)";
    switch (e.keyword) {
      case "type": {
        const types = Array.isArray(e.params.type) ? e.params.type : [e.params.type];
        out.push(`${where}: must be ${orList(types)}, got ${renderValue(e.data)}`);
        break;
      }
      case "additionalProperties": {
        const key = String(e.params.additionalProperty);
        const known = Object.keys((e.parentSchema as { properties?: HubValues } | undefined)?.properties ?? {});
        out.push(`${formatValuePath("", [...at, key])}: unknown key, the chart's schema allows no others here; ${suggestion(key, known)}`);
        break;
      }
      case "required":
        out.push(`${formatValuePath("", [...at, String(e.params.missingProperty)])}: is required by the chart's schema, got nothing`);
        break;
      case "enum":
        out.push(`${where}: must be one of ${orList((e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)))}, got ${renderValue(e.data)}`);
        break;
      case "oneOf": {
        const branches = Array.isArray(e.schema) ? (e.schema as unknown[]) : [];
        const keys = branches.map((b) => (isPlainObject(b) && Array.isArray(b.required) && Object.keys(b).length === 1 && b.required.length === 1 ? String(b.required[0]) : undefined));
        out.push(
          keys.every((k) => k !== undefined)
            ? `${where}: must set exactly one of ${orList(keys.map((k) => `"${k}"`))}, got ${renderValue(e.data)}`
            : `${where}: must match exactly one of the chart's alternatives (${e.schemaPath}), got ${renderValue(e.data)}`,
        );
        break;
      }
      default:
        out.push(`${where}: ${e.message ?? e.keyword}, got ${renderValue(e.data)}`);
    }
  }
  return out;
}

/**
 * Checks merged values as `helm upgrade` will (the chart's values.schema.json, draft-07, all errors), plus what the
 * hub needs at run time: every hub.extraConfig value is Python source (a string), a non-empty singleuser.profileList
 * passes validateProfileList, and it is empty when our profile filter (renderProfileFilterConfig) is installed, since
 * the filter replaces it. Returns one message per problem, `<json path>: <what>, got <value>`; empty means valid.
 */
export function validateHubValues(merged: HubValues): string[] {
  const validate = validator();
  const out = validate(merged) ? [] : schemaMessages(validate.errors ?? [], merged);

  const singleuser = isPlainObject(merged.singleuser) ? merged.singleuser : {};
  const profileList = singleuser.profileList;
  if (Array.isArray(profileList) && profileList.length > 0) {
    out.push(...validateProfileList(profileList, "singleuser.profileList"));
    const hub = isPlainObject(merged.hub) ? merged.hub : {};
    const extraConfig = isPlainObject(hub.extraConfig) ? hub.extraConfig : {};
    for (const [key, code] of Object.entries(extraConfig)) {
      if (typeof code === "string" && code.startsWith(PROFILE_FILTER_MARKER)) {
        out.push(
          `singleuser.profileList: must be empty when ${formatValuePath("hub.extraConfig", [key])} installs the workbench profile filter, which replaces KubeSpawner.profile_list after z2jh applied this list (its ${profileList.length === 1 ? "1 entry" : `${profileList.length} entries`} would be silently ignored); put profiles into renderProfileFilterConfig() instead`,
        );
      }
    }
  }
  return out;
}

/**
 * Where z2jh 4.4.0 mounts the user's home, read from merged values the way its jupyterhub_config.py reads them:
 * dynamic storage keys the mount by singleuser.storage.dynamic.volumeNameTemplate, static storage by "home", and
 * storage type "none" mounts nothing.
 */
export function homeMountOf(merged: HubValues): { key: string; name: string; subPath?: string } | undefined {
  const singleuser = isPlainObject(merged.singleuser) ? merged.singleuser : {};
  const storage = isPlainObject(singleuser.storage) ? singleuser.storage : {};
  const type = storage.type ?? "dynamic";
  const section = (key: string) => (isPlainObject(storage[key]) ? (storage[key] as HubValues) : {});
  const subPathOf = (s: HubValues) => (typeof s.subPath === "string" && s.subPath !== "" ? { subPath: s.subPath } : {});
  if (type === "dynamic") {
    const dynamic = section("dynamic");
    const template = typeof dynamic.volumeNameTemplate === "string" ? dynamic.volumeNameTemplate : "volume-{user_server}";
    return { key: template, name: template, ...subPathOf(dynamic) };
  }
  if (type === "static") return { key: "home", name: "home", ...subPathOf(section("static")) };
  return undefined;
}

/** Sets `value` at the dotted path `keys` (`["hub", "config", "X", "client_secret"]`), creating mappings on the way. */
export function setPath(target: HubValues, keys: readonly string[], value: unknown): void {
  let node = target;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) node[key] = value;
    else {
      node[key] ??= {};
      node = node[key] as HubValues;
    }
  });
}
