import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { GpuPool } from "../../lib/gpu-pool";
import { type ChartImages, chartImageValues } from "../../lib/chart-images";
import { homeMountOf, loadChartDefaults, mergeHubValues, type HubValues } from "./hub-values";
import { validateProfileList } from "./kubespawner";
import { prePullDaemonSet, type PullGroup } from "./pre-puller";
import type { Profile } from "./kubespawner";
import { type PublishedImage, renderProfileFilterConfig, renderProfileList, type Toleration } from "./profiles";

/** What the hub offers of an image: the catalog variant's id, GPU-ness and `publish` block. */
export interface HubVariant {
  name: string;
  gpu: boolean;
  cuda?: string | undefined;
  /** The user the image runs as and its home (catalog `runAs`): the profile's uid, gid, fs_gid, home mount and working dir. */
  runAs?: RunAs;
  /** How the profile presents it; an image without one is not offered. */
  publish?:
    | {
        displayName: string;
        description: string;
        order: number;
        default: boolean;
        resources: { cpu: { guarantee: number; limit: number }; memory: { guarantee: string; limit: string } };
      }
    | undefined;
}

/** A Linux user an image runs as, and its home directory. */
export interface RunAs {
  uid: number;
  gid: number;
  home: string;
}

/** The owner of a per-user image (seed 002): who may see the profile, and who the pod runs as. */
export interface HubUser {
  /** The owner's Linux login (seed 002), from which `username` was derived. */
  login: string;
  /** The owner's JupyterHub username as the configured authenticator produces it (normalized: lowercase). */
  hubUsername: string;
  /** The sanitized Linux user name baked into the image. */
  username: string;
  uid: number;
  gid: number;
  project: string;
  baseVariant: string;
}

/** The chart release's settings (the stack's `jupyterhub.*` keys). */
export interface JupyterHubSettings {
  namespace: string;
  releaseName: string;
  chartVersion: string;
  chartRepository: string;
  timeoutSeconds: number;
  /** The stack's own chart values; generated values are merged over them. */
  values: Record<string, unknown>;
  /** Pre-pull published images onto nodes (the chart's continuous puller; DaemonSets per GPU pool). */
  prePuller: boolean;
}

export interface HubImage {
  variant: HubVariant;
  /** repository@sha256:…, gated: GPU images by their validation Jobs, CPU images by their scan and signature. */
  ref: pulumi.Input<string>;
  /** Pools the image was validated on (GPU images); never offered elsewhere. */
  pools: GpuPool[];
  /** The registry tag that holds `ref`'s digest: the chart's pre-puller names images as name:tag. */
  tag: pulumi.Input<string>;
}

export interface HubUserImage {
  user: HubUser;
  ref: pulumi.Input<string>;
}

export interface JupyterHubArgs {
  hub: JupyterHubSettings;
  /** Secret chart values by dotted path. */
  secrets: Record<string, pulumi.Output<string>>;
  images: HubImage[];
  users: HubUserImage[];
  /** sizeLimit of the memory-backed /dev/shm in GPU sessions. */
  shmSize: string;
  /** @default false: protect the namespace and release (prod) */
  protect?: boolean;
  /** The chart's own images pinned by digest (images/chart-images.yaml); unpinned ones keep the chart's tags. */
  chartImages: ChartImages;
}

/** One entry of the discovery catalog (seed 003's registration with a control API). */
export interface CatalogEntry {
  name: string;
  displayName: string;
  description: string;
  imageRef: string;
  gpuRequired: boolean;
  resources: { cpu: { guarantee: number; limit: number }; memory: { guarantee: string; limit: string } };
  cudaVersion: string | null;
  pools: string[];
}

export const CATALOG_CONFIGMAP = "workbench-image-catalog";

/**
 * JupyterHub publication (issue #6): the zero-to-jupyterhub chart with profiles generated from gated digests only,
 * a per-user profile filter in the hub, the discovery catalog as a ConfigMap, and pre-pullers per node group.
 */
export class JupyterHub extends pulumi.ComponentResource {
  readonly namespace: string;
  readonly releaseName: pulumi.Output<string>;
  readonly catalog: pulumi.Output<CatalogEntry[]>;

  constructor(name: string, args: JupyterHubArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:hub:JupyterHub", name, {}, opts);
    const hub = args.hub;
    const protect = args.protect ?? false;
    this.namespace = hub.namespace;
    const ns = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      { metadata: { name: hub.namespace, labels: { "app.kubernetes.io/part-of": "workbench-images" } } },
      { parent: this, protect, retainOnDelete: protect },
    );
    const published = args.images.filter((i) => i.variant.publish !== undefined);
    const chartAndStack = mergeHubValues(loadChartDefaults(), hub.values, {});
    const homeMount = homeMountOf(chartAndStack);
    const userPodTolerations = userPodTolerationsOf(chartAndStack);
    const refs = pulumi.all(published.map((i) => i.ref));
    const tags = pulumi.all(published.map((i) => i.tag));
    const userRefs = pulumi.all(args.users.map((u) => u.ref));

    const rendered = pulumi.all([refs, userRefs]).apply(([imageRefs, personalRefs]) => {
      const images: PublishedImage[] = published.map((img, i) => {
        const p = img.variant.publish!;
        return {
          variant: img.variant.name,
          displayName: p.displayName,
          description: p.description,
          order: p.order,
          default: p.default,
          imageRef: imageRefs[i]!,
          gpu: img.variant.gpu,
          ...(img.variant.cuda !== undefined ? { cudaVersion: img.variant.cuda } : {}),
          cpu: p.resources.cpu,
          memory: p.resources.memory,
          ...(img.variant.runAs !== undefined ? { runAs: img.variant.runAs } : {}),
          pools: img.pools.map((pool) => ({
            name: pool.name,
            ...(pool.displayName !== undefined ? { displayName: pool.displayName } : {}),
            nodeSelector: pool.nodeSelector,
            tolerations: pool.tolerations,
            gpusPerNode: pool.gpusPerNode,
            product: pool.product,
          })),
        };
      });
      const result = renderProfileList({
        images,
        users: args.users.map((u, i) => ({
          login: u.user.login,
          hubUsername: u.user.hubUsername,
          username: u.user.username,
          uid: u.user.uid,
          gid: u.user.gid,
          project: u.user.project,
          baseVariant: u.user.baseVariant,
          imageRef: personalRefs[i]!,
        })),
        shmSizeLimit: args.shmSize,
        userPodTolerations,
        ...(homeMount !== undefined ? { homeMount } : {}),
      });
      const problems = validateProfileList(result.profiles);
      if (problems.length > 0) throw new pulumi.ResourceError(`generated profiles are invalid:\n${problems.join("\n")}`, this);
      if (!result.profiles.some((p) => result.owners[p.slug] === undefined)) {
        throw new pulumi.ResourceError(
          "no shared profile to offer: every published image was skipped, and KubeSpawner would serve the chart's sample image instead. Deploy the hub only with a publishable image (index.ts checks this before creating JupyterHub).",
          this,
        );
      }
      for (const s of result.skipped) pulumi.log.warn(`not offered in JupyterHub: ${s.variant}: ${s.reason}`, this);
      return { ...result, images };
    });

    // Generated values win over the stack's own; only overrides go to Helm (chart defaults stay the chart's).
    // Pre-pulling (issue #6): the chart's continuous puller pulls the CPU images onto user nodes, named
    // `<repository>:<tag>@sha256:<digest>` (its template renders name:tag, so the digest rides in the tag); GPU images
    // go to their validated pools only, through the DaemonSets below, since the chart's puller runs on every user
    // node. The hook puller stays off: it would hold every `helm upgrade` until multi-GB images are pulled.
    const cpuPulls = published.map((img, i) => ({ img, i })).filter(({ img }) => !img.variant.gpu);
    const generated = pulumi.all([rendered, refs, tags]).apply(
      ([r, allRefs, allTags]): HubValues => ({
        hub: { extraConfig: { "50-workbench-profiles": renderProfileFilterConfig(r.profiles, r.owners) } },
        // KubeSpawner falls back to singleuser.image when a user is offered no profile (issue #11): make that our
        // default shared profile's signed digest, never the chart's sample image. z2jh joins name and tag with ':',
        // so the digest rides in the tag, as for the pre-puller.
        singleuser: { image: fallbackImage(r.profiles, r.owners, published.map((img, i) => ({ ref: allRefs[i]!, tag: allTags[i]! }))) },
        prePuller: {
          hook: { enabled: false },
          continuous: { enabled: hub.prePuller && cpuPulls.length > 0 },
          extraImages: hub.prePuller
            ? Object.fromEntries(
                cpuPulls.map(({ img, i }) => {
                  const [name, digest] = allRefs[i]!.split("@");
                  return [img.variant.name, { name: name!, tag: `${allTags[i]!}@${digest!}` }];
                }),
              )
            : {},
        },
      }),
    );
    const secretValues = pulumi.all(args.secrets).apply((s) => {
      const out: HubValues = {};
      for (const [dotted, value] of Object.entries(s)) setPath(out, dotted.split("."), value);
      return out;
    });
    // The chart's image pins go lowest: a stack that sets its own image at a pinned path keeps it.
    const chartPins = chartImageValues("jupyterhub", args.chartImages, hub.values);
    const values = pulumi
      .all([generated, Object.keys(args.secrets).length > 0 ? secretValues : pulumi.output({} as HubValues)])
      .apply(([gen, sec]) => mergeHubValues(chartPins, mergeHubValues({}, hub.values, sec), gen));

    const release = new k8s.helm.v3.Release(
      `${name}-release`,
      {
        name: hub.releaseName,
        chart: "jupyterhub",
        version: hub.chartVersion,
        repositoryOpts: { repo: hub.chartRepository },
        namespace: ns.metadata.name,
        values,
        atomic: true,
        timeout: hub.timeoutSeconds,
        cleanupOnFail: true,
        createNamespace: false,
      },
      { parent: this, protect },
    );
    this.releaseName = release.name;

    this.catalog = rendered.apply((r) =>
      r.images
        .filter((img) => !r.skipped.some((s) => s.variant === img.variant && s.login === undefined))
        .map(
          (img): CatalogEntry => ({
            name: img.variant,
            displayName: img.displayName,
            description: img.description,
            imageRef: img.imageRef,
            gpuRequired: img.gpu,
            resources: { cpu: img.cpu, memory: img.memory },
            cudaVersion: img.cudaVersion ?? null,
            pools: img.pools.map((p) => p.name),
          }),
        ),
    );
    new k8s.core.v1.ConfigMap(
      `${name}-catalog`,
      {
        metadata: { name: CATALOG_CONFIGMAP, namespace: ns.metadata.name, labels: { "app.kubernetes.io/part-of": "workbench-images" } },
        data: { "catalog.json": this.catalog.apply((c) => `${JSON.stringify(c, null, 2)}\n`) },
      },
      { parent: this },
    );

    if (hub.prePuller) {
      // One DaemonSet per GPU pool: which pools exist is plain data (the validated pools of published GPU images).
      const groups = new Map<string, { pool: GpuPool; indexes: number[] }>();
      published.forEach((img, i) => {
        if (img.variant.gpu) for (const pool of img.pools) groups.set(pool.name, { pool, indexes: [...(groups.get(pool.name)?.indexes ?? []), i] });
      });
      for (const [group, { pool, indexes }] of [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const spec = refs.apply((all) => {
          const g: PullGroup = {
            name: group,
            images: indexes.map((i) => all[i]!),
            nodeSelector: pool.nodeSelector,
            tolerations: pool.tolerations,
          };
          return prePullDaemonSet(hub.namespace, g);
        });
        new k8s.apps.v1.DaemonSet(
          `${name}-prepull-${group}`,
          {
            metadata: spec.apply((s) => s["metadata"] as k8s.types.input.meta.v1.ObjectMeta),
            spec: spec.apply((s) => s["spec"] as k8s.types.input.apps.v1.DaemonSetSpec),
          },
          { parent: this, dependsOn: [ns] },
        );
      }
    }
    this.registerOutputs({ namespace: this.namespace, releaseName: this.releaseName, catalog: this.catalog });
  }
}

/** z2jh's user-pod tolerations: `scheduling.userPods.tolerations` then `singleuser.extraTolerations` (jupyterhub_config.py). */
export function userPodTolerationsOf(values: HubValues): Toleration[] {
  const scheduling = (values["scheduling"] as { userPods?: { tolerations?: unknown } } | undefined)?.userPods?.tolerations;
  const extra = (values["singleuser"] as { extraTolerations?: unknown } | undefined)?.extraTolerations;
  return [...(Array.isArray(scheduling) ? scheduling : []), ...(Array.isArray(extra) ? extra : [])] as Toleration[];
}

/** singleuser.image as z2jh reads it: the default shared profile's image (else the first shared one), by digest. */
function fallbackImage(profiles: Profile[], owners: Record<string, string>, images: Array<{ ref: string; tag: string }>): { name: string; tag: string } {
  const shared = profiles.filter((p) => owners[p.slug] === undefined);
  const chosen = shared.find((p) => p.default === true) ?? shared[0]!;
  const ref = chosen.kubespawner_override!.image!;
  const [name, digest] = ref.split("@");
  // Every shared profile's image is one of `images` (renderProfileList only copies their refs).
  const tag = images.find((i) => i.ref === ref)!.tag;
  return { name: name!, tag: `${tag}@${digest!}` };
}

function setPath(target: HubValues, keys: string[], value: unknown): void {
  let node = target;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) node[key] = value;
    else {
      node[key] ??= {};
      node = node[key] as HubValues;
    }
  });
}
