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
  const authenticator = authenticatorClass(c.jupyterhub.values);
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
    const hub = hubUsernameProblem(u.hubUsername ?? u.login, authenticator);
    if (hub !== undefined) at(`users[${i}].${u.hubUsername !== undefined ? "hubUsername" : "login"}`, hub, u.hubUsername ?? u.login);
    users.push({ ...u, hubUsername: (u.hubUsername ?? u.login).toLowerCase(), username, repositoryName, id: `user-${username}-${u.project}` });
  });
  // A uid belongs to one login (seed 002: it is the person's id on the shared hosts); with it, a (uid, project) pair
  // names one repository (`<prefix>-<uid>/<project>`), and perUserProblems refuses the same pair twice.
  const byUid = new Map<number, number>();
  users.forEach((u, i) => {
    const uidOwner = byUid.get(u.uid);
    if (uidOwner !== undefined && users[uidOwner]!.login !== u.login) {
      at(`users[${i}].uid`, `is also users[${uidOwner}]'s uid (${users[uidOwner]!.login}). A uid belongs to one person: use this user's own uid.`, u.uid);
    } else if (uidOwner === undefined) byUid.set(u.uid, i);
  });
  const owners = new Map<string, number>();
  users.forEach((u, i) => {
    const prior = owners.get(`${u.hubUsername}\n${u.project}`);
    if (prior !== undefined && users[prior]!.login !== u.login) {
      at(`users[${i}].hubUsername`, `is also users[${prior}]'s hub username for project ${u.project}: one hub user cannot own two people's images. Fix one of them.`, u.hubUsername);
    }
    owners.set(`${u.hubUsername}\n${u.project}`, i);
  });
  return users;
}

/** The hub's authenticator as z2jh reads it (`hub.config.JupyterHub.authenticator_class`), lowercased. */
export function authenticatorClass(values: Record<string, unknown>): string | undefined {
  const hub = values["hub"] as { config?: { JupyterHub?: { authenticator_class?: unknown } } } | undefined;
  const cls = hub?.config?.JupyterHub?.authenticator_class;
  return typeof cls === "string" ? cls.toLowerCase() : undefined;
}

/**
 * Why `name` can never be a JupyterHub username under this authenticator, or undefined. GitHub logins: letters,
 * digits and single hyphens, not at either end, at most 39 characters (GitHub's sign-up rule; OAuthenticator's
 * GitHubOAuthenticator uses the login as the username). GitLab: letters, digits, '_', '.', '-', starting with a
 * letter, digit or '_' (GitLab's username rule). Any authenticator: JupyterHub puts the name in URL paths and
 * server names, so no '/', whitespace or control characters.
 */
export function hubUsernameProblem(name: string, authenticator: string | undefined): string | undefined {
  const fix = "Set users[].hubUsername to the owner's username on the hub.";
  if (/[\s/\p{Cc}]/u.test(name)) return `contains '/', whitespace or a control character, which no JupyterHub username has. ${fix}`;
  if (authenticator !== undefined && /(^|\.)github(oauthenticator)?$/.test(authenticator)) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/.test(name)) {
      return `is not a GitHub login (letters, digits and single hyphens, at most 39 characters), and the hub signs users in with GitHub (hub.config.JupyterHub.authenticator_class). Set users[].hubUsername to the owner's GitHub login.`;
    }
  }
  if (authenticator !== undefined && /(^|\.)gitlab(oauthenticator)?$/.test(authenticator)) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) || /\.(git|atom)$/.test(name)) {
      return `is not a GitLab username, and the hub signs users in with GitLab (hub.config.JupyterHub.authenticator_class). Set users[].hubUsername to the owner's GitLab username.`;
    }
  }
  return undefined;
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
