/**
 * Reads and writes manifests over the Docker Registry HTTP API V2 (distribution spec), so tests can compare what a
 * registry really stores with what docker or skopeo claimed. Plain http: the test registries listen on 127.0.0.1.
 */
import { createHash } from "node:crypto";

/** Every manifest type our images can have; without them a v2 registry may down-convert or 404 an index. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

export interface ManifestResponse {
  /** The Docker-Content-Digest header. */
  digest: string;
  /** sha256 of the exact bytes served: must equal `digest`. */
  bodyDigest: string;
  mediaType: string;
  body: Buffer;
}

/** One request to a test registry on 127.0.0.1 (undici's own default would wait 300 s for the headers). */
export const REGISTRY_HTTP_TIMEOUT_MS = 30_000;

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** GET /v2/<name>/manifests/<reference>; throws with the status and body unless 200. */
export async function getManifest(registry: string, name: string, reference: string): Promise<ManifestResponse> {
  const url = `http://${registry}/v2/${name}/manifests/${reference}`;
  const res = await fetch(url, {
    headers: { Accept: MANIFEST_ACCEPT },
    signal: AbortSignal.timeout(REGISTRY_HTTP_TIMEOUT_MS),
  });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET ${url} returned ${res.status}: ${body.toString("utf8").slice(0, 300)}`);
  return {
    digest: res.headers.get("docker-content-digest") ?? "",
    bodyDigest: sha256Digest(body),
    mediaType: res.headers.get("content-type") ?? "",
    body,
  };
}

/** HEAD /v2/<name>/manifests/<reference>: the HTTP status (200 when the registry has it). */
export async function manifestStatus(registry: string, name: string, reference: string): Promise<number> {
  const res = await fetch(`http://${registry}/v2/${name}/manifests/${reference}`, {
    method: "HEAD",
    headers: { Accept: MANIFEST_ACCEPT },
    signal: AbortSignal.timeout(REGISTRY_HTTP_TIMEOUT_MS),
  });
  return res.status;
}

/** PUT /v2/<name>/manifests/<reference> with the exact bytes given; returns the digest the registry assigned. */
export async function putManifest(
  registry: string,
  name: string,
  reference: string,
  mediaType: string,
  body: Buffer,
): Promise<string> {
  const url = `http://${registry}/v2/${name}/manifests/${reference}`;
  const res = await fetch(url, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body,
    signal: AbortSignal.timeout(REGISTRY_HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT ${url} returned ${res.status}: ${text.slice(0, 300)}`);
  return res.headers.get("docker-content-digest") ?? "";
}

/** Waits until GET /v2/ answers 200 (the registry is serving), or throws after `timeoutMs`. */
export async function waitForRegistry(registry: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`registry ${registry} exited while starting`);
    try {
      const res = await fetch(`http://${registry}/v2/`, {
        signal: AbortSignal.timeout(Math.max(100, Math.min(5_000, deadline - Date.now()))),
      });
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`registry ${registry} not serving after ${timeoutMs} ms (${last})`);
}
