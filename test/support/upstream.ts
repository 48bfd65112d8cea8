/**
 * Upstream oracles (GUIDE §4.4, issue #11): what the other side does with our output, run or checked with its own
 * code and schemas from ../shared/upstream/ (see its README.md). Nothing from there is copied into the project; tests
 * that need it skip, naming the folder, where it is absent.
 *
 * - spawnPods(): z2jh 4.4.0's jupyterhub_config.py and KubeSpawner 7.0.0 in real Python (test/support/upstream_spawner.py)
 *   turn Helm values into the pod manifests the hub would create.
 * - strictValidator() / kyvernoClusterPolicyValidator(): Kubernetes 1.32's strict JSON schemas and Kyverno 1.15.2's
 *   ClusterPolicy CRD schema, compiled with ajv.
 */
import { withPinnedHubImages } from "./chart-pins";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../lib/paths";
import type { Plan, PlannedResource } from "../../scripts/lib/plan-runtime";

/** Debian's interpreter: it has jupyterhub, python3-kubernetes & co; pyenv's python3 on PATH has none of them. */
export const PYTHON = "/usr/bin/python3";
export const SPAWNER_SCRIPT = path.join(__dirname, "upstream_spawner.py");

/** The Debian packages upstream_spawner.py needs (the CI script installs them). */
export const SPAWNER_DEBIAN_PACKAGES = [
  "jupyterhub",
  "python3-kubernetes",
  "python3-traitlets",
  "python3-jinja2",
  "python3-yaml",
  "python3-escapism",
  "python3-slugify",
  "python3-pycurl",
] as const;

/** ../shared/upstream beside the project root (CI checks the project out beside ../shared). */
export function upstreamDir(): string {
  return path.resolve(PROJECT_ROOT, "..", "shared", "upstream");
}

const NEEDED = [
  "kubespawner-7.0.0/kubespawner/spawner.py",
  "zero-to-jupyterhub-4.4.0/files/hub/jupyterhub_config.py",
  "zero-to-jupyterhub-4.4.0/files/hub/z2jh.py",
  "zero-to-jupyterhub-4.4.0/values.yaml",
  "kyverno-1.15.2/kyverno.io_clusterpolicies.yaml",
  "kubernetes-1.32.2-strict",
];

/** Whether ../shared/upstream holds what these oracles read. */
export function hasUpstream(): boolean {
  return NEEDED.every((p) => fs.existsSync(path.join(upstreamDir(), p)));
}

/** The reason a suite skips, for its title and a console note. */
export function skipReason(): string {
  return `skipped: the upstream oracles need ${upstreamDir()} (with ${NEEDED.join(", ")}); it is absent`;
}

// ---------------------------------------------------------------------------------------------------------------
// Helm values
// ---------------------------------------------------------------------------------------------------------------

export type Values = { [key: string]: unknown };

function isMap(v: unknown): v is Values {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * `upper` over `lower` as Helm 3 coalesces user values over chart defaults (pkg/chartutil/coalesce.go): maps merge
 * key by key, lists and scalars replace, a user `null` deletes the key below it. Nulls in the chart's own values.yaml
 * stay (Helm 3 and Helm 4 before 4.2 keep them: helm/helm#32530). Written here on purpose instead of importing the
 * project's mergeHubValues: the oracle must not share the code it checks.
 */
export function helmCoalesce(lower: Values, upper: Values): Values {
  const out: Values = structuredClone(lower);
  for (const [key, value] of Object.entries(upper)) {
    if (value === null && key in out) delete out[key];
    else if (isMap(value) && isMap(out[key])) out[key] = helmCoalesce(out[key] as Values, value);
    else out[key] = structuredClone(value);
  }
  return out;
}

/** z2jh 4.4.0's own values.yaml from ../shared/upstream (a fresh copy). */
export function chartDefaults(): Values {
  const parsed: unknown = parse(fs.readFileSync(path.join(upstreamDir(), "zero-to-jupyterhub-4.4.0", "values.yaml"), "utf8"));
  if (!isMap(parsed)) throw new Error("zero-to-jupyterhub-4.4.0/values.yaml: expected a mapping");
  return parsed;
}

/** `.Values` as Helm renders the chart with a release's values. */
export function helmValues(releaseValues: Values): Values {
  return helmCoalesce(chartDefaults(), releaseValues);
}

export interface HubRelease {
  resource: PlannedResource;
  /** The Release's own values (what Pulumi passes to Helm), plain under mocks. */
  values: Values;
  name: string;
  namespace: string;
}

/** The plan's helm.sh/v3 Release of the jupyterhub chart, or undefined when the stack deploys no hub. */
export function hubRelease(plan: Plan): HubRelease | undefined {
  const found = plan.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release" && r.inputs["chart"] === "jupyterhub");
  if (found.length > 1) throw new Error(`${plan.stack}: expected at most one jupyterhub Release, found ${found.map((r) => r.name).join(", ")}`);
  const [r] = found;
  if (r === undefined) return undefined;
  const values = r.inputs["values"];
  if (!isMap(values)) throw new Error(`${plan.stack}: ${r.name}.values is not a mapping: ${JSON.stringify(values)}`);
  return { resource: r, values, name: String(r.inputs["name"] ?? "jupyterhub"), namespace: String(r.inputs["namespace"] ?? "default") };
}

/**
 * prod as `npm run promote` leaves it: Pulumi.prod.yaml with every published catalog variant promoted from dev (GPU
 * ones validated there on h100). The shipped file promotes nothing yet, so its hub would offer no profile at all.
 */
export function promotedProdConfig(): Record<string, unknown> {
  const config = (parse(fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.prod.yaml"), "utf8")) as { config: Record<string, unknown> }).config;
  const doc = parse(fs.readFileSync(path.join(PROJECT_ROOT, "images", "catalog.yaml"), "utf8")) as { variants: { name: string; gpu?: boolean; publish?: unknown }[] };
  const images: Record<string, unknown> = {};
  for (const v of doc.variants) {
    if (v.publish === undefined) continue;
    const digest = `sha256:${Buffer.from(v.name).toString("hex").padEnd(64, "0").slice(0, 64)}`;
    images[v.name] = { digest, source: `111122223333.dkr.ecr.us-east-1.amazonaws.com/workbench/${v.name}@${digest}`, validatedPools: v.gpu === true ? ["h100"] : [] };
  }
  config["workbench-images:promotion"] = { from: "dev", images };
  return withPinnedHubImages(config);
}

// ---------------------------------------------------------------------------------------------------------------
// KubeSpawner
// ---------------------------------------------------------------------------------------------------------------

export interface SpawnRequest {
  /** The login as the authenticator receives it; JupyterHub's normalize_username runs on it. */
  username: string;
  /** Profile slug; null or absent: KubeSpawner's default profile. */
  profile?: string | null;
  /** Profile option choices, e.g. { pool: "h100" } (user_options keys beside "profile"). */
  options?: Record<string, string>;
}

/** A profile as KubeSpawner initialized it for the user (_get_initialized_profile_list). */
export interface UpstreamProfile {
  slug: string;
  display_name: string;
  default?: boolean;
  kubespawner_override?: Record<string, unknown>;
  profile_options?: Record<string, { display_name?: string; choices?: Record<string, { default?: boolean; kubespawner_override?: Record<string, unknown> }> }>;
}

/** The fields of a Pod the tests read; the rest is there too. */
export interface Pod {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: {
      name: string;
      image: string;
      workingDir?: string;
      securityContext?: { runAsUser?: number; runAsGroup?: number };
      resources?: { limits?: Record<string, unknown>; requests?: Record<string, unknown> };
      volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
      env?: { name: string; value?: string }[];
    }[];
    securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
    nodeSelector?: Record<string, string>;
    tolerations?: Record<string, unknown>[];
    volumes?: Record<string, unknown>[];
    [key: string]: unknown;
  };
}

export type SpawnResult =
  | { userName: string; visibleSlugs: string[]; profiles: UpstreamProfile[]; pod: Pod; error?: undefined }
  | { userName: string; visibleSlugs?: string[]; profiles?: UpstreamProfile[]; pod?: undefined; error: string; traceback?: string };

export interface SpawnOptions {
  /** @default { name: "jupyterhub", namespace: "jupyterhub" } */
  release?: { name: string; namespace: string };
  /** The values are already Helm's `.Values` (merged over the chart defaults). @default false: merged here */
  merged?: boolean;
}

/**
 * Runs z2jh's hub config and KubeSpawner on `values` (a Release's values, merged here over the chart's defaults as
 * Helm does) and answers each request with the profiles KubeSpawner offers that user and the pod it would create,
 * or the error KubeSpawner raised (e.g. "ValueError: No such profile: ..."). One Python process per call.
 */
export function spawnPods(values: Values, requests: SpawnRequest[], opts: SpawnOptions = {}): SpawnResult[] {
  const input = JSON.stringify({
    upstream: upstreamDir(),
    values: opts.merged === true ? values : helmValues(values),
    release: opts.release ?? { name: "jupyterhub", namespace: "jupyterhub" },
    requests,
  });
  const run = spawnSync(PYTHON, [SPAWNER_SCRIPT], { input, encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 180_000 });
  const stderrTail = (run.stderr ?? "").split("\n").slice(-40).join("\n");
  if (run.error !== undefined) {
    throw new Error(`${PYTHON} ${SPAWNER_SCRIPT} could not run: ${run.error.message}. It needs Debian's ${SPAWNER_DEBIAN_PACKAGES.join(" ")}.\n${stderrTail}`);
  }
  if (run.status !== 0) {
    throw new Error(
      `${PYTHON} ${SPAWNER_SCRIPT} exited ${run.status ?? run.signal}; it needs Debian's ${SPAWNER_DEBIAN_PACKAGES.join(" ")}. stderr:\n${stderrTail}`,
    );
  }
  let parsed: { results?: SpawnResult[] };
  try {
    parsed = JSON.parse(run.stdout) as { results?: SpawnResult[] };
  } catch (e) {
    throw new Error(`${SPAWNER_SCRIPT} printed no JSON (${(e as Error).message}): ${run.stdout.slice(0, 2000)}\nstderr:\n${stderrTail}`);
  }
  if (!Array.isArray(parsed.results) || parsed.results.length !== requests.length) {
    throw new Error(`${SPAWNER_SCRIPT}: expected ${requests.length} results, got ${JSON.stringify(parsed).slice(0, 2000)}`);
  }
  return parsed.results;
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------------------

export const STRICT_DIR_NAME = "kubernetes-1.32.2-strict";

function newAjv(): Ajv {
  return new Ajv({ strict: false, allErrors: true, validateFormats: false });
}

/**
 * The strict schema file of a Kubernetes apiVersion/kind, named as kubernetes-json-schema names them:
 * `<kind>-<group's first label>-<version>.json`, `<kind>-<version>.json` for the core group.
 */
export function strictSchemaFile(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const groupPart = group === "" ? "" : `-${group!.split(".")[0]}`;
  return path.join(upstreamDir(), STRICT_DIR_NAME, `${kind.toLowerCase()}${groupPart}-${version}.json`);
}

const strictCache = new Map<string, ValidateFunction>();

/** Kubernetes 1.32's strict schema for apiVersion/kind (unknown fields rejected); throws naming the file if absent. */
export function strictValidator(apiVersion: string, kind: string): ValidateFunction {
  const file = strictSchemaFile(apiVersion, kind);
  let v = strictCache.get(file);
  if (v === undefined) {
    if (!fs.existsSync(file)) throw new Error(`no strict schema for ${apiVersion} ${kind}: ${file} is absent; add it to ${path.dirname(file)}`);
    v = newAjv().compile(JSON.parse(fs.readFileSync(file, "utf8")) as object);
    strictCache.set(file, v);
  }
  return v;
}

/**
 * A CRD's structural openAPIV3Schema as the API server applies it: x-kubernetes-* keys dropped (they are not JSON
 * Schema), and unknown fields pruned, i.e. refused here, wherever a node lists properties and does not set
 * x-kubernetes-preserve-unknown-fields. x-kubernetes-int-or-string becomes "integer or string".
 */
export function structural(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(structural);
  if (!isMap(schema)) return schema;
  const out: Values = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith("x-kubernetes-")) continue;
    out[k] = k === "properties" && isMap(v) ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, structural(s)])) : structural(v);
  }
  if (schema["x-kubernetes-int-or-string"] === true) out["anyOf"] = [{ type: "integer" }, { type: "string" }];
  if (isMap(schema["properties"]) && schema["x-kubernetes-preserve-unknown-fields"] !== true && !("additionalProperties" in schema)) {
    out["additionalProperties"] = false;
  }
  return out;
}

let kyvernoCache: ValidateFunction | undefined;

/** Kyverno 1.15.2's ClusterPolicy kyverno.io/v1 schema (structural, unknown fields refused). */
export function kyvernoClusterPolicyValidator(): ValidateFunction {
  if (kyvernoCache !== undefined) return kyvernoCache;
  const file = path.join(upstreamDir(), "kyverno-1.15.2", "kyverno.io_clusterpolicies.yaml");
  const crd = parse(fs.readFileSync(file, "utf8")) as { spec?: { versions?: { name: string; schema?: { openAPIV3Schema?: unknown } }[] } };
  const v1 = crd.spec?.versions?.find((v) => v.name === "v1")?.schema?.openAPIV3Schema;
  if (v1 === undefined) throw new Error(`${file}: no v1 openAPIV3Schema`);
  kyvernoCache = newAjv().compile(structural(v1) as object);
  return kyvernoCache;
}

/** ajv's errors, one line each, for a failure message. */
export function describeErrors(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `${e.instancePath || "(root)"} ${e.message ?? e.keyword}${e.keyword === "additionalProperties" ? ` (${String(e.params["additionalProperty"])})` : ""}`)
    .join("\n");
}
