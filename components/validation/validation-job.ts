import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as k8s from "@pulumi/kubernetes";
import type { GpuPool } from "../../lib/gpu-pool";
import { GPU_DATASHEETS, minimumDriverFor } from "../../lib/cuda";
import { parseImageRef, pinnedRef } from "../../lib/image-ref";

/**
 * The GPU validation Job of issue #5 as plain data: its name, its check command line and the whole batch/v1 Job
 * object, built from resolved strings. No Pulumi resources here; components/validation/gpu-validation.ts wraps the result.
 */

/** Where the check ConfigMap (images/checks/) is mounted; gpu_check.py finds datasheets.json beside itself. */
export const CHECKS_MOUNT = "/opt/workbench-checks";
export const CHECK_SCRIPT = "gpu_check.py";
/** The container's name: podFailurePolicy's onExitCodes rule names it. */
export const CHECK_CONTAINER = "check";
/** The pool name of cpu-mode Jobs (local stack: no GPU nodes). */
export const CPU_POOL = "cpu";
export const JOB_NAME_PREFIX = "wbv";
/** Hex characters of the digest/checks hash kept in names (40 bits: no collision among a stack's few Jobs). */
export const NAME_HASH_LENGTH = 10;
export const APP_LABEL = "workbench-validation";
export const VARIANT_LABEL = "workbench-images/variant";
export const POOL_LABEL = "workbench-images/pool";
/** Extra time Pulumi waits beyond the Job's own deadline: the provider must see the Job fail, not time out first. */
export const CREATE_TIMEOUT_MARGIN_SECONDS = 300;
/** The label GPU Feature Discovery (NVIDIA GPU Operator) puts on every GPU node: its product, e.g. NVIDIA-H100-80GB-HBM3. */
export const GPU_PRODUCT_LABEL = "nvidia.com/gpu.product";
/** Time to start a pod before its image is pulled (scheduling, sandbox, volume mounts). */
export const POD_START_SECONDS = 120;
/** Grace between the check's own deadline (SIGTERM) and SIGKILL, so the check can still write its verdict. */
export const CHECK_KILL_AFTER_SECONDS = 30;

/**
 * gpu_check.py requires --expect-product to be a datasheets.json key even in cpu mode, where every check that reads
 * it (device_product, matmul_throughput, memory_bandwidth) is skipped (images/checks/README.md, "Checks"). Any row
 * does; this one is fixed so cpu-mode Jobs do not change when pools do.
 */
export const CPU_MODE_PRODUCT = "NVIDIA-H100-80GB-HBM3";
if (!Object.prototype.hasOwnProperty.call(GPU_DATASHEETS, CPU_MODE_PRODUCT)) {
  throw new Error(`components/validation/validation-job.ts: CPU_MODE_PRODUCT ${CPU_MODE_PRODUCT} is not a row of images/checks/datasheets.json; pick one that is.`);
}

/** Modest requests: the check is short and bursty; GPU nodes have far more, and requests only place the pod. */
const GPU_REQUESTS = { cpu: "2", memory: "8Gi" } as const;
/** A laptop's kind/k3d cluster: small enough to schedule next to everything else running there. */
const CPU_REQUESTS = { cpu: "1", memory: "2Gi" } as const;

/** What the Job checks in an image: its id, CUDA version, what it ships and its smoke test (catalog fields). */
export interface ValidationVariant {
  /** The image's id (catalog variant name, or a per-user image's id): names the Job and labels it. */
  name: string;
  /** CUDA "major.minor" the image is built for; sets the driver floor the check enforces. */
  cuda?: string | undefined;
  /** Optional extras the check must find working (flash-attn). */
  ships: { flashAttn: boolean };
  /** The image's own smoke test, run inside the check container. */
  smoke: { command: string[]; imports: string[] };
  /** The catalog's size budget (MB, what a node pulls): bounds the time the pull may take before the check starts. */
  sizeBudgetMB: number;
}
/** The part of a GPU pool the Job needs. */
export type ValidationPool = Pick<GpuPool, "name" | "nodeSelector" | "tolerations" | "product" | "gpusPerNode" | "driverVersion"> & Pick<Partial<GpuPool>, "thresholds">;
/** The stack's validation settings the Job uses (the `validation.*` keys). */
export interface ValidationSettings {
  /** Fraction of the datasheet's dense BF16 TFLOP/s the slowest GPU must reach. */
  matmulFraction: number;
  /** Fraction of the datasheet's memory bandwidth the slowest GPU must reach. */
  bandwidthFraction: number;
  /** gpu_check.py's --sustained-ratio, --busbw-fraction, --sustain-seconds; unset: the check's own defaults. */
  sustainedRatio?: number | undefined;
  busbwFraction?: number | undefined;
  sustainSeconds?: number | undefined;
  /**
   * How long the check itself may run, counted from its process start (after the image was pulled): enforced inside
   * the container with coreutils `timeout`. The Job's activeDeadlineSeconds adds the pull budget (jobDeadlineSeconds).
   */
  deadlineSeconds: number;
  /**
   * Registry throughput a node is assumed to reach when pulling and unpacking (MB/s): with the image's size budget it
   * bounds the pull (jobDeadlineSeconds).
   */
  pullMBps: number;
  /**
   * Scheduling and pod start before the pull: a node pool that scales from zero (a GPU node, its driver and GFD
   * labels) takes minutes. @default POD_START_SECONDS (120)
   */
  podStartSeconds?: number | undefined;
  /** Failed pods (any exit but eviction or preemption) retried before the Job fails; 0 fails at the first failure. */
  backoffLimit: number;
  /** sizeLimit of the memory-backed /dev/shm. */
  shmSize: string;
}

/** Where the Job runs: on a GPU pool, or (local stack) on any node with the GPU-only checks skipped. */
export type ValidationTarget = { mode: "gpu"; pool: ValidationPool } | { mode: "cpu" };

export interface ValidationJobInput {
  variant: ValidationVariant;
  target: ValidationTarget;
  /** `repository@sha256:…`, already scanned and signed. */
  imageRef: string;
  namespace: string;
  /** Name of the ConfigMap holding images/checks/. */
  checksConfigMap: string;
  /** `checksHash()` of that ConfigMap's files. */
  checksHash: string;
  validation: ValidationSettings;
  /**
   * Where the check stores its report (issue #15): the pre-created ConfigMap and the service account whose Role may
   * patch only it. @default none: the pod gets no service account token and the report stays in its log
   */
  report?: { configMap: string; serviceAccount: string };
}

/** A batch/v1 Job as plain data, typed by @pulumi/kubernetes' input types (plain values satisfy `Input<T>`). */
export interface ValidationJob {
  apiVersion: "batch/v1";
  kind: "Job";
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: k8s.types.input.batch.v1.JobSpec;
}

function sha256(data: string | Buffer): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

/** A DNS-label fragment: lowercase, runs of anything else as one '-', no '-' at either end. */
function labelPart(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** A label value (≤ 63; alphanumerics, '-', '_', '.'; alphanumeric at both ends). */
export function labelValue(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return cleaned.slice(0, 63).replace(/[^A-Za-z0-9]+$/, "");
}

/** `sha256:<64 hex>` of a pinned reference. Throws naming the reference and the fix. */
export function digestOf(imageRef: string): string {
  const digest = parseImageRef(imageRef)?.digest;
  if (digest === undefined) {
    throw new Error(
      `validation image ${JSON.stringify(imageRef)} is not pinned by digest. GPU validation runs only repository@sha256:… ` +
        "references (the scanned and signed image): pass the image's imageRef output, not a tag.",
    );
  }
  return digest;
}

/**
 * `wbv-<variant>-<pool>-<h>`, a DNS label of at most 63 characters. `h` is the first 10 hex characters of
 * sha256(digest, checks hash, variant, pool, pool driver version): the name changes exactly when the image, the check
 * or the pool's driver changes, so an unchanged pair plans nothing and any change (a driver upgrade included:
 * issue #11) replaces the Job (issue #5). cpu-mode Jobs have no driver. The variant and pool names enter the
 * hash too, because the visible part may be shortened: two pools that share a long prefix and validate the same
 * digest must still get two names. When the whole is too long the longer of variant and pool is cut first; the
 * hash is never cut.
 */
export function validationJobName(variant: string, pool: string, digest: string, checksHash: string, driverVersion = ""): string {
  const h = sha256(`${digest}\n${checksHash}\n${variant}\n${pool}${driverVersion !== "" ? `\n${driverVersion}` : ""}`).slice(0, NAME_HASH_LENGTH);
  let v = labelPart(variant);
  let p = labelPart(pool);
  const budget = 63 - JOB_NAME_PREFIX.length - NAME_HASH_LENGTH - 3; // three '-' separators
  while (v.length + p.length > budget) {
    if (v.length >= p.length) v = v.slice(0, -1);
    else p = p.slice(0, -1);
  }
  v = v.replace(/-+$/, "");
  p = p.replace(/-+$/, "");
  return [JOB_NAME_PREFIX, v, p, h].filter((s) => s !== "").join("-");
}

/**
 * gpu_check.py's command line, flag for flag as its argparse defines them (images/checks/gpu_check.py
 * build_parser; README "Flags"). --smoke-imports is left out when there is nothing to import: an empty value is a
 * usage error there.
 */
export function checkCommand(variant: ValidationVariant, target: ValidationTarget, validation: ValidationSettings, reportConfigMap?: string): string[] {
  if (variant.cuda === undefined) {
    throw new Error(
      `variant "${variant.name}" has no cuda version, so it cannot be GPU-validated. Set cuda (e.g. "12.8") in the ` +
        "catalog, or leave the variant out of GPU validation (gpu: false).",
    );
  }
  const gpus = target.mode === "gpu" ? target.pool.gpusPerNode : 1;
  const product = target.mode === "gpu" ? target.pool.product : CPU_MODE_PRODUCT;
  // The pool's own thresholds win over the stack-wide ones (issue #15); flags left unset keep the check's defaults.
  const own = target.mode === "gpu" ? (target.pool.thresholds ?? {}) : {};
  const optional = (flag: string, value: number | undefined) => (value !== undefined ? [flag, String(value)] : []);
  return [
    // The check's own deadline starts with its process, after the pull (activeDeadlineSeconds counts the pull too).
    // SIGTERM first, so a wedged CUDA call still leaves the log tail as the termination message; exit 124 or 137.
    "timeout",
    `--kill-after=${CHECK_KILL_AFTER_SECONDS}s`,
    `${validation.deadlineSeconds}s`,
    "python3",
    `${CHECKS_MOUNT}/${CHECK_SCRIPT}`,
    "--mode",
    target.mode,
    "--expect-cuda",
    variant.cuda,
    "--expect-gpus",
    String(gpus),
    "--expect-product",
    product,
    "--min-driver",
    minimumDriverFor(variant.cuda),
    "--matmul-fraction",
    String(own.matmulFraction ?? validation.matmulFraction),
    "--bandwidth-fraction",
    String(own.bandwidthFraction ?? validation.bandwidthFraction),
    ...optional("--sustained-ratio", own.sustainedRatio ?? validation.sustainedRatio),
    ...optional("--busbw-fraction", own.busbwFraction ?? validation.busbwFraction),
    ...optional("--sustain-seconds", own.sustainSeconds ?? validation.sustainSeconds),
    "--flash-attn",
    variant.ships.flashAttn ? "required" : "absent",
    ...(variant.smoke.imports.length > 0 ? ["--smoke-imports", variant.smoke.imports.join(",")] : []),
    "--termination-log",
    "/dev/termination-log",
    // `namespace/name` of the ConfigMap the report goes to; a passing check that cannot store it exits 4.
    ...(reportConfigMap !== undefined ? ["--report-configmap", reportConfigMap] : []),
  ];
}

/**
 * The Job's activeDeadlineSeconds: pod start, the pull of at most the image's size budget at `pullMBps`, then the
 * check's own deadline and its kill grace. Kubernetes counts activeDeadlineSeconds from the Job's start, pull included
 * (Job docs, "Job termination and cleanup"), so a 28 GB image on a cold node must not eat the check's time.
 */
export function jobDeadlineSeconds(
  variant: Pick<ValidationVariant, "sizeBudgetMB">,
  validation: Pick<ValidationSettings, "deadlineSeconds" | "pullMBps" | "podStartSeconds">,
): number {
  const pull = Math.ceil(variant.sizeBudgetMB / validation.pullMBps);
  return (validation.podStartSeconds ?? POD_START_SECONDS) + pull + validation.deadlineSeconds + CHECK_KILL_AFTER_SECONDS;
}

/** Pulumi's create timeout for a Job with this deadline: longer, so the Job's own failure is what `up` reports. */
export function jobCreateTimeout(jobDeadline: number): string {
  return `${jobDeadline + CREATE_TIMEOUT_MARGIN_SECONDS}s`;
}

/** The validation Job for one (variant, pool) pair, or one cpu-mode Job per variant. */
export function validationJob(input: ValidationJobInput): ValidationJob {
  const { variant, target, validation } = input;
  const digest = digestOf(input.imageRef);
  const poolName = target.mode === "gpu" ? target.pool.name : CPU_POOL;
  const labels = {
    "app.kubernetes.io/name": APP_LABEL,
    [VARIANT_LABEL]: labelValue(variant.name),
    [POOL_LABEL]: labelValue(poolName),
  };
  const gpu = target.mode === "gpu" ? target.pool : undefined;
  const resources = gpu
    ? {
        // Extended resources must have requests equal to limits; stating both keeps the object explicit.
        requests: { ...GPU_REQUESTS, "nvidia.com/gpu": String(gpu.gpusPerNode) },
        limits: { "nvidia.com/gpu": String(gpu.gpusPerNode) },
      }
    : { requests: { ...CPU_REQUESTS } };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: validationJobName(variant.name, poolName, digest, input.checksHash, gpuDriver(target)),
      namespace: input.namespace,
      labels,
      // A failed Job stays in state as "unready"; this makes the next `up` replace it instead of accepting it
      // (pulumi-kubernetes annotation docs). No ttlSecondsAfterFinished: the controller deleting a finished Job
      // shows up as drift and re-runs it on refresh.
      annotations: { "pulumi.com/replaceUnready": "true" },
    },
    spec: {
      ...failFast(validation.backoffLimit, jobDeadlineSeconds(variant, validation)),
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          // Without a report ConfigMap the check never talks to the API server. With one, the token is that of a
          // service account whose only permission is `patch` on that ConfigMap (validation-report.ts reporterRules):
          // the pod can store its own report and nothing else, and never holds signing credentials (issue #15).
          // Pod Security "restricted" does not restrict service account tokens.
          ...(input.report !== undefined
            ? { serviceAccountName: input.report.serviceAccount, automountServiceAccountToken: true }
            : { automountServiceAccountToken: false }),
          enableServiceLinks: false,
          // No runAsUser: the catalog's images each declare a numeric non-root USER of their own (1000:100 for the
          // Jupyter docker-stacks families, 10001 for ml-stack, 1001 for the UBI/ODH validator), and forcing one uid
          // on all of them would run most as a user without a passwd entry or home. runAsNonRoot makes the kubelet
          // refuse an image whose USER is root or not numeric. Together these meet Pod Security "restricted".
          securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          // The pool's own selector plus GPU Feature Discovery's product label: a pool declared with the wrong GPU
          // leaves the pod unschedulable (its events name the selector) instead of failing the image's check.
          ...(gpu ? { nodeSelector: { [GPU_PRODUCT_LABEL]: gpu.product, ...gpu.nodeSelector }, tolerations: gpu.tolerations.map(toleration) } : {}),
          containers: [
            {
              name: CHECK_CONTAINER,
              // Tag dropped: the digest alone names the content (and a tag beside it only confuses admission rules).
              image: pinnedRef(input.imageRef),
              imagePullPolicy: "IfNotPresent",
              command: checkCommand(variant, target, validation, input.report !== undefined ? `${input.namespace}/${input.report.configMap}` : undefined),
              env: [
                // The checks are mounted read-only: do not even try to write __pycache__ there.
                { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
                // The report names the node, so a node fault says which node to drain (downward API).
                { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                // The driver check needs NVML/nvidia-smi (the `utility` capability); images not built on NVIDIA's
                // CUDA bases may not set it (images/checks/README.md, "What the Job's pod needs").
                ...(gpu ? [{ name: "NVIDIA_DRIVER_CAPABILITIES", value: "compute,utility" }] : []),
              ],
              resources,
              securityContext: restrictedContainer(),
              terminationMessagePath: "/dev/termination-log",
              // gpu_check.py writes its one-line summary there; a crash before that still leaves the log tail.
              terminationMessagePolicy: "FallbackToLogsOnError",
              volumeMounts: [
                { name: "checks", mountPath: CHECKS_MOUNT, readOnly: true },
                { name: "dshm", mountPath: "/dev/shm" },
              ],
            },
          ],
          volumes: [
            { name: "checks", configMap: { name: input.checksConfigMap, defaultMode: 0o444 } },
            // NCCL's shared-memory transport needs more than the 64 MiB default /dev/shm.
            { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: validation.shmSize } },
          ],
        },
      },
    },
  };
}

/**
 * How every check Job fails (GPU check, smoke test, notebooks; issue #11). pulumi-kubernetes fails a Job's update
 * only when its Failed condition has reason BackoffLimitExceeded or DeadlineExceeded
 * (provider/pkg/await/checker/job/check.go, collectJobConditionErrors); any other reason, such as PodFailurePolicy
 * from a `FailJob` rule, is ignored and the update waits for its timeout. So no rule may fail the Job: every failed
 * pod counts against backoffLimit (default 0), and the Job controller then sets BackoffLimitExceeded at once. The
 * provider's pod aggregator (provider/pkg/await/checker/pod/check.go, containerTerminatedError) puts the container's
 * termination message, the check's one-line verdict, into the failed update's message. A pod lost to preemption,
 * drain or eviction says nothing about the image: it is replaced without spending the backoff budget (Kubernetes Job
 * docs, "Pod failure policy"; requires restartPolicy Never).
 */
export function failFast(backoffLimit: number, activeDeadlineSeconds: number) {
  return {
    backoffLimit,
    activeDeadlineSeconds,
    podFailurePolicy: { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] }] },
  };
}

/** A container as Pod Security "restricted" requires it: no escalation, no capabilities, non-root, RuntimeDefault. */
export function restrictedContainer() {
  return { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };
}

function gpuDriver(target: ValidationTarget): string {
  return target.mode === "gpu" ? target.pool.driverVersion : "";
}

function toleration(t: GpuPool["tolerations"][number]): k8s.types.input.core.v1.Toleration {
  return {
    key: t.key,
    operator: t.operator,
    ...(t.value !== undefined ? { value: t.value } : {}),
    ...(t.effect !== undefined ? { effect: t.effect } : {}),
  };
}

/** The check files shipped in the ConfigMap, by file name, and the hash of exactly them. */
export interface CheckFiles {
  files: Record<string, string>;
  /** sha256 hex over the sorted (name, content hash) pairs. */
  hash: string;
}

/** A ConfigMap holds at most 1 MiB (etcd's object limit, Kubernetes ConfigMap docs). */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

/**
 * Reads the check files of `dir` (images/checks/): every top-level regular file except documentation (`*.md`),
 * dotfiles and Python bytecode, which the check never reads; so editing the README does not re-run every GPU Job.
 * Throws naming the directory when it holds no check script or does not fit in a ConfigMap.
 */
export function loadCheckFiles(dir: string): CheckFiles {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    throw new Error(`checks directory ${dir} cannot be read. Pass the absolute path of images/checks (checksDir).`);
  }
  const names = entries
    .filter((e) => e.isFile() && !e.name.startsWith(".") && !/\.(md|pyc)$/.test(e.name))
    .map((e) => e.name)
    .sort();
  if (!names.includes(CHECK_SCRIPT)) {
    throw new Error(`checks directory ${dir} has no ${CHECK_SCRIPT}. Pass the absolute path of images/checks (checksDir).`);
  }
  const files: Record<string, string> = {};
  let bytes = 0;
  const pairs: Array<[string, string]> = [];
  for (const name of names) {
    const content = fs.readFileSync(path.join(dir, name));
    bytes += content.length;
    files[name] = content.toString("utf8");
    pairs.push([name, sha256(content)]);
  }
  if (bytes > CONFIGMAP_MAX_BYTES) {
    throw new Error(`checks directory ${dir} holds ${bytes} bytes, more than a ConfigMap's ${CONFIGMAP_MAX_BYTES}. Move large data out of it.`);
  }
  return { files, hash: sha256(JSON.stringify(pairs)) };
}

/** `workbench-checks-<first 10 hex of the checks hash>`: a new ConfigMap for new checks, so running Jobs keep theirs. */
export function checksConfigMapName(checksHash: string): string {
  return `workbench-checks-${checksHash.slice(0, NAME_HASH_LENGTH)}`;
}

/**
 * Chains Jobs into at most `lanes` parallel lanes: items sorted by `key`, item i waits for item i - lanes. Returns,
 * for each item in sorted order, the index (in that order) of the item it waits for, or undefined.
 */
export function laneOrder<T>(items: readonly T[], key: (item: T) => string, lanes: number): Array<{ item: T; after?: number }> {
  if (!Number.isInteger(lanes) || lanes < 1) throw new Error(`lanes must be a whole number ≥ 1, got ${lanes}.`);
  const sorted = [...items].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  return sorted.map((item, i) => (i >= lanes ? { item, after: i - lanes } : { item }));
}
