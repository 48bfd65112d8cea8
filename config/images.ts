import * as path from "node:path";
import type { BuildSpec } from "../components/build/image-variant";
import type { HubUser, HubVariant } from "../components/hub/jupyter-hub";
import type { PromotionRecord } from "../components/promotion/promoted-image";
import type { ValidationVariant } from "../components/validation/validation-job";
import type { GpuPool } from "../lib/gpu-pool";
import type { Platform } from "../lib/registry";
import type { CatalogVariant } from "./catalog";
import type { StackConfig, UserConfig } from "./schema";

/**
 * The resolved model (issue #10): configuration turns catalog variants and users into ONE list of image specs, in
 * the order they must be built (a per-user image after its base). Everything downstream reads a spec; nothing
 * re-derives a base, a pool, a repository name or a per-user detail.
 */

/** Where an image's content comes from. */
export type ImageSource =
  /** Built here. The base is a pinned external image, or another spec of this stack (per-user layers). */
  | { kind: "build"; build: BuildSpec; base: { kind: "external"; ref: string } | { kind: "image"; id: string } }
  /** Copied from the source stack's registry by digest (prod: promote mode). */
  | { kind: "promoted"; promoted: PromotionRecord };

export interface ImageSpec {
  /** Catalog variant name, or `user-<username>-<project>`: the image's name in outputs, resources and Jobs. */
  id: string;
  kind: "variant" | "user";
  /** Repository in this stack's registry. */
  repositoryName: string;
  source: ImageSource;
  /** GPU image (a per-user image is a GPU image when its base is). */
  gpu: boolean;
  /** GPU images: the pools it is validated and offered on (compatible and not excluded); [] for CPU images. */
  pools: GpuPool[];
  /** What the validation Job checks: CUDA version, extras, smoke test (the base's, for a per-user image). */
  checks: ValidationVariant & { gpu: boolean };
  /** How the hub offers a catalog variant (undefined: not offered). */
  offer?: HubVariant;
  /** The owner of a per-user image. */
  owner?: HubUser;
}

/** The specs of a parsed stack: build mode builds every variant and user; promote mode copies promoted ids only. */
export function resolveImageSpecs(cfg: Omit<StackConfig, "kubeconfig" | "jupyterhubSecrets" | "discoveryToken" | "images">): ImageSpec[] {
  const variantOf = (name: string) => cfg.variants.find((v) => v.name === name)!;
  const variantSpec = (v: CatalogVariant, source: ImageSource): ImageSpec => ({
    id: v.name,
    kind: "variant",
    repositoryName: `${cfg.registry.repositoryPrefix}/${v.name}`,
    source,
    gpu: v.gpu,
    pools: v.gpu ? (cfg.poolsByVariant[v.name] ?? []) : [],
    checks: { name: v.name, cuda: v.cuda, ships: v.ships, smoke: v.smoke, gpu: v.gpu, sizeBudgetMB: v.sizeBudgetMB },
    offer: { name: v.name, gpu: v.gpu, cuda: v.cuda, publish: v.publish, ...(v.runAs !== undefined ? { runAs: v.runAs } : {}) },
  });
  const userSpec = (u: UserConfig, source: ImageSource): ImageSpec => {
    const base = variantOf(u.baseVariant);
    return {
      id: u.id,
      kind: "user",
      repositoryName: u.repositoryName,
      source,
      gpu: base.gpu,
      pools: base.gpu ? (cfg.poolsByVariant[base.name] ?? []) : [],
      // The user layer can break what the base passed: it is checked like its base, under its own id.
      checks: { name: u.id, cuda: base.cuda, ships: base.ships, smoke: base.smoke, gpu: base.gpu, sizeBudgetMB: base.sizeBudgetMB },
      owner: { login: u.login, hubUsername: u.hubUsername, username: u.username, uid: u.uid, gid: u.gid, project: u.project, baseVariant: u.baseVariant },
    };
  };

  if (cfg.mode === "promote") {
    // Catalog order, then users: the hub's profiles keep the catalog's order whatever order promote wrote.
    const promoted = (id: string): ImageSource | undefined => {
      const record = cfg.promotion.images[id];
      return record ? { kind: "promoted", promoted: record } : undefined;
    };
    return [
      ...cfg.variants.flatMap((v) => (promoted(v.name) ? [variantSpec(v, promoted(v.name)!)] : [])),
      ...cfg.users.flatMap((u) => (promoted(u.id) ? [userSpec(u, promoted(u.id)!)] : [])),
    ];
  }
  const rel = (file: string) => path.relative(cfg.projectRoot, file).split(path.sep).join("/");
  const labels = { sourceUrl: cfg.source.url, ...(cfg.source.revision !== undefined ? { revision: cfg.source.revision } : {}) };
  const variants = cfg.variants.map((v) =>
    variantSpec(v, {
      kind: "build",
      base: { kind: "external", ref: v.base.ref },
      build: {
        root: cfg.projectRoot,
        context: rel(v.contextDir),
        dockerfile: rel(v.dockerfilePath),
        ...(v.target !== undefined ? { target: v.target } : {}),
        platforms: platformsFor(cfg, v.platforms),
        buildArgs: v.buildArgs,
        baseArg: v.base.arg,
        extraBases: v.extraBases,
        title: v.publish?.displayName ?? v.name,
        description: v.publish?.description ?? `${v.family} image ${v.name}`,
        ...labels,
      },
    }),
  );
  const users = cfg.users.map((u) => {
    const base = variantOf(u.baseVariant);
    return userSpec(u, {
      kind: "build",
      base: { kind: "image", id: base.name },
      build: {
        root: cfg.projectRoot,
        context: rel(cfg.perUserContext),
        dockerfile: rel(path.join(cfg.perUserContext, "Dockerfile")),
        platforms: platformsFor(cfg, base.platforms),
        buildArgs: { USER_NAME: u.username, USER_UID: String(u.uid), USER_GID: String(u.gid), ENABLE_SUDO: String(u.sudo) },
        baseArg: "BASE_IMAGE",
        extraBases: {},
        title: `${base.publish?.displayName ?? base.name} for ${u.username} (${u.project})`,
        description: `${base.name} with user ${u.username} (uid ${u.uid}, gid ${u.gid}) baked in`,
        ...labels,
      },
    });
  });
  return [...variants, ...users];
}

/** The local stack builds only the platforms it was told to (its own architecture); the rest build all of theirs. */
function platformsFor(cfg: Pick<StackConfig, "registry">, platforms: readonly Platform[]): Platform[] {
  if (cfg.registry.kind !== "local") return [...platforms];
  const registry = cfg.registry;
  const local = platforms.filter((p) => registry.platforms.includes(p));
  return local.length > 0 ? local : [platforms[0]!];
}
