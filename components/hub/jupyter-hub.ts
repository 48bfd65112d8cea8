import type * as k8s from "@pulumi/kubernetes";
import * as appsv1 from "@pulumi/kubernetes/apps/v1";
import * as corev1 from "@pulumi/kubernetes/core/v1";
// The Release module alone: helm/v3/index also loads the v3 Chart, which loads every Kubernetes API group (~100 modules).
import * as helmv3 from "@pulumi/kubernetes/helm/v3/release";
import * as pulumi from "@pulumi/pulumi";
import type { GpuPool } from "../../lib/gpu-pool";
import { type ChartImages, chartImageValues } from "../../lib/chart-images";
import { homeMountOf, loadChartDefaults, mergeHubValues, setPath, type HubValues } from "./hub-values";
import { validateProfileList } from "./kubespawner";
import { type CatalogEntry, catalogEntry, catalogEntryProblems, discoveryRecord, type DiscoveryService } from "./discovery";
import { DiscoveryRegistration } from "./discovery-registration";
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
        /** Seed 003's discovery category. @default "jupyter" */
        category?: string | undefined;
        /** Discovery tags besides `jupyter-compatible`, which every offered image carries. @default [] */
        tags?: string[] | undefined;
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
  /** The stack's own values hold a secret (set with --secret inside jupyterhub): keep all values secret. @default false */
  valuesSecret?: boolean;
  /**
   * Seed 003's discovery service (the stack's `discovery` keys): each offered image's catalog entry is PUT there once the
   * release succeeded, and DELETEd when the image is no longer offered.
   * @default none: the catalog is only published in the ConfigMap and the `catalog` output
   */
  discovery?: DiscoveryService;
  /** The discovery service's bearer token, a Pulumi secret (`discoveryToken`). @default none: no Authorization header */
  discoveryToken?: pulumi.Input<string>;
}

/** One entry of the published catalog: seed 003's record, the offered digest and its pools (./discovery.ts). */
export type { CatalogEntry };

export const CATALOG_CONFIGMAP = "workbench-image-catalog";

/**
 * JupyterHub publication (issue #6): the zero-to-jupyterhub chart with profiles generated from gated digests only,
 * a per-user profile filter in the hub, the discovery catalog (seed 003's records) as a ConfigMap and, with `discovery`,
 * registered with the discovery service after the release, and pre-pullers per node group.
 */
export class JupyterHub extends pulumi.ComponentResource {
  readonly namespace: string;
  readonly releaseName: pulumi.Output<string>;
  readonly catalog: pulumi.Output<CatalogEntry[]>;
  /** Names of the images the hub offers (shared profiles), in catalog order: the catalog's entries. */
  readonly offered: string[];
  /** The registration with seed 003's discovery service, when `discovery` is set. */
  readonly discovery?: DiscoveryRegistration;

  constructor(name: string, args: JupyterHubArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:hub:JupyterHub", name, {}, opts);
    const hub = args.hub;
    const protect = args.protect ?? false;
    this.namespace = hub.namespace;
    const ns = new corev1.Namespace(
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

    const publishedImage = (img: HubImage, imageRef: string): PublishedImage => {
      const p = img.variant.publish!;
      return {
        variant: img.variant.name,
        displayName: p.displayName,
        description: p.description,
        order: p.order,
        default: p.default,
        imageRef,
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
    };
    // Which images are offered is plain data (GPU pools, GPUs per session; never the digests): renderProfileList's own
    // decision, taken here once so that the discovery registration can have one Command per offered image.
    const skippedShared = renderProfileList({ images: published.map((img) => publishedImage(img, "")), users: [] }).skipped;
    this.offered = published.map((img) => img.variant.name).filter((n) => !skippedShared.some((s) => s.variant === n && s.login === undefined));
    const offeredNames = new Set(this.offered);

    const rendered = pulumi.all([refs, userRefs]).apply(([imageRefs, personalRefs]) => {
      const images: PublishedImage[] = published.map((img, i) => publishedImage(img, imageRefs[i]!));
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
    // A value in the stack's own chart values set with --secret: Pulumi knows only that the key holds one, so the
    // values stay a secret as a whole (state, plan output), as jupyterhubSecrets' values do.
    const releaseValues = args.valuesSecret === true ? pulumi.secret(values) : values;

    const release = new helmv3.Release(
      `${name}-release`,
      {
        name: hub.releaseName,
        // An oci:// registry names the chart itself (pulumi-kubernetes helm_release.go resolveChartName treats only an
        // oci:// chart as OCI; a repo URL is fetched as <repo>/index.yaml, which registries do not serve).
        ...(hub.chartRepository.startsWith("oci://")
          ? { chart: `${hub.chartRepository.replace(/\/+$/, "")}/jupyterhub` }
          : { chart: "jupyterhub", repositoryOpts: { repo: hub.chartRepository } }),
        version: hub.chartVersion,
        namespace: ns.metadata.name,
        values: releaseValues,
        atomic: true,
        timeout: hub.timeoutSeconds,
        cleanupOnFail: true,
        createNamespace: false,
      },
      { parent: this, protect },
    );
    this.releaseName = release.name;

    // Seed 003's record for every offered image (issue #14), plus the digest the profile runs and its pools.
    this.catalog = refs.apply((imageRefs) => {
      const entries = published.flatMap((img, i) =>
        offeredNames.has(img.variant.name)
          ? [catalogEntry(discoveryRecord({ name: img.variant.name, gpu: img.variant.gpu, publish: img.variant.publish! }), imageRefs[i]!, img.pools.map((p) => p.name))]
          : [],
      );
      const problems = catalogEntryProblems(entries);
      if (problems.length > 0) throw new pulumi.ResourceError(`the published catalog is invalid:\n${problems.join("\n")}\nFix the variants' publish blocks in the image catalog.`, this);
      return entries;
    });
    new corev1.ConfigMap(
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
        new appsv1.DaemonSet(
          `${name}-prepull-${group}`,
          {
            metadata: spec.apply((s) => s["metadata"] as k8s.types.input.meta.v1.ObjectMeta),
            spec: spec.apply((s) => s["spec"] as k8s.types.input.apps.v1.DaemonSetSpec),
          },
          { parent: this, dependsOn: [ns] },
        );
      }
    }
    if (args.discovery !== undefined) {
      this.discovery = new DiscoveryRegistration(
        `${name}-discovery`,
        {
          service: args.discovery,
          ...(args.discoveryToken !== undefined ? { token: args.discoveryToken } : {}),
          names: this.offered,
          catalog: this.catalog,
          after: [release],
        },
        { parent: this },
      );
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

