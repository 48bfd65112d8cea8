import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CUDA_DRIVER_FLOORS,
  GPU_DATASHEETS,
  checkPoolCompatibility,
  compareDriverVersions,
  datasheetFor,
  knownCudaVersions,
  minimumDriverFor,
} from "../../lib/cuda";
import { PROJECT_ROOT } from "../../lib/paths";

const KNOWN = "11.8, 12.0, 12.1, 12.2, 12.3, 12.4, 12.5, 12.6, 12.8, 12.9, 13.0, 13.1, 13.2";

describe("CUDA_DRIVER_FLOORS", () => {
  it("holds the Linux x86_64 GA rows of NVIDIA's 'CUDA Toolkit and Corresponding Driver Versions' table", () => {
    expect({ ...CUDA_DRIVER_FLOORS }).toEqual({
      "11.8": "520.61.05",
      "12.0": "525.60.13",
      "12.1": "530.30.02",
      "12.2": "535.54.03",
      "12.3": "545.23.06",
      "12.4": "550.54.14",
      "12.5": "555.42.02",
      "12.6": "560.28.03",
      "12.8": "570.26",
      "12.9": "575.51.03",
      "13.0": "580.65.06",
      "13.1": "590.44.01",
      "13.2": "595.45.04",
    });
    expect(Object.isFrozen(CUDA_DRIVER_FLOORS)).toBe(true);
  });

  it("lists known versions in release order (12.10 would sort after 12.9)", () => {
    expect(knownCudaVersions().join(", ")).toBe(KNOWN);
  });
});

describe("minimumDriverFor", () => {
  it("answers exact major.minor keys", () => {
    expect(minimumDriverFor("12.8")).toBe("570.26");
    expect(minimumDriverFor("12.4")).toBe("550.54.14");
    expect(minimumDriverFor("13.0")).toBe("580.65.06");
    expect(minimumDriverFor("11.8")).toBe("520.61.05");
  });

  it("rejects a release that does not exist, listing the known ones", () => {
    expect(() => minimumDriverFor("12.7")).toThrow(
      new Error(
        `unknown CUDA version "12.7": no driver floor is recorded for it. Known versions: ${KNOWN}. Use one of ` +
          `these, or add the release's GA row from NVIDIA's "CUDA Toolkit and Corresponding Driver Versions" ` +
          `table to CUDA_DRIVER_FLOORS in lib/cuda.ts.`,
      ),
    );
  });

  it("rejects a patch version or a bare major with a hint about the shape", () => {
    for (const bad of ["12.8.1", "12", "cu128", ""]) {
      expect(() => minimumDriverFor(bad)).toThrow(
        new Error(
          `unknown CUDA version ${JSON.stringify(bad)}: no driver floor is recorded for it. CUDA versions are ` +
            `written "major.minor", e.g. "12.8". Known versions: ${KNOWN}. Use one of these, or add the ` +
            `release's GA row from NVIDIA's "CUDA Toolkit and Corresponding Driver Versions" table to ` +
            `CUDA_DRIVER_FLOORS in lib/cuda.ts.`,
        ),
      );
    }
  });

  it("does not answer for inherited object keys", () => {
    expect(() => minimumDriverFor("toString")).toThrow(/^unknown CUDA version "toString"/);
    expect(() => minimumDriverFor("__proto__")).toThrow(/^unknown CUDA version "__proto__"/);
  });
});

describe("compareDriverVersions", () => {
  it.each([
    ["570.26", "570.124.06", -1],
    ["570.124.06", "570.26", 1],
    ["570.26", "570.26", 0],
    ["570.26", "570.26.0", 0],
    ["570.26.1", "570.26", 1],
    ["535.104.05", "535.54.03", 1],
    ["99.0", "100.0", -1],
    ["580", "575.51.03", 1],
    ["525.60.13", "525.60.13", 0],
  ] as const)("%s vs %s is %i", (a, b, want) => {
    expect(compareDriverVersions(a, b)).toBe(want);
  });

  it("rejects values that are not driver versions, naming the side", () => {
    expect(() => compareDriverVersions("570.x", "570.26")).toThrow(
      new Error(
        'compareDriverVersions: the first version "570.x" is not a driver version; write dot-separated numbers ' +
          'such as "570.124.06".',
      ),
    );
    expect(() => compareDriverVersions("570.26", " 570.26")).toThrow(
      new Error(
        'compareDriverVersions: the second version " 570.26" is not a driver version; write dot-separated ' +
          'numbers such as "570.124.06".',
      ),
    );
    expect(() => compareDriverVersions("", "1")).toThrow(/the first version "" is not a driver version/);
    expect(() => compareDriverVersions("570..26", "1")).toThrow(/the first version "570..26"/);
  });
});

describe("checkPoolCompatibility", () => {
  const variant = { name: "pytorch-cu128", cuda: "12.8" };

  it("accepts a driver at or above the floor", () => {
    expect(checkPoolCompatibility(variant, { name: "h200", driverVersion: "570.26" })).toEqual({ ok: true });
    expect(checkPoolCompatibility(variant, { name: "h200", driverVersion: "570.124.06" })).toEqual({ ok: true });
    expect(checkPoolCompatibility(variant, { name: "h200", driverVersion: "580.65.06" })).toEqual({ ok: true });
  });

  it("rejects an older driver, naming variant, pool, CUDA, both drivers and the two fixes", () => {
    expect(checkPoolCompatibility(variant, { name: "a100-old", driverVersion: "535.104.05" })).toEqual({
      ok: false,
      message:
        'variant "pytorch-cu128" ships CUDA 12.8, which needs NVIDIA driver >= 570.26, but pool "a100-old" runs ' +
        'driver 535.104.05. Fix: upgrade pool "a100-old" to driver >= 570.26, or add "a100-old" to excludePools ' +
        'of variant "pytorch-cu128".',
    });
  });

  it("compares numerically, not as strings (570.124.06 passes 570.26; 570.9 does not)", () => {
    expect(checkPoolCompatibility(variant, { name: "p", driverVersion: "570.124.06" }).ok).toBe(true);
    expect(checkPoolCompatibility(variant, { name: "p", driverVersion: "570.9" })).toEqual({
      ok: false,
      message:
        'variant "pytorch-cu128" ships CUDA 12.8, which needs NVIDIA driver >= 570.26, but pool "p" runs driver ' +
        '570.9. Fix: upgrade pool "p" to driver >= 570.26, or add "p" to excludePools of variant "pytorch-cu128".',
    });
  });

  it("reports an unknown CUDA version as a problem of the variant instead of throwing", () => {
    expect(checkPoolCompatibility({ name: "old", cuda: "12.7" }, { name: "p", driverVersion: "580.65.06" })).toEqual(
      {
        ok: false,
        message:
          `variant "old": unknown CUDA version "12.7": no driver floor is recorded for it. Known versions: ` +
          `${KNOWN}. Use one of these, or add the release's GA row from NVIDIA's "CUDA Toolkit and ` +
          `Corresponding Driver Versions" table to CUDA_DRIVER_FLOORS in lib/cuda.ts.`,
      },
    );
  });

  it("reports a malformed pool driver version instead of throwing", () => {
    expect(checkPoolCompatibility(variant, { name: "p", driverVersion: "latest" })).toEqual({
      ok: false,
      message:
        'pool "p" declares driverVersion "latest", which is not a driver version; write the version nvidia-smi ' +
        'reports, e.g. "570.124.06".',
    });
  });
});

describe("GPU_DATASHEETS", () => {
  const required = [
    "NVIDIA-H100-80GB-HBM3",
    "NVIDIA-H200",
    "NVIDIA-A100-SXM4-40GB",
    "NVIDIA-A100-SXM4-80GB",
    "NVIDIA-L40S",
    "NVIDIA-L4",
    "NVIDIA-A10G",
  ];

  it("has every product the pools use, plus the PCIe and NVL variants (H100, H200, A100), and nothing else", () => {
    expect(Object.keys(GPU_DATASHEETS).sort()).toEqual(
      [...required, "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL", "NVIDIA-H200-NVL", "NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-80GB-PCIe"].sort(),
    );
  });

  it.each(Object.entries(GPU_DATASHEETS))("%s has positive figures and a cited source", (product, row) => {
    expect(product).toMatch(/^NVIDIA-[A-Za-z0-9-]+$/); // GFD label: no spaces
    expect(row.denseBf16Tflops).toBeGreaterThan(0);
    expect(row.memoryBandwidthGBps).toBeGreaterThan(0);
    expect(row.source).toMatch(/datasheet/i);
    expect(Object.isFrozen(row)).toBe(true);
  });

  it("holds the dense BF16 and bandwidth figures from the datasheets", () => {
    const figures = Object.fromEntries(
      Object.entries(GPU_DATASHEETS).map(([p, r]) => [p, [r.denseBf16Tflops, r.memoryBandwidthGBps]]),
    );
    expect(figures).toEqual({
      "NVIDIA-H100-80GB-HBM3": [989.5, 3350],
      "NVIDIA-H100-PCIe": [756.5, 2000],
      "NVIDIA-H100-NVL": [835.5, 3900],
      "NVIDIA-H200": [989.5, 4800],
      "NVIDIA-H200-NVL": [835.5, 4800],
      "NVIDIA-A100-SXM4-40GB": [312, 1555],
      "NVIDIA-A100-SXM4-80GB": [312, 2039],
      "NVIDIA-A100-PCIE-40GB": [312, 1555],
      "NVIDIA-A100-80GB-PCIe": [312, 1935],
      "NVIDIA-L40S": [362.05, 864],
      "NVIDIA-L4": [121, 300],
      "NVIDIA-A10G": [70, 600],
    });
  });

  it("flags the one row without an official datasheet, and only that one", () => {
    const withNotes = Object.entries(GPU_DATASHEETS)
      .filter(([, r]) => r.note !== undefined)
      .map(([p]) => p);
    expect(withNotes).toEqual(["NVIDIA-A10G"]);
    expect(GPU_DATASHEETS["NVIDIA-H200"]).not.toHaveProperty("note");
  });

  it("is the same table gpu_check.py reads (one source of truth)", () => {
    const raw = JSON.parse(readFileSync(join(PROJECT_ROOT, "images", "checks", "datasheets.json"), "utf8")) as {
      products: Record<string, unknown>;
    };
    expect(GPU_DATASHEETS).toEqual(raw.products);
  });

  it("datasheetFor answers known products and lists them for unknown ones", () => {
    expect(datasheetFor("NVIDIA-L4").memoryBandwidthGBps).toBe(300);
    expect(() => datasheetFor("NVIDIA H200")).toThrow(
      new Error(
        'unknown GPU product "NVIDIA H200": no datasheet row. Known products (nvidia.com/gpu.product labels): ' +
          `${Object.keys(GPU_DATASHEETS).join(", ")}. Use the node label exactly, or add a row with its datasheet ` +
          "source to images/checks/datasheets.json.",
      ),
    );
    expect(() => datasheetFor("constructor")).toThrow(/^unknown GPU product "constructor"/);
  });
});
