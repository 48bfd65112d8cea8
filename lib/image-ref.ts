/**
 * Image references, the one definition of the project (issue #10): `[registry/]repository[:tag][@sha256:<64 hex>]`.
 * Only a digest identifies content; the tag is kept for humans and for `npm run pin-bases`. Every module that reads,
 * checks or writes a digest or a digest reference uses these functions; none keeps its own regex.
 */
export interface ImageRef {
  /** Registry and repository path, e.g. `quay.io/opendatahub/workbench-images`. */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>` when pinned. */
  digest?: string;
}

/** `repository@sha256:<64 hex>`, with no tag: the form that reaches Kubernetes, cosign, trivy and skopeo. */
export interface DigestRef {
  repository: string;
  digest: string;
}

/** `sha256:` and 64 lowercase hex characters (OCI image-spec descriptor digests as registries report them). */
export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
/** How error messages describe a digest. */
export const DIGEST_DESCRIPTION = 'a digest "sha256:" followed by 64 lowercase hex characters';
// Docker reference grammar (distribution/reference), simplified to what registries accept for names and tags.
const REPOSITORY = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isDigest(value: unknown): value is string {
  return typeof value === "string" && DIGEST_PATTERN.test(value);
}

export function parseImageRef(ref: string): ImageRef | undefined {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) return undefined;
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  if (!REPOSITORY.test(rest)) return undefined;
  return { repository: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function formatImageRef(ref: ImageRef): string {
  return `${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** `repository@sha256:…` with no tag, or undefined for anything else (a tag beside the digest included). */
export function parseDigestRef(ref: string): DigestRef | undefined {
  const parsed = parseImageRef(ref);
  if (parsed?.digest === undefined || parsed.tag !== undefined) return undefined;
  return { repository: parsed.repository, digest: parsed.digest };
}

export function formatDigestRef(ref: DigestRef): string {
  return `${ref.repository}@${ref.digest}`;
}

/**
 * Throws unless `ref` is `repository@sha256:<64 hex>`. `what` names the operation for the message ("cosign signs",
 * "the scan gate scans"). Callers inside a component turn the Error into a ResourceError.
 */
export function requireDigestRef(ref: string, what: string): DigestRef {
  const parsed = parseDigestRef(ref);
  if (parsed !== undefined) return parsed;
  throw new Error(
    `args.ref must be an image reference pinned by digest (repository@sha256:<64 hex>), got ${JSON.stringify(ref)}: ` +
      `${what} a digest, never a tag, because a tag can later point at other content. ` +
      "Pass the image's imageRef (or the ScanGate's scannedRef).",
  );
}

/** `repository@sha256:…`, the only form that may reach Kubernetes. Drops a tag. Throws when there is no digest. */
export function pinnedRef(ref: string): string {
  const parsed = parseImageRef(ref);
  if (parsed?.digest === undefined) throw new Error(`image reference "${ref}" is not pinned by digest`);
  return formatDigestRef({ repository: parsed.repository, digest: parsed.digest });
}

/** Whether `ref` carries a digest (a tag beside it is allowed: `name:tag@sha256:…`). */
export function isDigestPinned(ref: string): boolean {
  return parseImageRef(ref)?.digest !== undefined;
}

/** The first `length` hex characters of a digest, for names and tags that must stay short. */
export function digestHex(digest: string, length = 64): string {
  if (!isDigest(digest)) throw new Error(`${JSON.stringify(digest)} is not ${DIGEST_DESCRIPTION}.`);
  return digest.slice("sha256:".length, "sha256:".length + length);
}
