import type { GpuPool } from "../lib/gpu-pool";
import { checkPoolCompatibility, GPU_DATASHEETS } from "../lib/cuda";
import { didYouMean, type Problem, renderReceived } from "../lib/problems";
import type { CatalogVariant } from "./catalog";
import type { StackInput } from "./schema";

/**
 * GPU pools (issue #5): unique names, known products, and the driver floor of every (variant, pool) pair. Returns
 * each GPU variant's pools: compatible and not excluded. Problems are appended to `problems`.
 */
export function resolvePools(c: StackInput, variants: readonly CatalogVariant[], ns: string, problems: Problem[]): Record<string, GpuPool[]> {
  const at = (key: string, message: string, received?: unknown) =>
    problems.push({ path: `${ns}${key}`, message, ...(received !== undefined ? { received: renderReceived(received) } : {}) });
  const products = Object.keys(GPU_DATASHEETS);
  const poolNames = new Set<string>();
  c.gpuPools.forEach((pool, i) => {
    if (poolNames.has(pool.name)) at(`gpuPools[${i}].name`, "duplicates another pool's name. Pool names must be unique.", pool.name);
    poolNames.add(pool.name);
    const gfd = pool.nodeSelector["nvidia.com/gpu.product"];
    if (gfd !== undefined && gfd !== pool.product) {
      at(`gpuPools[${i}].nodeSelector["nvidia.com/gpu.product"]`, `disagrees with product ${JSON.stringify(pool.product)}: Jobs and profiles select GPU Feature Discovery's product label from product. Remove the selector, or fix product.`, gfd);
    }
    if (!products.includes(pool.product)) {
      at(`gpuPools[${i}].product`, `is not a GPU product we have datasheet figures for.${didYouMean(pool.product, products) || ` Known: ${products.join(", ")}.`}`, pool.product);
    }
  });
  const poolsByVariant: Record<string, GpuPool[]> = {};
  for (const v of variants.filter((x) => x.gpu)) {
    const excluded = new Set(c.variants[v.name]?.excludePools ?? []);
    poolsByVariant[v.name] = [];
    for (const pool of c.gpuPools) {
      if (excluded.has(pool.name)) continue;
      const compat = checkPoolCompatibility({ name: v.name, cuda: v.cuda ?? "" }, pool);
      if (compat.ok) poolsByVariant[v.name]!.push(pool);
      else at(`gpuPools[${c.gpuPools.indexOf(pool)}].driverVersion`, compat.message, pool.driverVersion);
    }
  }
  return poolsByVariant;
}
