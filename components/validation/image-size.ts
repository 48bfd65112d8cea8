import { parseDigestRef } from "../../lib/image-ref";

/**
 * The size gate's command (issue #14), as plain text: what one image costs a node to pull, measured from the
 * registry after the push, per platform, against the catalog's `sizeBudgetMB`.
 *
 * What the budget measures: the compressed bytes a node downloads to run the image on one platform, i.e. the sum of
 * the `size` fields of the platform manifest's config and layer descriptors (OCI image-spec manifest.md,
 * "descriptor size"; Docker manifest v2 schema 2 likewise), in MB of 1,000,000 bytes. Not the unpacked size on
 * disk (typically 2-3x more, and not recorded by the registry), not the index or the manifests themselves (a few
 * KB), and not shared-layer savings on a node that already has the base. An index (multi-arch image) is measured
 * per platform: every platform must fit the budget on its own, since a node pulls only its own platform. BuildKit's
 * attestation manifests (platform unknown/unknown, annotation vnd.docker.reference.type=attestation-manifest) are not
 * pulled by a node and are skipped.
 *
 * The command is a Node.js script (`node -e`): Pulumi's Node.js language host already needs `node` on PATH, so it
 * adds no dependency beyond skopeo, which promotion uses too. It calls `skopeo inspect --raw` on the digest and, for
 * an index, on each platform manifest (and `--config` for a single manifest's platform). Credentials never appear in
 * argv or in the script: the username and password come from environment variables (the password a Pulumi secret)
 * and are written to a private auth file (containers-auth.json(5)) that skopeo reads with --authfile and the script
 * deletes. Exit 0: within budget on every platform; 1: over budget (stderr names each platform, its size and the
 * budget); 2: could not measure (skopeo failed, unreadable manifest).
 */

export const SIZE_USERNAME_ENV = "WORKBENCH_SIZE_USERNAME";
export const SIZE_PASSWORD_ENV = "WORKBENCH_SIZE_PASSWORD";
/** Bytes in the MB of `sizeBudgetMB` (SI, as `docker images` and registries' UIs count). */
export const BYTES_PER_MB = 1_000_000;

export interface SizeCheckOptions {
  /** The image's id, for messages. */
  id: string;
  /** `repository@sha256:<64 hex>`. */
  ref: string;
  /** The catalog's sizeBudgetMB. */
  budgetMB: number;
  /** @default true; false for loopback registries, which speak plain http */
  tlsVerify?: boolean;
  /** Read credentials from SIZE_USERNAME_ENV / SIZE_PASSWORD_ENV. @default false: skopeo's own login */
  credentials?: boolean;
}

// The script body: plain ES2020 CommonJS, no dependencies. Kept as text (not a stringified function) so its
// bytes do not depend on which TypeScript transpiler loaded this module: they are part of the Command's triggers.
const BODY = String.raw`const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const INDEX_TYPES = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
const MB = 1000000;
const repo = P.ref.slice(0, P.ref.lastIndexOf("@"));
let tmp;
function cleanup() { if (tmp) { fs.rmSync(tmp, { recursive: true, force: true }); tmp = undefined; } }
function fail(code, message) { process.stderr.write(message + "\n"); cleanup(); process.exit(code); }
const auth = [];
if (P.credentials) {
  const user = process.env[P.userEnv];
  const pass = process.env[P.passEnv];
  if (!user || !pass) fail(2, P.id + ": size check: " + P.userEnv + " and " + P.passEnv + " must hold the registry credentials.");
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "workbench-size-"));
  const file = path.join(tmp, "auth.json");
  const host = repo.split("/")[0];
  fs.writeFileSync(file, JSON.stringify({ auths: { [host]: { auth: Buffer.from(user + ":" + pass).toString("base64") } } }), { mode: 0o600 });
  auth.push("--authfile", file);
}
function inspect(ref, config) {
  const args = ["inspect", "--raw"].concat(config ? ["--config"] : [], P.tlsVerify ? [] : ["--tls-verify=false"], auth, ["docker://" + ref]);
  let text;
  try {
    text = execFileSync("skopeo", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
  } catch (e) {
    const why = (e.stderr ? String(e.stderr) : "").trim() || e.message;
    fail(2, P.id + ": size check: skopeo inspect " + (config ? "--config " : "") + ref + " failed: " + why);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(2, P.id + ": size check: " + ref + " is not JSON: " + e.message);
  }
}
function isIndex(m) { return INDEX_TYPES.includes(m.mediaType) || (m.mediaType === undefined && Array.isArray(m.manifests)); }
function platformOf(p) { return p.os + "/" + p.architecture + (p.variant ? "/" + p.variant : ""); }
function measure(m, ref) {
  if (isIndex(m)) fail(2, P.id + ": size check: " + ref + " is an index inside an index; only one level is supported.");
  if (!m.config || !Array.isArray(m.layers)) fail(2, P.id + ": size check: " + ref + " is not an image manifest with config and layers (mediaType " + JSON.stringify(m.mediaType) + ").");
  let bytes = m.config.size;
  for (const l of m.layers) bytes += l.size;
  if (!Number.isSafeInteger(bytes) || bytes < 0) fail(2, P.id + ": size check: " + ref + " has descriptors without a valid size.");
  return { bytes, layers: m.layers.length };
}
const top = inspect(P.ref, false);
const measured = [];
if (isIndex(top)) {
  for (const d of top.manifests || []) {
    const p = d.platform || {};
    const kind = (d.annotations || {})["vnd.docker.reference.type"];
    if (kind === "attestation-manifest" || !p.os || p.os === "unknown") continue;
    const ref = repo + "@" + d.digest;
    measured.push(Object.assign({ platform: platformOf(p), manifest: d.digest }, measure(inspect(ref, false), ref)));
  }
  if (measured.length === 0) fail(2, P.id + ": size check: the index " + P.ref + " lists no platform manifest.");
} else {
  const size = measure(top, P.ref);
  const config = inspect(P.ref, true);
  measured.push(Object.assign({ platform: platformOf(config), manifest: P.ref.slice(P.ref.lastIndexOf("@") + 1) }, size));
}
cleanup();
const over = [];
for (const m of measured) {
  const mb = (m.bytes / MB).toFixed(1);
  process.stdout.write(P.id + " " + m.platform + ": " + mb + " MB (compressed config + " + m.layers + " layers), budget " + P.budgetMB + " MB\n");
  if (m.bytes > P.budgetMB * MB) over.push(m);
}
for (const m of over) {
  process.stderr.write(P.id + " is over its size budget on " + m.platform + ": a node pulls " + (m.bytes / MB).toFixed(1) + " MB (compressed config + " + m.layers +
    " layers of manifest " + m.manifest + "), sizeBudgetMB is " + P.budgetMB + ". Make the image smaller, or raise sizeBudgetMB for " + P.id + " in images/catalog.yaml.\n");
}
process.exit(over.length > 0 ? 1 : 0);
`;

/**
 * The size check's Node.js script for `node -e`. Throws, naming the option, on a reference without a digest or a
 * budget that is not a positive whole number.
 */
export function sizeCheckScript(o: SizeCheckOptions): string {
  const parsed = parseDigestRef(o.ref);
  if (parsed === undefined) {
    throw new Error(
      `size check of "${o.id}": ${JSON.stringify(o.ref)} is not repository@sha256:<64 hex>. The size gate measures the pushed digest: pass the image's gated imageRef.`,
    );
  }
  if (!Number.isInteger(o.budgetMB) || o.budgetMB <= 0) {
    throw new Error(`size check of "${o.id}": sizeBudgetMB must be a whole number of MB above 0, got ${o.budgetMB}. Fix it in images/catalog.yaml.`);
  }
  const params = {
    id: o.id,
    ref: `${parsed.repository}@${parsed.digest}`,
    budgetMB: o.budgetMB,
    tlsVerify: o.tlsVerify ?? true,
    credentials: o.credentials ?? false,
    userEnv: SIZE_USERNAME_ENV,
    passEnv: SIZE_PASSWORD_ENV,
  };
  return `"use strict";\nconst P = ${JSON.stringify(params)};\n${BODY}`;
}
