/**
 * Image references as users write them: `[registry/]repository[:tag][@sha256:<64 hex>]`.
 * Only a digest identifies content; the tag is kept for humans and for `npm run pin-bases`.
 */
export interface ImageRef {
  /** Registry and repository path, e.g. `quay.io/opendatahub/workbench-images`. */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>` when pinned. */
  digest?: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
// Docker reference grammar (distribution/reference), simplified to what registries accept for names and tags.
const REPOSITORY = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function parseImageRef(ref: string): ImageRef | undefined {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return undefined;
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

/** `repository@sha256:…`, the only form that may reach Kubernetes. Throws when the reference has no digest. */
export function pinnedRef(ref: string): string {
  const parsed = parseImageRef(ref);
  if (parsed?.digest === undefined) throw new Error(`image reference "${ref}" is not pinned by digest`);
  return `${parsed.repository}@${parsed.digest}`;
}

export function isDigestPinned(ref: string): boolean {
  return parseImageRef(ref)?.digest !== undefined;
}
