import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CHART_IMAGES_FILE,
  chartImageKeyPath,
  chartImageProblems,
  type ChartImages,
  chartImageValues,
  loadChartImages,
  parseChartImages,
  pinChartImagesFile,
  pinChartImagesText,
  unpinnedChartImages,
} from "../../lib/chart-images";
import { type HubValues, loadChartDefaults, mergeHubValues, validateHubValues } from "../../components/hub/hub-values";
import { parseImageRef } from "../../lib/image-ref";
import type { DigestResolver } from "../../scripts/lib/pin-bases";
import { ConfigError } from "../../lib/problems";
import { checkHelmValuesImagesPinned, HELM_RELEASE_TYPE } from "../../policy/rules";
import { PROJECT_ROOT } from "../../lib/paths";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;
const D4 = `sha256:${"4".repeat(64)}`;
const OLD = `sha256:${"a".repeat(64)}`;

/** A digest per reference, so a wrong pairing of image and digest shows up. */
const digestOf = (ref: string): string => `sha256:${createHash("sha256").update(ref).digest("hex")}`;

function fakeResolver(table?: Record<string, string>): DigestResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolver = async (ref: string): Promise<string> => {
    calls.push(ref);
    if (table === undefined) return digestOf(ref);
    const digest = table[ref];
    if (digest === undefined) throw new Error(`manifest unknown: ${ref}`);
    return digest;
  };
  return Object.assign(resolver, { calls });
}

/** The message of the ConfigError `fn` throws. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(ConfigError.is(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

// A pin file with both shapes of reference, a quoted scalar, a Docker Hub short name, a registry with a port, and an
// unpinned entry, so the exact values below cover every branch of the image-block shapes.
const FIXTURE = `# comment kept
charts:
  jupyterhub:
    version: 4.4.0
    images:
      hub.image: quay.io/jupyterhub/k8s-hub:4.4.0@${D1} # source: test
      proxy.traefik.image: "traefik:v3.6.12@${D2}"
      singleuser.image: quay.io/jupyterhub/k8s-singleuser-sample:4.4.0
  kyverno:
    version: 3.5.2
    images:
      admissionController.container.image: reg.kyverno.io/kyverno/kyverno:v1.15.2@${D3}
      test.image: busybox:1.35@${D4}
      webhooksCleanup.image: localhost:5000/tools/kubectl:v1.32.7@${D1}
      cleanupController.image: reg.kyverno.io/kyverno/cleanup-controller:v1.15.2
`;

describe("chartImageValues", () => {
  const images = parseChartImages(FIXTURE, "fixture.yaml");

  it("pins zero-to-jupyterhub images as {name, tag: <tag>@<digest>}, leaving unpinned ones to the chart", () => {
    expect(chartImageValues("jupyterhub", images)).toEqual({
      hub: { image: { name: "quay.io/jupyterhub/k8s-hub", tag: `4.4.0@${D1}` } },
      proxy: { traefik: { image: { name: "traefik", tag: `v3.6.12@${D2}` } } },
    });
  });

  it("pins Kyverno images as {registry, repository, tag: <tag>@<digest>}, Docker Hub names written out in full", () => {
    expect(chartImageValues("kyverno", images)).toEqual({
      admissionController: { container: { image: { registry: "reg.kyverno.io", repository: "kyverno/kyverno", tag: `v1.15.2@${D3}` } } },
      test: { image: { registry: "docker.io", repository: "library/busybox", tag: `1.35@${D4}` } },
      webhooksCleanup: { image: { registry: "localhost:5000", repository: "tools/kubectl", tag: `v1.32.7@${D1}` } },
    });
  });

  it("renders, through each chart's own image template, the reference that was pinned", () => {
    // zero-to-jupyterhub 4.4.0: `image: {{ .name }}:{{ .tag }}` (hub/deployment.yaml and every other image).
    const hub = chartImageValues("jupyterhub", images) as { hub: { image: { name: string; tag: string } } };
    expect(`${hub.hub.image.name}:${hub.hub.image.tag}`).toBe(`quay.io/jupyterhub/k8s-hub:4.4.0@${D1}`);
    expect(parseImageRef(`${hub.hub.image.name}:${hub.hub.image.tag}`)).toEqual({ repository: "quay.io/jupyterhub/k8s-hub", tag: "4.4.0", digest: D1 });
    // Kyverno 3.5.2 _helpers/_image.tpl: `print $imageRegistry "/" .image.repository ":" $tag`.
    const kyverno = chartImageValues("kyverno", images) as Record<string, { image?: { registry: string; repository: string; tag: string } }>;
    const test = kyverno.test!.image!;
    expect(`${test.registry}/${test.repository}:${test.tag}`).toBe(`docker.io/library/busybox:1.35@${D4}`);
    expect(parseImageRef(`${test.registry}/${test.repository}:${test.tag}`)?.digest).toBe(D4);
  });

  it("leaves out a pin where the stack names its own image at that path, and keeps it for pull settings only", () => {
    const overrides = {
      hub: { image: { name: "registry.example/our-hub" } },
      proxy: { traefik: { image: { pullPolicy: "Always" } } },
    };
    expect(chartImageValues("jupyterhub", images, overrides)).toEqual({
      proxy: { traefik: { image: { name: "traefik", tag: `v3.6.12@${D2}` } } },
    });
    expect(chartImageValues("jupyterhub", images, { hub: { image: { tag: "5.0" } } })).toEqual({
      proxy: { traefik: { image: { name: "traefik", tag: `v3.6.12@${D2}` } } },
    });
  });

  it("pass the helm-values-images-pinned-by-digest policy rule", () => {
    expect(checkHelmValuesImagesPinned(HELM_RELEASE_TYPE, { values: chartImageValues("jupyterhub", images) })).toEqual([]);
    expect(checkHelmValuesImagesPinned(HELM_RELEASE_TYPE, { values: chartImageValues("kyverno", images) })).toEqual([]);
  });
});

describe("unpinnedChartImages", () => {
  it("lists the value paths without a digest, in file order", () => {
    const images = parseChartImages(FIXTURE, "fixture.yaml");
    expect(unpinnedChartImages(images, "jupyterhub")).toEqual(["singleuser.image"]);
    expect(unpinnedChartImages(images, "kyverno")).toEqual(["cleanupController.image"]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The real pin file against the charts it pins

/** Every `image: {name, tag}` block in zero-to-jupyterhub's default values, by value path. */
function z2jhDefaultImages(): Map<string, { name: string; tag: string }> {
  const out = new Map<string, { name: string; tag: string }>();
  const walk = (node: unknown, at: string[]): void => {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return;
    for (const [key, value] of Object.entries(node)) {
      const v = value as { name?: unknown; tag?: unknown } | null;
      if (key === "image" && v !== null && typeof v === "object" && typeof v.name === "string" && typeof v.tag === "string") {
        out.set([...at, key].join("."), { name: v.name, tag: v.tag });
      } else walk(value, [...at, key]);
    }
  };
  walk(loadChartDefaults(), []);
  return out;
}

// charts/kyverno/values.yaml at tag kyverno-chart-3.5.2 (appVersion v1.15.2): every image block, as the chart renders
// it with default values (registry, else defaultRegistry; tag, else the app version).
const KYVERNO_3_5_2_DEFAULTS: Record<string, string> = {
  "admissionController.initContainer.image": "reg.kyverno.io/kyverno/kyvernopre:v1.15.2",
  "admissionController.container.image": "reg.kyverno.io/kyverno/kyverno:v1.15.2",
  "backgroundController.image": "reg.kyverno.io/kyverno/background-controller:v1.15.2",
  "cleanupController.image": "reg.kyverno.io/kyverno/cleanup-controller:v1.15.2",
  "reportsController.image": "reg.kyverno.io/kyverno/reports-controller:v1.15.2",
  "crds.migration.image": "reg.kyverno.io/kyverno/kyverno-cli:v1.15.2",
  "webhooksCleanup.image": "registry.k8s.io/kubectl:v1.32.7",
  "test.image": "busybox:1.35",
};

/** The Kyverno image blocks with their default values, for the policy rule (tag ~ rendered as the app version). */
function kyvernoDefaultBlocks(): HubValues {
  const out: HubValues = {};
  for (const [valuePath, ref] of Object.entries(KYVERNO_3_5_2_DEFAULTS)) {
    const parsed = parseImageRef(ref)!;
    const [first, ...rest] = parsed.repository.split("/");
    const block = rest.length > 0 && first!.includes(".") ? { registry: first, repository: rest.join("/"), tag: parsed.tag } : { repository: parsed.repository, tag: parsed.tag };
    let node = out;
    const keys = valuePath.split(".");
    keys.slice(0, -1).forEach((k) => {
      node[k] ??= {};
      node = node[k] as HubValues;
    });
    node[keys[keys.length - 1]!] = block;
  }
  return out;
}

describe("images/chart-images.yaml", () => {
  const real = loadChartImages();

  it("is read from the repository and pins the chart versions the stacks deploy", () => {
    expect(CHART_IMAGES_FILE).toBe(path.resolve(PROJECT_ROOT, "images", "chart-images.yaml"));
    expect(real.file).toBe(path.join("images", "chart-images.yaml"));
    expect(real.charts.jupyterhub.version).toBe("4.4.0");
    expect(real.charts.kyverno.version).toBe("3.5.2");
  });

  it("lists exactly the image blocks of zero-to-jupyterhub 4.4.0, with the chart's own names and tags", () => {
    const defaults = z2jhDefaultImages();
    expect(real.charts.jupyterhub.images.map((i) => i.path).sort()).toEqual([...defaults.keys()].sort());
    for (const image of real.charts.jupyterhub.images) {
      const want = defaults.get(image.path)!;
      // chartpress replaces "set-by-chartpress" with the chart version when it packages the chart.
      expect({ path: image.path, repository: image.repository, tag: image.tag }).toEqual({
        path: image.path,
        repository: want.name,
        tag: want.tag === "set-by-chartpress" ? "4.4.0" : want.tag,
      });
    }
  });

  it("lists exactly the image blocks of Kyverno chart 3.5.2, with the chart's own references", () => {
    expect(Object.fromEntries(real.charts.kyverno.images.map((i) => [i.path, `${i.repository}:${i.tag}`]))).toEqual(KYVERNO_3_5_2_DEFAULTS);
  });

  // A subset, so pinning the rest does not break it; a `--refresh` that moves one of these must update the table in
  // docs/chart-images.md (where each was seen) along with this test.
  it("keeps the digests researched for docs/chart-images.md", () => {
    const pinned = (chart: "jupyterhub" | "kyverno") => Object.fromEntries(real.charts[chart].images.filter((i) => i.digest).map((i) => [i.path, i.digest]));
    expect(pinned("jupyterhub")).toMatchObject({
      "proxy.traefik.image": "sha256:171c9c3565b29f6c133f1c1b43c5d4e5853415198e9e1078c001f8702ff66aec",
      "scheduling.userScheduler.image": "sha256:74a5cf9cfa9fcc2246f68c650f1f5c7add20da2145f13800fd97ba1d69fc06c8",
      "scheduling.userPlaceholder.image": "sha256:278fb9dbcca9518083ad1e11276933a2e96f23de604a3a08cc3c80002767d24c",
      "prePuller.pause.image": "sha256:278fb9dbcca9518083ad1e11276933a2e96f23de604a3a08cc3c80002767d24c",
    });
    expect(pinned("kyverno")).toMatchObject({
      "webhooksCleanup.image": "sha256:3c526815897478b22becbb5d2eadf0e0c021b41248400b8bcc8c6f32132442d2",
      "test.image": "sha256:5be7104a4306abe768359a5379e6050ef69a29e9a5f99fcf7f46d5f7e9ba29a2",
    });
  });

  it("merged over the chart defaults still satisfies zero-to-jupyterhub's schema", () => {
    expect(validateHubValues(mergeHubValues(loadChartDefaults(), chartImageValues("jupyterhub", real), {}))).toEqual([]);
  });

  it("leaves, in the merged release values, exactly the unpinned images for the policy rule to find", () => {
    const z2jh = mergeHubValues(loadChartDefaults(), chartImageValues("jupyterhub", real), {});
    const flagged = checkHelmValuesImagesPinned(HELM_RELEASE_TYPE, { values: z2jh }).map((m) => m.split(" is ")[0]);
    expect(flagged.sort()).toEqual(unpinnedChartImages(real, "jupyterhub").map((p) => `values.${p}`).sort());
    const kyverno = mergeHubValues(kyvernoDefaultBlocks(), chartImageValues("kyverno", real), {});
    const kyvernoFlagged = checkHelmValuesImagesPinned(HELM_RELEASE_TYPE, { values: kyverno }).map((m) => m.split(" is ")[0]);
    expect(kyvernoFlagged.sort()).toEqual(unpinnedChartImages(real, "kyverno").map((p) => `values.${p}`).sort());
  });

  it("once every image is pinned, covers every image block of both charts: the policy rule finds nothing", async () => {
    const text = fs.readFileSync(CHART_IMAGES_FILE, "utf8");
    const pinned = await pinChartImagesText(text, fakeResolver(), { refresh: true });
    expect(pinned.problems).toEqual([]);
    const all = parseChartImages(pinned.text, "pinned.yaml");
    expect(unpinnedChartImages(all, "jupyterhub")).toEqual([]);
    expect(unpinnedChartImages(all, "kyverno")).toEqual([]);
    const z2jh = mergeHubValues(loadChartDefaults(), chartImageValues("jupyterhub", all), {});
    expect(validateHubValues(z2jh)).toEqual([]);
    expect(checkHelmValuesImagesPinned(HELM_RELEASE_TYPE, { values: z2jh })).toEqual([]);
    const kyverno = mergeHubValues(kyvernoDefaultBlocks(), chartImageValues("kyverno", all), {});
    expect(checkHelmValuesImagesPinned(HELM_RELEASE_TYPE, { values: kyverno })).toEqual([]);
    expect(chartImageProblems(all, { jupyterhub: "4.4.0", kyverno: "3.5.2" })).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Bad input: one error listing every problem, each with its key path, the value and the fix

describe("parseChartImages errors", () => {
  it("lists every bad entry in one error, each with its key path, line, value and fix", () => {
    const text = `charts:
  jupyterhub:
    version: 4.4.0
    images:
      hub: quay.io/jupyterhub/k8s-hub:4.4.0
      proxy.chp.image: 5
      singleuser.image: "Not A Ref"
      prePuller.hook.image: quay.io/jupyterhub/k8s-image-awaiter@${D1}
  kyverno:
    version: 3.5.2
    images: {}
`;
    expect(errorOf(() => parseChartImages(text, "images/chart-images.yaml"))).toBe(
      `Invalid chart image pins in images/chart-images.yaml (5 problems):
  - images/chart-images.yaml: charts.jupyterhub.images["hub"] (line 5): is not the value path of an image block. Write the dotted path the chart's values use, ending in ".image" (e.g. "hub.image"). (got "hub")
  - images/chart-images.yaml: charts.jupyterhub.images["proxy.chp.image"] (line 6): must be an image reference string like "quay.io/jupyterhub/k8s-hub:4.4.0@sha256:<64 hex>". (got 5)
  - images/chart-images.yaml: charts.jupyterhub.images["singleuser.image"] (line 7): is not an image reference like "registry/repository:tag@sha256:<64 hex>". Fix the reference. (got "Not A Ref")
  - images/chart-images.yaml: charts.jupyterhub.images["prePuller.hook.image"] (line 8): has no tag. The chart renders <repository>:<tag>, so keep the chart's tag and put the digest after it: "repository:tag@sha256:<64 hex>". (got ${JSON.stringify(`quay.io/jupyterhub/k8s-image-awaiter@${D1}`).slice(0, 79)}…)
  - images/chart-images.yaml: charts.kyverno.images (line 11): lists no images. List every image block the chart deploys, by value path (docs/chart-images.md).`,
    );
  });

  it("reports a misspelt or missing chart and a bad version by path", () => {
    const text = `charts:
  jupyterhub:
    version: "4.4"
    images:
      hub.image: quay.io/jupyterhub/k8s-hub:4.4.0
  kyvern:
    version: 3.5.2
    images: {}
`;
    expect(errorOf(() => parseChartImages(text, "x.yaml"))).toBe(
      `Invalid chart image pins in x.yaml (3 problems):
  - x.yaml: charts.jupyterhub.version (line 3): must be the chart version the images belong to, e.g. "4.4.0". (got "4.4")
  - x.yaml: charts.kyverno: is required but missing: set it to a mapping (key: value).
  - x.yaml: charts.kyvern (line 6): unknown key "kyvern". Did you mean "kyverno"? Remove it or correct the spelling. (got {"version":"3.5.2","images":{}})`,
    );
  });

  it("reports invalid YAML with its line, and an unreadable file with the fix", () => {
    expect(errorOf(() => parseChartImages("charts:\n  jupyterhub: [\n", "x.yaml"))).toMatch(
      /^Invalid chart image pins in x\.yaml \(1 problem\):\n {2}- x\.yaml \(line 3\): is not valid YAML: .+\. Fix the syntax at that line\.$/,
    );
    const missing = path.join(os.tmpdir(), `no-such-chart-images-${process.pid}.yaml`);
    expect(errorOf(() => loadChartImages(missing))).toBe(
      `Invalid chart image pins in ${missing} (1 problem):\n  - ${missing}: cannot be read (ENOENT). Restore it from the repository; docs/chart-images.md says what it holds.`,
    );
  });
});

describe("chartImageProblems", () => {
  const images = parseChartImages(FIXTURE, "images/chart-images.yaml");

  it("names each unpinned image and a chart version the pins were not made for, with the fix", () => {
    expect(chartImageProblems(images, { jupyterhub: "4.4.0", kyverno: "3.5.3" })).toEqual([
      {
        path: 'images/chart-images.yaml: charts.jupyterhub.images["singleuser.image"]',
        message:
          "has no digest, so the jupyterhub chart would run quay.io/jupyterhub/k8s-singleuser-sample:4.4.0 by tag on this stack. " +
          "Pin it: run `npm run pin-chart-images` where the registry is reachable, or append the digest that " +
          "`skopeo inspect --raw docker://quay.io/jupyterhub/k8s-singleuser-sample:4.4.0 | sha256sum` prints, as @sha256:<64 hex>.",
        received: '"quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"',
      },
      {
        path: "images/chart-images.yaml: charts.kyverno.version",
        message:
          "pins the images of kyverno chart 3.5.2, but this stack deploys kyverno 3.5.3. " +
          "List the image blocks of 3.5.3 with its default tags, set version: 3.5.3 and pin them (docs/chart-images.md).",
        received: '"3.5.2"',
      },
    ]);
  });

  it("checks only the charts the stack deploys", () => {
    expect(chartImageProblems(images, {}).length).toBe(0);
    expect(chartImageProblems(images, { kyverno: "3.5.2" }).map((p) => p.path)).toEqual([
      'images/chart-images.yaml: charts.kyverno.images["cleanupController.image"]',
    ]);
  });

  it("quotes dotted value paths so a key path names one key", () => {
    expect(chartImageKeyPath("kyverno", "admissionController.container.image")).toBe('charts.kyverno.images["admissionController.container.image"]');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Refreshing the pins

describe("pinChartImagesText", () => {
  const TEXT = `# header comment
charts:
  jupyterhub:
    version: 4.4.0
    images:
      hub.image: quay.io/jupyterhub/k8s-hub:4.4.0   # unpinned, comment kept
      proxy.chp.image: 'quay.io/jupyterhub/configurable-http-proxy:5.2.0'
      prePuller.pause.image: "registry.k8s.io/pause:3.10.1@${OLD}"
      scheduling.userPlaceholder.image: registry.k8s.io/pause:3.10.1
  kyverno:
    version: 3.5.2
    images:
      test.image: busybox:1.35
`;
  const TABLE = {
    "quay.io/jupyterhub/k8s-hub:4.4.0": D1,
    "quay.io/jupyterhub/configurable-http-proxy:5.2.0": D2,
    "registry.k8s.io/pause:3.10.1": D3,
    "busybox:1.35": D4,
  };

  it("appends digests to tag-only references, each distinct tag resolved once, nothing else changed byte for byte", async () => {
    const resolver = fakeResolver(TABLE);
    const result = await pinChartImagesText(TEXT, resolver, { refresh: false });
    expect(result.problems).toEqual([]);
    expect(resolver.calls).toEqual(["quay.io/jupyterhub/k8s-hub:4.4.0", "quay.io/jupyterhub/configurable-http-proxy:5.2.0", "registry.k8s.io/pause:3.10.1", "busybox:1.35"]);
    expect(result.text).toBe(
      TEXT.replace("k8s-hub:4.4.0 ", `k8s-hub:4.4.0@${D1} `)
        .replace("'quay.io/jupyterhub/configurable-http-proxy:5.2.0'", `'quay.io/jupyterhub/configurable-http-proxy:5.2.0@${D2}'`)
        .replace("scheduling.userPlaceholder.image: registry.k8s.io/pause:3.10.1", `scheduling.userPlaceholder.image: registry.k8s.io/pause:3.10.1@${D3}`)
        .replace("busybox:1.35", `busybox:1.35@${D4}`),
    );
    expect(result.changes).toEqual([
      { path: 'charts.jupyterhub.images["hub.image"]', from: "quay.io/jupyterhub/k8s-hub:4.4.0", to: `quay.io/jupyterhub/k8s-hub:4.4.0@${D1}` },
      { path: 'charts.jupyterhub.images["proxy.chp.image"]', from: "quay.io/jupyterhub/configurable-http-proxy:5.2.0", to: `quay.io/jupyterhub/configurable-http-proxy:5.2.0@${D2}` },
      { path: 'charts.jupyterhub.images["scheduling.userPlaceholder.image"]', from: "registry.k8s.io/pause:3.10.1", to: `registry.k8s.io/pause:3.10.1@${D3}` },
      { path: 'charts.kyverno.images["test.image"]', from: "busybox:1.35", to: `busybox:1.35@${D4}` },
    ]);
  });

  it("with refresh, moves existing pins to the tag's current digest too", async () => {
    const result = await pinChartImagesText(TEXT, fakeResolver(TABLE), { refresh: true });
    expect(result.changes.map((c) => c.path)).toContain('charts.jupyterhub.images["prePuller.pause.image"]');
    expect(result.text).toContain(`prePuller.pause.image: "registry.k8s.io/pause:3.10.1@${D3}"`);
  });

  it("changes nothing when a tag cannot be resolved or the file is invalid", async () => {
    const partial = Object.fromEntries(Object.entries(TABLE).filter(([k]) => k !== "busybox:1.35"));
    expect(await pinChartImagesText(TEXT, fakeResolver(partial), { refresh: false })).toEqual({
      text: TEXT,
      changes: [],
      problems: ["busybox:1.35: could not resolve: manifest unknown: busybox:1.35. Check the tag exists and this machine can reach the registry."],
    });
    const bad = TEXT.replace("test.image", "test");
    expect(await pinChartImagesText(bad, fakeResolver(TABLE), { refresh: false, displayPath: "x.yaml" })).toEqual({
      text: bad,
      changes: [],
      problems: [
        'x.yaml: charts.kyverno.images["test"] (line 13): is not the value path of an image block. Write the dotted path the chart\'s values use, ending in ".image" (e.g. "hub.image").',
      ],
    });
    expect(await pinChartImagesText(TEXT, async () => "latest", { refresh: false })).toEqual({
      text: TEXT,
      changes: [],
      problems: [
        'quay.io/jupyterhub/k8s-hub:4.4.0: the resolver returned "latest", not sha256:<64 hex>.',
        'quay.io/jupyterhub/configurable-http-proxy:5.2.0: the resolver returned "latest", not sha256:<64 hex>.',
        'registry.k8s.io/pause:3.10.1: the resolver returned "latest", not sha256:<64 hex>.',
        'busybox:1.35: the resolver returned "latest", not sha256:<64 hex>.',
      ],
    });
  });
});

describe("pinChartImagesFile", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chart-images-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes the pinned file in place (a dry run writes nothing) and leaves no temporary file", async () => {
    const file = path.join(dir, "chart-images.yaml");
    const original = fs.readFileSync(CHART_IMAGES_FILE, "utf8");
    fs.writeFileSync(file, original);
    const unpinned = loadChartImages(file);
    const dry = await pinChartImagesFile(fakeResolver(), { file, dryRun: true });
    expect(dry.changes.map((c) => c.path)).toEqual([
      ...unpinnedChartImages(unpinned, "jupyterhub").map((p) => chartImageKeyPath("jupyterhub", p)),
      ...unpinnedChartImages(unpinned, "kyverno").map((p) => chartImageKeyPath("kyverno", p)),
    ]);
    expect(fs.readFileSync(file, "utf8")).toBe(original);
    const wet = await pinChartImagesFile(fakeResolver(), { file });
    expect(fs.readFileSync(file, "utf8")).toBe(wet.text);
    expect(fs.readdirSync(dir)).toEqual(["chart-images.yaml"]);
    const pinned: ChartImages = loadChartImages(file);
    expect(unpinnedChartImages(pinned, "jupyterhub")).toEqual([]);
    expect(unpinnedChartImages(pinned, "kyverno")).toEqual([]);
    // Existing pins stay where they were without --refresh.
    expect(pinned.charts.jupyterhub.images.find((i) => i.path === "proxy.traefik.image")?.digest).toBe(
      "sha256:171c9c3565b29f6c133f1c1b43c5d4e5853415198e9e1078c001f8702ff66aec",
    );
  });
});
