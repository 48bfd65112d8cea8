import { z } from "zod";
import { parseDigestRef } from "../../lib/image-ref";
import { shellQuote } from "../../lib/shell";
import { BYTE_STRING_PATTERN } from "./kubespawner";

/**
 * Seed 003's discovery record (issue #14): what the seed's build sends to its control service after a successful build,
 * field for field as the seed writes it:
 *
 *   { "name": "jupyter-ml-gpu", "display_name": "Deep Learning (GPU)", "description": "…", "category": "jupyter",
 *     "tags": ["jupyter-compatible"], "metadata": { "gpu_required": true, "cpu_limit": 8, "mem_limit": "16G" } }
 *
 * Our catalog entry is that record plus what only this program knows: the digest the hub offers and the GPU pools it
 * was validated on. The same entry goes to the `workbench-image-catalog` ConfigMap, the `catalog` stack output and,
 * when `discovery.url` is set, the discovery service. Pure: nothing here touches Pulumi.
 */

/** Every image the hub offers runs `jupyterhub-singleuser` (images/catalog.yaml, step 4), so every record carries it. */
export const JUPYTER_COMPATIBLE_TAG = "jupyter-compatible";

/** Seed 003's category for notebook images; a published variant may name another (`publish.category`). */
export const DEFAULT_DISCOVERY_CATEGORY = "jupyter";

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** A record's category: lowercase words joined by '-' (seed 003: "jupyter"). For the catalog schema too. */
export const discoveryCategory = z.string().regex(SLUG, { error: 'must be lowercase words joined by "-", like "jupyter".' });

/** One tag: lowercase words joined by '-' (seed 003: "jupyter-compatible"). For the catalog schema too. */
export const discoveryTag = z.string().regex(SLUG, { error: 'must be lowercase words joined by "-", like "jupyter-compatible".' });

/** Seed 003's record, exactly its fields and nothing else. */
export const discoveryRecordSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, { error: "must be a catalog variant name." }),
  display_name: z.string().min(1),
  description: z.string().min(1),
  category: discoveryCategory,
  tags: z
    .array(discoveryTag)
    .refine((tags) => tags.includes(JUPYTER_COMPATIBLE_TAG), { error: `must include "${JUPYTER_COMPATIBLE_TAG}": every image the hub offers runs jupyterhub-singleuser.` })
    .refine((tags) => new Set(tags).size === tags.length, { error: "must not repeat a tag." }),
  metadata: z.strictObject({
    gpu_required: z.boolean(),
    /** CPU cores, a number as the seed writes it (8), from `publish.resources.cpu.limit`. */
    cpu_limit: z.number().positive(),
    /** A byte string as the seed writes it ("16G"), from `publish.resources.memory.limit`. */
    mem_limit: z.string().regex(BYTE_STRING_PATTERN, { error: 'must be a byte string like "16G".' }),
  }),
});
export type DiscoveryRecord = z.infer<typeof discoveryRecordSchema>;

/** One entry of the published catalog: seed 003's record, the digest the hub offers, and its validated GPU pools. */
export const catalogEntrySchema = discoveryRecordSchema.extend({
  /** `repository@sha256:<64 hex>`: what the hub's profile runs, gated (and for GPU images validated). */
  imageRef: z.string().refine((ref) => parseDigestRef(ref) !== undefined, { error: "must be repository@sha256:<64 hex>." }),
  /** GPU pools the image was validated on and is offered on; [] for CPU images. */
  pools: z.array(z.string().min(1)),
});
export type CatalogEntry = z.infer<typeof catalogEntrySchema>;

/** What a record is made of: a catalog variant's name, GPU-ness and `publish` block. */
export interface DiscoverySource {
  name: string;
  gpu: boolean;
  publish: {
    displayName: string;
    description: string;
    /** @default "jupyter" (seed 003) */
    category?: string | undefined;
    /** Tags besides `jupyter-compatible`, which every record carries first. @default [] */
    tags?: string[] | undefined;
    resources: { cpu: { limit: number }; memory: { limit: string } };
  };
}

/** Seed 003's record of a published variant: its limits are the profile's limits (`publish.resources`). */
export function discoveryRecord(source: DiscoverySource): DiscoveryRecord {
  const p = source.publish;
  return {
    name: source.name,
    display_name: p.displayName,
    description: p.description,
    category: p.category ?? DEFAULT_DISCOVERY_CATEGORY,
    tags: [JUPYTER_COMPATIBLE_TAG, ...(p.tags ?? []).filter((t) => t !== JUPYTER_COMPATIBLE_TAG)],
    metadata: { gpu_required: source.gpu, cpu_limit: p.resources.cpu.limit, mem_limit: p.resources.memory.limit },
  };
}

/** The catalog entry: the record, then the digest and pools (key order is the published JSON's order). */
export function catalogEntry(record: DiscoveryRecord, imageRef: string, pools: string[]): CatalogEntry {
  return { ...record, imageRef, pools };
}

/** Problems of entries that do not match the schema, one line each with the entry's name and the field's path. */
export function catalogEntryProblems(entries: readonly unknown[]): string[] {
  return entries.flatMap((entry, i) => {
    const parsed = catalogEntrySchema.safeParse(entry);
    if (parsed.success) return [];
    const name = (entry as { name?: unknown } | null)?.name;
    const label = typeof name === "string" ? name : `[${i}]`;
    return parsed.error.issues.map((issue) => `catalog entry ${label}: ${issue.path.length > 0 ? issue.path.join(".") : "(entry)"} ${issue.message}`);
  });
}

// --- Registration with the discovery service -------------------------------------------------------------------

/** The environment variable the registration scripts read the bearer token from; it never appears in a script. */
export const DISCOVERY_TOKEN_ENV = "WORKBENCH_DISCOVERY_TOKEN";

/** The stack's `discovery` keys. */
export interface DiscoveryService {
  /** Base URL; records go to `<url>/images/<name>`. */
  url: string;
  /** Per-attempt limit for connecting and for the whole request (curl --connect-timeout and --max-time). */
  timeoutSeconds: number;
}

export interface DiscoveryRequest {
  service: DiscoveryService;
  /** The image's name (the catalog variant). */
  name: string;
  /** Send `Authorization: Bearer $WORKBENCH_DISCOVERY_TOKEN` (a stack with a token); without, no header at all. */
  withToken: boolean;
  /** Retries of a transient failure (connection refused, timeout, HTTP 408, 429, 500, 502, 503, 504). @default 3 */
  retries?: number;
}

/** `<url>/images/<name>`, one slash between. */
export function discoveryImageUrl(service: DiscoveryService, name: string): string {
  return `${service.url.replace(/\/+$/, "")}/images/${encodeURIComponent(name)}`;
}

/** PUT of the entry at `<url>/images/<name>`: registers the image, or replaces what the service held for it. */
export function registerScript(request: DiscoveryRequest & { entry: CatalogEntry }): string {
  if (request.entry.name !== request.name) throw new Error(`registerScript: the entry is ${request.entry.name}, not ${request.name}`);
  return requestScript(request, "PUT", JSON.stringify(request.entry));
}

/** DELETE of `<url>/images/<name>`; an image the service does not hold (404, 410) counts as removed. */
export function unregisterScript(request: DiscoveryRequest): string {
  return requestScript(request, "DELETE");
}

/**
 * One curl request as a POSIX sh script. The token travels from the environment to curl's stdin (`-H @-`) through
 * the shell's builtin printf: never in the script, curl's argv (visible in `ps`) or its output. curl retries only what
 * it counts as transient (`--retry`, plus `--retry-connrefused`); any other failure, a 4xx above all, fails at once
 * with the server's own message on stderr, which Pulumi shows, and curl's exit status. curl's stderr is kept aside and
 * shown only when there is no server message: an expected 404 on removal prints nothing on stderr.
 */
function requestScript(request: DiscoveryRequest, method: "PUT" | "DELETE", body?: string): string {
  const { service, name } = request;
  const url = discoveryImageUrl(service, name);
  const t = String(service.timeoutSeconds);
  const curl = [
    "curl --silent --show-error --fail-with-body",
    `--connect-timeout ${t} --max-time ${t} --retry ${request.retries ?? 3} --retry-connrefused`,
    `-X ${method}`,
    ...(request.withToken ? ["-H @-"] : []),
    ...(body !== undefined ? [`-H 'Content-Type: application/json' --data-binary ${shellQuote(body)}`] : []),
    `-o "$tmp/body" -w '%{http_code}' "$url" 2>"$tmp/error"`,
  ].join(" ");
  const token = request.withToken ? `printf 'Authorization: Bearer %s\\n' "$${DISCOVERY_TOKEN_ENV}" | ` : "";
  const done = method === "PUT" ? "registered" : "removed";
  return [
    "set -u",
    `url=${shellQuote(url)}`,
    ...(request.withToken
      ? [`if [ -z "\${${DISCOVERY_TOKEN_ENV}:-}" ]; then echo "discovery: ${DISCOVERY_TOKEN_ENV} is empty: set the discoveryToken secret" >&2; exit 2; fi`]
      : []),
    'tmp=$(mktemp -d) || exit 1',
    "trap 'rm -rf \"$tmp\"' EXIT",
    `code=$(${token}${curl})`,
    "rc=$?",
    ...(method === "DELETE" ? ['case "$code" in 404|410) echo "discovery: ' + name + ' was not registered at $url (HTTP $code)"; exit 0;; esac'] : []),
    // The server's own message; without one (no connection, a timeout) curl's, of the last attempt.
    `if [ "$rc" -ne 0 ]; then msg=$(cat "$tmp/body" 2>/dev/null); [ -n "$msg" ] || msg=$(tail -n 1 "$tmp/error"); echo "discovery: ${method} $url failed (HTTP $code, curl exit $rc): $msg" >&2; exit "$rc"; fi`,
    `echo "discovery: ${done} ${name} at $url (HTTP $code)"`,
  ].join("\n");
}
