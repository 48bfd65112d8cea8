/**
 * Upstream oracle (issue #11, GUIDE §4.4): the hub values our stacks deploy, run through z2jh 4.4.0's own
 * jupyterhub_config.py and KubeSpawner 7.0.0's own profile handling and get_pod_manifest() (test/support/upstream.ts),
 * and the resulting pods checked against what each image needs. The expectations come from the stack files, the
 * image catalog and lib/naming, never from the profile generator under test.
 *
 * Needs ../shared/upstream (skipped without it) and Debian's jupyterhub, python3-kubernetes, python3-traitlets,
 * python3-jinja2, python3-yaml, python3-escapism, python3-slugify, python3-pycurl.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { gpuPoolSchema, type GpuPool } from "../../lib/gpu-pool";
import { sanitizeLogin, userRepositoryName } from "../../lib/naming";
import type { Plan } from "../../scripts/lib/plan-runtime";
import { planConfig, ROOT } from "../support/harness";
import {
  type HubRelease,
  helmValues,
  hasUpstream,
  hubRelease,
  promotedProdConfig,
  type Pod,
  skipReason,
  type SpawnRequest,
  type SpawnResult,
  spawnPods,
  type UpstreamProfile,
  upstreamDir,
  type Values,
} from "../support/upstream";

const UPSTREAM = hasUpstream();
if (!UPSTREAM) console.warn(`test/upstream/kubespawner.test.ts: ${skipReason()}`);

const DIGEST_PINNED = /@sha256:[0-9a-f]{64}$/;
/** A login no stack user has: sees the shared profiles only. */
const STRANGER = "stranger-no-stack-user";

// ---------------------------------------------------------------------------------------------------------------
// Sources of truth, independent of the profile generator
// ---------------------------------------------------------------------------------------------------------------

interface CatalogVariant {
  name: string;
  gpu?: boolean;
  publish?: { gpusPerSession?: number };
  /** Who the image runs as (issue #11); home is the home mount path and working directory. */
  runAs?: { uid: number; gid: number; home: string };
}

function catalog(): Map<string, CatalogVariant> {
  const doc = parse(fs.readFileSync(path.join(ROOT, "images", "catalog.yaml"), "utf8")) as { variants: CatalogVariant[] };
  return new Map(doc.variants.map((v) => [v.name, v]));
}

interface StackUser {
  login: string;
  hubUsername?: string;
  uid: number;
  gid: number;
  project: string;
  baseVariant: string;
}

/** A stack file's config as a stack file holds it, with `workbench-images:` keys. */
function readStackFile(file: string): Record<string, unknown> {
  return (parse(fs.readFileSync(path.join(ROOT, file), "utf8")) as { config: Record<string, unknown> }).config;
}

function stackFacts(config: Record<string, unknown>) {
  const get = <T>(key: string, fallback: T): T => (config[`workbench-images:${key}`] as T | undefined) ?? fallback;
  const registry = get<{ repositoryPrefix?: string }>("registry", {});
  return {
    prefix: registry.repositoryPrefix ?? "workbench",
    // The pool schema is the one definition of a pool (its defaults included); the stack file holds the data.
    pools: get<unknown[]>("gpuPools", []).map((p) => gpuPoolSchema.parse(p)),
    users: get<StackUser[]>("users", []),
  };
}
type StackFacts = ReturnType<typeof stackFacts>;

/** The repository path of an image reference: host and digest (and tag) removed. */
function repositoryOf(ref: string): string {
  const noDigest = ref.split("@")[0]!;
  const noHost = noDigest.slice(noDigest.indexOf("/") + 1);
  return noHost.replace(/:[^:/]+$/, "");
}

/** What a profile's image is, by its repository: a published catalog variant or a stack user's personal image. */
type Owner = { kind: "shared"; variant: CatalogVariant } | { kind: "personal"; user: StackUser; base: CatalogVariant | undefined };

function ownerOf(image: string, facts: StackFacts, variants: Map<string, CatalogVariant>): Owner | undefined {
  const repo = repositoryOf(image);
  const user = facts.users.find((u) => repo === userRepositoryName(facts.prefix, u.uid, u.project));
  if (user !== undefined) return { kind: "personal", user, base: variants.get(user.baseVariant) };
  const variant = repo.startsWith(`${facts.prefix}/`) ? variants.get(repo.slice(facts.prefix.length + 1)) : undefined;
  return variant !== undefined ? { kind: "shared", variant } : undefined;
}

function hubName(u: StackUser): string {
  // users[].hubUsername is being added to the stack files; until it lands, the login is what the hub receives.
  return u.hubUsername ?? u.login;
}

/** Who the pod must run as: the catalog's runAs for shared images, the user's own ids and home for personal ones. */
function expectedRuntime(owner: Owner): { uid: number; gid: number; home: string } | string {
  if (owner.kind === "personal") return { uid: owner.user.uid, gid: owner.user.gid, home: `/home/${sanitizeLogin(owner.user.login)}` };
  const r = owner.variant.runAs;
  if (r === undefined) return `images/catalog.yaml: variant ${owner.variant.name} has no runAs { uid, gid, home }`;
  return r;
}

function isGpu(owner: Owner): boolean {
  return owner.kind === "shared" ? owner.variant.gpu === true : owner.base?.gpu === true;
}

// ---------------------------------------------------------------------------------------------------------------
// Checks on one spawned pod; each returns problems, so a test can also show that they bite
// ---------------------------------------------------------------------------------------------------------------

interface Spawned {
  label: string;
  profile: UpstreamProfile;
  /** The pool chosen through profile_options.pool, if the profile has that option. */
  poolChoice?: string;
  owner: Owner;
  pod: Pod;
}

const CHART_USER_TOLERATIONS = [
  { key: "hub.jupyter.org/dedicated", operator: "Equal", value: "user", effect: "NoSchedule" },
  { key: "hub.jupyter.org_dedicated", operator: "Equal", value: "user", effect: "NoSchedule" },
];

function notebook(pod: Pod) {
  const c = pod.spec.containers.find((x) => x.name === "notebook");
  if (c === undefined) throw new Error(`pod ${pod.metadata.name} has no notebook container: ${pod.spec.containers.map((x) => x.name).join(", ")}`);
  return c;
}

function checkImage(s: Spawned): string[] {
  const image = notebook(s.pod).image;
  const wanted = s.profile.kubespawner_override?.["image"];
  const out: string[] = [];
  if (image !== wanted) out.push(`${s.label}: image ${image}, but the profile's image is ${String(wanted)}`);
  if (!DIGEST_PINNED.test(image)) out.push(`${s.label}: image ${image} is not pinned by digest (@sha256:<64 hex>)`);
  return out;
}

function sameToleration(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const norm = (t: Record<string, unknown>) => JSON.stringify({ key: t["key"], operator: t["operator"] ?? "Equal", value: t["value"] ?? null, effect: t["effect"] ?? null });
  return norm(a) === norm(b);
}

function checkTolerations(s: Spawned, merged: Values, pool: GpuPool | undefined): string[] {
  const have = s.pod.spec.tolerations ?? [];
  const chart = ((merged["scheduling"] as Values | undefined)?.["userPods"] as Values | undefined)?.["tolerations"] as Record<string, unknown>[] | undefined;
  const wanted = [...(chart ?? []), ...(pool?.tolerations ?? [])] as Record<string, unknown>[];
  return wanted
    .filter((t) => !have.some((h) => sameToleration(h, t)))
    .map((t) => `${s.label}: lacks toleration ${JSON.stringify(t)} (${pool?.tolerations.some((p) => sameToleration(p as Record<string, unknown>, t)) ? `pool ${pool.name}` : "z2jh scheduling.userPods.tolerations"}); has ${JSON.stringify(have)}`);
}

function checkPlacement(s: Spawned, pool: GpuPool | undefined, gpus: number): string[] {
  const out: string[] = [];
  const limits = notebook(s.pod).resources?.limits ?? {};
  if (isGpu(s.owner)) {
    if (pool === undefined) return [`${s.label}: GPU profile, but no stack pool could be identified for it`];
    if (JSON.stringify(s.pod.spec.nodeSelector ?? {}) !== JSON.stringify(pool.nodeSelector)) {
      out.push(`${s.label}: nodeSelector ${JSON.stringify(s.pod.spec.nodeSelector)}, pool ${pool.name} has ${JSON.stringify(pool.nodeSelector)}`);
    }
    if (Number(limits["nvidia.com/gpu"]) !== gpus) out.push(`${s.label}: nvidia.com/gpu limit ${String(limits["nvidia.com/gpu"])}, expected ${gpus}`);
  } else if ("nvidia.com/gpu" in limits) {
    out.push(`${s.label}: CPU profile requests nvidia.com/gpu ${String(limits["nvidia.com/gpu"])}`);
  }
  return out;
}

/** The mount of the home volume: the one whose volume is the user's PersistentVolumeClaim. */
function homeMounts(pod: Pod) {
  const pvcVolumes = new Set((pod.spec.volumes ?? []).filter((v) => v["persistentVolumeClaim"] !== undefined).map((v) => String(v["name"])));
  return (notebook(pod).volumeMounts ?? []).filter((m) => pvcVolumes.has(m.name));
}

function checkRuntimeUser(s: Spawned): string[] {
  const want = expectedRuntime(s.owner);
  if (typeof want === "string") return [`${s.label}: ${want}`];
  const c = notebook(s.pod);
  const psc = s.pod.spec.securityContext ?? {};
  const runAsUser = c.securityContext?.runAsUser ?? psc.runAsUser;
  const runAsGroup = c.securityContext?.runAsGroup ?? psc.runAsGroup;
  const out: string[] = [];
  if (runAsUser !== want.uid) out.push(`${s.label}: runAsUser ${String(runAsUser)}, the image runs as uid ${want.uid}`);
  if (runAsGroup !== want.gid) out.push(`${s.label}: runAsGroup ${String(runAsGroup)}, the image runs as gid ${want.gid}`);
  if (psc.fsGroup !== want.gid) out.push(`${s.label}: fsGroup ${String(psc.fsGroup)}, the image's group is gid ${want.gid}`);
  const homes = homeMounts(s.pod);
  if (homes.length !== 1 || homes[0]!.mountPath !== want.home) {
    out.push(`${s.label}: home volume mounted at ${JSON.stringify(homes.map((m) => m.mountPath))}, the image's home is ${want.home}`);
  }
  if (c.workingDir !== want.home) out.push(`${s.label}: workingDir ${String(c.workingDir)}, the image's home is ${want.home}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Stacks
// ---------------------------------------------------------------------------------------------------------------

interface StackCase {
  stack: string;
  title: string;
  config: () => Record<string, unknown>;
}

const STACKS: StackCase[] = [
  { stack: "local", title: "local (Pulumi.local.yaml)", config: () => readStackFile("Pulumi.local.yaml") },
  { stack: "dev", title: "dev (Pulumi.dev.yaml)", config: () => readStackFile("Pulumi.dev.yaml") },
  { stack: "prod", title: "prod (Pulumi.prod.yaml with every published variant promoted)", config: promotedProdConfig },
];

interface StackRun {
  plan: Plan;
  facts: StackFacts;
  release: HubRelease;
  merged: Values;
  /** Per hub user name (the stack users and STRANGER): what KubeSpawner offers them. */
  offered: Map<string, SpawnResult>;
  spawned: Spawned[];
  /** What the program says it offers: the workbench-image-catalog ConfigMap (name → pools). */
  offeredByProgram: Map<string, string[]>;
}

async function runStack(c: StackCase): Promise<StackRun> {
  const config = c.config();
  const facts = stackFacts(config);
  const variants = catalog();
  const plan = await planConfig(c.stack, config);
  const release = hubRelease(plan);
  if (release === undefined) throw new Error(`${c.title}: the plan has no jupyterhub Release`);
  const merged = helmValues(release.values);
  const spawnOpts = { release: { name: release.name, namespace: release.namespace } };

  // 1. What each user is offered (KubeSpawner's own resolution of the callable profile_list), via a default spawn.
  const names = [...facts.users.map(hubName), STRANGER];
  const listed = spawnPods(release.values, names.map((username) => ({ username })), spawnOpts);
  const offered = new Map(names.map((n, i) => [n, listed[i]!]));

  // 2. Every profile and every pool choice, spawned by someone who is offered it (personal ones by their owner).
  const requests: SpawnRequest[] = [];
  const meta: { label: string; profile: UpstreamProfile; poolChoice?: string }[] = [];
  const seen = new Set<string>();
  for (const [username, result] of offered) {
    for (const profile of result.profiles ?? []) {
      if (seen.has(profile.slug)) continue;
      seen.add(profile.slug);
      const pools = Object.keys(profile.profile_options?.["pool"]?.choices ?? {});
      for (const pool of pools.length > 0 ? pools : [undefined]) {
        requests.push({ username, profile: profile.slug, ...(pool !== undefined ? { options: { pool } } : {}) });
        meta.push({ label: `${c.stack}: ${profile.slug}${pool !== undefined ? ` pool=${pool}` : ""} as ${username}`, profile, ...(pool !== undefined ? { poolChoice: pool } : {}) });
      }
    }
  }
  const results = requests.length > 0 ? spawnPods(release.values, requests, spawnOpts) : [];
  const spawned: Spawned[] = results.map((r, i) => {
    const m = meta[i]!;
    if (r.error !== undefined) throw new Error(`${m.label}: KubeSpawner refused: ${r.error}\n${r.traceback ?? ""}`);
    const image = String(m.profile.kubespawner_override?.["image"] ?? "");
    const owner = ownerOf(image, facts, variants);
    if (owner === undefined) throw new Error(`${m.label}: image ${image} is neither a published catalog variant nor a stack user's image`);
    return { ...m, owner, pod: r.pod };
  });

  const configMap = plan.resources.find((r) => r.type === "kubernetes:core/v1:ConfigMap" && (r.inputs["metadata"] as { name?: string }).name === "workbench-image-catalog");
  const entries = JSON.parse(String((configMap?.inputs["data"] as Record<string, string> | undefined)?.["catalog.json"] ?? "[]")) as { name: string; pools: string[] }[];
  return { plan, facts, release, merged, offered, spawned, offeredByProgram: new Map(entries.map((e) => [e.name, e.pools])) };
}

/** The pool a spawn landed on by intent: the chosen pool option, else the only pool the program offers the image on. */
function poolOf(s: Spawned, run: StackRun): GpuPool | undefined {
  let name = s.poolChoice;
  if (name === undefined && isGpu(s.owner)) {
    const variant = s.owner.kind === "shared" ? s.owner.variant.name : s.owner.user.baseVariant;
    const pools = run.offeredByProgram.get(variant) ?? [];
    name = pools.length === 1 ? pools[0] : undefined;
  }
  return name === undefined ? undefined : run.facts.pools.find((p) => p.name === name);
}

function gpusOf(s: Spawned): number {
  const v = s.owner.kind === "shared" ? s.owner.variant : s.owner.base;
  return v?.publish?.gpusPerSession ?? 1;
}

describe.skipIf(!UPSTREAM)(`KubeSpawner 7.0.0 + z2jh 4.4.0 from ${upstreamDir()} on each stack's hub values`, () => {
  for (const c of STACKS) {
    describe(c.title, () => {
      let run: StackRun;
      beforeAll(async () => {
        run = await runStack(c);
      });

      it("offers every profile the program publishes, each pool choice spawnable", () => {
        const shared = run.offered.get(STRANGER)!;
        expect(shared.error).toBeUndefined();
        expect(run.spawned.length).toBeGreaterThan(0);
        // Each variant in the program's own catalog ConfigMap is a shared profile KubeSpawner offers, on its pools.
        const sharedSpawns = run.spawned.filter((s) => s.owner.kind === "shared");
        const byVariant = new Map<string, string[]>();
        for (const s of sharedSpawns) {
          const name = (s.owner as { variant: CatalogVariant }).variant.name;
          byVariant.set(name, [...(byVariant.get(name) ?? []), ...(s.poolChoice !== undefined ? [s.poolChoice] : [])]);
        }
        expect([...byVariant.keys()].sort()).toEqual([...run.offeredByProgram.keys()].sort());
        for (const [name, pools] of run.offeredByProgram) {
          // One pool: placed directly (no option); several: one choice per pool.
          expect(byVariant.get(name)!.sort(), name).toEqual(pools.length > 1 ? [...pools].sort() : []);
        }
      });

      it("runs each profile's own image, pinned by digest", () => {
        expect(run.spawned.flatMap(checkImage)).toEqual([]);
      });

      it("keeps z2jh's user-pod tolerations and adds the pool's", () => {
        expect(run.spawned.flatMap((s) => checkTolerations(s, run.merged, isGpu(s.owner) ? poolOf(s, run) : undefined))).toEqual([]);
      });

      it("places GPU sessions on their pool's nodes with the GPUs they need, CPU sessions without GPUs", () => {
        expect(run.spawned.flatMap((s) => checkPlacement(s, poolOf(s, run), gpusOf(s)))).toEqual([]);
      });

      it("runs as the image's user: uid, gid, fsGroup, home mount and working directory", () => {
        expect(run.spawned.flatMap(checkRuntimeUser)).toEqual([]);
      });

      it("offers personal profiles to their owner only, shared profiles to everyone", () => {
        const variants = catalog();
        const problems: string[] = [];
        const stranger = run.offered.get(STRANGER)!;
        const ownerSlugs = (u: StackUser) =>
          [...new Set(run.spawned.filter((s) => s.owner.kind === "personal" && s.owner.user === u).map((s) => s.profile.slug))];
        const sharedSlugs = [...new Set(run.spawned.filter((s) => s.owner.kind === "shared").map((s) => s.profile.slug))].sort();
        for (const p of stranger.profiles ?? []) {
          const owner = ownerOf(String(p.kubespawner_override?.["image"]), run.facts, variants);
          if (owner?.kind !== "shared") problems.push(`${STRANGER} is offered ${p.slug}, which is not a shared profile`);
        }
        for (const u of run.facts.users) {
          const mine = ownerSlugs(u);
          if (mine.length === 0) problems.push(`${hubName(u)}: no personal profile for project ${u.project} is offered to anyone`);
          const seen = run.offered.get(hubName(u))!;
          const expected = [...sharedSlugs, ...mine].sort();
          if (JSON.stringify([...(seen.visibleSlugs ?? [])].sort()) !== JSON.stringify(expected)) {
            problems.push(`${hubName(u)} is offered ${JSON.stringify(seen.visibleSlugs)}, expected ${JSON.stringify(expected)}`);
          }
        }
        expect([...(stranger.visibleSlugs ?? [])].sort()).toEqual(sharedSlugs);
        expect(problems).toEqual([]);

        // Nobody else can start a personal profile, through the form or the REST API: KubeSpawner refuses the slug.
        const personal = run.spawned.filter((s) => s.owner.kind === "personal");
        const refused = spawnPods(run.release.values, personal.map((s) => ({ username: STRANGER, profile: s.profile.slug })), {
          release: { name: run.release.name, namespace: run.release.namespace },
        });
        refused.forEach((r, i) => {
          expect(r.pod, personal[i]!.label).toBeUndefined();
          expect(r.error).toBe(`ValueError: No such profile: ${personal[i]!.profile.slug}. Options include: ${(stranger.visibleSlugs ?? []).join(", ")}`);
        });
      });
    });
  }

  it("can fail: a profile whose kubespawner_override sets a tolerations list loses z2jh's user-pod tolerations", () => {
    // KubeSpawner merges dict overrides but replaces lists (_apply_overrides), so the GPU toleration replaces the
    // chart's hub.jupyter.org/dedicated ones. Synthetic values through z2jh's own singleuser.profileList path.
    const image = `registry.example/workbench/gpu@sha256:${"c".repeat(64)}`;
    const gpuToleration = { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" };
    const values: Values = {
      singleuser: {
        profileList: [{ display_name: "GPU", slug: "gpu", default: true, kubespawner_override: { image, tolerations: [gpuToleration], node_selector: { pool: "a" } } }],
      },
    };
    const [r] = spawnPods(values, [{ username: "alice", profile: "gpu" }]);
    expect(r!.error).toBeUndefined();
    const pod = r!.pod!;
    expect(pod.spec.tolerations).toEqual([gpuToleration]);
    expect(pod.spec.nodeSelector).toEqual({ pool: "a" });
    const pool = gpuPoolSchema.parse({ name: "a", nodeSelector: { pool: "a" }, product: "X", driverVersion: "570.1" });
    const spawned: Spawned = {
      label: "synthetic gpu",
      profile: r!.profiles![0]!,
      owner: { kind: "shared", variant: { name: "gpu", gpu: true } },
      pod,
    };
    // The same check the stack tests run reports exactly the two chart tolerations that were replaced.
    expect(checkTolerations(spawned, helmValues(values), pool).map((p) => p.split(" (")[0])).toEqual(
      CHART_USER_TOLERATIONS.map((t) => `synthetic gpu: lacks toleration ${JSON.stringify(t)}`),
    );
    // Without the override list, z2jh's tolerations reach the pod.
    const [plain] = spawnPods({ singleuser: { profileList: [{ display_name: "CPU", slug: "cpu", kubespawner_override: { image } }] } }, [{ username: "alice" }]);
    expect(plain!.pod!.spec.tolerations).toEqual(CHART_USER_TOLERATIONS);
  });
});

describe.skipIf(UPSTREAM)("KubeSpawner upstream oracle", () => {
  it.skip(`${skipReason()}`, () => {});
});
