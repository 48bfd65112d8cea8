/**
 * The registry copy of promotion and release tagging (issue #7): skopeo commands that copy a digest between
 * registries and tag it, as plain text. Pure: PromotedImage and ReleaseTag run them; the tests check their exact text.
 */
import { PROMOTED_TAG_PREFIX, RELEASE_TAG_PREFIX } from "../registry/ecr";
import { DIGEST_DESCRIPTION, digestHex, isDigest, parseImageRef } from "../../lib/image-ref";
import { shellJoin, shellQuote } from "../../lib/shell";
export const PROMOTION_CONFIG_KEY = "workbench-images:promotion";

// Registry tag grammar (distribution/reference).
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
// Loopback registries speak plain http (the local stack's registry, test registries); everything else keeps TLS.

// ---------------------------------------------------------------------------------------------------------------
// The copy command

export interface CopyImageOptions {
  /** `repository@sha256:…`: what dev validated. A tag beside the digest is dropped (skopeo refuses both at once). */
  source: string;
  /** The destination repository, without tag or digest: `host[:port]/path`. */
  destination: string;
  /** The tag the copy gets in the destination (`promoted-<12 hex>`), so lifecycle rules keep it. */
  tag: string;
  /** @default true: verify TLS to the source registry */
  srcTlsVerify?: boolean;
  /** @default true: verify TLS to the destination registry */
  destTlsVerify?: boolean;
  /**
   * Name of an environment variable holding `USER:PASSWORD` for the source registry.
   * @default none: skopeo uses the caller's own registry login (auth.json / docker config)
   */
  srcCredsEnv?: string;
  /** As `srcCredsEnv`, for the destination registry. @default none */
  destCredsEnv?: string;
}

export interface CopyCommand {
  /** argv: run it without a shell (execFile). */
  command: string[];
  /** Extra environment the command needs beyond the credential variables the caller sets. @default none */
  env?: Record<string, string>;
}

interface CheckedCopy {
  source: string;
  digest: string;
  destination: string;
  tag: string;
  /** skopeo copy's flags without credentials. */
  flags: string[];
}

function checkCopy(o: CopyImageOptions): CheckedCopy {
  const src = parseImageRef(o.source);
  if (src?.digest === undefined) {
    throw new Error(
      `copyImageCommand: source "${o.source}" is not pinned by digest. Promotion copies exactly the digest that was ` +
        "validated: pass repository@sha256:<64 hex>.",
    );
  }
  const dest = parseImageRef(o.destination);
  if (dest === undefined || dest.tag !== undefined || dest.digest !== undefined) {
    throw new Error(
      `copyImageCommand: destination "${o.destination}" must be a repository (host[:port]/path) without tag or ` +
        "digest; the tag is passed separately.",
    );
  }
  if (!TAG.test(o.tag)) {
    throw new Error(`copyImageCommand: tag "${o.tag}" is not a valid tag (letters, digits, '_', '.', '-'; at most 128).`);
  }
  for (const [key, name] of [["srcCredsEnv", o.srcCredsEnv], ["destCredsEnv", o.destCredsEnv]] as const) {
    if (name !== undefined && !ENV_NAME.test(name)) {
      throw new Error(`copyImageCommand: ${key} "${name}" is not an environment variable name (A-Z, 0-9, _).`);
    }
  }
  const flags = ["--all", "--preserve-digests"];
  if (o.srcTlsVerify === false) flags.push("--src-tls-verify=false");
  if (o.destTlsVerify === false) flags.push("--dest-tls-verify=false");
  return { source: `${src.repository}@${src.digest}`, digest: src.digest, destination: dest.repository, tag: o.tag, flags };
}

/**
 * `skopeo copy --all --preserve-digests … docker://<source@digest> docker://<destination>:<tag>`.
 *
 * `--all` copies every platform of an index and `--preserve-digests` makes skopeo fail rather than re-encode anything
 * (skopeo-copy(1)): the digest prod serves must be the digest dev validated and signed. Credentials never appear in
 * argv, where `ps` and Pulumi's state would show them: with `srcCredsEnv`/`destCredsEnv` the command becomes
 * `sh -c 'exec skopeo copy --src-creds "$VAR" … "$@"' …`, so the shell expands the variable into skopeo's own argv.
 */
export function copyImageCommand(o: CopyImageOptions): CopyCommand {
  const c = checkCopy(o);
  const refs = [`docker://${c.source}`, `docker://${c.destination}:${c.tag}`];
  const creds = credsFlags(o);
  if (creds === "") return { command: ["skopeo", "copy", ...c.flags, ...refs] };
  return { command: ["sh", "-c", `exec skopeo copy${creds} "$@"`, "skopeo-copy", ...c.flags, ...refs] };
}

function credsFlags(o: Pick<CopyImageOptions, "srcCredsEnv" | "destCredsEnv">, inspect = false): string {
  let out = "";
  if (!inspect && o.srcCredsEnv !== undefined) out += ` --src-creds "$${o.srcCredsEnv}"`;
  if (o.destCredsEnv !== undefined) out += ` ${inspect ? "--creds" : "--dest-creds"} "$${o.destCredsEnv}"`;
  return out;
}

/**
 * The shell script PromotedImage runs (local.Command `create`). It copies only when the destination tag does not
 * already hold the digest: ECR refuses to push a tag that exists in an immutable repository even when the digest is
 * the same (moby/buildkit#3776, aws/containers-roadmap#2179), and the command runs again whenever its inputs change
 * (ECR's 12-hour login token is one of them), so a blind copy would fail every later `pulumi up`. The check compares
 * the manifest bytes behind the tag with those behind the digest. Credentials reach skopeo only through variables.
 */
export function copyImageScript(o: CopyImageOptions): string {
  const c = checkCopy(o);
  const destTls = o.destTlsVerify === false ? " --tls-verify=false" : "";
  const inspect = (ref: string) => `skopeo inspect --raw${destTls}${credsFlags(o, true)} ${shellQuote(ref)} 2>/dev/null`;
  const tagged = `${c.destination}:${c.tag}`;
  const copy = `skopeo copy${credsFlags(o)} ${shellJoin([...c.flags, `docker://${c.source}`, `docker://${tagged}`])}`;
  return [
    "set -eu",
    `tagged=$(${inspect(`docker://${tagged}`)}) || tagged=`,
    `pinned=$(${inspect(`docker://${c.destination}@${c.digest}`)}) || pinned=`,
    'if [ -n "$tagged" ] && [ "$tagged" = "$pinned" ]; then',
    `  echo ${shellQuote(`${tagged} already holds ${c.digest}`)}`,
    "else",
    `  ${copy}`,
    "fi",
    `echo ${shellQuote(`${c.destination}@${c.digest}`)}`,
  ].join("\n");
}


/** The copy in prod is tagged `promoted-<first 12 hex of the digest>`; ECR lifecycle never expires these tags. */
export function promotedTag(digest: string): string {
  return digestTag("promotedTag", PROMOTED_TAG_PREFIX, digest);
}

/** A digest published to JupyterHub in dev is tagged `release-<first 12 hex>`, which ECR lifecycle never expires. */
export function releaseTag(digest: string): string {
  return digestTag("releaseTag", RELEASE_TAG_PREFIX, digest);
}

function digestTag(fn: string, prefix: string, digest: string): string {
  if (!isDigest(digest)) throw new Error(`${fn}: "${digest}" is not ${DIGEST_DESCRIPTION}.`);
  return `${prefix}${digestHex(digest, 12)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The source stack's outputs

