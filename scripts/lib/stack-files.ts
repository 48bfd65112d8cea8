import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { SECRET_PLACEHOLDER } from "./plan-runtime";
import { ConfigError, renderReceived } from "../../lib/problems";

/**
 * Reads configuration the way the Pulumi CLI would hand it to the program: the project's `config:` defaults from
 * Pulumi.yaml, overridden key by key by the stack file's `config:`. Values encrypted with `secure:` cannot be read
 * offline; they become "[secret]" and are marked secret, which is all the program needs to plan.
 */
export interface StackFileConfig {
  project: string;
  config: Record<string, string>;
  secretKeys: string[];
}

function asConfigString(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Replaces `{secure: …}` leaves with the placeholder; reports whether any was found. */
function unsecure(value: unknown): { value: unknown; secret: boolean } {
  if (Array.isArray(value)) {
    const items = value.map(unsecure);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1 && keys[0] === "secure") return { value: SECRET_PLACEHOLDER, secret: true };
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const r = unsecure(obj[k]);
      out[k] = r.value;
      secret ||= r.secret;
    }
    return { value: out, secret };
  }
  return { value, secret: false };
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "does not exist" : code === "EISDIR" ? "is a directory, not a file" : `cannot be read (${code ?? (e as Error).message})`;
    throw new ConfigError(`Cannot read ${path.basename(file)}`, [{ path: file, message: `${why}. Pass an existing stack name with --stack, or a file with --config.` }]);
  }
  let parsed: unknown;
  try {
    // yaml's default maxAliasCount (100) refuses an alias bomb here, before it expands.
    parsed = parse(text);
  } catch (e) {
    const first = (e as Error).message.split("\n")[0];
    const where = / at (line \d+, column \d+):?$/.exec(first ?? "")?.[1];
    throw new ConfigError(`Cannot read ${path.basename(file)}`, [
      /alias/i.test(first ?? "")
        ? { path: file, message: `cannot be expanded: ${first}. Write the repeated values out instead of nesting aliases.` }
        : { path: file, message: `is not valid YAML${where ? ` at ${where}` : ""}: ${(first ?? "").replace(/ at line \d+, column \d+:?$/, "")}. Fix the syntax there.` },
    ]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`Cannot read ${path.basename(file)}`, [
      { path: file, message: "must be a YAML mapping with a `config:` key (what `pulumi config set` writes).", received: renderReceived(parsed) },
    ]);
  }
  const config = (parsed as Record<string, unknown>)["config"];
  if (config !== undefined && config !== null && (typeof config !== "object" || Array.isArray(config))) {
    throw new ConfigError(`Cannot read ${path.basename(file)}`, [
      { path: `${file}: config`, message: "must be a mapping of settings (`workbench-images:<key>: <value>`).", received: renderReceived(config) },
    ]);
  }
  return parsed as Record<string, unknown>;
}

export function readStackConfig(projectRoot: string, stackFile: string): StackFileConfig {
  const projectFile = readYaml(path.join(projectRoot, "Pulumi.yaml"));
  const project = String(projectFile["name"]);
  const config: Record<string, string> = {};
  const secretKeys = new Set<string>();
  const fullKey = (k: string) => (k.includes(":") ? k : `${project}:${k}`);
  for (const [key, decl] of Object.entries((projectFile["config"] as Record<string, unknown> | undefined) ?? {})) {
    if (decl !== null && typeof decl === "object" && !Array.isArray(decl)) {
      const d = decl as Record<string, unknown>;
      const value = "value" in d ? d["value"] : d["default"];
      if (value !== undefined) config[fullKey(key)] = asConfigString(value);
    } else if (decl !== undefined) {
      config[fullKey(key)] = asConfigString(decl);
    }
  }
  const stack = readYaml(stackFile);
  for (const [key, raw] of Object.entries((stack["config"] as Record<string, unknown> | undefined) ?? {})) {
    const { value, secret } = unsecure(raw);
    config[fullKey(key)] = asConfigString(value);
    if (secret) secretKeys.add(fullKey(key));
    else secretKeys.delete(fullKey(key));
  }
  return { project, config, secretKeys: [...secretKeys].sort() };
}
