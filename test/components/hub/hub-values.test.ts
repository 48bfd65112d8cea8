import { describe, expect, it } from "vitest";
import { CHART_SCHEMA_DIR, homeMountOf, type HubValues, loadChartDefaults, mergeHubValues, validateHubValues } from "../../../components/hub/hub-values";
import { type PublishedImage, renderProfileFilterConfig, renderProfileList } from "../../../components/hub/profiles";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../../lib/paths";

const image: PublishedImage = {
  variant: "datascience-cpu",
  displayName: "Data science (CPU)",
  description: "pandas",
  order: 1,
  default: true,
  imageRef: `registry.example/workbench/datascience-cpu@sha256:${"c".repeat(64)}`,
  gpu: false,
  cpu: { guarantee: 1, limit: 2 },
  memory: { guarantee: "1G", limit: "2G" },
  pools: [],
};
const { profiles, owners } = renderProfileList({
  images: [image],
  users: [{ login: "alice", username: "alice", uid: 3000, gid: 3000, project: "thesis", baseVariant: "datascience-cpu", imageRef: image.imageRef }],
});

describe("loadChartDefaults", () => {
  it("reads the vendored chart values from the repository, not ../shared", () => {
    expect(CHART_SCHEMA_DIR).toBe(path.resolve(PROJECT_ROOT, "schemas", "zero-to-jupyterhub-4.4.0"));
    const defaults = loadChartDefaults();
    expect((defaults.singleuser as HubValues).profileList).toEqual([]);
    expect((defaults.hub as HubValues).extraConfig).toEqual({});
  });

  it("returns a fresh copy each time", () => {
    const a = loadChartDefaults();
    (a.hub as HubValues).extraConfig = { x: "y" };
    expect((loadChartDefaults().hub as HubValues).extraConfig).toEqual({});
  });
});

describe("mergeHubValues (Helm's coalescing)", () => {
  it("merges mappings, replaces lists and scalars, lets later layers win and modifies nothing", () => {
    const defaults = { a: { b: 1, c: [1, 2], d: { e: "x" } }, keep: true };
    const stack = { a: { c: [3], d: { f: "y" } }, s: "stack" };
    const generated = { a: { b: 2 }, s: "generated" };
    const before = structuredClone([defaults, stack, generated]);
    expect(mergeHubValues(defaults, stack, generated)).toEqual({
      a: { b: 2, c: [3], d: { e: "x", f: "y" } },
      keep: true,
      s: "generated",
    });
    expect([defaults, stack, generated]).toEqual(before);
  });

  it("deletes a key the lower layer has when set to null, and keeps null for a key it lacks", () => {
    const merged = mergeHubValues({ a: { b: 1, c: 2 } }, { a: { b: null, z: null } }, {});
    expect(merged).toEqual({ a: { c: 2, z: null } });
    expect(merged.a).not.toHaveProperty("b");
  });

  it("lets a later layer bring back a key an earlier layer deleted, and a mapping replace a scalar", () => {
    expect(mergeHubValues({ a: { b: 1 } }, { a: null }, { a: { c: 3 } })).toEqual({ a: { c: 3 } });
    expect(mergeHubValues({ a: "text" }, { a: { b: 1 } }, {})).toEqual({ a: { b: 1 } });
  });

  it("refuses a layer that is not a mapping", () => {
    expect(() => mergeHubValues({}, [] as unknown as HubValues, {})).toThrow("mergeHubValues: stackValues must be a values mapping, got []");
  });
});

describe("validateHubValues", () => {
  it("accepts the chart defaults alone", () => {
    expect(validateHubValues(loadChartDefaults())).toEqual([]);
  });

  it("accepts generated values with a profileList", () => {
    const merged = mergeHubValues(loadChartDefaults(), { hub: { db: { type: "sqlite-pvc" } } }, { singleuser: { profileList: profiles, cpu: { limit: 2 } } });
    expect(validateHubValues(merged)).toEqual([]);
  });

  it("accepts generated values with the profile filter and an empty profileList", () => {
    const merged = mergeHubValues(loadChartDefaults(), {}, { hub: { extraConfig: { "50-workbench-profiles": renderProfileFilterConfig(profiles, owners) } } });
    expect(validateHubValues(merged)).toEqual([]);
  });

  it("reports bad user values with their paths", () => {
    const merged = mergeHubValues(
      loadChartDefaults(),
      { singleuser: { cpu: { limit: "lots" } }, hubb: {}, proxy: { service: { type: "Ingress" } } },
      { hub: { extraConfig: { profiles: 5 } } },
    );
    expect(validateHubValues(merged)).toEqual([
      'hubb: unknown key, the chart\'s schema allows no others here; did you mean "hub"?',
      "hub.extraConfig.profiles: must be string, got 5",
      'proxy.service.type: must be one of "ClusterIP", "NodePort", "LoadBalancer" or "ExternalName", got "Ingress"',
      'singleuser.cpu.limit: must be number or null, got "lots"',
    ]);
  });

  it("reports a required section deleted with null, unknown nested keys and extraFiles without content", () => {
    const merged = mergeHubValues(
      loadChartDefaults(),
      { cull: null, singleuser: { memory: { limt: "1G" } }, hub: { extraFiles: { script: { mountPath: "/x" } } } },
      {},
    );
    expect(validateHubValues(merged)).toEqual([
      "cull: is required by the chart's schema, got nothing",
      'hub.extraFiles.script: must set exactly one of "data", "stringData" or "binaryData", got {"mountPath":"/x"}',
      'singleuser.memory.limt: unknown key, the chart\'s schema allows no others here; did you mean "limit"?',
    ]);
  });

  it("checks profileList entries with the KubeSpawner schema", () => {
    const bad = structuredClone(profiles);
    (bad[0]!.kubespawner_override as HubValues).mem_limit = 8;
    const merged = mergeHubValues(loadChartDefaults(), {}, { singleuser: { profileList: bad } });
    expect(validateHubValues(merged)).toEqual([
      'singleuser.profileList[0].kubespawner_override.mem_limit: expected a byte string like "8G", got 8',
    ]);
  });

  it("refuses a profileList next to the profile filter, which would silently replace it", () => {
    const merged = mergeHubValues(
      loadChartDefaults(),
      { singleuser: { profileList: profiles.slice(0, 1) } },
      { hub: { extraConfig: { "50-workbench-profiles": renderProfileFilterConfig(profiles, owners) } } },
    );
    expect(validateHubValues(merged)).toEqual([
      'singleuser.profileList: must be empty when hub.extraConfig["50-workbench-profiles"] installs the workbench profile filter, which replaces KubeSpawner.profile_list after z2jh applied this list (its 1 entry would be silently ignored); put profiles into renderProfileFilterConfig() instead',
    ]);
  });
});

describe("homeMountOf", () => {
  it("keys the home mount as z2jh 4.4.0 does for dynamic, static and no storage", () => {
    expect(homeMountOf(loadChartDefaults())).toEqual({ key: "volume-{user_server}", name: "volume-{user_server}" });
    expect(homeMountOf(mergeHubValues(loadChartDefaults(), { singleuser: { storage: { type: "static", static: { pvcName: "homes", subPath: "{username}" } } } }, {}))).toEqual({
      key: "home",
      name: "home",
      subPath: "{username}",
    });
    expect(homeMountOf(mergeHubValues(loadChartDefaults(), { singleuser: { storage: { type: "none" } } }, {}))).toBeUndefined();
  });
});
