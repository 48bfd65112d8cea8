import * as fs from "node:fs";
import * as path from "node:path";
import { digestHex, isDigest, parseImageRef } from "../../lib/image-ref";

/**
 * The SLSA v1 provenance predicate this program writes for every image it builds or promotes (issue #12 point 7), as
 * pure functions tested without mocks. cosign attaches it, signed, to the image's digest
 * (`cosign attest --type slsaprovenance1`); the in-toto statement around it (subject = the digest) is cosign's.
 *
 * The predicate records only what this program knows exactly, and nothing that changes between runs (no timestamps,
 * no invocation id): the same image yields the same bytes, so `pulumi up` re-attests only when a fact changed.
 *
 * cosign v2.5.3 decodes `--type slsaprovenance1` into in-toto-golang's `slsa_provenance/v1.ProvenancePredicate` and
 * encodes that struct again (pkg/cosign/attestation/attestation.go generateSLSAProvenanceStatementSLSA1): a field
 * the struct does not have is dropped silently, and `buildDefinition` and `runDetails` are required. So only the
 * struct's fields are written here (PREDICATE_FIELDS, checked by the tests); our own facts live in
 * `externalParameters`, which the struct keeps as free-form JSON.
 */

/** The predicate type cosign writes for `--type slsaprovenance1` (in-toto-golang slsa_provenance/v1). */
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
/** The predicate type cosign writes for `--type cyclonedx` (in-toto-golang PredicateCycloneDX). */
export const CYCLONEDX_BOM = "https://cyclonedx.org/bom";

/** What `externalParameters` means for an image built here (docs/supply-chain.md, "Build type: docker-build-v1"). */
export const BUILD_TYPE_DOCKER_BUILD = "https://github.com/workbench-images/workbench-images/blob/main/docs/supply-chain.md#build-type-docker-build-v1";
/** What `externalParameters` means for a digest copied from another stack (docs/supply-chain.md, "Build type: promotion-v1"). */
export const BUILD_TYPE_PROMOTION = "https://github.com/workbench-images/workbench-images/blob/main/docs/supply-chain.md#build-type-promotion-v1";

/**
 * The fields of in-toto-golang's slsa_provenance/v1 structs, by JSON path ("*" = any key or index): what survives
 * cosign's decode and encode. Free-form below `externalParameters`.
 */
export const PREDICATE_FIELDS: Readonly<Record<string, readonly string[]>> = {
  "": ["buildDefinition", "runDetails"],
  buildDefinition: ["buildType", "externalParameters", "internalParameters", "resolvedDependencies"],
  "buildDefinition.resolvedDependencies.*": ["uri", "digest", "name", "downloadLocation", "mediaType", "content", "annotations"],
  runDetails: ["builder", "metadata", "byproducts"],
  "runDetails.builder": ["id", "version", "builderDependencies"],
  "runDetails.metadata": ["invocationId", "startedOn", "finishedOn"],
};

/** The builder: this Pulumi program at its version (package.json). */
export interface ProvenanceBuilder {
  /** A URI naming the program and its version. */
  id: string;
  /** Versions of the builder's parts, e.g. `{ "workbench-images": "0.1.0" }`. */
  version: Readonly<Record<string, string>>;
}

/** The source repository of this program, as the stack records it (source.url, source.revision). */
export interface SourceFacts {
  url: string;
  /** The VCS revision; absent when the stack does not say (never guessed). */
  revision?: string;
}

/**
 * How a built image was made: exactly the inputs of its content hash (components/build/content-hash.ts) and of its
 * docker-build Image. `T` is `string` once every fact is known; a per-user image's base is another image's Output.
 * Build args are plain catalog data, never Pulumi secrets: the gate refuses any fact that is not a plain string or
 * an Output marked secret (gate-image.ts), so no secret can reach a predicate that is pushed next to the image.
 */
export interface BuildOrigin<T = string> {
  kind: "build";
  /** Build context and Dockerfile, relative to the project root. */
  context: string;
  dockerfile: string;
  /** The Dockerfile stage built. @default the last stage */
  target?: string;
  platforms: readonly string[];
  /** Build args as the catalog sets them, base-image args excluded (those are in `bases`). */
  buildArgs: Readonly<Record<string, string>>;
  /** Every base image by build arg (the base arg and the extra bases), each pinned by digest. */
  bases: Readonly<Record<string, T>>;
  source: SourceFacts;
}

/** How a promoted image got here: copied by digest from another stack, which built, scanned, signed and validated it. */
export interface PromotionOrigin {
  kind: "promotion";
  /** Where the digest was copied from, `repository@sha256:…` (promotion.images.<id>.source). */
  sourceRef: string;
  /** The stack it was promoted from (promotion.from). */
  fromStack: string;
  /** The pools the source stack validated it on (promotion.images.<id>.validatedPools). */
  validatedPools: readonly string[];
  source: SourceFacts;
}

export type ImageOrigin<T = string> = BuildOrigin<T> | PromotionOrigin;

export interface ProvenanceFacts {
  builder: ProvenanceBuilder;
  /** The registry tag that holds the digest: `build-<content hash>` or `promoted-<12 hex>`. */
  tag: string;
  /** The attested digest (the statement's subject, which cosign writes; used here to check the origin). */
  digest: string;
  origin: ImageOrigin;
}

export interface ResourceDescriptor {
  uri?: string;
  digest?: Record<string, string>;
  name?: string;
}

export interface SlsaProvenancePredicate {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    resolvedDependencies: ResourceDescriptor[];
  };
  runDetails: { builder: { id: string; version: Record<string, string> } };
}

const COMMIT = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/;

function sortedRecord<V>(record: Readonly<Record<string, V>>): Record<string, V> {
  return Object.fromEntries(Object.keys(record).sort().map((k) => [k, record[k]!]));
}

function sourceParameters(source: SourceFacts): Record<string, string> {
  return { url: source.url, ...(source.revision !== undefined ? { revision: source.revision } : {}) };
}

/** The program's source at its revision, when the stack names one: a git commit is recorded as a digest too. */
function sourceDependency(source: SourceFacts): ResourceDescriptor[] {
  if (source.revision === undefined) return [];
  return [
    {
      uri: `git+${source.url}@${source.revision}`,
      ...(COMMIT.test(source.revision) ? { digest: { gitCommit: source.revision } } : {}),
      name: "source",
    },
  ];
}

function imageDependency(name: string, ref: string, what: string, problems: string[]): ResourceDescriptor | undefined {
  const digest = parseImageRef(ref)?.digest;
  if (digest === undefined) {
    problems.push(`${what} must be an image reference pinned by digest (repository[:tag]@sha256:<64 hex>), got ${JSON.stringify(ref)}.`);
    return undefined;
  }
  return { uri: ref, digest: { sha256: digestHex(digest) }, name };
}

/**
 * The SLSA v1 provenance predicate of one image. Throws, naming every bad fact at once, when a fact is not what its
 * kind requires (a base or source not pinned by digest, a promoted source of another digest).
 */
export function provenancePredicate(facts: ProvenanceFacts): SlsaProvenancePredicate {
  const problems: string[] = [];
  if (!isDigest(facts.digest)) problems.push(`digest must be "sha256:" and 64 lowercase hex characters, got ${JSON.stringify(facts.digest)}.`);
  if (facts.tag.trim() === "") problems.push("tag is empty: pass the registry tag that holds the digest.");
  if (facts.builder.id.trim() === "") problems.push("builder.id is empty: pass programBuilder(...).");
  const origin = facts.origin;
  let buildType: string;
  let externalParameters: Record<string, unknown>;
  const dependencies: ResourceDescriptor[] = [];
  if (origin.kind === "build") {
    buildType = BUILD_TYPE_DOCKER_BUILD;
    for (const [key, value] of Object.entries(origin.buildArgs)) {
      // A plain string cannot carry Pulumi's secret mark; anything else (an Output, a number) is refused.
      if (typeof value !== "string") problems.push(`origin.buildArgs.${key} must be a plain string, got ${typeof value}.`);
    }
    if (Object.keys(origin.bases).length === 0) problems.push("origin.bases is empty: a build has at least its base image.");
    for (const arg of Object.keys(origin.bases).sort()) {
      const dep = imageDependency(arg, origin.bases[arg]!, `origin.bases.${arg}`, problems);
      if (dep) dependencies.push(dep);
    }
    dependencies.unshift(...sourceDependency(origin.source));
    externalParameters = {
      source: sourceParameters(origin.source),
      tag: facts.tag,
      context: origin.context,
      dockerfile: origin.dockerfile,
      ...(origin.target !== undefined ? { target: origin.target } : {}),
      platforms: [...origin.platforms],
      buildArgs: sortedRecord(origin.buildArgs),
      bases: sortedRecord(origin.bases),
    };
  } else {
    buildType = BUILD_TYPE_PROMOTION;
    const dep = imageDependency("promotion-source", origin.sourceRef, "origin.sourceRef", problems);
    const sourceDigest = parseImageRef(origin.sourceRef)?.digest;
    if (dep && sourceDigest !== facts.digest) {
      problems.push(`origin.sourceRef is pinned to ${sourceDigest} but the promoted digest is ${facts.digest}: a promotion keeps the digest.`);
    }
    if (origin.fromStack.trim() === "") problems.push("origin.fromStack is empty: name the stack the digest was promoted from (promotion.from).");
    dependencies.push(...sourceDependency(origin.source));
    if (dep) dependencies.unshift(dep);
    externalParameters = {
      source: sourceParameters(origin.source),
      tag: facts.tag,
      promotedFrom: { stack: origin.fromStack, ref: origin.sourceRef, validatedPools: [...origin.validatedPools] },
    };
  }
  if (problems.length > 0) throw new Error(`provenance: ${problems.join(" ")}`);
  return {
    buildDefinition: { buildType, externalParameters, resolvedDependencies: dependencies },
    runDetails: { builder: { id: facts.builder.id, version: sortedRecord(facts.builder.version) } },
  };
}

/** The predicate file's text: compact JSON with a final newline, stable key order (as provenancePredicate builds it). */
export function provenanceJson(predicate: SlsaProvenancePredicate): string {
  return `${JSON.stringify(predicate)}\n`;
}

/**
 * The builder record of this program: `<source url>/pulumi-program@v<version>`, with the package's name and version
 * from package.json. The id changes with the program's version, so a release re-attests every image's provenance.
 */
export function programBuilder(pkg: { name: string; version: string }, sourceUrl: string): ProvenanceBuilder {
  const problems: string[] = [];
  if (!/^[a-z0-9@][a-z0-9@/._-]*$/.test(pkg.name)) problems.push(`package.json name must be an npm package name, got ${JSON.stringify(pkg.name)}.`);
  if (!/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/.test(pkg.version)) problems.push(`package.json version must be a semantic version such as "0.1.0", got ${JSON.stringify(pkg.version)}.`);
  if (!/^https?:\/\/\S+$/.test(sourceUrl)) problems.push(`source.url must be an http(s) URL, got ${JSON.stringify(sourceUrl)}.`);
  if (problems.length > 0) throw new Error(`provenance builder: ${problems.join(" ")}`);
  return { id: `${sourceUrl.replace(/\/+$/, "")}/pulumi-program@v${pkg.version}`, version: { [pkg.name]: pkg.version } };
}

/** programBuilder for the package.json under `projectRoot`. */
export function readProgramBuilder(projectRoot: string, sourceUrl: string): ProvenanceBuilder {
  const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, "package.json"), "utf8")) as { name: string; version: string };
  return programBuilder(pkg, sourceUrl);
}

/** Paths in `value` that are not fields of in-toto-golang's slsa_provenance/v1 structs (so cosign would drop them). */
export function unknownPredicateFields(value: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown, at: string, pattern: string): void => {
    if (pattern === "buildDefinition.externalParameters" || pattern === "buildDefinition.internalParameters") return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${at}[${i}]`, `${pattern}.*`));
      return;
    }
    if (node === null || typeof node !== "object") return;
    const allowed = PREDICATE_FIELDS[pattern];
    if (allowed === undefined) return; // a free-form map (digest, version, annotations)
    for (const [key, child] of Object.entries(node)) {
      const childAt = at === "" ? key : `${at}.${key}`;
      if (!allowed.includes(key)) out.push(childAt);
      else walk(child, childAt, pattern === "" ? key : `${pattern}.${key}`);
    }
  };
  walk(value, "", "");
  return out;
}
