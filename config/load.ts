import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { parseImageRef } from "../lib/image-ref";
import { projectPath } from "../lib/paths";
import { ConfigError, didYouMean, type Problem, renderReceived, zodProblems } from "../lib/problems";
import { type ChartImages, chartImageProblems, loadChartImages } from "../lib/chart-images";
import { PROJECT_ROOT } from "../lib/paths";
import { type HubValues, loadChartDefaults, mergeHubValues, setPath, validateHubValues } from "../components/hub/hub-values";
import { validateIgnoreFile } from "../components/supply-chain/trivy";
import { loadCatalog } from "./catalog";
import { resolveImageSpecs } from "./images";
import { environmentProblems } from "./rules";
import { resolvePools } from "./pools";
import { perUserProblems, resolveUsers } from "./users";
import { type Environment, ENVIRONMENTS, type RawConfig, type StackConfig, stackSchema } from "./schema";

/**
 * Loading and cross-checking (issue #10: `config/` holds everything decided before any resource exists). The stack
 * file and the catalog are parsed together and every problem is reported at once, as one ConfigError.
 */

const SECRET_KEYS = ["kubeconfig", "jupyterhubSecrets", "discoveryToken"] as const;

function decode(value: string): unknown {
  const trimmed = value.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return value;
    }
  }
  return value;
}

const KNOWN_KEYS = Object.keys(stackSchema.shape);

/** Parses and cross-checks a stack's configuration. Throws one ConfigError listing every problem. */
export function parseStackConfig(raw: RawConfig): Omit<StackConfig, "kubeconfig" | "jupyterhubSecrets" | "discoveryToken"> & {
  kubeconfig?: string;
  jupyterhubSecrets: Record<string, string>;
  discoveryToken?: string;
} {
  const ns = `${raw.project}:`;
  const problems: Problem[] = [];
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw.values)) input[key] = decode(value);
  for (const key of SECRET_KEYS) {
    if (input[key] !== undefined && !raw.secretKeys.has(key)) {
      problems.push({
        path: `${ns}${key}`,
        message: `holds a secret but is stored in plain text. Set it with \`pulumi config set --secret ${ns}${key} …\` (and remove the plain value).`,
      });
    }
  }
  // A value set with `pulumi config set --secret --path` inside a structured key makes the whole key secret (Pulumi
  // lists the top-level key among the secret keys). jupyterhub may hold such values (its chart values then stay a
  // Pulumi secret end to end); no other structured key has anything secret in it, so --secret there is a mistake
  // that would otherwise be handled as plain text while the plan shows "[secret]".
  const STRUCTURED_SECRET_OK = new Set<string>(["jupyterhub"]);
  for (const key of raw.secretKeys) {
    if ((SECRET_KEYS as readonly string[]).includes(key) || STRUCTURED_SECRET_OK.has(key) || input[key] === undefined) continue;
    problems.push({
      path: `${ns}${key}`,
      message: `holds a value set with --secret, but nothing under ${key} is secret and the program would use it as plain text. Set it without --secret; chart secrets go in jupyterhubSecrets, the cluster credentials in kubeconfig.`,
    });
  }
  const isSecret = (p: readonly PropertyKey[]) =>
    SECRET_KEYS.includes(p[0] as (typeof SECRET_KEYS)[number]) || raw.secretKeys.has(String(p[0]));
  const parsed = stackSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    // Top-level unknown keys are separate Pulumi config keys: report them under their own name, with the value.
    for (const issue of parsed.error.issues) {
      if (issue.code === "unrecognized_keys" && issue.path.length === 0) {
        for (const k of issue.keys) {
          problems.push({
            path: `${ns}${k}`,
            message: `is not a setting of this program.${didYouMean(k, KNOWN_KEYS) || ` Known settings: ${KNOWN_KEYS.join(", ")}.`} Remove it or correct the spelling.`,
            received: renderReceived(input[k]),
          });
        }
      }
    }
    const nested = parsed.error.issues.filter((i) => !(i.code === "unrecognized_keys" && i.path.length === 0));
    problems.push(...zodProblems(new z.ZodError(nested), ns, { isSecret }));
    // The catalog's own problems are reported in the same run, so fixing the stack file does not reveal a second list.
    problems.push(...catalogProblemsAnyway(raw, input, ns));
    throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);
  }
  const c = parsed.data;
  const stackIsEnvironment = (ENVIRONMENTS as readonly string[]).includes(raw.stack);
  const environment: Environment | undefined = c.environment ?? (stackIsEnvironment ? (raw.stack as Environment) : undefined);
  if (environment === undefined) {
    problems.push({
      path: `${ns}environment`,
      message: `is required for a stack not named local, dev or prod. Set it to "local", "dev" or "prod".`,
    });
    throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);
  }
  const mode = c.mode ?? (environment === "prod" ? "promote" : "build");
  const at = (key: string, message: string, received?: unknown) =>
    problems.push({ path: `${ns}${key}`, message, ...(received !== undefined ? { received: renderReceived(received) } : {}) });

  problems.push(...environmentProblems(c, environment, mode, ns));
  const catalogFile = path.resolve(raw.projectRoot, c.catalogPath);
  const catalogWhere = projectPath(raw.projectRoot, catalogFile);
  const { catalog, problems: catalogProblems } =
    "problem" in catalogWhere && catalogWhere.problem === "outside"
      ? { catalog: undefined, problems: [{ path: `${ns}catalogPath`, message: "is outside the project (after resolving '..' and symlinks). Keep the catalog inside the project, e.g. images/catalog.yaml; it is never read from elsewhere.", received: renderReceived(c.catalogPath) }] }
      : loadCatalog(catalogFile, {
          repositoryPrefix: c.registry.repositoryPrefix,
          requireDigests: environment !== "local",
          displayPath: c.catalogPath,
          projectRoot: raw.projectRoot,
        });
  problems.push(...catalogProblems);
  if (!catalog) throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);

  const byName = new Map(catalog.variants.map((v) => [v.name, v]));
  const names = [...byName.keys()];
  for (const [name, override] of Object.entries(c.variants)) {
    if (!byName.has(name)) at(`variants.${name}`, `names no catalog variant.${didYouMean(name, names) || ` Catalog variants: ${names.join(", ")}.`}`, name);
    override.excludePools.forEach((p, i) => {
      if (!c.gpuPools.some((pool) => pool.name === p)) {
        at(`variants.${name}.excludePools[${i}]`, `names no GPU pool.${didYouMean(p, c.gpuPools.map((x) => x.name)) || " Use a name from gpuPools."}`, p);
      }
    });
  }
  const variants = catalog.variants.filter((v) => c.variants[v.name]?.enabled ?? true);

  const poolsByVariant = resolvePools(c, variants, ns, problems);
  const users = resolveUsers(c, { byName, names, variants }, ns, problems);
  // A GPU image is usable only once validated on a pool (issue #11): a per-user layer builds on its base's validated
  // ref, so a GPU base without a pool leaves nothing to build on; a GPU variant without one is built and never offered.
  const poolWarnings: Problem[] = [];
  if (mode === "build") {
    for (const v of variants.filter((x) => x.gpu && (poolsByVariant[x.name] ?? []).length === 0)) {
      poolWarnings.push({ path: `${ns}variants.${v.name}`, message: "is a GPU variant with no compatible, non-excluded pool on this stack: it is built, scanned and signed but never validated, offered or promotable. Add a pool, or set variants." + v.name + ".enabled: false." });
    }
    users.forEach((u, i) => {
      const base = variants.find((v) => v.name === u.baseVariant);
      if (base?.gpu && (poolsByVariant[base.name] ?? []).length === 0) {
        at(`users[${i}].baseVariant`, "is a GPU variant with no pool on this stack to be validated on, and a per-user image builds only on a validated base. Add a compatible pool, or choose another base.", u.baseVariant);
      }
    });
  }
  // The scan gate's ignore file: every entry states why and expires (issue #4), checked before anything runs.
  if (c.scan.scanner === "trivy") {
    const ignorePath = path.resolve(raw.projectRoot, c.scan.ignoreFile);
    const where = projectPath(raw.projectRoot, ignorePath);
    if ("problem" in where && where.problem === "outside") {
      at("scan.ignoreFile", "is outside the project (after resolving '..' and symlinks). Keep the ignore file in the project, e.g. .trivyignore.yaml; it is never read from elsewhere.", c.scan.ignoreFile);
    } else if ("problem" in where || !fs.statSync(where.real).isFile()) {
      at("scan.ignoreFile", "does not exist or is not a file. Create it (`vulnerabilities: []` when nothing is ignored) or fix the path.", c.scan.ignoreFile);
    } else problems.push(...validateIgnoreFile(fs.readFileSync(where.real, "utf8"), c.scan.ignoreFile, new Date()));
  }
  // The stack's own hub values must pass the chart's schema now, not as a Helm failure at deploy time (issue #6).
  if (c.jupyterhub.enabled) {
    for (const message of validateHubValues(mergeHubValues(loadChartDefaults(), c.jupyterhub.values, {}))) {
      const [where, ...rest] = message.split(": ");
      problems.push({ path: `${ns}jupyterhub.values.${where}`, message: `${rest.join(": ")}. Fix the value; it must satisfy the zero-to-jupyterhub ${c.jupyterhub.chartVersion} chart schema.` });
    }
  }
  const perUserContext = path.join(path.dirname(catalogFile), "per-user");
  problems.push(...perUserProblems(users, perUserContext, raw.projectRoot, ns));
  for (const [name, record] of Object.entries(c.promotion.images)) {
    // Checked here, before any resource: PromotedImage would refuse it too, but only after registering the repository.
    const sourceDigest = parseImageRef(record.source)?.digest;
    if (sourceDigest !== undefined && sourceDigest !== record.digest) {
      at(`promotion.images.${name}.source`, `is pinned to ${sourceDigest} but digest is ${record.digest}. The stack file was edited by hand: re-run \`npm run promote\`.`, record.source);
    }
  }
  for (const name of Object.keys(c.promotion.images)) {
    if (!byName.has(name) && !users.some((u) => u.id === name)) {
      at(`promotion.images.${name}`, `names no catalog variant or user image.${didYouMean(name, names) || ""} Re-run \`npm run promote\`.`, name);
    }
  }

  // The charts' own images (issue standard: every image reaching Kubernetes pinned by digest). A malformed pin file
  // is an error; an image still without a digest is listed as a warning until `npm run pin-chart-images` has run on a
  // machine with registry access (docs/chart-images.md), since only such a machine can resolve it.
  let chartImages: ChartImages | undefined;
  try {
    chartImages = loadChartImages(path.join(raw.projectRoot, "images", "chart-images.yaml"));
  } catch (e) {
    if (!ConfigError.is(e)) throw e;
    problems.push(...e.problems);
  }
  // Only the charts this stack deploys count: the hub only with something to publish (index.ts deploys no hub that
  // would serve the chart's sample image), Kyverno only when this program installs it.
  const hubDeployed =
    c.jupyterhub.enabled &&
    variants.some((v) => v.publish !== undefined && (mode === "build" ? !v.gpu || (poolsByVariant[v.name] ?? []).length > 0 : c.promotion.images[v.name] !== undefined));
  const chartImageIssues =
    chartImages !== undefined
      ? chartImageProblems(
          chartImages,
          {
            ...(hubDeployed ? { jupyterhub: c.jupyterhub.chartVersion } : {}),
            ...(c.admission.installKyverno && c.signing.mode !== "none" ? { kyverno: c.admission.kyvernoChartVersion } : {}),
          },
          chartImagesNotRun(c.jupyterhub.values),
        )
      : [];
  // A version mismatch is an error everywhere: pins of another chart version say nothing about the one deployed. An
  // unpinned image is an error on prod (issue #11: prod runs nothing by tag) and a warning on dev and local, until
  // `npm run pin-chart-images` has run where the registries are reachable.
  problems.push(...chartImageIssues.filter((p) => p.path.endsWith(".version") || environment === "prod"));
  const chartImageWarnings = chartImageIssues.filter((p) => !p.path.endsWith(".version") && environment !== "prod");
  if (c.discovery !== undefined) {
    const url = new URL(c.discovery.url);
    const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
    if (!(url.protocol === "https:" || (url.protocol === "http:" && loopback)) || url.username !== "" || url.password !== "") {
      at("discovery.url", "must be an https URL without credentials (http only on 127.0.0.1 or localhost): the token travels with every request. Put the token in the discoveryToken secret.", c.discovery.url);
    }
    if (c.discoveryToken === undefined && environment !== "local") {
      at("discoveryToken", "is not set, but discovery.url is: set the service's bearer token with `pulumi config set --secret workbench-images:discoveryToken`.");
    }
  }
  problems.push(...hubSecretProblems(c.jupyterhub.values, c.jupyterhubSecrets, ns, raw.secretKeys.has("jupyterhub")));
  // An image the stack names itself in its hub values must be pinned too (it replaces the chart's, and our pin).
  for (const [where, ref] of hubValueImages(c.jupyterhub.values)) {
    if (parseImageRef(ref)?.digest === undefined) {
      const problem = {
        path: `${ns}jupyterhub.values.${where}`,
        message: "names an image by tag; every image that reaches Kubernetes must be pinned by digest. Set tag to \"<tag>@sha256:<64 hex>\" (skopeo inspect --raw docker://<image> | sha256sum), or remove the block to use images/chart-images.yaml's pin.",
        received: renderReceived(ref),
      };
      // The local stack may run tags (its bases may be tags too); everywhere else this is an error.
      (environment === "local" ? poolWarnings : problems).push(problem);
    }
  }

  if (problems.length > 0) throw new ConfigError(`Invalid configuration for stack "${raw.stack}"`, problems);

  const validationMode = c.validation.mode ?? (environment === "local" ? "cpu" : "gpu");
  const { mode: _m, ...validationRest } = c.validation;
  const resolved = {
    project: raw.project,
    stack: raw.stack,
    environment,
    mode,
    buildOnPreview: c.buildOnPreview,
    projectRoot: raw.projectRoot,
    catalog,
    variants,
    registry: c.registry,
    cluster: c.cluster,
    ...(c.kubeconfig !== undefined ? { kubeconfig: c.kubeconfig } : {}),
    gpuPools: c.gpuPools,
    poolsByVariant,
    signing: c.signing,
    scan: c.scan,
    admission: { ...c.admission, requireAttestations: c.admission.requireAttestations ?? environment === "prod" },
    validation: { ...validationRest, mode: validationMode },
    jupyterhub: c.jupyterhub,
    jupyterhubSecrets: c.jupyterhubSecrets,
    jupyterhubValuesSecret: raw.secretKeys.has("jupyterhub"),
    discovery: c.discovery,
    ...(c.discoveryToken !== undefined ? { discoveryToken: c.discoveryToken } : {}),
    users,
    promotion: c.promotion,
    source: c.source,
    perUserContext,
    chartImages: chartImages!,
    warnings: [...poolWarnings, ...chartImageWarnings.filter((p) => !p.path.endsWith(".version"))],
  };
  return { ...resolved, images: resolveImageSpecs(resolved) };
}

/**
 * Reads this stack's configuration from the Pulumi runtime, once. Secret values are wrapped as Pulumi secrets here,
 * the only place that sees them in plain form.
 */
export function loadStackConfig(projectRoot: string = PROJECT_ROOT): StackConfig {
  const project = pulumi.getProject();
  const ns = `${project}:`;
  const values: Record<string, string> = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!key.startsWith(ns)) continue;
    const short = key.slice(ns.length);
    values[short] = value;
    if (isConfigSecret(key)) secretKeys.add(short);
  }
  const { kubeconfig, jupyterhubSecrets, discoveryToken, ...parsed } = parseStackConfig({ project, stack: pulumi.getStack(), projectRoot, values, secretKeys });
  return {
    ...parsed,
    ...(kubeconfig !== undefined ? { kubeconfig: pulumi.secret(kubeconfig) } : {}),
    ...(discoveryToken !== undefined ? { discoveryToken: pulumi.secret(discoveryToken) } : {}),
    jupyterhubSecrets: Object.fromEntries(Object.entries(jupyterhubSecrets).map(([k, v]) => [k, pulumi.secret(v)])),
  };
}

function isConfigSecret(key: string): boolean {
  // @pulumi/pulumi keeps the list of secret keys in the runtime config store (runtime/config.js isConfigSecret).
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (k: string) => boolean };
  return runtimeConfig.isConfigSecret?.(key) ?? false;
}

/**
 * Value paths of chart images the releases will not run with these hub values, so an unpinned one there stops
 * nothing: singleuser.image (replaced by our default profile's digest), the pre-puller hook (always disabled),
 * autohttps' traefik and secret-sync (only with proxy.https letsencrypt), network tools (only while
 * singleuser.cloudMetadata.blockWithIptables), the user scheduler and placeholders when turned off, Kyverno's helm-test
 * image, and every image block the stack sets itself (checked as its own value instead).
 */
export function chartImagesNotRun(values: Record<string, unknown>): Partial<Record<"jupyterhub" | "kyverno", ReadonlySet<string>>> {
  const get = (...keys: string[]) => keys.reduce<unknown>((node, k) => (node !== null && typeof node === "object" ? (node as Record<string, unknown>)[k] : undefined), values);
  const hub = new Set(["singleuser.image", "prePuller.hook.image"]);
  const https = get("proxy", "https", "enabled") === true && (get("proxy", "https", "type") ?? "letsencrypt") === "letsencrypt";
  if (!https) ["proxy.traefik.image", "proxy.secretSync.image"].forEach((p) => hub.add(p));
  if (get("singleuser", "cloudMetadata", "blockWithIptables") === false) hub.add("singleuser.networkTools.image");
  if (get("scheduling", "userScheduler", "enabled") === false) hub.add("scheduling.userScheduler.image");
  if (get("scheduling", "userPlaceholder", "enabled") === false) hub.add("scheduling.userPlaceholder.image");
  for (const [where] of hubValueImages(values)) hub.add(where);
  return { jupyterhub: hub, kyverno: new Set(["test.image"]) };
}

/** Image blocks the stack's hub values set (z2jh's `{name, tag}` shape, at any depth): value path → name:tag. */
export function hubValueImages(values: Record<string, unknown>, prefix: string[] = []): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(values)) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) continue;
    const block = value as Record<string, unknown>;
    if (key === "image" && typeof block["name"] === "string") {
      found.push([[...prefix, key].join("."), typeof block["tag"] === "string" && block["tag"] !== "" ? `${block["name"]}:${block["tag"]}` : String(block["name"])]);
    } else found.push(...hubValueImages(block, [...prefix, key]));
  }
  return found;
}

/** Keys of the z2jh chart (and of JupyterHub's authenticators it configures) whose values are credentials. */
const CHART_SECRET_KEY = /^(?:client_secret|clientSecret|cookieSecret|secretToken|apiToken|api_token|password|[A-Za-z]+_password|keys)$/;
/** Value paths the program generates: a jupyterhubSecrets entry there would silently replace what we computed. */
const GENERATED_HUB_PATHS = ["hub.extraConfig.50-workbench-profiles", "singleuser.profileList", "singleuser.image", "prePuller"];

/**
 * Chart secrets given in plain `jupyterhub.values` (unless the whole key is a Pulumi secret), and jupyterhubSecrets
 * paths that the chart does not have or that would overwrite generated values (issue #13).
 */
export function hubSecretProblems(values: Record<string, unknown>, secrets: Record<string, string>, ns: string, valuesAreSecret: boolean): Problem[] {
  const problems: Problem[] = [];
  const walk = (node: unknown, at: string[]) => {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      const here = [...at, key];
      if (CHART_SECRET_KEY.test(key) && typeof value === "string" && value !== "" && !valuesAreSecret && !(key === "keys" && at.at(-1) !== "CryptKeeper")) {
        problems.push({
          path: `${ns}jupyterhub.values.${here.join(".")}`,
          message: `is a credential in plain configuration (stored and shown in clear). Remove it here and set it with \`pulumi config set --secret --path '${ns}jupyterhubSecrets["${here.join(".")}"]' …\`.`,
        });
      } else walk(value, here);
    }
  };
  walk(values, []);
  for (const dotted of Object.keys(secrets)) {
    const generated = GENERATED_HUB_PATHS.find((g) => dotted === g || dotted.startsWith(`${g}.`) || g.startsWith(`${dotted}.`));
    if (generated !== undefined) {
      problems.push({ path: `${ns}jupyterhubSecrets.${dotted}`, message: `would overwrite ${generated}, which this program generates. Remove it.` });
      continue;
    }
    // The chart's schema (tightened the way validateHubValues does) must know the path: set a placeholder there.
    const probe: HubValues = {};
    setPath(probe, dotted.split("."), "x");
    const unknown = validateHubValues(mergeHubValues(loadChartDefaults(), probe, {})).filter((m) => /not allowed|unknown|additional/i.test(m));
    if (unknown.length > 0) {
      problems.push({ path: `${ns}jupyterhubSecrets.${dotted}`, message: `is not a value path of the zero-to-jupyterhub chart (${unknown[0]}). Use the chart's own path, e.g. hub.config.GitHubOAuthenticator.client_secret.` });
    }
  }
  return problems;
}

/**
 * The catalog's problems when the stack file itself did not parse: read with what can be told from the raw input
 * (catalogPath when it is a string, the repository prefix when given, digests required unless the stack is local).
 */
function catalogProblemsAnyway(raw: RawConfig, input: Record<string, unknown>, ns: string): Problem[] {
  const catalogPath = typeof input["catalogPath"] === "string" && input["catalogPath"] !== "" ? input["catalogPath"] : "images/catalog.yaml";
  const registry = input["registry"] as { repositoryPrefix?: unknown } | undefined;
  const prefix = typeof registry?.repositoryPrefix === "string" ? registry.repositoryPrefix : "workbench";
  const file = path.resolve(raw.projectRoot, catalogPath);
  const where = projectPath(raw.projectRoot, file);
  if ("problem" in where) return where.problem === "outside" ? [{ path: `${ns}catalogPath`, message: "is outside the project (after resolving '..' and symlinks). Keep the catalog inside the project, e.g. images/catalog.yaml; it is never read from elsewhere.", received: renderReceived(catalogPath) }] : [];
  const environment = input["environment"] ?? raw.stack;
  return loadCatalog(file, { repositoryPrefix: prefix, requireDigests: environment !== "local", displayPath: catalogPath, projectRoot: raw.projectRoot }).problems;
}
