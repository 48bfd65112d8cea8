/**
 * CUDA driver floors, driver-version arithmetic, variant × pool compatibility and the GPU datasheet table.
 * Pure data and functions: no Pulumi, so the config layer, the components and the plan tool share one answer.
 */
import datasheetsJson from "../images/checks/datasheets.json";

/**
 * Minimum Linux x86_64 NVIDIA driver for each CUDA toolkit, keyed "major.minor".
 *
 * Source: NVIDIA CUDA Toolkit Release Notes, table "CUDA Toolkit and Corresponding Driver Versions", column
 * "Toolkit Driver Version / Linux x86_64 Driver Version", the GA row of each release (an Update row raises the
 * floor only for that update, and images name the minor release, not the update). The GA figures match the driver
 * bundled in each GA runfile (cuda_<x.y>.0_<driver>_linux.run) except 12.8, whose table row (570.26) is below
 * its bundled 570.86.10. There was no CUDA 12.7 release.
 *
 * This is the toolkit's own floor, deliberately stricter than "minor version compatibility" (any 12.x on ≥ 525.60.13):
 * that mode drops features (PTX JIT of newer code) that wheels such as flash-attn rely on.
 */
export const CUDA_DRIVER_FLOORS: Readonly<Record<string, string>> = Object.freeze({
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

const DRIVER_VERSION = /^\d+(\.\d+)*$/;
const CUDA_MAJOR_MINOR = /^\d+\.\d+$/;

/** The CUDA versions the floor table knows, in release order. */
export function knownCudaVersions(): string[] {
  return Object.keys(CUDA_DRIVER_FLOORS).sort(compareDriverVersions);
}

/**
 * The minimum driver for a CUDA toolkit given as "major.minor" (exact match: "12.8", not "12.8.1" or "12").
 * @throws Error naming the value, the known versions and the fix.
 */
export function minimumDriverFor(cuda: string): string {
  const floor = Object.prototype.hasOwnProperty.call(CUDA_DRIVER_FLOORS, cuda) ? CUDA_DRIVER_FLOORS[cuda] : undefined;
  if (floor !== undefined) return floor;
  const shape = CUDA_MAJOR_MINOR.test(cuda)
    ? ""
    : ' CUDA versions are written "major.minor", e.g. "12.8".';
  throw new Error(
    `unknown CUDA version ${JSON.stringify(cuda)}: no driver floor is recorded for it.${shape} ` +
      `Known versions: ${knownCudaVersions().join(", ")}. Use one of these, or add the release's GA row from ` +
      `NVIDIA's "CUDA Toolkit and Corresponding Driver Versions" table to CUDA_DRIVER_FLOORS in lib/cuda.ts.`,
  );
}

/**
 * Compares NVIDIA driver versions numerically, component by component ("570.26" < "570.124.06"; a missing
 * component counts as 0, so "570.26" equals "570.26.0"). String comparison gets the first example wrong.
 * @throws Error when either side is not dot-separated digits.
 */
export function compareDriverVersions(a: string, b: string): -1 | 0 | 1 {
  for (const [side, value] of [
    ["first", a],
    ["second", b],
  ] as const) {
    if (!DRIVER_VERSION.test(value)) {
      throw new Error(
        `compareDriverVersions: the ${side} version ${JSON.stringify(value)} is not a driver version; ` +
          `write dot-separated numbers such as "570.124.06".`,
      );
    }
  }
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const l = left[i] ?? 0;
    const r = right[i] ?? 0;
    if (l !== r) return l < r ? -1 : 1;
  }
  return 0;
}

/** A GPU image variant as far as driver compatibility cares. */
export interface CudaVariant {
  name: string;
  /** CUDA runtime the image ships, "major.minor". */
  cuda: string;
}

/** A GPU node pool as far as driver compatibility cares. */
export interface DriverPool {
  name: string;
  /** The NVIDIA driver the pool's nodes run, e.g. "570.124.06". */
  driverVersion: string;
}

export type Compatibility = { ok: true } | { ok: false; message: string };

/**
 * Whether a variant's CUDA runtime can run on a pool's driver. Never throws: an unknown CUDA version or a malformed
 * driver version comes back as `ok: false` so the caller can collect every problem into one message.
 */
export function checkPoolCompatibility(variant: CudaVariant, pool: DriverPool): Compatibility {
  let required: string;
  try {
    required = minimumDriverFor(variant.cuda);
  } catch (err) {
    return { ok: false, message: `variant "${variant.name}": ${(err as Error).message}` };
  }
  if (!DRIVER_VERSION.test(pool.driverVersion)) {
    return {
      ok: false,
      message:
        `pool "${pool.name}" declares driverVersion ${JSON.stringify(pool.driverVersion)}, which is not a driver ` +
        `version; write the version nvidia-smi reports, e.g. "570.124.06".`,
    };
  }
  if (compareDriverVersions(pool.driverVersion, required) >= 0) return { ok: true };
  return {
    ok: false,
    message:
      `variant "${variant.name}" ships CUDA ${variant.cuda}, which needs NVIDIA driver >= ${required}, ` +
      `but pool "${pool.name}" runs driver ${pool.driverVersion}. Fix: upgrade pool "${pool.name}" to driver ` +
      `>= ${required}, or add "${pool.name}" to excludePools of variant "${variant.name}".`,
  };
}

/** Peak figures for one GPU product, from NVIDIA's datasheet. */
export interface GpuDatasheet {
  /** Dense (no 2:4 sparsity) BF16 Tensor Core peak, TFLOP/s. */
  readonly denseBf16Tflops: number;
  /** GPU memory bandwidth, GB/s (10^9 bytes per second). */
  readonly memoryBandwidthGBps: number;
  /** Which datasheet and which figures the row comes from. */
  readonly source: string;
  /** Caveats about the row (e.g. no official datasheet). */
  readonly note?: string;
}

function loadDatasheets(raw: unknown): Readonly<Record<string, GpuDatasheet>> {
  const products = (raw as { products?: unknown }).products;
  if (typeof products !== "object" || products === null) {
    throw new Error('images/checks/datasheets.json: "products" must be an object keyed by GPU product label.');
  }
  const out: Record<string, GpuDatasheet> = {};
  for (const [product, row] of Object.entries(products as Record<string, unknown>)) {
    const r = row as Partial<Record<keyof GpuDatasheet, unknown>>;
    if (
      typeof r.denseBf16Tflops !== "number" ||
      !(r.denseBf16Tflops > 0) ||
      typeof r.memoryBandwidthGBps !== "number" ||
      !(r.memoryBandwidthGBps > 0) ||
      typeof r.source !== "string" ||
      r.source.trim() === "" ||
      (r.note !== undefined && typeof r.note !== "string")
    ) {
      throw new Error(
        `images/checks/datasheets.json: products.${product} must have positive numbers denseBf16Tflops and ` +
          `memoryBandwidthGBps and a non-empty source string; got ${JSON.stringify(row)}.`,
      );
    }
    out[product] = Object.freeze({
      denseBf16Tflops: r.denseBf16Tflops,
      memoryBandwidthGBps: r.memoryBandwidthGBps,
      source: r.source,
      ...(r.note !== undefined ? { note: r.note } : {}),
    });
  }
  return Object.freeze(out);
}

/**
 * Datasheet figures keyed by the `nvidia.com/gpu.product` label GPU Feature Discovery puts on nodes (the NVML
 * device name with spaces turned into '-': "NVIDIA-H100-80GB-HBM3"). The data lives in images/checks/datasheets.json
 * because the in-cluster check (gpu_check.py) reads the same table.
 */
export const GPU_DATASHEETS: Readonly<Record<string, GpuDatasheet>> = loadDatasheets(datasheetsJson);

/**
 * The datasheet row for a GFD product label.
 * @throws Error naming the product and listing the known ones.
 */
export function datasheetFor(product: string): GpuDatasheet {
  const row = Object.prototype.hasOwnProperty.call(GPU_DATASHEETS, product) ? GPU_DATASHEETS[product] : undefined;
  if (row !== undefined) return row;
  throw new Error(
    `unknown GPU product ${JSON.stringify(product)}: no datasheet row. Known products (nvidia.com/gpu.product ` +
      `labels): ${Object.keys(GPU_DATASHEETS).join(", ")}. Use the node label exactly, or add a row with its ` +
      `datasheet source to images/checks/datasheets.json.`,
  );
}
