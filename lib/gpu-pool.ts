import { z } from "zod";
import { labelKey, labelValue } from "./k8s-names";
import { dnsLabel, strictObject } from "./zod-util";

/**
 * GPU node pools and tolerations, the one definition (issue #10): the stack configuration parses them with these
 * schemas, and the validation Jobs, the hub's profiles and the pre-pullers read the resulting types. Nothing else
 * re-types a pool or a toleration.
 */

/** A Kubernetes toleration (core/v1 Toleration) as a pool declares it. */
export const tolerationSchema = strictObject({
  /** The taint key: a label key (core/v1 validation ValidateTolerations). */
  key: labelKey,
  operator: z.enum(["Exists", "Equal"]).default("Exists"),
  /** A label value; must be absent with operator Exists. */
  value: labelValue.optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
}).superRefine((t, ctx) => {
  if (t.operator === "Exists" && t.value !== undefined && t.value !== "") {
    ctx.addIssue({ code: "custom", path: ["value"], message: 'must be absent when operator is "Exists" (Kubernetes rejects it). Remove value, or set operator: Equal.' });
  }
});
/** A toleration as the program emits it: `operator` may be left to Kubernetes' default (Equal). */
export type Toleration = Omit<z.infer<typeof tolerationSchema>, "operator"> & { operator?: "Exists" | "Equal" };

/** The toleration NVIDIA's GPU Operator and EKS GPU node groups pair with their `nvidia.com/gpu` taint. */
export const DEFAULT_GPU_TOLERATIONS = [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }] as const;

/**
 * The GPU check's pass thresholds (images/checks/README.md, "Thresholds"), stack-wide under `validation.*` and per
 * pool under `gpuPools[].thresholds`, which wins: a pool of a product measured below its datasheet (or a pool whose
 * nodes are known to be better) gets its own bar without touching the others.
 */
export const thresholdsSchema = strictObject({
  /** Share of the datasheet dense BF16 peak the slowest GPU must reach in the burst. */
  matmulFraction: z.number().gt(0).max(1).optional(),
  /** Share of the datasheet memory bandwidth the slowest GPU must reach in the burst. */
  bandwidthFraction: z.number().gt(0).max(1).optional(),
  /** Steady-state throughput as a share of the same GPU's burst (below it: throttling, a node fault). */
  sustainedRatio: z.number().gt(0).max(1).optional(),
  /** With ≥ 2 GPUs: all-reduce bus bandwidth as a share of the product's per-direction link figure. */
  busbwFraction: z.number().gt(0).max(1).optional(),
  /** Length of each sustained phase in seconds (0 skips it). */
  sustainSeconds: z.number().min(0).max(3600).optional(),
});
export type Thresholds = z.infer<typeof thresholdsSchema>;

export const gpuPoolSchema = strictObject({
  name: dnsLabel,
  displayName: z.string().min(1).optional(),
  /** Node labels (key → value), both checked with Kubernetes' label syntax. */
  nodeSelector: z.record(labelKey, labelValue).default({}),
  tolerations: z.array(tolerationSchema).default(DEFAULT_GPU_TOLERATIONS.map((t) => ({ ...t }))),
  /** The GPU as GPU Feature Discovery names it in `nvidia.com/gpu.product`. */
  product: z.string().min(1),
  /** The NVIDIA driver installed on the pool's nodes. */
  driverVersion: z.string().regex(/^\d+\.\d+(?:\.\d+)?$/, { error: 'must be a driver version such as "570.133.20".' }),
  gpusPerNode: z.number().int().min(1).max(16).default(1),
  /** This pool's own check thresholds; each unset one falls back to the stack-wide `validation.*` value. */
  thresholds: thresholdsSchema.optional(),
  /** How many validation Jobs may run on this pool at once (Jobs are chained into this many lanes). */
  maxConcurrentJobs: z.number().int().min(1).max(64).default(1),
});
export type GpuPool = z.infer<typeof gpuPoolSchema>;
