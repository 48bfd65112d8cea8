import * as fs from "node:fs";
import * as path from "node:path";
import { isValidRepositoryName, sanitizeLogin, userRepositoryName } from "../lib/naming";
import { didYouMean, type Problem, renderReceived } from "../lib/problems";
import type { CatalogVariant } from "./catalog";
import type { StackInput, UserConfig } from "./schema";

/**
 * Users (seed 002): sanitized names must be unique, ids outside the system range, bases in the catalog. Returns the
 * users with their derived names; problems are appended to `problems`.
 */
export function resolveUsers(
  c: StackInput,
  catalog: { byName: ReadonlyMap<string, CatalogVariant>; names: readonly string[]; variants: readonly CatalogVariant[] },
  ns: string,
  problems: Problem[],
): UserConfig[] {
  const { byName, names, variants } = catalog;
  const at = (key: string, message: string, received?: unknown) =>
    problems.push({ path: `${ns}${key}`, message, ...(received !== undefined ? { received: renderReceived(received) } : {}) });
  const users: UserConfig[] = [];
  const byUsername = new Map<string, number>();
  c.users.forEach((u, i) => {
    const username = sanitizeLogin(u.login);
    if (username === "") at(`users[${i}].login`, "sanitizes to an empty username. Use a login with letters or digits.", u.login);
    const prior = byUsername.get(username);
    if (prior !== undefined && c.users[prior]!.login !== u.login) {
      at(`users[${i}].login`, `sanitizes to "${username}", the same username as users[${prior}].login. Two users cannot share a Linux username: change one login.`, u.login);
    } else byUsername.set(username, i);
    if (u.uid < 1000) at(`users[${i}].uid`, "is below 1000, the range of system accounts. Use the user's own UID (≥ 1000).", u.uid);
    if (u.gid < 1000) at(`users[${i}].gid`, "is below 1000, the range of system groups. Use the user's own GID (≥ 1000).", u.gid);
    if (!byName.has(u.baseVariant)) {
      at(`users[${i}].baseVariant`, `names no catalog variant.${didYouMean(u.baseVariant, names) || ` Catalog variants: ${names.join(", ")}.`}`, u.baseVariant);
    } else if (!variants.some((v) => v.name === u.baseVariant)) {
      at(`users[${i}].baseVariant`, "names a variant disabled on this stack. Enable it or choose another base.", u.baseVariant);
    }
    const repositoryName = userRepositoryName(c.registry.repositoryPrefix, u.uid, u.project);
    if (!isValidRepositoryName(repositoryName)) at(`users[${i}].project`, `gives repository "${repositoryName}", which is not a valid repository name. Shorten the project.`, u.project);
    users.push({ ...u, username, repositoryName, id: `user-${username}-${u.project}` });
  });  return users;
}

/** The per-user layer must exist beside the catalog, and each (user, project) pair has one entry. */
export function perUserProblems(users: readonly UserConfig[], perUserContext: string, projectRoot: string, ns: string): Problem[] {
  const problems: Problem[] = [];
  const at = (key: string, message: string, received?: unknown) =>
    problems.push({ path: `${ns}${key}`, message, ...(received !== undefined ? { received: renderReceived(received) } : {}) });
  if (users.length > 0 && !fs.existsSync(path.join(perUserContext, "Dockerfile"))) {
    at("users", `need the per-user layer ${path.relative(projectRoot, path.join(perUserContext, "Dockerfile"))} beside the catalog. Add it, or remove the users.`);
  }
  const ids = new Set<string>();
  users.forEach((u, i) => {
    // Same login twice with one project; different logins that collide were reported above.
    if (ids.has(u.id) && users.some((o, j) => j < i && o.id === u.id && o.login === u.login)) at(`users[${i}].project`, `repeats the project of another entry for ${u.login}. Each (user, project) pair needs one entry.`, u.project);
    ids.add(u.id);
  });

  return problems;
}
