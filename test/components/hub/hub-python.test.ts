/**
 * The hub's Python for real: components/hub/profile_filter.py, rendered with data by renderProfileFilterConfig(), run by python3
 * the way z2jh runs hub.extraConfig, against a stand-in `c` and spawner (test/fixtures/profile_filter_harness.py).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROFILE_FILTER_PATH, type PublishedImage, type UserImage, renderProfileFilterConfig, renderProfileList } from "../../../components/hub/profiles";
import { PROJECT_ROOT } from "../../../lib/paths";

// Debian's interpreter when present (stdlib only is needed); otherwise whatever python3 is on PATH.
const PYTHON = fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const HARNESS = path.join(PROJECT_ROOT, "test", "fixtures", "profile_filter_harness.py");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-python-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const cpu: PublishedImage = {
  variant: "datascience-cpu",
  displayName: "Data science (CPU)",
  description: "pandas, it's naïve 🚀",
  order: 1,
  default: true,
  imageRef: `registry.example/workbench/datascience-cpu@${digest("c")}`,
  gpu: false,
  cpu: { guarantee: 1, limit: 2 },
  memory: { guarantee: "1G", limit: "2G" },
  pools: [],
};
const gpu: PublishedImage = {
  ...cpu,
  variant: "pytorch-gpu",
  displayName: "PyTorch (GPU)",
  description: "PyTorch",
  order: 2,
  default: false,
  imageRef: `registry.example/workbench/pytorch-gpu@${digest("d")}`,
  gpu: true,
  pools: [{ name: "a10g", nodeSelector: { pool: "a10g" }, tolerations: [{ key: "nvidia.com/gpu", operator: "Exists" }], gpusPerNode: 1, product: "A10G" }],
};
const user = (login: string, username: string, project: string): UserImage => ({
  login,
  username,
  uid: 3000,
  gid: 3000,
  project,
  baseVariant: "datascience-cpu",
  imageRef: `registry.example/workbench-3000/${project}@${digest("1")}`,
});
// "Alice" logs in; JupyterHub's default normalize_username makes her user name "alice".
const rendered = renderProfileList({
  images: [cpu, gpu],
  users: [user("Alice", "alice", "thesis"), user("Alice", "alice", "side"), user("bob", "bob", "vision")],
});

function writeConfig(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

interface HarnessResult {
  callable: boolean;
  awaitable: boolean;
  isolated: boolean;
  printed: string;
  leftover_names: string[];
  first_profile: unknown;
  offered: Record<string, string[]>;
}

function runHarness(file: string, mode: "module" | "split", users: string[]): HarnessResult {
  const out = execFileSync(PYTHON, [HARNESS, file, mode, ...users], { encoding: "utf8" });
  return JSON.parse(out) as HarnessResult;
}

describe("components/hub/profile_filter.py", () => {
  it("compiles as it is in the repository", () => {
    const result = spawnSync(PYTHON, ["-m", "py_compile", PROFILE_FILTER_PATH], { encoding: "utf8", env: { ...process.env, PYTHONPYCACHEPREFIX: dir } });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("compiles once rendered with data", () => {
    const file = writeConfig("compile.py", renderProfileFilterConfig(rendered.profiles, rendered.owners));
    const result = spawnSync(PYTHON, ["-m", "py_compile", file], { encoding: "utf8", env: { ...process.env, PYTHONPYCACHEPREFIX: dir } });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  for (const mode of ["module", "split"] as const) {
    it(`offers personal profiles only to their owner (exec mode: ${mode})`, () => {
      const file = writeConfig(`filter-${mode}.py`, renderProfileFilterConfig(rendered.profiles, rendered.owners));
      const result = runHarness(file, mode, ["alice", "bob", "carol", "Alice"]);
      expect(result.offered).toEqual({
        alice: ["datascience-cpu", "pytorch-gpu", "user-alice-side", "user-alice-thesis"],
        bob: ["datascience-cpu", "pytorch-gpu", "user-bob-vision"],
        carol: ["datascience-cpu", "pytorch-gpu"],
        // Not a name JupyterHub's default normalization produces; matching it would widen the owner to every spelling.
        Alice: ["datascience-cpu", "pytorch-gpu"],
      });
      expect(result.callable).toBe(true);
      expect(result.awaitable).toBe(false);
      expect(result.isolated).toBe(true);
      expect(result.leftover_names).toEqual([]);
      expect(result.printed).toBe("workbench-images profile filter: 5 profiles, 3 of them personal\n");
      // The JSON survives the trip through a Python raw string: quotes, non-ASCII and emoji included.
      expect(result.first_profile).toEqual(rendered.profiles[0]);
    });
  }

  it("fails the hub start when an owner names a profile that does not exist", () => {
    const text = renderProfileFilterConfig(rendered.profiles, rendered.owners).replace('"user-bob-vision": "bob"', '"user-ghost": "bob"');
    const result = spawnSync(PYTHON, [HARNESS, writeConfig("ghost.py", text), "module", "bob"], { encoding: "utf8" });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n").at(-1)).toBe(
      "ValueError: workbench-images profile filter: owners name profiles that do not exist: user-ghost",
    );
  });

  it("offers everything to everyone when nobody owns a profile", () => {
    const file = writeConfig("shared.py", renderProfileFilterConfig(rendered.profiles.slice(0, 2), {}));
    expect(runHarness(file, "module", ["carol"]).offered).toEqual({ carol: ["datascience-cpu", "pytorch-gpu"] });
  });
});
