import * as fs from "node:fs";
import * as path from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { dockerfileRuntime, summarizeDockerfile } from "./dockerfile";
import { parseImageRef } from "../lib/image-ref";
import { isValidRepositoryName, variantRepositoryName } from "../lib/naming";
import { formatPath, type Problem, renderReceived, zodProblems } from "../lib/problems";
import { DEFAULT_DISCOVERY_CATEGORY, discoveryCategory, discoveryTag, JUPYTER_COMPATIBLE_TAG } from "../components/hub/discovery";
import { parseByteString } from "../components/hub/kubespawner";
import { projectPath } from "../lib/paths";
import { strictObject } from "../lib/zod-util";

/**
 * The image catalog (images/catalog.yaml): every image variant as data. Adding a variant is a catalog entry plus
 * its files, never TypeScript (issue #2). This module parses and validates it; nothing here touches Pulumi.
 */

import { PLATFORMS } from "../lib/registry";
export { PLATFORMS, type Platform } from "../lib/registry";

const variantName = z
  .string()
  .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, {
    error:
      "must be a valid ECR repository name component: lowercase letters and digits, separated by single '.', '_' or '-'.",
  });

const imageRefString = z.string().refine((s) => parseImageRef(s) !== undefined, {
  error: 'must be an image reference like "registry/repository:tag@sha256:<64 hex>".',
});

const buildArgName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "must be a build-arg name (letters, digits, _)." });

const resources = strictObject({
  cpu: strictObject({ guarantee: z.number().positive(), limit: z.number().positive() }),
  memory: strictObject({
    guarantee: z.string().refine((s) => parseByteString(s) !== undefined, { error: 'must be a byte string like "8G".' }),
    limit: z.string().refine((s) => parseByteString(s) !== undefined, { error: 'must be a byte string like "32G".' }),
  }),
});

/** Linux ids: 0..2^31-1 (Kubernetes' runAsUser/runAsGroup/fsGroup are int64, Linux ids 32-bit; 2^31-1 is what both take). */
const linuxId = z.number().int().min(0).max(2147483647);

/**
 * The user a published image runs as and its home directory (issue #11). KubeSpawner runs every pod as
 * `singleuser.uid` (z2jh default 1000) unless the profile says otherwise, and mounts the home volume at
 * `singleuser.storage.homeMountPath` (/home/jovyan): each profile sets uid, gid, fs_gid, working_dir and the home
 * mount from this, so the server starts as the image's own user and keeps its work on the volume.
 */
const runAs = strictObject({
  uid: linuxId,
  /** Primary group; also the home volume's fsGroup (OpenShift-style images such as ODH use 0). */
  gid: linuxId,
  /** Absolute home directory: where the home volume is mounted and the server starts. */
  home: z.string().regex(/^\/(?:[A-Za-z0-9._-]+\/?)+$/, { error: "must be an absolute directory such as /home/jovyan." }),
});

const publish = strictObject({
  displayName: z.string().min(1),
  description: z.string().min(1),
  order: z.number().int().default(100),
  default: z.boolean().default(false),
  resources,
  /** Seed 003's discovery category (issue #14). */
  category: discoveryCategory.default(DEFAULT_DISCOVERY_CATEGORY),
  /** Discovery tags besides `jupyter-compatible`, which every published image carries. */
  tags: z
    .array(discoveryTag)
    .refine((tags) => !tags.includes(JUPYTER_COMPATIBLE_TAG), { error: `must not list "${JUPYTER_COMPATIBLE_TAG}": every published image carries it. Remove it.` })
    .refine((tags) => new Set(tags).size === tags.length, { error: "repeats a tag. List each tag once." })
    .default([]),
});

const variantSchema = strictObject({
  name: variantName,
  family: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, { error: "must be lowercase words joined by '-'." }),
  context: z.string().min(1),
  dockerfile: z.string().min(1).default("Dockerfile"),
  target: z.string().min(1).optional(),
  platforms: z.array(z.enum(PLATFORMS)).min(1).default(["linux/amd64"]),
  buildArgs: z.record(buildArgName, z.string()).default({}),
  base: strictObject({ arg: buildArgName.default("BASE_IMAGE"), ref: imageRefString }),
  extraBases: z.record(buildArgName, imageRefString).default({}),
  cuda: z
    .string()
    .regex(/^\d+\.\d+$/, { error: 'must be a CUDA "major.minor" version in quotes, e.g. "12.8".' })
    .optional(),
  gpu: z.boolean().default(false),
  ships: strictObject({ flashAttn: z.boolean().default(false) }).default({ flashAttn: false }),
  smoke: strictObject({
    command: z.array(z.string().min(1)).min(1),
    imports: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/)).default([]),
  }),
  sizeBudgetMB: z.number().int().positive(),
  runAs: runAs.optional(),
  publish: publish.optional(),
});

const catalogSchema = strictObject({ variants: z.array(variantSchema).min(1) });

export type CatalogVariantInput = z.infer<typeof variantSchema>;

/** A validated catalog variant with absolute paths resolved. */
export interface CatalogVariant extends CatalogVariantInput {
  contextDir: string;
  dockerfilePath: string;
}

export interface Catalog {
  /** Absolute path of the catalog file. */
  file: string;
  variants: CatalogVariant[];
}

export interface CatalogOptions {
  /** Repository prefix, so full repository names can be checked against ECR's rules. */
  repositoryPrefix: string;
  /** Require every base to be pinned by digest (dev and prod). */
  requireDigests: boolean;
  /** How the file is named in messages (relative to the project root). */
  displayPath: string;
  /** Contexts and Dockerfiles must resolve (symlinks included) inside this folder. @default the catalog's folder's parent */
  projectRoot?: string;
}

/** Parses and validates a catalog file. Returns every problem found; never throws on user input. */
export function loadCatalog(file: string, options: CatalogOptions): { catalog?: Catalog; problems: Problem[] } {
  const shown = options.displayPath;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return {
      problems: [
        {
          path: "workbench-images:catalogPath",
          message: `the catalog file ${shown} does not exist. Create it or point catalogPath at it.`,
          received: renderReceived(shown),
        },
      ],
    };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => ({
        path: `${shown}${e.linePos ? ` (line ${e.linePos[0].line})` : ""}`,
        message: `is not valid YAML: ${(e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")}. Fix the syntax at that line.`,
      })),
    };
  }
  const locate = (p: readonly PropertyKey[]): string => {
    const node = doc.getIn(p as unknown[], true) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? "" : ` (line ${lineCounter.linePos(offset).line})`;
  };
  let raw: unknown;
  try {
    // yaml refuses documents whose aliases expand past maxAliasCount (a "billion laughs" bomb) by throwing.
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return {
      problems: [{ path: shown, message: `cannot be read: ${e instanceof Error ? e.message : String(e)}. Write each entry out instead of expanding aliases.` }],
    };
  }
  const parsed = catalogSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!parsed.success) return { problems: zodProblems(parsed.error, `${shown}: `, { locate }) };

  const problems: Problem[] = [];
  const at = (p: PropertyKey[], message: string, received?: unknown) =>
    problems.push({
      path: `${shown}: ${formatPath(p)}${locate(p)}`,
      message,
      ...(received !== undefined ? { received: renderReceived(received) } : {}),
    });
  const catalogDir = path.dirname(file);
  const root = options.projectRoot ?? path.dirname(catalogDir);
  // Where a context and its Dockerfile are, checked once per pair: variants share contexts, and each check resolves
  // symlinks component by component (issue #16: a large catalog made tens of thousands of lstat calls).
  const places = new Map<string, "context outside" | "dockerfile outside" | "no context" | "no dockerfile" | "ok">();
  const placeOf = (contextDir: string, dockerfilePath: string) => {
    const key = `${contextDir}\0${dockerfilePath}`;
    let place = places.get(key);
    if (place === undefined) {
      const outside = (p: string) => {
        const w = projectPath(root, p);
        return "problem" in w && w.problem === "outside";
      };
      if (outside(contextDir)) place = "context outside";
      else if (outside(dockerfilePath)) place = "dockerfile outside";
      else if (!fs.existsSync(contextDir) || !fs.statSync(contextDir).isDirectory()) place = "no context";
      else if (!fs.existsSync(dockerfilePath)) place = "no dockerfile";
      else place = "ok";
      places.set(key, place);
    }
    return place;
  };
  const seen = new Map<string, number>();
  const dockerfiles = new Map<string, ReturnType<typeof summarizeDockerfile> | null>();
  let defaults = 0;
  const variants: CatalogVariant[] = parsed.data.variants.map((v, i) => {
    const first = seen.get(v.name);
    if (first !== undefined) {
      at(["variants", i, "name"], `duplicates variants[${first}].name. Variant names must be unique: rename one.`, v.name);
    } else seen.set(v.name, i);
    const repo = variantRepositoryName(options.repositoryPrefix, v.name);
    if (!isValidRepositoryName(repo)) {
      at(["variants", i, "name"], `gives repository "${repo}", which is not a valid ECR repository name (2-256 characters). Shorten the name.`, v.name);
    }
    const contextDir = path.resolve(catalogDir, v.context);
    const dockerfilePath = path.resolve(contextDir, v.dockerfile);
    const where = placeOf(contextDir, dockerfilePath);
    if (where === "context outside") {
      at(["variants", i, "context"], "is outside the project (after resolving '..' and symlinks). Build contexts must be folders of the project.", v.context);
    } else if (where === "dockerfile outside") {
      at(["variants", i, "dockerfile"], "is outside the project or the context (after resolving '..' and symlinks). Keep the Dockerfile in the project.", v.dockerfile);
    } else if (where === "no context") {
      at(["variants", i, "context"], `directory ${path.relative(process.cwd(), contextDir) || "."} does not exist. Create it or fix the path (relative to the catalog file).`, v.context);
    } else if (where === "no dockerfile") {
      at(["variants", i, "dockerfile"], `file ${path.relative(process.cwd(), dockerfilePath)} does not exist. Add the Dockerfile or fix the path (relative to the context).`, v.dockerfile);
    } else {
      let summary = dockerfiles.get(dockerfilePath);
      if (summary === undefined) {
        summary = summarizeDockerfile(fs.readFileSync(dockerfilePath, "utf8"));
        dockerfiles.set(dockerfilePath, summary);
      }
      if (summary && v.target !== undefined && !summary.stages.includes(v.target)) {
        at(
          ["variants", i, "target"],
          `is not a stage of ${v.dockerfile}. Use one of: ${summary.stages.map((s) => `"${s}"`).join(", ") || "(the Dockerfile names no stages)"}.`,
          v.target,
        );
      }
      if (summary && v.runAs !== undefined) {
        runAsProblems(v.runAs, dockerfileRuntime(fs.readFileSync(dockerfilePath, "utf8"), v.target), v.dockerfile).forEach(([key, message, received]) =>
          at(["variants", i, "runAs", key], message, received),
        );
      }
      if (summary) {
        for (const arg of [v.base.arg, ...Object.keys(v.extraBases)]) {
          const key = arg === v.base.arg ? "base" : "extraBases";
          if (!summary.globalArgs.includes(arg)) {
            at(["variants", i, key], `names build arg ${arg}, but ${v.dockerfile} declares no \`ARG ${arg}\` before its first FROM. Declare it there and use it in FROM.`, arg);
          } else if (arg === v.base.arg && !summary.fromImages.some((f) => f === `\${${arg}}` || f === `$${arg}`)) {
            // The pinned, scanned base is what the image must be built on: a FROM that ignores the argument builds
            // on something nobody pinned.
            at(["variants", i, "base", "arg"], `is ${arg}, but no FROM in ${v.dockerfile} is \`FROM \${${arg}}\`: the image would not be built on the pinned base. Use it in the first stage's FROM.`, arg);
          }
        }
      }
      for (const arg of Object.keys(v.buildArgs)) {
        if (arg === v.base.arg || arg in v.extraBases) {
          at(["variants", i, "buildArgs", arg], `would override the pinned base argument ${arg}. Set bases only under base.ref or extraBases.`, v.buildArgs[arg]);
        }
      }
    }
    if (options.requireDigests) {
      if (parseImageRef(v.base.ref)?.digest === undefined) {
        at(["variants", i, "base", "ref"], "is not pinned by digest, which dev and prod require. Run `npm run pin-bases` on a machine with registry access, or append @sha256:<digest>.", v.base.ref);
      }
      for (const [arg, ref] of Object.entries(v.extraBases)) {
        if (parseImageRef(ref)?.digest === undefined) {
          at(["variants", i, "extraBases", arg], "is not pinned by digest, which dev and prod require. Run `npm run pin-bases` or append @sha256:<digest>.", ref);
        }
      }
    }
    if (v.gpu && v.cuda === undefined) at(["variants", i, "cuda"], 'is required for a GPU variant (gpu: true). Set the CUDA version the image ships, e.g. "12.8".');
    if (!v.gpu && v.cuda !== undefined) at(["variants", i, "cuda"], "is set on a variant without gpu: true. Remove it, or set gpu: true.", v.cuda);
    if (!v.gpu && v.ships.flashAttn) at(["variants", i, "ships", "flashAttn"], "needs a GPU variant. Remove it, or set gpu: true.", true);
    if (v.publish && v.runAs === undefined) {
      at(["variants", i, "runAs"], "is required for a published variant: the hub starts its pods as this user with this home. Add runAs: {uid, gid, home} as the image's Dockerfile (or its base) sets them.");
    }
    if (v.family === "notebook-validator" && v.runAs === undefined) {
      at(["variants", i, "runAs"], "is required for a notebook-validator tier: its gid owns the volume the executed notebooks are written to. Add runAs: {uid, gid, home} as the image's Dockerfile (or its base) sets them.");
    }
    if (v.family === "notebook-validator" && v.target === undefined) {
      at(["variants", i, "target"], "is required for a notebook-validator tier: it names the tier whose notebooks the image runs (tier1, tier2, tier3).");
    }
    if (v.publish) {
      const r = v.publish.resources;
      if (r.cpu.guarantee > r.cpu.limit) {
        at(["variants", i, "publish", "resources", "cpu", "guarantee"], `is above the limit ${r.cpu.limit}. Lower the guarantee or raise the limit.`, r.cpu.guarantee);
      }
      const g = parseByteString(r.memory.guarantee);
      const l = parseByteString(r.memory.limit);
      if (g !== undefined && l !== undefined && g > l) {
        at(["variants", i, "publish", "resources", "memory", "guarantee"], `is above the limit ${r.memory.limit}. Lower the guarantee or raise the limit.`, r.memory.guarantee);
      }
      if (v.publish.default) {
        defaults += 1;
        if (defaults > 1) at(["variants", i, "publish", "default"], "is the second default profile. Exactly one published variant may be the default: set the others to false.", true);
      }
    }
    return { ...v, contextDir, dockerfilePath };
  });
  return problems.length > 0 ? { problems } : { catalog: { file, variants }, problems };
}

/**
 * runAs against what the Dockerfile itself says: a numeric `USER uid[:gid]` must match, and a literal WORKDIR must be
 * the home or inside it (ml-stack's jupyter target works in ~/work). A USER by name or through a variable, or none
 * (inherited from the base), cannot be read here and is taken as declared.
 */
function runAsProblems(
  runAs: { uid: number; gid: number; home: string },
  runtime: { user?: string; workdir?: string },
  dockerfile: string,
): Array<[string, string, unknown]> {
  const problems: Array<[string, string, unknown]> = [];
  const m = runtime.user !== undefined ? /^(\d+)(?::(\d+))?$/.exec(runtime.user) : null;
  if (m !== null) {
    if (Number(m[1]) !== runAs.uid) problems.push(["uid", `differs from ${dockerfile}'s \`USER ${runtime.user}\`. Set it to ${m[1]}, or change the Dockerfile.`, runAs.uid]);
    if (m[2] !== undefined && Number(m[2]) !== runAs.gid) problems.push(["gid", `differs from ${dockerfile}'s \`USER ${runtime.user}\`. Set it to ${m[2]}, or change the Dockerfile.`, runAs.gid]);
  }
  const home = runAs.home.replace(/\/+$/, "");
  const workdir = runtime.workdir?.replace(/\/+$/, "");
  if (workdir !== undefined && workdir.startsWith("/") && !workdir.includes("$") && workdir !== home && !workdir.startsWith(`${home}/`)) {
    problems.push(["home", `is not ${dockerfile}'s \`WORKDIR ${runtime.workdir}\` nor a parent of it: the server would start outside the home volume. Set home to ${workdir}, or change the Dockerfile.`, runAs.home]);
  }
  return problems;
}
