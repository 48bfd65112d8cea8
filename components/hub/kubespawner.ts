/**
 * KubeSpawner 7 `profile_list` entries as we emit them, with a zod 4 schema and the checks a schema cannot express.
 *
 * The z2jh 4.4.0 chart schema types `singleuser.profileList` only as `{"type": "array"}` and KubeSpawner reads each
 * entry with `dict.get`, so a misspelt key (`kubespawner_overide`, `mem_limt`) is silently ignored at spawn time.
 * Every object here is therefore strict. Field meanings follow KubeSpawner's `profile_list` help text and trait
 * types (kubespawner/spawner.py, 7.x).
 */
import { isDigestPinned } from "../../lib/image-ref";
import { nearest, renderReceived } from "../../lib/problems";
import { z } from "zod";

// ---------------------------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------------------------

/**
 * KubeSpawner generates missing slugs with python-slugify (lowercase alphanumerics joined by single `-`); we always
 * set the slug but keep to the same alphabet. The form names options `profile-option-<slug>--<option>`, so a `--`
 * inside a slug would make those names ambiguous.
 */
export const SLUG_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * jupyterhub.traitlets.ByteSpecification (the trait behind mem_limit/mem_guarantee) reads `float(value[:-1])` times
 * K/M/G/T = 1024^1..4. A bare number is taken as bytes, which in a profile is always a slip (8 bytes), so we require
 * the suffix. `8Gi` is a Kubernetes quantity, not a KubeSpawner one: the trait rejects it.
 */
export const BYTE_STRING_PATTERN = /^[0-9]+(?:\.[0-9]+)?[KMGT]$/;
const BYTE_SUFFIX: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** The only image form we hand to Kubernetes: content-addressed, so what was scanned, signed and GPU-validated runs. */

/** Kubernetes resource quantities as written by people (`1`, `500m`, `8Gi`); the API server does the exact parse. */
const QUANTITY_PATTERN = /^[0-9]+(?:\.[0-9]+)?(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * KubeSpawner's form template prints display texts unescaped (jinja2 Environment without autoescape), and JupyterHub
 * then renders the returned form as a Jinja template again (KubeSpawner `_render_options_form` docstring). Angle
 * brackets or Jinja delimiters in a name would become markup or template code.
 */
const UNSAFE_TEXT = /[<>]|\{\{|\{%|\{#/;

/** `1024 ** 3` for "1G"; undefined for anything KubeSpawner's ByteSpecification would not read the same way. */
export function parseByteString(value: string): number | undefined {
  if (!BYTE_STRING_PATTERN.test(value)) return undefined;
  const suffix = value.slice(-1);
  return Math.floor(Number(value.slice(0, -1)) * (BYTE_SUFFIX[suffix] ?? Number.NaN));
}

/**
 * A strict object: an unknown key is reported one sentence per key with a "did you mean" from this object's own keys,
 * because KubeSpawner ignores what it does not know instead of failing.
 */
function strict<T extends z.core.$ZodLooseShape>(shape: T, what: string) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === "unrecognized_keys") {
        return issue.keys.map((key) => unknownKeyMessage(key, known, what)).join("\n");
      }
      if (issue.code === "invalid_type") return `expected a mapping (${what})`;
      return undefined;
    },
  });
}

function unknownKeyMessage(key: string, known: readonly string[], what: string): string {
  const best = nearest(key, known);
  return best !== undefined
    ? `unknown key in ${what}; did you mean "${best}"? (KubeSpawner would silently ignore it)`
    : `unknown key in ${what}; known keys: ${known.join(", ")} (KubeSpawner would silently ignore it)`;
}

function mapping<V extends z.ZodType>(key: z.ZodType<string>, value: V, expected: string) {
  return z.record(key, value, {
    error: (issue) => (issue.code === "invalid_type" ? `expected a mapping (${expected})` : undefined),
  });
}

const displayText = (what: string) =>
  z
    .string({ error: `expected a non-empty string (${what})` })
    .min(1, { error: `expected a non-empty string (${what})` })
    .refine((s) => !UNSAFE_TEXT.test(s), {
      error: `must not contain "<", ">", "{{", "{%" or "{#": KubeSpawner and JupyterHub render ${what} as unescaped HTML inside a Jinja template`,
    });

const slug = (what: string) =>
  z
    .string({ error: `expected a slug (${what})` })
    .regex(SLUG_PATTERN, {
      error: `expected a slug of lowercase letters and digits joined by single "-" like "pytorch-gpu" (${what})`,
    });

const byteString = z.string({ error: 'expected a byte string like "8G"' }).regex(BYTE_STRING_PATTERN, {
  error: (issue) => {
    const input = typeof issue.input === "string" ? issue.input : "";
    const k8s = /^([0-9]+(?:\.[0-9]+)?)([KMGT])i$/.exec(input);
    return k8s
      ? `expected a byte string like "8G" (KubeSpawner reads K/M/G/T as powers of 1024 and rejects Kubernetes' "${k8s[2]}i": write "${k8s[1]}${k8s[2]}")`
      : 'expected a byte string like "8G" (a number with a K, M, G or T suffix, powers of 1024)';
  },
});

const cpuCount = z
  .number({ error: "expected a number of CPUs like 2 or 0.5" })
  .positive({ error: "expected a number of CPUs above 0" });

const quantity = z
  .string({ error: 'expected a Kubernetes quantity as a string like "1"' })
  .regex(QUANTITY_PATTERN, { error: 'expected a Kubernetes quantity as a string like "1" or "500m"' });

const pinnedImage = z.string({ error: "expected an image reference" }).refine(isDigestPinned, {
  error:
    'expected an image pinned by digest ("repository@sha256:<64 hex>"): a tag can move after the image was scanned, signed and validated',
});

const id = (what: string) =>
  z.number({ error: `expected a whole number (${what})` }).int({ error: `expected a whole number (${what})` }).min(0, {
    error: `expected a whole number ≥ 0 (${what})`,
  });

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes shapes we use
// ---------------------------------------------------------------------------------------------------------------

/** core/v1 Toleration. `operator: Exists` tolerates any value, so the API server rejects one with a value. */
export const tolerationSchema = strict(
  {
    key: z.string({ error: "expected a taint key" }).optional(),
    operator: z.enum(["Exists", "Equal"], { error: 'expected "Exists" or "Equal"' }).optional(),
    value: z.string({ error: "expected a string" }).optional(),
    effect: z
      .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"], {
        error: 'expected "NoSchedule", "PreferNoSchedule" or "NoExecute"',
      })
      .optional(),
    tolerationSeconds: z.number({ error: "expected a whole number of seconds" }).int().optional(),
  },
  "a Kubernetes toleration",
).superRefine((t, ctx) => {
  if (t.operator === "Exists" && t.value !== undefined) {
    ctx.addIssue({ code: "custom", path: ["value"], message: 'must be absent when operator is "Exists"' });
  }
  if (t.key === undefined && t.operator !== "Exists") {
    ctx.addIssue({ code: "custom", path: ["key"], message: 'is required unless operator is "Exists"' });
  }
});

/** The one volume type we mount: an emptyDir, memory-backed for /dev/shm. */
export const volumeSchema = strict(
  {
    name: slug("volume name"),
    emptyDir: strict(
      {
        medium: z.enum(["", "Memory"], { error: 'expected "" or "Memory"' }).optional(),
        sizeLimit: quantity.optional(),
      },
      "an emptyDir volume source",
    ),
  },
  "a volume (only emptyDir is typed here)",
);

// z2jh names the home volume with a KubeSpawner template (singleuser.storage.dynamic.volumeNameTemplate,
// "volume-{user_server}"), expanded per user at spawn: a mount may name it.
const VOLUME_NAME_TEMPLATE = /^(?:[a-z0-9]|\{[a-z_]+\})(?:[a-z0-9-]|\{[a-z_]+\})*$/;

export const volumeMountSchema = strict(
  {
    name: z
      .string({ error: "expected a volume name" })
      .regex(VOLUME_NAME_TEMPLATE, { error: 'expected a volume name, optionally with KubeSpawner fields like "volume-{user_server}"' }),
    mountPath: z.string({ error: "expected an absolute path" }).regex(/^\//, { error: "expected an absolute path" }),
    readOnly: z.boolean({ error: "expected true or false" }).optional(),
    subPath: z.string({ error: "expected a relative path" }).optional(),
  },
  "a volume mount",
);

// z2jh 4.4.0's jupyterhub_config.py sets KubeSpawner.volumes / volume_mounts as dicts keyed by name, and KubeSpawner's
// _apply_overrides merges a dict override into a dict trait but *replaces* it with anything else: a list here would
// drop the user's home volume. So these are mappings, never lists.
const VOLUMES_AS_MAPPING =
  "keyed by name, not a list: z2jh sets KubeSpawner volumes as a dict and a list override would replace it, dropping the home volume";

// ---------------------------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------------------------

/** The subset of KubeSpawner traits our profiles override. Dict-valued traits are merged into z2jh's, lists replace. */
export const kubespawnerOverrideSchema = strict(
  {
    image: pinnedImage.optional(),
    image_pull_policy: z
      .enum(["Always", "IfNotPresent", "Never"], { error: 'expected "Always", "IfNotPresent" or "Never"' })
      .optional(),
    cpu_limit: cpuCount.optional(),
    cpu_guarantee: cpuCount.optional(),
    mem_limit: byteString.optional(),
    mem_guarantee: byteString.optional(),
    extra_resource_limits: mapping(z.string(), quantity, "resource name → quantity").optional(),
    extra_resource_guarantees: mapping(z.string(), quantity, "resource name → quantity").optional(),
    node_selector: mapping(z.string(), z.string({ error: "expected a label value string" }), "label → value").optional(),
    // z2jh sets tolerations as a list and KubeSpawner replaces lists, so a profile's list must repeat the chart's
    // user-pod tolerations (components/hub/profiles.ts poolOverride does).
    tolerations: z.array(tolerationSchema, { error: "expected a list of tolerations" }).optional(),
    volumes: mapping(z.string(), volumeSchema, `volume key → volume, ${VOLUMES_AS_MAPPING}`).optional(),
    volume_mounts: mapping(z.string(), volumeMountSchema, `mount key → volume mount, ${VOLUMES_AS_MAPPING}`).optional(),
    environment: mapping(
      z.string().regex(ENV_NAME_PATTERN, { error: "expected an environment variable name like NVIDIA_DRIVER_CAPABILITIES" }),
      z.string({ error: "expected a string value" }),
      "variable → value",
    ).optional(),
    uid: id("user id").optional(),
    gid: id("group id").optional(),
    fs_gid: id("group id").optional(),
    /** The container's working directory; KubeSpawner expands {username}-style fields in it, so none may appear. */
    working_dir: z
      .string({ error: "expected an absolute directory" })
      .regex(/^\/[^{}\s]*$/, { error: "expected an absolute directory without '{', '}' or whitespace" })
      .optional(),
    supplemental_gids: z.array(id("group id"), { error: "expected a list of group ids" }).optional(),
  },
  "kubespawner_override",
);

export const profileChoiceSchema = strict(
  {
    display_name: displayText("a choice's display_name"),
    default: z.boolean({ error: "expected true or false" }).optional(),
    kubespawner_override: kubespawnerOverrideSchema.optional(),
  },
  "a profile option choice",
);

/** KubeSpawner's free-form "Other..." entry. Typed so it can be read; validateProfileList refuses `enabled: true`. */
export const unlistedChoiceSchema = strict(
  {
    enabled: z.boolean({ error: "expected true or false" }),
    display_name: z.string().optional(),
    display_name_in_choices: z.string().optional(),
    validation_regex: z.string().optional(),
    validation_message: z.string().optional(),
    kubespawner_override: z.record(z.string(), z.unknown()).optional(),
  },
  "unlisted_choice",
);

export const profileOptionSchema = strict(
  {
    display_name: displayText("an option's display_name"),
    // KubeSpawner's _load_profile needs a choice to fall back on ("Unable to determine a default choice") and its
    // form reserves the value "unlisted-choice".
    choices: mapping(
      slug("choice key").refine((k) => k !== "unlisted-choice", {
        error: 'the choice key "unlisted-choice" is reserved by KubeSpawner\'s form',
      }),
      profileChoiceSchema,
      "choice key → choice",
    ).refine((c) => Object.keys(c).length > 0, { error: "expected at least one choice" }),
    unlisted_choice: unlistedChoiceSchema.optional(),
  },
  "a profile option",
);

export const profileSchema = strict(
  {
    display_name: displayText("a profile's display_name"),
    slug: slug("a profile slug"),
    description: z
      .string({ error: "expected a string" })
      .refine((s) => !UNSAFE_TEXT.test(s), {
        error: 'must not contain "<", ">", "{{", "{%" or "{#": KubeSpawner and JupyterHub render it as unescaped HTML inside a Jinja template',
      })
      .optional(),
    default: z.boolean({ error: "expected true or false" }).optional(),
    kubespawner_override: kubespawnerOverrideSchema.optional(),
    profile_options: mapping(slug("option key"), profileOptionSchema, "option key → option").optional(),
  },
  "a profile",
);

export const profileListSchema = z.array(profileSchema);

export type Volume = z.infer<typeof volumeSchema>;
export type VolumeMount = z.infer<typeof volumeMountSchema>;
export type KubespawnerOverride = z.infer<typeof kubespawnerOverrideSchema>;
export type ProfileChoice = z.infer<typeof profileChoiceSchema>;
export type UnlistedChoice = z.infer<typeof unlistedChoiceSchema>;
export type ProfileOption = z.infer<typeof profileOptionSchema>;
export type Profile = z.infer<typeof profileSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------------------------

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `a.b[2].c`, with keys that are not identifiers quoted: `extra_resource_limits["nvidia.com/gpu"]`. */
export function formatValuePath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && IDENTIFIER.test(part)) out += out === "" ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/** The value received, as JSON on one line, shortened; `nothing` when the key is absent (one renderer for all errors). */
export const renderValue = renderReceived;

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let here: unknown = root;
  for (const part of path) {
    if (here === null || typeof here !== "object") return undefined;
    here = (here as Record<PropertyKey, unknown>)[part];
  }
  return here;
}

/** One line per zod issue: `<path>: <what was expected and why>, got <value>`. */
function issueMessages(error: z.ZodError, root: unknown, prefix: string): string[] {
  const out: string[] = [];
  for (const issue of error.issues) {
    const where = formatValuePath(prefix, issue.path);
    switch (issue.code) {
      case "unrecognized_keys": {
        const perKey = issue.message.split("\n");
        issue.keys.forEach((key, i) => {
          out.push(`${formatValuePath(prefix, [...issue.path, key])}: ${perKey[i] ?? "unknown key"}`);
        });
        break;
      }
      case "invalid_key": {
        const inner = issue.issues[0]?.message ?? "invalid key";
        const key = issue.path[issue.path.length - 1];
        out.push(`${where}: ${inner}, got key ${renderValue(String(key))}`);
        break;
      }
      default:
        out.push(`${where}: ${issue.message}, got ${renderValue(valueAt(root, issue.path))}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation beyond the schema
// ---------------------------------------------------------------------------------------------------------------

/** Extended resources (nvidia.com/gpu, …) cannot be overcommitted: the API server requires request == limit. */
const NATIVE_RESOURCES = /^(?:cpu|memory|ephemeral-storage|hugepages-.+)$/;

interface Located<T> {
  value: T;
  path: readonly PropertyKey[];
}

function checkOverride(
  prefix: string,
  own: Located<KubespawnerOverride>,
  inherited: KubespawnerOverride | undefined,
  out: string[],
): void {
  const at = (...rest: PropertyKey[]) => formatValuePath(prefix, [...own.path, ...rest]);
  // KubeSpawner applies the profile's override, then the chosen choice's, each key replacing the previous value, so
  // a choice is checked against what it inherits.
  // Dict-valued traits are merged (recursive_update) rather than replaced.
  const effective: KubespawnerOverride = {
    ...(inherited ?? {}),
    ...own.value,
    volumes: { ...(inherited?.volumes ?? {}), ...(own.value.volumes ?? {}) },
    extra_resource_limits: { ...(inherited?.extra_resource_limits ?? {}), ...(own.value.extra_resource_limits ?? {}) },
  };
  const o = own.value;

  const cpuG = effective.cpu_guarantee;
  const cpuL = effective.cpu_limit;
  if (cpuG !== undefined && cpuL !== undefined && cpuG > cpuL && (o.cpu_guarantee !== undefined || o.cpu_limit !== undefined)) {
    const key = o.cpu_guarantee !== undefined ? "cpu_guarantee" : "cpu_limit";
    out.push(`${at(key)}: cpu_guarantee ${cpuG} is above cpu_limit ${cpuL}; Kubernetes rejects a request above the limit, lower the guarantee or raise the limit`);
  }
  const memG = effective.mem_guarantee;
  const memL = effective.mem_limit;
  if (memG !== undefined && memL !== undefined && (o.mem_guarantee !== undefined || o.mem_limit !== undefined)) {
    const g = parseByteString(memG);
    const l = parseByteString(memL);
    if (g !== undefined && l !== undefined && g > l) {
      const key = o.mem_guarantee !== undefined ? "mem_guarantee" : "mem_limit";
      out.push(`${at(key)}: mem_guarantee "${memG}" is above mem_limit "${memL}"; Kubernetes rejects a request above the limit, lower the guarantee or raise the limit`);
    }
  }

  const gpus = o.extra_resource_limits?.["nvidia.com/gpu"];
  if (gpus !== undefined && !/^[1-9][0-9]*$/.test(gpus)) {
    out.push(`${at("extra_resource_limits", "nvidia.com/gpu")}: expected a whole number of GPUs above 0 like "1", got ${renderValue(gpus)}`);
  }
  const limits = effective.extra_resource_limits ?? {};
  for (const [name, guarantee] of Object.entries(o.extra_resource_guarantees ?? {})) {
    const limit = limits[name];
    if (!NATIVE_RESOURCES.test(name) && limit !== undefined && limit !== guarantee) {
      out.push(`${at("extra_resource_guarantees", name)}: must equal extra_resource_limits["${name}"] ("${limit}") because Kubernetes cannot overcommit extended resources, got ${renderValue(guarantee)}; or drop the guarantee (the request then defaults to the limit)`);
    }
  }

  // A mount of a volume defined nowhere in this profile would fail the pod unless z2jh defines it. The one z2jh volume
  // we mount is the user's home (personal images remount it at /home/<user>): keyed like z2jh keys it, by its
  // volumeNameTemplate (dynamic storage) or "home" (static). Any other mount must name a volume of this profile.
  const volumes = new Set(Object.values(effective.volumes ?? {}).map((v) => v.name));
  const chartHome = (key: string, name: string) => key === name && (name === "home" || name.includes("{"));
  for (const [key, mount] of Object.entries(o.volume_mounts ?? {})) {
    if (!volumes.has(mount.name) && !chartHome(key, mount.name)) {
      out.push(`${at("volume_mounts", key, "name")}: mounts volume "${mount.name}" which no volumes entry of this profile defines; add it to volumes`);
    }
  }
}

/**
 * Checks a profile list as KubeSpawner 7 will read it. Returns one human message per problem, each starting with the
 * path (`singleuser.profileList[2].kubespawner_override.mem_limit: expected a byte string like "8G", got 8`); an empty
 * list means valid. Beyond the schema: unique slugs, at most one default profile (and one default choice per option),
 * guarantee ≤ limit for cpu and memory (memory parsed as KubeSpawner does, powers of 1024), extended resources
 * requested exactly at their limit, volume mounts that name a defined volume, and no enabled `unlisted_choice` (it
 * would let users type any image, bypassing digest pinning, scanning and signing). Every `image` must be pinned by
 * digest (schema).
 *
 * @param prefix the path printed before each entry's index. @default "singleuser.profileList"
 */
export function validateProfileList(list: unknown, prefix = "singleuser.profileList"): string[] {
  if (!Array.isArray(list)) return [`${prefix}: expected a list of profiles, got ${renderValue(list)}`];

  const out: string[] = [];
  const parsed: Located<Profile>[] = [];
  list.forEach((entry, i) => {
    const result = profileSchema.safeParse(entry);
    if (result.success) parsed.push({ value: result.data, path: [i] });
    else out.push(...issueMessages(result.error, entry, formatValuePath(prefix, [i])));
  });

  // Slugs and defaults are read from the raw entries too, so a typo elsewhere in an entry does not hide a clash.
  const firstWithSlug = new Map<string, number>();
  let firstDefault: number | undefined;
  list.forEach((entry: unknown, i) => {
    if (entry === null || typeof entry !== "object") return;
    const { slug: s, default: d } = entry as { slug?: unknown; default?: unknown };
    if (typeof s === "string") {
      const first = firstWithSlug.get(s);
      if (first === undefined) firstWithSlug.set(s, i);
      else {
        out.push(`${formatValuePath(prefix, [i, "slug"])}: "${s}" is already the slug of ${formatValuePath(prefix, [first])}; slugs must be unique because KubeSpawner selects a profile by slug`);
      }
    }
    if (d === true) {
      if (firstDefault === undefined) firstDefault = i;
      else {
        out.push(`${formatValuePath(prefix, [i, "default"])}: ${formatValuePath(prefix, [firstDefault])} is already the default; at most one profile may set default: true (KubeSpawner pre-selects the first one)`);
      }
    }
  });

  for (const profile of parsed) {
    const base = profile.value.kubespawner_override;
    if (base !== undefined) checkOverride(prefix, { value: base, path: [...profile.path, "kubespawner_override"] }, undefined, out);
    for (const [optionKey, option] of Object.entries(profile.value.profile_options ?? {})) {
      const optionPath = [...profile.path, "profile_options", optionKey];
      const defaults = Object.entries(option.choices).filter(([, c]) => c.default === true).map(([k]) => k);
      if (defaults.length > 1) {
        out.push(`${formatValuePath(prefix, [...optionPath, "choices"])}: choices ${defaults.map((k) => `"${k}"`).join(", ")} all set default: true; at most one may`);
      }
      if (option.unlisted_choice?.enabled === true) {
        out.push(`${formatValuePath(prefix, [...optionPath, "unlisted_choice", "enabled"])}: must be false: a free-form choice lets users run any image, which was not pinned, scanned, signed or GPU-validated`);
      }
      for (const [choiceKey, choice] of Object.entries(option.choices)) {
        if (choice.kubespawner_override === undefined) continue;
        checkOverride(prefix, { value: choice.kubespawner_override, path: [...optionPath, "choices", choiceKey, "kubespawner_override"] }, base, out);
      }
    }
  }
  return out;
}
