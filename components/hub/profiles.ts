/**
 * JupyterHub profiles from what the program published: pure, deterministic, tested without mocks. The JupyterHub
 * component calls these inside one `pulumi.all([...]).apply(...)` once digests and GPU validations are known.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  type KubespawnerOverride,
  type Profile,
  type ProfileOption,
  validateProfileList,
} from "./kubespawner";

export type { Toleration } from "../../lib/gpu-pool";
import type { Toleration } from "../../lib/gpu-pool";
import { PROJECT_ROOT } from "../../lib/paths";

/** A GPU node pool a profile may land on. */
export interface PoolOffer {
  /** Pool name; becomes the choice key of the "pool" option, so keep it a slug. */
  name: string;
  /** @default `name` */
  displayName?: string;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  gpusPerNode: number;
  /** GPU model shown to users, e.g. "NVIDIA A10G". */
  product: string;
}

export interface PublishedImage {
  variant: string;
  displayName: string;
  description: string;
  order: number;
  default: boolean;
  /** repository@sha256:<64 hex>; must be digest-pinned. */
  imageRef: string;
  gpu: boolean;
  cudaVersion?: string;
  cpu: { guarantee: number; limit: number };
  /** KubeSpawner byte strings ("8G"); Kubernetes binary suffixes ("8Gi") are accepted and rewritten, see below. */
  memory: { guarantee: string; limit: string };
  /** GPU images: the pools this image was VALIDATED on (empty for CPU images, where it is ignored). */
  pools: PoolOffer[];
  /** @default 1 */
  gpusPerSession?: number;
  /**
   * The user the image runs as and its home (catalog `runAs`): the profile sets uid, gid, fs_gid = gid, working_dir
   * = home and remounts the home volume there. @default none: z2jh's singleuser.uid/fsGid and homeMountPath apply
   */
  runAs?: { uid: number; gid: number; home: string };
}

/** A per-user, per-project image (seed 002) with the user's UID/GID baked in at build time. */
export interface UserImage {
  /** The owner's Linux login (seed 002). */
  login: string;
  /** The owner's JupyterHub username: the only user offered this profile. @default login */
  hubUsername?: string;
  /** The sanitized Linux user name baked into the image. */
  username: string;
  uid: number;
  gid: number;
  project: string;
  baseVariant: string;
  imageRef: string;
}

export interface Resources {
  cpu: { guarantee: number; limit: number };
  memory: { guarantee: string; limit: string };
}

/** Where z2jh mounts the user's home volume (keyed as z2jh keys it in KubeSpawner.volume_mounts). */
export interface HomeMount {
  /** The volume_mounts key and volume name: volumeNameTemplate for dynamic storage, "home" for static. */
  key: string;
  name: string;
  subPath?: string;
}

export interface RenderInput {
  images: PublishedImage[];
  users: UserImage[];
  /**
   * The hub's home volume. Personal images (seed 002) have their home at /home/<username>, not z2jh's homeMountPath
   * (/home/jovyan), so their profiles remount it there; KubeSpawner merges this dict entry over z2jh's.
   * @default none: personal profiles keep z2jh's mount
   */
  homeMount?: HomeMount;
  /**
   * The tolerations z2jh gives every user pod (`scheduling.userPods.tolerations` + `singleuser.extraTolerations` of
   * the merged values). KubeSpawner's kubespawner_override replaces lists instead of merging them, so a profile that
   * sets tolerations (GPU pools) must repeat these or its pods stop tolerating the chart's user-node taints.
   * @default []
   */
  userPodTolerations?: Toleration[];
  /**
   * sizeLimit of the memory-backed /dev/shm of GPU sessions (PyTorch DataLoader workers and NCCL exchange tensors
   * through it; the container runtime's default is 64 MiB). Pages written there are charged to the container's
   * memory cgroup, so the effective cap is the smaller of this and mem_limit.
   * @default "8Gi"
   */
  shmSizeLimit?: string;
  /** NVIDIA_DRIVER_CAPABILITIES for GPU sessions: CUDA needs compute, nvidia-smi needs utility. @default "compute,utility" */
  driverCapabilities?: string;
  /**
   * Resources of a personal profile whose base variant is not among `images` (seed 003's CPU notebook sizes).
   * @default { cpu: { guarantee: 1, limit: 4 }, memory: { guarantee: "2G", limit: "8G" } }
   */
  userDefaults?: Resources;
}

export interface SkippedProfile {
  /** The published variant, or for a personal profile its base variant. */
  variant: string;
  /** Set for personal profiles. */
  login?: string;
  project?: string;
  reason: string;
}

export interface RenderedProfiles {
  /** Shared profiles by `order` then variant name, then personal profiles by slug. */
  profiles: Profile[];
  /** Personal profile slug → owner's hub username; renderProfileFilterConfig() hides these profiles from everyone else. */
  owners: Record<string, string>;
  /** What was not offered and why (GPU images with no validated pool that fits a session). */
  skipped: SkippedProfile[];
}

export const DEFAULT_SHM_SIZE_LIMIT = "8Gi";
export const DEFAULT_DRIVER_CAPABILITIES = "compute,utility";
export const DEFAULT_USER_RESOURCES: Resources = {
  cpu: { guarantee: 1, limit: 4 },
  memory: { guarantee: "2G", limit: "8G" },
};

const SHM_VOLUME = "dshm";

/**
 * KubeSpawner's ByteSpecification reads K/M/G/T as powers of 1024 and rejects Kubernetes' "Gi"; both mean the same
 * number of bytes, so a catalog written in Kubernetes units is rewritten rather than refused.
 */
export function toKubeSpawnerBytes(value: string): string {
  const m = /^([0-9]+(?:\.[0-9]+)?)([KMGT])i$/.exec(value);
  return m ? `${m[1]}${m[2]}` : value;
}

/** Lowercase alphanumerics joined by single "-": the alphabet of KubeSpawner slugs (see SLUG_PATTERN). */
export function slugPart(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * `user-<username>-<project>`. Different (username, project) pairs can meet ("a-b"+"c", "a"+"b-c"); the duplicate-slug
 * check of validateProfileList reports that rather than a suffix that would change when another user is added.
 */
export function userProfileSlug(username: string, project: string): string {
  return ["user", slugPart(username), slugPart(project)].filter((p) => p !== "").join("-");
}

interface Placement {
  /** Overrides for the profile itself (resources, GPU, and the pool when there is exactly one). */
  override: KubespawnerOverride;
  /** The "pool" option when there are several pools. */
  options?: Record<string, ProfileOption>;
}

function poolOverride(pool: PoolOffer, userPodTolerations: readonly Toleration[]): KubespawnerOverride {
  return {
    node_selector: { ...pool.nodeSelector },
    // A list override replaces z2jh's list (KubeSpawner _apply_overrides), so the chart's user-pod tolerations come first.
    tolerations: [...userPodTolerations, ...pool.tolerations].map((t) => ({ ...t })),
  };
}

/**
 * Run as the image's own user, in its home, with the home volume there (issue #11). fs_gid makes the volume group-
 * writable by the user's group. The home mount is a keyed entry: KubeSpawner merges a dict override into z2jh's
 * volume_mounts dict, replacing only the home entry.
 */
function runAsOverride(runAs: { uid: number; gid: number; home: string }, homeMount: HomeMount | undefined): KubespawnerOverride {
  return {
    uid: runAs.uid,
    gid: runAs.gid,
    fs_gid: runAs.gid,
    working_dir: runAs.home,
    ...(homeMount !== undefined
      ? { volume_mounts: { [homeMount.key]: { name: homeMount.name, mountPath: runAs.home, ...(homeMount.subPath !== undefined ? { subPath: homeMount.subPath } : {}) } } }
      : {}),
  };
}

/** Two overrides, with volume_mounts and volumes merged by key (both are dicts in what we emit). */
function mergeOverrides(a: KubespawnerOverride, b: KubespawnerOverride): KubespawnerOverride {
  const merged: KubespawnerOverride = { ...a, ...b };
  if (a.volume_mounts !== undefined || b.volume_mounts !== undefined) {
    merged.volume_mounts = { ...(a.volume_mounts as object), ...(b.volume_mounts as object) } as KubespawnerOverride["volume_mounts"];
  }
  if (a.volumes !== undefined || b.volumes !== undefined) {
    merged.volumes = { ...(a.volumes as object), ...(b.volumes as object) } as KubespawnerOverride["volumes"];
  }
  return merged;
}

/**
 * The overrides that place and size a session of `image`, or the reason it cannot be offered. A GPU image lands only
 * on pools it was validated on and whose nodes have enough GPUs for one session.
 */
function placement(image: PublishedImage, input: RenderInput): Placement | { reason: string } {
  const override: KubespawnerOverride = {
    cpu_guarantee: image.cpu.guarantee,
    cpu_limit: image.cpu.limit,
    mem_guarantee: toKubeSpawnerBytes(image.memory.guarantee),
    mem_limit: toKubeSpawnerBytes(image.memory.limit),
  };
  if (!image.gpu) return { override };

  const gpus = image.gpusPerSession ?? 1;
  if (image.pools.length === 0) {
    return { reason: "GPU image with no validated node pool: its CUDA check Job has not succeeded on any pool" };
  }
  const pools = image.pools.filter((p) => p.gpusPerNode >= gpus);
  if (pools.length === 0) {
    return {
      reason: `GPU image needs ${gpus} GPUs per session but no validated pool has that many per node (${image.pools
        .map((p) => `${p.name}: ${p.gpusPerNode}`)
        .join(", ")})`,
    };
  }

  // Requests default to limits for extended resources, and Kubernetes requires them equal, so only the limit is set.
  override.extra_resource_limits = { "nvidia.com/gpu": String(gpus) };
  override.environment = { NVIDIA_DRIVER_CAPABILITIES: input.driverCapabilities ?? DEFAULT_DRIVER_CAPABILITIES };
  // Keyed mappings, not lists: KubeSpawner merges a dict override into z2jh's dict of volumes (home directory
  // included) but would replace it with a list.
  override.volumes = {
    [SHM_VOLUME]: {
      name: SHM_VOLUME,
      emptyDir: { medium: "Memory", sizeLimit: input.shmSizeLimit ?? DEFAULT_SHM_SIZE_LIMIT },
    },
  };
  override.volume_mounts = { [SHM_VOLUME]: { name: SHM_VOLUME, mountPath: "/dev/shm" } };

  const userPod = input.userPodTolerations ?? [];
  const [only] = pools;
  if (pools.length === 1 && only !== undefined) return { override: { ...override, ...poolOverride(only, userPod) } };

  const choices: ProfileOption["choices"] = {};
  pools.forEach((pool, i) => {
    choices[pool.name] = {
      display_name: `${pool.displayName ?? pool.name} (${pool.product})`,
      default: i === 0,
      kubespawner_override: poolOverride(pool, userPod),
    };
  });
  return { override, options: { pool: { display_name: "GPU node pool", choices } } };
}

function gpuSummary(image: PublishedImage): string {
  const n = image.gpusPerSession ?? 1;
  const gpus = `${n} NVIDIA GPU${n === 1 ? "" : "s"}`;
  return image.cudaVersion !== undefined ? `${gpus}, CUDA ${image.cudaVersion}` : gpus;
}

function profileOf(
  head: { display_name: string; slug: string; description: string; default?: boolean },
  image: string,
  extra: KubespawnerOverride,
  where: Placement,
): Profile {
  // Copies: a personal profile reuses its base's placement, and callers may serialize or adjust either one.
  return structuredClone({
    ...head,
    kubespawner_override: mergeOverrides({ image, ...where.override }, extra),
    ...(where.options !== undefined ? { profile_options: where.options } : {}),
  });
}

/**
 * One profile per published image and one per personal image, as KubeSpawner 7 reads `profile_list`.
 *
 * Shared profiles: ordered by `order` then variant; slug = variant; `default` from the catalog; image, cpu and memory
 * limits and guarantees. GPU images add `nvidia.com/gpu`, a memory-backed /dev/shm and NVIDIA_DRIVER_CAPABILITIES, and
 * are placed on the pools they were validated on: with one pool its node_selector and tolerations go straight into
 * kubespawner_override; with several, a "pool" profile option offers them (first pool is the default). A GPU image
 * with no usable pool is not offered and appears in `skipped`.
 *
 * Personal profiles (seed 002): slug `user-<username>-<project>`, the user's image with uid/gid/fs_gid set to the
 * baked UID/GID, sized and placed like the published base variant (or `userDefaults` when the base is not published),
 * never the default. Their owners are returned separately in `owners` rather than as an extra profile key: KubeSpawner
 * happens to ignore unknown keys, but our schema is strict so that typos are caught, and the owner map is all the hub
 * filter needs.
 *
 * Does not validate; run validateProfileList() on `profiles` (renderProfileFilterConfig() does).
 */
export function renderProfileList(input: RenderInput): RenderedProfiles {
  const profiles: Profile[] = [];
  const skipped: SkippedProfile[] = [];
  const owners: Record<string, string> = {};
  const placed = new Map<string, Placement | { reason: string }>();

  const images = [...input.images].sort((a, b) => a.order - b.order || compare(a.variant, b.variant));
  for (const image of images) {
    const where = placement(image, input);
    placed.set(image.variant, where);
    if ("reason" in where) {
      skipped.push({ variant: image.variant, reason: where.reason });
      continue;
    }
    profiles.push(
      profileOf(
        {
          display_name: image.displayName,
          slug: image.variant,
          description: image.gpu ? `${image.description} (${gpuSummary(image)})` : image.description,
          ...(image.default ? { default: true } : {}),
        },
        image.imageRef,
        image.runAs !== undefined ? runAsOverride(image.runAs, input.homeMount) : {},
        where,
      ),
    );
  }

  const byVariant = new Map(input.images.map((i) => [i.variant, i]));
  const users = input.users
    .map((u) => ({ user: u, slug: userProfileSlug(u.username, u.project) }))
    .sort((a, b) => compare(a.slug, b.slug) || compare(a.user.login, b.user.login));
  for (const { user, slug } of users) {
    const base = byVariant.get(user.baseVariant);
    const basePlaced = placed.get(user.baseVariant);
    if (basePlaced !== undefined && "reason" in basePlaced) {
      skipped.push({
        variant: user.baseVariant,
        login: user.login,
        project: user.project,
        reason: `base variant "${user.baseVariant}" is not offered: ${basePlaced.reason}`,
      });
      continue;
    }
    const defaults = input.userDefaults ?? DEFAULT_USER_RESOURCES;
    const where: Placement = basePlaced ?? {
      override: {
        cpu_guarantee: defaults.cpu.guarantee,
        cpu_limit: defaults.cpu.limit,
        mem_guarantee: toKubeSpawnerBytes(defaults.memory.guarantee),
        mem_limit: toKubeSpawnerBytes(defaults.memory.limit),
      },
    };
    const basedOn = base?.displayName ?? user.baseVariant;
    const personal = profileOf(
        {
          display_name: `${user.project}: your image based on ${basedOn}`,
          slug,
          description: `Your image for project ${user.project}, built on ${user.baseVariant} with user ${user.username} (uid ${user.uid}, gid ${user.gid}) baked in.`,
        },
        user.imageRef,
        // The user baked into the image (seed 002), home /home/<username>; fs_gid: the home volume is group-owned by
        // the user's own group, as on the seed-002 hosts.
        runAsOverride({ uid: user.uid, gid: user.gid, home: `/home/${user.username}` }, input.homeMount),
        where,
      );
    profiles.push(personal);
    owners[slug] = user.hubUsername ?? user.login;
  }

  return { profiles, owners, skipped };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The hub side: components/hub/profile_filter.py with the data embedded
// ---------------------------------------------------------------------------------------------------------------

/** First line of the rendered extraConfig; validateHubValues() uses it to find our filter. */
export const PROFILE_FILTER_MARKER = "# workbench-images:profile-filter";

/** Where profile_filter.py lives: beside this module's source, also when the module runs compiled from dist/ (issue #16). */
export const PROFILE_FILTER_PATH = path.join(PROJECT_ROOT, "components", "hub", "profile_filter.py");

const PROFILES_PLACEHOLDER = "_workbench_profiles_json = r'''[]'''";
const OWNERS_PLACEHOLDER = "_workbench_owners_json = r'''{}'''";

let filterSource: string | undefined;

/**
 * JSON that can sit inside a Python raw triple-quoted string: no `'` (written \u0027) and nothing outside ASCII (\uXXXX,
 * so a surrogate pair stays two escapes that json.loads joins), one array element or object entry per line so the hub
 * Secret stays readable in a diff.
 */
function pythonSafeJson(value: unknown[] | Record<string, unknown>): string {
  const escape = (json: string) =>
    json.replace(/['\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const lines = Array.isArray(value)
    ? value.map((v) => escape(JSON.stringify(v)))
    : Object.entries(value).map(([k, v]) => `${escape(JSON.stringify(k))}: ${escape(JSON.stringify(v))}`);
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  return lines.length === 0 ? `${open}${close}` : `${open}\n${lines.join(",\n")}\n${close}`;
}

/**
 * The Python for z2jh `hub.extraConfig`: components/hub/profile_filter.py with `profiles` and `owners` embedded as JSON. It sets
 * `c.KubeSpawner.profile_list` to a callable that returns, for the spawning user, every profile not in `owners` plus
 * those `owners` assigns to that user: an owner login is lowercased as JupyterHub's default normalize_username does and
 * must then equal `spawner.user.name` exactly (a hub with another username normalization, such as username_map, must
 * pass the resulting user names). KubeSpawner calls the callable again when a server starts, so another user cannot
 * start a personal profile through the REST API either. Leave `singleuser.profileList` empty: this replaces it.
 *
 * Throws when the profiles do not validate (validateProfileList) or `owners` names a slug that is not in `profiles`.
 */
export function renderProfileFilterConfig(profiles: Profile[], owners: Record<string, string>): string {
  const problems = validateProfileList(profiles, "profiles");
  const slugs = new Set(profiles.map((p) => p.slug));
  for (const [slug, login] of Object.entries(owners)) {
    if (!slugs.has(slug)) problems.push(`owners["${slug}"]: names no profile; every owned slug must be in profiles`);
    if (typeof login !== "string" || login.trim() === "") {
      problems.push(`owners["${slug}"]: expected the owner's JupyterHub login, got ${JSON.stringify(login)}`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`cannot render the hub profile filter (${problems.length} problems):\n  - ${problems.join("\n  - ")}`);
  }

  filterSource ??= fs.readFileSync(PROFILE_FILTER_PATH, "utf8");
  const source = filterSource;
  for (const placeholder of [PROFILES_PLACEHOLDER, OWNERS_PLACEHOLDER]) {
    if (source.split(placeholder).length !== 2 || !source.startsWith(PROFILE_FILTER_MARKER)) {
      throw new Error(`${PROFILE_FILTER_PATH} must start with "${PROFILE_FILTER_MARKER}" and hold the line ${placeholder} exactly once`);
    }
  }
  // Function replacers: the JSON must not be read as a `$&`-style replacement pattern.
  return source
    .replace(PROFILES_PLACEHOLDER, () => `_workbench_profiles_json = r'''${pythonSafeJson(profiles)}'''`)
    .replace(OWNERS_PLACEHOLDER, () => `_workbench_owners_json = r'''${pythonSafeJson(owners)}'''`);
}

