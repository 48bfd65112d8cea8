/**
 * The GPU validation check reads clocks, power, throttle reasons and health counters through NVML's Python bindings
 * (images/checks/gpu_check.py, check "nvml") and reports an image without them as an image defect. So every GPU
 * image the catalog builds must install nvidia-ml-py, at one pinned version, in what its build target installs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../lib/paths";

const IMAGES = path.join(PROJECT_ROOT, "images");
const catalog = parse(fs.readFileSync(path.join(IMAGES, "catalog.yaml"), "utf8")) as {
  variants: { name: string; context: string; target?: string; gpu?: boolean }[];
};
/** Where each GPU variant's build target installs nvidia-ml-py from (the Dockerfile stage or a requirements file it reads). */
const SOURCES: Record<string, string> = {
  universal: "universal/Dockerfile",
  "ml-stack-ml": "ml-stack/requirements/gpu.txt",
  "jupyter-ml-gpu": "jupyter-ml-gpu/requirements.txt",
  "jupyter-fine-tuning": "jupyter-fine-tuning/requirements.txt",
};

describe("NVML bindings in every GPU image", () => {
  it("names exactly the catalog's GPU variants", () => {
    expect(catalog.variants.filter((v) => v.gpu === true).map((v) => v.name).sort()).toEqual(Object.keys(SOURCES).sort());
  });

  it.each(Object.entries(SOURCES))("%s installs nvidia-ml-py==13.615.71 (%s)", (_variant, file) => {
    const pins = fs.readFileSync(path.join(IMAGES, file), "utf8").match(/nvidia-ml-py==[0-9.]+/g);
    expect(pins).toEqual(["nvidia-ml-py==13.615.71"]);
  });

  it("ml-stack installs gpu.txt in its ml target only", () => {
    const dockerfile = fs.readFileSync(path.join(IMAGES, "ml-stack", "Dockerfile"), "utf8");
    const stages = dockerfile.split(/^FROM /m).filter((s) => s.includes("requirements/gpu.txt"));
    expect(stages.map((s) => s.split("\n")[0])).toEqual([expect.stringMatching(/ AS ml$/)]);
  });
});
