/**
 * Names derived from user input. Pure functions, tested without mocks.
 */

/** ECR repository names (AWS ECR CreateRepository): path components of lowercase alphanumerics joined by . _ -, 2-256 chars. */
const ECR_REPOSITORY = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export function isValidRepositoryName(name: string): boolean {
  return name.length >= 2 && name.length <= 256 && ECR_REPOSITORY.test(name);
}

/** The repository of a catalog variant: `<prefix>/<variant>`. */
export function variantRepositoryName(prefix: string, variant: string): string {
  return `${prefix}/${variant}`;
}

/** The per-user namespace of seed 002 (`ds01-{USER_ID}/{PROJECT_NAME}`), with our prefix: `<prefix>-<uid>/<project>`. */
export function userRepositoryName(prefix: string, uid: number, project: string): string {
  return `${prefix}-${uid}/${project}`;
}

export const MAX_LINUX_USERNAME = 32;

/**
 * Seed 002's username sanitization: `@` → `-at-`, `.` → `-`, anything else invalid → `-`, so that
 * `h.baker@hertie-school.lan` becomes `h-baker-at-hertie-school-lan`. We also lowercase (useradd's default
 * NAME_REGEX rejects capitals), collapse runs of `-`, trim `-` at both ends, prefix `u` when the name would start
 * with a digit, and cut to 32 characters (the useradd limit) without a trailing `-`. Collisions after this are
 * configuration errors, found by the caller.
 */
export function sanitizeLogin(login: string): string {
  let name = login
    .toLowerCase()
    .replace(/@/g, "-at-")
    .replace(/\./g, "-")
    .replace(/[^a-z0-9_-]/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^-+|-+$/g, "");
  if (/^[0-9]/.test(name)) name = `u${name}`;
  if (name.length > MAX_LINUX_USERNAME) name = name.slice(0, MAX_LINUX_USERNAME).replace(/-+$/, "");
  return name;
}

/** Kubernetes object names must be DNS-1123 subdomains; we keep to labels (≤ 63) so they also work as label values. */
export function k8sName(...parts: string[]): string {
  const joined = parts
    .join("-")
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^-+|-+$/g, "");
  return joined.length > 63 ? joined.slice(0, 63).replace(/-+$/, "") : joined;
}
