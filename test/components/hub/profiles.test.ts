import { describe, expect, it } from "vitest";
import { validateProfileList } from "../../../components/hub/kubespawner";
import {
  type PoolOffer,
  type PublishedImage,
  type RenderInput,
  type UserImage,
  PROFILE_FILTER_MARKER,
  renderProfileFilterConfig,
  renderProfileList,
  toKubeSpawnerBytes,
  userProfileSlug,
} from "../../../components/hub/profiles";

const digest = (c: string) => `sha256:${c.repeat(64)}`;

const A10G: PoolOffer = {
  name: "a10g",
  displayName: "A10G pool",
  nodeSelector: { "workbench/pool": "a10g" },
  tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
  gpusPerNode: 1,
  product: "NVIDIA A10G",
};
const L4: PoolOffer = {
  name: "l4",
  nodeSelector: { "workbench/pool": "l4" },
  tolerations: [{ key: "workbench/gpu", operator: "Equal", value: "l4", effect: "NoSchedule" }],
  gpusPerNode: 4,
  product: "NVIDIA L4",
};

const cpu: PublishedImage = {
  variant: "datascience-cpu",
  displayName: "Data science (CPU)",
  description: "JupyterLab with pandas and scikit-learn",
  order: 10,
  default: true,
  imageRef: `registry.example/workbench/datascience-cpu@${digest("c")}`,
  gpu: false,
  cpu: { guarantee: 1, limit: 4 },
  memory: { guarantee: "2G", limit: "8G" },
  pools: [],
};
const gpuOnePool: PublishedImage = {
  variant: "pytorch-gpu",
  displayName: "PyTorch (GPU)",
  description: "PyTorch 2.4 with CUDA",
  order: 20,
  default: false,
  imageRef: `registry.example/workbench/pytorch-gpu@${digest("d")}`,
  gpu: true,
  cudaVersion: "12.6",
  cpu: { guarantee: 4, limit: 8 },
  memory: { guarantee: "16Gi", limit: "32Gi" },
  pools: [A10G],
};
const gpuTwoPools: PublishedImage = {
  ...gpuOnePool,
  variant: "jax-gpu",
  displayName: "JAX (GPU)",
  description: "JAX with CUDA",
  order: 20,
  imageRef: `registry.example/workbench/jax-gpu@${digest("e")}`,
  memory: { guarantee: "16G", limit: "32G" },
  pools: [L4, A10G],
};
const gpuNoPool: PublishedImage = {
  ...gpuOnePool,
  variant: "tf-gpu",
  displayName: "TensorFlow (GPU)",
  imageRef: `registry.example/workbench/tf-gpu@${digest("f")}`,
  pools: [],
};

const GPU_EXTRAS = {
  environment: { NVIDIA_DRIVER_CAPABILITIES: "compute,utility" },
  volumes: { dshm: { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "8Gi" } } },
  volume_mounts: { dshm: { name: "dshm", mountPath: "/dev/shm" } },
};

const CPU_PROFILE = {
  display_name: "Data science (CPU)",
  slug: "datascience-cpu",
  description: "JupyterLab with pandas and scikit-learn",
  default: true,
  kubespawner_override: {
    image: `registry.example/workbench/datascience-cpu@${digest("c")}`,
    cpu_guarantee: 1,
    cpu_limit: 4,
    mem_guarantee: "2G",
    mem_limit: "8G",
  },
};

const GPU_ONE_POOL_PROFILE = {
  display_name: "PyTorch (GPU)",
  slug: "pytorch-gpu",
  description: "PyTorch 2.4 with CUDA (1 NVIDIA GPU, CUDA 12.6)",
  kubespawner_override: {
    image: `registry.example/workbench/pytorch-gpu@${digest("d")}`,
    cpu_guarantee: 4,
    cpu_limit: 8,
    mem_guarantee: "16G",
    mem_limit: "32G",
    extra_resource_limits: { "nvidia.com/gpu": "1" },
    ...GPU_EXTRAS,
    node_selector: { "workbench/pool": "a10g" },
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
  },
};

const alice: UserImage = {
  login: "Alice.Smith@Example.org",
  username: "alice-smith-at-example-org",
  uid: 1722830498,
  gid: 1722830498,
  project: "My_Project",
  baseVariant: "datascience-cpu",
  imageRef: `registry.example/workbench-1722830498/my_project@${digest("1")}`,
};

function input(images: PublishedImage[], users: UserImage[] = []): RenderInput {
  return { images, users };
}

describe("renderProfileList: shared profiles", () => {
  it("renders a CPU image", () => {
    expect(renderProfileList(input([cpu]))).toEqual({ profiles: [CPU_PROFILE], owners: {}, skipped: [] });
  });

  it("renders a GPU image validated on one pool with placement in kubespawner_override", () => {
    const { profiles, skipped } = renderProfileList(input([gpuOnePool]));
    expect(profiles).toEqual([GPU_ONE_POOL_PROFILE]);
    expect(profiles[0]).not.toHaveProperty("profile_options");
    expect(profiles[0]).not.toHaveProperty("default");
    expect(skipped).toEqual([]);
  });

  it("offers several validated pools as a pool option, first pool the default", () => {
    const { profiles } = renderProfileList(input([gpuTwoPools]));
    expect(profiles).toEqual([
      {
        display_name: "JAX (GPU)",
        slug: "jax-gpu",
        description: "JAX with CUDA (1 NVIDIA GPU, CUDA 12.6)",
        kubespawner_override: {
          image: `registry.example/workbench/jax-gpu@${digest("e")}`,
          cpu_guarantee: 4,
          cpu_limit: 8,
          mem_guarantee: "16G",
          mem_limit: "32G",
          extra_resource_limits: { "nvidia.com/gpu": "1" },
          ...GPU_EXTRAS,
        },
        profile_options: {
          pool: {
            display_name: "GPU node pool",
            choices: {
              l4: {
                display_name: "l4 (NVIDIA L4)",
                default: true,
                kubespawner_override: {
                  node_selector: { "workbench/pool": "l4" },
                  tolerations: [{ key: "workbench/gpu", operator: "Equal", value: "l4", effect: "NoSchedule" }],
                },
              },
              a10g: {
                display_name: "A10G pool (NVIDIA A10G)",
                default: false,
                kubespawner_override: {
                  node_selector: { "workbench/pool": "a10g" },
                  tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
                },
              },
            },
          },
        },
      },
    ]);
    expect(profiles[0]!.kubespawner_override).not.toHaveProperty("node_selector");
    expect(profiles[0]!.kubespawner_override).not.toHaveProperty("tolerations");
    expect(Object.keys(profiles[0]!.profile_options!.pool!.choices)).toEqual(["l4", "a10g"]);
  });

  it("skips a GPU image with no validated pool", () => {
    expect(renderProfileList(input([cpu, gpuNoPool]))).toEqual({
      profiles: [CPU_PROFILE],
      owners: {},
      skipped: [
        { variant: "tf-gpu", reason: "GPU image with no validated node pool: its CUDA check Job has not succeeded on any pool" },
      ],
    });
  });

  it("offers only pools whose nodes fit a session's GPUs, and skips when none does", () => {
    const two: PublishedImage = { ...gpuTwoPools, gpusPerSession: 2 };
    const { profiles } = renderProfileList(input([two]));
    expect(profiles[0]!.kubespawner_override!.extra_resource_limits).toEqual({ "nvidia.com/gpu": "2" });
    expect(profiles[0]!.kubespawner_override!.node_selector).toEqual({ "workbench/pool": "l4" });
    expect(profiles[0]).not.toHaveProperty("profile_options");
    expect(profiles[0]!.description).toBe("JAX with CUDA (2 NVIDIA GPUs, CUDA 12.6)");

    const eight: PublishedImage = { ...gpuTwoPools, gpusPerSession: 8 };
    expect(renderProfileList(input([eight])).skipped).toEqual([
      { variant: "jax-gpu", reason: "GPU image needs 8 GPUs per session but no validated pool has that many per node (l4: 4, a10g: 1)" },
    ]);
  });

  it("orders by order then variant name and is independent of input order", () => {
    const late: PublishedImage = { ...cpu, variant: "aaa-late", order: 30, default: false };
    const a = renderProfileList(input([late, gpuOnePool, gpuTwoPools, cpu]));
    const b = renderProfileList(input([cpu, gpuTwoPools, late, gpuOnePool]));
    expect(a.profiles.map((p) => p.slug)).toEqual(["datascience-cpu", "jax-gpu", "pytorch-gpu", "aaa-late"]);
    expect(b).toEqual(a);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it("applies shm size and driver capabilities when given", () => {
    const { profiles } = renderProfileList({ images: [gpuOnePool], users: [], shmSizeLimit: "2Gi", driverCapabilities: "compute,utility,video" });
    expect(profiles[0]!.kubespawner_override!.volumes).toEqual({ dshm: { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "2Gi" } } });
    expect(profiles[0]!.kubespawner_override!.environment).toEqual({ NVIDIA_DRIVER_CAPABILITIES: "compute,utility,video" });
  });

  it("does not modify its input", () => {
    const images = [gpuTwoPools, cpu];
    const before = structuredClone(images);
    const { profiles } = renderProfileList(input(images, [{ ...alice, baseVariant: "jax-gpu" }]));
    profiles[1]!.profile_options!.pool!.choices.l4!.kubespawner_override!.node_selector!["x"] = "y";
    expect(images).toEqual(before);
    expect(profiles[2]!.profile_options!.pool!.choices.l4!.kubespawner_override!.node_selector).toEqual({ "workbench/pool": "l4" });
  });
});

describe("renderProfileList: the image's user and the chart's tolerations (issue #11)", () => {
  const chartTolerations = [
    { key: "hub.jupyter.org/dedicated", operator: "Equal" as const, value: "user", effect: "NoSchedule" as const },
    { key: "hub.jupyter.org_dedicated", operator: "Equal" as const, value: "user", effect: "NoSchedule" as const },
  ];

  it("runs a published image as its own user in its home, with the home volume mounted there", () => {
    const { profiles } = renderProfileList({
      ...input([{ ...cpu, runAs: { uid: 10001, gid: 10001, home: "/home/mlstack" } }], []),
      homeMount: { key: "home", name: "home", subPath: "{username}" },
    });
    expect(profiles[0]!.kubespawner_override).toEqual({
      ...CPU_PROFILE.kubespawner_override,
      uid: 10001,
      gid: 10001,
      fs_gid: 10001,
      working_dir: "/home/mlstack",
      volume_mounts: { home: { name: "home", mountPath: "/home/mlstack", subPath: "{username}" } },
    });
    expect(validateProfileList(profiles)).toEqual([]);
  });

  it("keeps z2jh's user-pod tolerations in front of a pool's (KubeSpawner replaces lists)", () => {
    const one = renderProfileList({ ...input([gpuOnePool], []), userPodTolerations: chartTolerations });
    expect(one.profiles[0]!.kubespawner_override!.tolerations).toEqual([...chartTolerations, ...GPU_ONE_POOL_PROFILE.kubespawner_override.tolerations]);
    const two = renderProfileList({ ...input([gpuTwoPools], []), userPodTolerations: chartTolerations });
    for (const choice of Object.values(two.profiles[0]!.profile_options!.pool!.choices)) {
      expect(choice.kubespawner_override!.tolerations!.slice(0, 2)).toEqual(chartTolerations);
    }
    expect(validateProfileList([...one.profiles, ...two.profiles])).toEqual([]);
  });
});

describe("renderProfileList: personal profiles (seed 002)", () => {
  it("renders a user image sized like its published base, with the baked UID/GID, owned by the login", () => {
    expect(renderProfileList(input([cpu], [alice]))).toEqual({
      profiles: [
        CPU_PROFILE,
        {
          display_name: "My_Project: your image based on Data science (CPU)",
          slug: "user-alice-smith-at-example-org-my-project",
          description:
            "Your image for project My_Project, built on datascience-cpu with user alice-smith-at-example-org (uid 1722830498, gid 1722830498) baked in.",
          kubespawner_override: {
            image: `registry.example/workbench-1722830498/my_project@${digest("1")}`,
            cpu_guarantee: 1,
            cpu_limit: 4,
            mem_guarantee: "2G",
            mem_limit: "8G",
            uid: 1722830498,
            gid: 1722830498,
            fs_gid: 1722830498,
            working_dir: "/home/alice-smith-at-example-org",
          },
        },
      ],
      owners: { "user-alice-smith-at-example-org-my-project": "Alice.Smith@Example.org" },
      skipped: [],
    });
  });

  it("inherits GPU placement from a GPU base, never the default flag", () => {
    const bob: UserImage = { ...alice, login: "bob", username: "bob", uid: 2001, gid: 2001, project: "vision", baseVariant: "pytorch-gpu" };
    const { profiles, owners } = renderProfileList(input([{ ...gpuOnePool, default: true }], [bob]));
    expect(profiles[1]).toEqual({
      display_name: "vision: your image based on PyTorch (GPU)",
      slug: "user-bob-vision",
      description: "Your image for project vision, built on pytorch-gpu with user bob (uid 2001, gid 2001) baked in.",
      kubespawner_override: { ...GPU_ONE_POOL_PROFILE.kubespawner_override, image: alice.imageRef, uid: 2001, gid: 2001, fs_gid: 2001, working_dir: "/home/bob" },
    });
    expect(profiles[1]).not.toHaveProperty("default");
    expect(owners).toEqual({ "user-bob-vision": "bob" });
  });

  it("remounts z2jh's home volume at the baked home, keeping the base's /dev/shm mount", () => {
    const bob: UserImage = { ...alice, login: "bob", username: "bob", uid: 2001, gid: 2001, project: "vision", baseVariant: "pytorch-gpu" };
    const { profiles } = renderProfileList({
      ...input([gpuOnePool], [bob]),
      homeMount: { key: "volume-{user_server}", name: "volume-{user_server}", subPath: "homes" },
    });
    expect(profiles[1]!.kubespawner_override!.volume_mounts).toEqual({
      ...GPU_ONE_POOL_PROFILE.kubespawner_override.volume_mounts,
      "volume-{user_server}": { name: "volume-{user_server}", mountPath: "/home/bob", subPath: "homes" },
    });
    expect(profiles[0]!.kubespawner_override!.volume_mounts).toEqual(GPU_ONE_POOL_PROFILE.kubespawner_override.volume_mounts);
    expect(validateProfileList(profiles)).toEqual([]);
  });

  it("offers a personal profile to its owner's hub username, not the Linux login", () => {
    const { owners } = renderProfileList(input([cpu], [{ ...alice, hubUsername: "asmith" }]));
    expect(owners).toEqual({ "user-alice-smith-at-example-org-my-project": "asmith" });
  });

  it("uses CPU defaults when the base is not published, and skips when the base is a GPU image not offered", () => {
    const orphan: UserImage = { ...alice, project: "p1", baseVariant: "not-published" };
    const onSkipped: UserImage = { ...alice, project: "p2", baseVariant: "tf-gpu" };
    const rendered = renderProfileList(input([gpuNoPool], [onSkipped, orphan]));
    expect(rendered.profiles.map((p) => [p.slug, p.kubespawner_override])).toEqual([
      [
        "user-alice-smith-at-example-org-p1",
        { image: alice.imageRef, cpu_guarantee: 1, cpu_limit: 4, mem_guarantee: "2G", mem_limit: "8G", uid: 1722830498, gid: 1722830498, fs_gid: 1722830498, working_dir: "/home/alice-smith-at-example-org" },
      ],
    ]);
    expect(rendered.owners).toEqual({ "user-alice-smith-at-example-org-p1": "Alice.Smith@Example.org" });
    expect(rendered.skipped).toEqual([
      { variant: "tf-gpu", reason: "GPU image with no validated node pool: its CUDA check Job has not succeeded on any pool" },
      {
        variant: "tf-gpu",
        login: "Alice.Smith@Example.org",
        project: "p2",
        reason: 'base variant "tf-gpu" is not offered: GPU image with no validated node pool: its CUDA check Job has not succeeded on any pool',
      },
    ]);
    const custom = renderProfileList({ ...input([], [orphan]), userDefaults: { cpu: { guarantee: 0.5, limit: 1 }, memory: { guarantee: "512Mi", limit: "1Gi" } } });
    expect(custom.profiles[0]!.kubespawner_override).toMatchObject({ cpu_guarantee: 0.5, cpu_limit: 1, mem_guarantee: "512M", mem_limit: "1G" });
  });

  it("keeps user slugs valid and leaves clashes to the duplicate-slug check", () => {
    expect(userProfileSlug("h-baker-at-hertie-school-lan", "My Project!")).toBe("user-h-baker-at-hertie-school-lan-my-project");
    expect(userProfileSlug("a_b", "--x--")).toBe("user-a-b-x");
    const clash = renderProfileList(
      input([cpu], [
        { ...alice, username: "a-b", project: "c" },
        { ...alice, login: "other", username: "a", project: "b-c" },
      ]),
    );
    expect(validateProfileList(clash.profiles)).toEqual([
      'singleuser.profileList[2].slug: "user-a-b-c" is already the slug of singleuser.profileList[1]; slugs must be unique because KubeSpawner selects a profile by slug',
    ]);
  });
});

describe("renderProfileList output validates", () => {
  it("passes validateProfileList for every shape", () => {
    const users: UserImage[] = [alice, { ...alice, login: "bob", username: "bob", project: "x", baseVariant: "jax-gpu" }];
    const { profiles } = renderProfileList(input([cpu, gpuOnePool, gpuTwoPools, gpuNoPool], users));
    expect(profiles.map((p) => p.slug)).toEqual([
      "datascience-cpu",
      "jax-gpu",
      "pytorch-gpu",
      "user-alice-smith-at-example-org-my-project",
      "user-bob-x",
    ]);
    expect(validateProfileList(profiles)).toEqual([]);
  });

  it("reports a tag-only image ref from the catalog", () => {
    const { profiles } = renderProfileList(input([{ ...cpu, imageRef: "registry.example/workbench/datascience-cpu:v1" }]));
    expect(validateProfileList(profiles)).toEqual([
      'singleuser.profileList[0].kubespawner_override.image: expected an image pinned by digest ("repository@sha256:<64 hex>"): a tag can move after the image was scanned, signed and validated, got "registry.example/workbench/datascience-cpu:v1"',
    ]);
  });

  it("rewrites Kubernetes binary suffixes to KubeSpawner's", () => {
    expect(toKubeSpawnerBytes("16Gi")).toBe("16G");
    expect(toKubeSpawnerBytes("1.5Ti")).toBe("1.5T");
    expect(toKubeSpawnerBytes("16G")).toBe("16G");
    expect(toKubeSpawnerBytes("16GB")).toBe("16GB");
  });
});

describe("renderProfileFilterConfig", () => {
  const rendered = renderProfileList(input([cpu], [alice]));

  it("embeds the profiles and owners into components/hub/profile_filter.py, one entry per line", () => {
    const text = renderProfileFilterConfig(rendered.profiles, rendered.owners);
    expect(text.startsWith(`${PROFILE_FILTER_MARKER}\n`)).toBe(true);
    expect(text).toContain(`_workbench_profiles_json = r'''[\n${JSON.stringify(rendered.profiles[0])},\n`);
    expect(text).toContain(
      `_workbench_owners_json = r'''{\n"user-alice-smith-at-example-org-my-project": "Alice.Smith@Example.org"\n}'''\n`,
    );
    expect(text).not.toContain("r'''[]'''");
    expect(text).toContain("c.KubeSpawner.profile_list = _workbench_profile_list_for(");
  });

  it("escapes quotes and non-ASCII so the JSON survives a Python raw string", () => {
    const p = { ...rendered.profiles[0]!, description: "it's ''' naïve 🚀 \\ end" };
    const text = renderProfileFilterConfig([p], {});
    expect(text).toContain(String.raw`"description":"it\u0027s \u0027\u0027\u0027 na\u00efve \ud83d\ude80 \\ end"`);
    expect(text).toContain("_workbench_owners_json = r'''{}'''");
  });

  it("refuses invalid profiles and owners of unknown slugs", () => {
    const bad = { ...rendered.profiles[0]!, slug: "Bad" };
    let message = "";
    try {
      renderProfileFilterConfig([bad], { ghost: "bob", [rendered.profiles[0]!.slug]: "" });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe(
      [
        "cannot render the hub profile filter (4 problems):",
        '  - profiles[0].slug: expected a slug of lowercase letters and digits joined by single "-" like "pytorch-gpu" (a profile slug), got "Bad"',
        '  - owners["ghost"]: names no profile; every owned slug must be in profiles',
        '  - owners["datascience-cpu"]: names no profile; every owned slug must be in profiles',
        `  - owners["datascience-cpu"]: expected the owner's JupyterHub login, got ""`,
      ].join("\n"),
    );
  });
});
