import { describe, expect, it } from "vitest";
import { formatValuePath, parseByteString, validateProfileList } from "../../../components/hub/kubespawner";

const DIGEST = `sha256:${"a".repeat(64)}`;
const IMG = `registry.example/workbench/cpu@${DIGEST}`;

function cpuProfile(slug: string, extra: Record<string, unknown> = {}) {
  return {
    display_name: `Profile ${slug}`,
    slug,
    kubespawner_override: { image: IMG, cpu_guarantee: 1, cpu_limit: 2, mem_guarantee: "2G", mem_limit: "4G" },
    ...extra,
  };
}

describe("parseByteString (KubeSpawner ByteSpecification: K/M/G/T are powers of 1024)", () => {
  it("reads suffixed numbers as bytes", () => {
    expect(parseByteString("1K")).toBe(1024);
    expect(parseByteString("1.5K")).toBe(1536);
    expect(parseByteString("8G")).toBe(8 * 1024 ** 3);
    expect(parseByteString("2T")).toBe(2 * 1024 ** 4);
  });
  it("refuses what KubeSpawner would refuse or misread", () => {
    expect(parseByteString("8Gi")).toBeUndefined();
    expect(parseByteString("8")).toBeUndefined();
    expect(parseByteString("8GB")).toBeUndefined();
    expect(parseByteString("G")).toBeUndefined();
  });
});

describe("formatValuePath", () => {
  it("quotes keys that are not identifiers", () => {
    expect(formatValuePath("p", [2, "extra_resource_limits", "nvidia.com/gpu"])).toBe('p[2].extra_resource_limits["nvidia.com/gpu"]');
    expect(formatValuePath("", ["hub", "extraConfig", "a-b"])).toBe("hub.extraConfig.a-b");
  });
});

describe("validateProfileList", () => {
  it("accepts a valid list with a pool option", () => {
    const list = [
      cpuProfile("cpu", { default: true, description: "Python & R" }),
      {
        display_name: "GPU",
        slug: "gpu",
        kubespawner_override: {
          image: IMG,
          extra_resource_limits: { "nvidia.com/gpu": "1" },
          extra_resource_guarantees: { "nvidia.com/gpu": "1" },
          volumes: { dshm: { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "8Gi" } } },
          volume_mounts: { dshm: { name: "dshm", mountPath: "/dev/shm" } },
          environment: { NVIDIA_DRIVER_CAPABILITIES: "compute,utility" },
          uid: 1000,
          gid: 1000,
          fs_gid: 1000,
          supplemental_gids: [100],
          image_pull_policy: "IfNotPresent",
        },
        profile_options: {
          pool: {
            display_name: "GPU node pool",
            choices: {
              a10g: {
                display_name: "A10G",
                default: true,
                kubespawner_override: {
                  node_selector: { "workbench/pool": "a10g" },
                  tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
                },
              },
              l4: { display_name: "L4", kubespawner_override: { node_selector: { "workbench/pool": "l4" } } },
            },
            unlisted_choice: { enabled: false },
          },
        },
      },
    ];
    expect(validateProfileList(list)).toEqual([]);
  });

  it("reports a non-list", () => {
    expect(validateProfileList({ slug: "x" })).toEqual(['singleuser.profileList: expected a list of profiles, got {"slug":"x"}']);
  });

  it("reports a number where KubeSpawner wants a byte string, at its path", () => {
    const list = [cpuProfile("a"), cpuProfile("b"), cpuProfile("c")];
    (list[2]!.kubespawner_override as Record<string, unknown>).mem_limit = 8;
    expect(validateProfileList(list)).toEqual([
      'singleuser.profileList[2].kubespawner_override.mem_limit: expected a byte string like "8G", got 8',
    ]);
  });

  it("explains Kubernetes binary suffixes", () => {
    const p = cpuProfile("a");
    (p.kubespawner_override as Record<string, unknown>).mem_limit = "8Gi";
    expect(validateProfileList([p])).toEqual([
      `singleuser.profileList[0].kubespawner_override.mem_limit: expected a byte string like "8G" (KubeSpawner reads K/M/G/T as powers of 1024 and rejects Kubernetes' "Gi": write "8G"), got "8Gi"`,
    ]);
  });

  it("reports duplicate slugs", () => {
    expect(validateProfileList([cpuProfile("cpu"), cpuProfile("gpu"), cpuProfile("cpu")])).toEqual([
      "singleuser.profileList[2].slug: \"cpu\" is already the slug of singleuser.profileList[0]; slugs must be unique because KubeSpawner selects a profile by slug",
    ]);
  });

  it("reports a second default, even when that entry has other problems", () => {
    const second = cpuProfile("b", { default: true, kubespawner_overide: {} });
    expect(validateProfileList([cpuProfile("a", { default: true }), second])).toEqual([
      'singleuser.profileList[1].kubespawner_overide: unknown key in a profile; did you mean "kubespawner_override"? (KubeSpawner would silently ignore it)',
      "singleuser.profileList[1].default: singleuser.profileList[0] is already the default; at most one profile may set default: true (KubeSpawner pre-selects the first one)",
    ]);
  });

  it("reports guarantees above limits, memory compared in bytes", () => {
    const p = cpuProfile("a");
    Object.assign(p.kubespawner_override, { cpu_guarantee: 4, cpu_limit: 2, mem_guarantee: "1025M", mem_limit: "1G" });
    expect(validateProfileList([p])).toEqual([
      "singleuser.profileList[0].kubespawner_override.cpu_guarantee: cpu_guarantee 4 is above cpu_limit 2; Kubernetes rejects a request above the limit, lower the guarantee or raise the limit",
      'singleuser.profileList[0].kubespawner_override.mem_guarantee: mem_guarantee "1025M" is above mem_limit "1G"; Kubernetes rejects a request above the limit, lower the guarantee or raise the limit',
    ]);
    Object.assign(p.kubespawner_override, { cpu_guarantee: 2, mem_guarantee: "1024M" });
    expect(validateProfileList([p])).toEqual([]);
  });

  it("checks a choice against the profile override it inherits", () => {
    const p = cpuProfile("a", {
      profile_options: {
        size: {
          display_name: "Size",
          choices: {
            small: { display_name: "Small", kubespawner_override: { mem_limit: "1G" } },
            big: { display_name: "Big", kubespawner_override: { mem_limit: "16G" } },
          },
        },
      },
    });
    expect(validateProfileList([p])).toEqual([
      'singleuser.profileList[0].profile_options.size.choices.small.kubespawner_override.mem_limit: mem_guarantee "2G" is above mem_limit "1G"; Kubernetes rejects a request above the limit, lower the guarantee or raise the limit',
    ]);
  });

  it("requires images pinned by digest, in profiles and in choices", () => {
    const p = cpuProfile("a", {
      profile_options: {
        image: { display_name: "Image", choices: { latest: { display_name: "latest", kubespawner_override: { image: "quay.io/x/y@sha256:abc" } } } },
      },
    });
    (p.kubespawner_override as Record<string, unknown>).image = "registry.example/workbench/cpu:2024.1";
    expect(validateProfileList([p])).toEqual([
      'singleuser.profileList[0].kubespawner_override.image: expected an image pinned by digest ("repository@sha256:<64 hex>"): a tag can move after the image was scanned, signed and validated, got "registry.example/workbench/cpu:2024.1"',
      'singleuser.profileList[0].profile_options.image.choices.latest.kubespawner_override.image: expected an image pinned by digest ("repository@sha256:<64 hex>"): a tag can move after the image was scanned, signed and validated, got "quay.io/x/y@sha256:abc"',
    ]);
  });

  it("reports a misspelt kubespawner_override key with a suggestion", () => {
    const p = cpuProfile("a");
    (p.kubespawner_override as Record<string, unknown>).mem_limt = "8G";
    (p.kubespawner_override as Record<string, unknown>).zzzzzzzz = 1;
    expect(validateProfileList([p])).toEqual([
      'singleuser.profileList[0].kubespawner_override.mem_limt: unknown key in kubespawner_override; did you mean "mem_limit"? (KubeSpawner would silently ignore it)',
      "singleuser.profileList[0].kubespawner_override.zzzzzzzz: unknown key in kubespawner_override; known keys: image, image_pull_policy, cpu_limit, cpu_guarantee, mem_limit, mem_guarantee, extra_resource_limits, extra_resource_guarantees, node_selector, tolerations, volumes, volume_mounts, environment, uid, gid, fs_gid, working_dir, supplemental_gids (KubeSpawner would silently ignore it)",
    ]);
  });

  it("refuses volumes as a list (it would replace z2jh's home volume) and mounts of undefined volumes", () => {
    const p = cpuProfile("a");
    (p.kubespawner_override as Record<string, unknown>).volumes = [{ name: "dshm", emptyDir: {} }];
    const q = cpuProfile("b");
    (q.kubespawner_override as Record<string, unknown>).volume_mounts = { shm: { name: "dshm", mountPath: "/dev/shm" } };
    expect(validateProfileList([p, q])).toEqual([
      'singleuser.profileList[0].kubespawner_override.volumes: expected a mapping (volume key → volume, keyed by name, not a list: z2jh sets KubeSpawner volumes as a dict and a list override would replace it, dropping the home volume), got [{"name":"dshm","emptyDir":{}}]',
      'singleuser.profileList[1].kubespawner_override.volume_mounts.shm.name: mounts volume "dshm" which no volumes entry of this profile defines; add it to volumes',
    ]);
  });

  it("checks GPU counts and extended-resource guarantees", () => {
    const p = cpuProfile("a");
    Object.assign(p.kubespawner_override, {
      extra_resource_limits: { "nvidia.com/gpu": "0.5" },
      extra_resource_guarantees: { "nvidia.com/gpu": "1" },
    });
    expect(validateProfileList([p])).toEqual([
      'singleuser.profileList[0].kubespawner_override.extra_resource_limits["nvidia.com/gpu"]: expected a whole number of GPUs above 0 like "1", got "0.5"',
      'singleuser.profileList[0].kubespawner_override.extra_resource_guarantees["nvidia.com/gpu"]: must equal extra_resource_limits["nvidia.com/gpu"] ("0.5") because Kubernetes cannot overcommit extended resources, got "1"; or drop the guarantee (the request then defaults to the limit)',
    ]);
  });

  it("refuses free-form choices, several default choices, empty choices and unsafe display text", () => {
    const p = cpuProfile("a", {
      display_name: "A {{ user }}",
      profile_options: {
        image: {
          display_name: "Image",
          choices: { x: { display_name: "X", default: true }, y: { display_name: "Y", default: true } },
          unlisted_choice: { enabled: true, kubespawner_override: { image: "{value}" } },
        },
        empty: { display_name: "Empty", choices: {} },
      },
    });
    expect(validateProfileList([p])).toEqual([
      'singleuser.profileList[0].display_name: must not contain "<", ">", "{{", "{%" or "{#": KubeSpawner and JupyterHub render a profile\'s display_name as unescaped HTML inside a Jinja template, got "A {{ user }}"',
      "singleuser.profileList[0].profile_options.empty.choices: expected at least one choice, got {}",
    ]);
    (p as Record<string, unknown>).display_name = "A";
    delete ((p as Record<string, unknown>).profile_options as Record<string, unknown>).empty;
    expect(validateProfileList([p])).toEqual([
      'singleuser.profileList[0].profile_options.image.choices: choices "x", "y" all set default: true; at most one may',
      "singleuser.profileList[0].profile_options.image.unlisted_choice.enabled: must be false: a free-form choice lets users run any image, which was not pinned, scanned, signed or GPU-validated",
    ]);
  });

  it("checks slugs, option keys and tolerations", () => {
    const p = cpuProfile("Bad Slug", {
      profile_options: { "Pool X": { display_name: "Pool", choices: { "unlisted-choice": { display_name: "u" } } } },
    });
    (p.kubespawner_override as Record<string, unknown>).tolerations = [{ operator: "Exists", value: "x" }, { effect: "NoSchedule" }];
    expect(validateProfileList([p], "profiles")).toEqual([
      'profiles[0].slug: expected a slug of lowercase letters and digits joined by single "-" like "pytorch-gpu" (a profile slug), got "Bad Slug"',
      'profiles[0].kubespawner_override.tolerations[0].value: must be absent when operator is "Exists", got "x"',
      'profiles[0].kubespawner_override.tolerations[1].key: is required unless operator is "Exists", got nothing',
      'profiles[0].profile_options["Pool X"]: expected a slug of lowercase letters and digits joined by single "-" like "pytorch-gpu" (option key), got key "Pool X"',
    ]);
  });

  it("names missing required fields", () => {
    expect(validateProfileList([{ slug: "a" }])).toEqual([
      "singleuser.profileList[0].display_name: expected a non-empty string (a profile's display_name), got nothing",
    ]);
  });
});
