import * as crypto from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";
import { pinnedRef } from "../../lib/image-ref";
import { shellQuote } from "../../lib/shell";
import {
  APP_LABEL,
  CHECK_KILL_AFTER_SECONDS,
  CPU_POOL,
  digestOf,
  failFast,
  jobDeadlineSeconds,
  labelValue,
  NAME_HASH_LENGTH,
  POOL_LABEL,
  restrictedContainer,
  type ValidationJob,
  type ValidationSettings,
  VARIANT_LABEL,
} from "./validation-job";

/**
 * The CPU-side run-time gates of issue #14 as plain data: the smoke-test Job every CPU image gets, the notebook Job
 * of each notebook-validator tier and the claim that keeps its executed notebooks. Built from resolved strings; no
 * Pulumi resources here (smoke-test.ts and notebook-validation.ts wrap them).
 *
 * Both Jobs share the GPU check Job's failure semantics (validation-job.ts, issue #11): pulumi-kubernetes fails a Job
 * update only on a `Failed` condition with reason BackoffLimitExceeded or DeadlineExceeded
 * (provider/pkg/await/checker/job/check.go), so there is no `FailJob` rule; backoffLimit comes from `validation.*`
 * (0: the first failure fails `up`); DisruptionTarget pods are ignored; a one-line verdict reaches the termination
 * message, which the provider's pod aggregator quotes in the failed update; the check's own deadline is coreutils
 * `timeout` inside the container and activeDeadlineSeconds adds pod start and the pull budget (jobDeadlineSeconds).
 */

export const SMOKE_JOB_PREFIX = "wbs";
export const NOTEBOOK_JOB_PREFIX = "wbn";
export const SMOKE_CONTAINER = "smoke";
export const NOTEBOOK_CONTAINER = "notebooks";
/** Which run-time check a Job is: `smoke` or `notebooks` (the GPU check Jobs carry no such label). */
export const CHECK_LABEL = "workbench-images/check";
/** Label of the tier a notebook Job and its claim belong to. */
export const TIER_LABEL = "workbench-images/notebook-tier";
export const TERMINATION_LOG = "/dev/termination-log";
/** Where images/notebook-validator/Dockerfile puts the runner (and notebooks/<tier>/ beside it). */
export const NOTEBOOK_RUNNER = "/opt/app-root/notebook-validator/run_notebooks.py";
/** Where the executed-notebooks claim is mounted; each Job writes under `<mount>/<job name>/<tier>/`. */
export const EXECUTED_MOUNT = "/executed";
/**
 * The label the NVIDIA GPU Operator puts on every node with an NVIDIA GPU (`nvidia.com/gpu.present=true`,
 * controllers/state_manager.go commonGPULabelKey). CPU Jobs require it to be absent or not "true", so a smoke test
 * never takes a GPU node even where GPU nodes are not tainted; nodes without the label (kind, CPU pools) all match.
 */
export const GPU_PRESENT_LABEL = "nvidia.com/gpu.present";
/** Per-cell limit passed to run_notebooks.py (its own default); never more than the run's deadline. */
export const NOTEBOOK_CELL_TIMEOUT_SECONDS = 600;
/** The executed notebooks of a tier are small (a few hundred KB per run, PNG outputs included). */
export const DEFAULT_EXECUTED_STORAGE = "1Gi";

/** Same placement weight as the GPU check's cpu mode: a laptop cluster must be able to schedule it. */
const CPU_REQUESTS = { cpu: "1", memory: "2Gi" } as const;

/** The `validation.*` keys the CPU Jobs use: their deadline, the pull budget and the retry budget. */
export type RuntimeJobSettings = Pick<ValidationSettings, "deadlineSeconds" | "pullMBps" | "podStartSeconds" | "backoffLimit">;

/** What the smoke Job needs of an image (catalog fields, or the base's for a per-user image). */
export interface SmokeSubject {
  /** The image's id: names and labels the Job. */
  name: string;
  smoke: { command: string[] };
  /** MB a node pulls (compressed config + layers, see image-size.ts): bounds the pull in activeDeadlineSeconds. */
  sizeBudgetMB: number;
}

export interface SmokeJobInput {
  image: SmokeSubject;
  /** `repository@sha256:…`, already gated. */
  imageRef: string;
  namespace: string;
  settings: RuntimeJobSettings;
}

export interface NotebookJobInput {
  image: Pick<SmokeSubject, "name" | "sizeBudgetMB">;
  /** The tier folder run_notebooks.py runs (`tier1`): the catalog entry's build target. */
  tier: string;
  imageRef: string;
  namespace: string;
  /** The executed-notebooks claim of this tier. */
  claimName: string;
  /**
   * The pod's fsGroup: the group the image's user writes with (catalog `runAs.gid`), so the claim's volume is
   * writable by it (kubelet makes the volume group-owned by fsGroup, Kubernetes "Configure a Security Context").
   */
  fsGroup: number;
  settings: RuntimeJobSettings;
}

function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** `<prefix>-<id>-<hash>`, a DNS label of at most 63 characters; the id is shortened first, never the hash. */
export function runtimeJobName(prefix: string, id: string, hashInput: readonly string[]): string {
  const h = sha256(hashInput.join("\n")).slice(0, NAME_HASH_LENGTH);
  const budget = 63 - prefix.length - NAME_HASH_LENGTH - 2;
  const v = id
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, budget)
    .replace(/-+$/, "");
  return [prefix, v, h].filter((s) => s !== "").join("-");
}

/**
 * `wbs-<id>-<h>`, h over the digest, the id and the smoke command: a new digest or a new command replaces the Job,
 * an unchanged pair plans nothing (as the GPU check's names, issue #5).
 */
export function smokeJobName(id: string, digest: string, command: readonly string[]): string {
  return runtimeJobName(SMOKE_JOB_PREFIX, id, [digest, id, JSON.stringify(command)]);
}

/**
 * `wbn-<id>-<h>`, h over the digest, the id and the tier. The notebooks and the runner are part of the image
 * (images/notebook-validator/Dockerfile copies them into each tier's target), so the digest changes exactly when
 * they do; hashing the repository's notebook files as well would re-run a promoted digest, whose notebooks are the
 * ones it was built with, whenever the repository's copy moves on.
 */
export function notebookJobName(id: string, digest: string, tier: string): string {
  return runtimeJobName(NOTEBOOK_JOB_PREFIX, id, [digest, id, tier]);
}

/** `executed-notebooks-<tier>`: one claim per tier, kept across runs (each run writes its own sub-directory). */
export function executedClaimName(tier: string): string {
  const part = tier.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/-{2,}/g, "-").replace(/^-+|-+$/g, "");
  return `executed-notebooks-${part}`.slice(0, 63).replace(/-+$/, "");
}

/**
 * The smoke Job's shell script (`sh -c SCRIPT smoke CMD…`): runs the catalog's smoke.command under coreutils
 * `timeout` (its own deadline, counted after the pull; SIGTERM, then SIGKILL after the grace), prints its output,
 * and writes a one-line verdict to the termination log: PASSED, or FAILED with the exit status (or the deadline)
 * and the last non-blank line of the command's output, usually the exception (`ModuleNotFoundError: No module named
 * 'xgboost'`). The command reaches the script as "$@", never spliced into its text.
 */
export function smokeScript(id: string, deadlineSeconds: number, terminationLog = TERMINATION_LOG): string {
  const tl = shellQuote(terminationLog);
  const who = shellQuote(`smoke test of ${id}`);
  return [
    `out=$(timeout --kill-after=${CHECK_KILL_AFTER_SECONDS}s ${deadlineSeconds}s "$@" 2>&1)`,
    "rc=$?",
    `[ -z "$out" ] || printf '%s\\n' "$out"`,
    `last=$(printf '%s\\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c 1-1000)`,
    `if [ "$rc" -eq 0 ]; then printf 'PASSED %s: %s\\n' ${who} "$*" > ${tl}; exit 0; fi`,
    `if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then why="timed out after ${deadlineSeconds} s"; else why="exit $rc"; fi`,
    `printf 'FAILED %s (%s): %s\\n' ${who} "$why" "\${last:-no output}" > ${tl}`,
    'exit "$rc"',
  ].join("\n");
}

/** The smoke container's command: `sh -c SCRIPT smoke <smoke.command…>`. */
export function smokeCommand(image: SmokeSubject, settings: Pick<RuntimeJobSettings, "deadlineSeconds">): string[] {
  if (image.smoke.command.length === 0) {
    throw new Error(`image "${image.name}" has an empty smoke.command. Give it a command (e.g. ["python", "-c", "import torch"]) in images/catalog.yaml.`);
  }
  return ["sh", "-c", smokeScript(image.name, settings.deadlineSeconds), "smoke", ...image.smoke.command];
}

/**
 * run_notebooks.py's command line (images/notebook-validator/README.md, "The runner"), under `timeout`: executed
 * notebooks go to `<claim>/<job name>/<tier>/`, the verdict to the termination log.
 */
export function notebookCommand(tier: string, jobName: string, settings: Pick<RuntimeJobSettings, "deadlineSeconds">): string[] {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(tier)) {
    throw new Error(`notebook tier ${JSON.stringify(tier)} is not a folder name of images/notebook-validator/notebooks (letters, digits, '.', '_', '-').`);
  }
  return [
    "timeout",
    `--kill-after=${CHECK_KILL_AFTER_SECONDS}s`,
    `${settings.deadlineSeconds}s`,
    "python",
    NOTEBOOK_RUNNER,
    tier,
    "--output-dir",
    `${EXECUTED_MOUNT}/${jobName}`,
    "--timeout",
    String(Math.min(NOTEBOOK_CELL_TIMEOUT_SECONDS, settings.deadlineSeconds)),
    "--termination-log",
    TERMINATION_LOG,
  ];
}

/** Required node affinity that keeps a CPU Job off GPU nodes (GPU_PRESENT_LABEL). */
export function cpuNodeAffinity(): k8s.types.input.core.v1.Affinity {
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: GPU_PRESENT_LABEL, operator: "NotIn", values: ["true"] }] }],
      },
    },
  };
}

interface CpuJobParts {
  name: string;
  namespace: string;
  imageId: string;
  check: "smoke" | "notebooks";
  extraLabels?: Record<string, string>;
  imageRef: string;
  sizeBudgetMB: number;
  settings: RuntimeJobSettings;
  container: { name: string; command: string[]; volumeMounts?: k8s.types.input.core.v1.VolumeMount[] };
  fsGroup?: number;
  volumes?: k8s.types.input.core.v1.Volume[];
}

function cpuJob(p: CpuJobParts): ValidationJob {
  const labels = {
    "app.kubernetes.io/name": APP_LABEL,
    [VARIANT_LABEL]: labelValue(p.imageId),
    [POOL_LABEL]: CPU_POOL,
    [CHECK_LABEL]: p.check,
    ...p.extraLabels,
  };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: p.name,
      namespace: p.namespace,
      labels,
      // As the GPU check: a failed Job is replaced by the next `up`, not accepted; no ttlSecondsAfterFinished.
      annotations: { "pulumi.com/replaceUnready": "true" },
    },
    spec: {
      // The GPU check's failure semantics (validation-job.ts failFast, issue #11).
      ...failFast(p.settings.backoffLimit, jobDeadlineSeconds({ sizeBudgetMB: p.sizeBudgetMB }, p.settings)),
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // Pod Security "restricted", as the GPU check: the image's own numeric non-root USER, no runAsUser.
          securityContext: {
            runAsNonRoot: true,
            seccompProfile: { type: "RuntimeDefault" },
            ...(p.fsGroup !== undefined ? { fsGroup: p.fsGroup, fsGroupChangePolicy: "OnRootMismatch" } : {}),
          },
          affinity: cpuNodeAffinity(),
          containers: [
            {
              name: p.container.name,
              image: pinnedRef(p.imageRef),
              imagePullPolicy: "IfNotPresent",
              command: p.container.command,
              env: [{ name: "PYTHONDONTWRITEBYTECODE", value: "1" }],
              resources: { requests: { ...CPU_REQUESTS } },
              securityContext: restrictedContainer(),
              terminationMessagePath: TERMINATION_LOG,
              terminationMessagePolicy: "FallbackToLogsOnError",
              ...(p.container.volumeMounts ? { volumeMounts: p.container.volumeMounts } : {}),
            },
          ],
          ...(p.volumes ? { volumes: p.volumes } : {}),
        },
      },
    },
  };
}

/** The smoke-test Job of one CPU image: its catalog smoke.command, in the image by digest, on a CPU node. */
export function smokeJob(input: SmokeJobInput): ValidationJob {
  const digest = digestOf(input.imageRef);
  return cpuJob({
    name: smokeJobName(input.image.name, digest, input.image.smoke.command),
    namespace: input.namespace,
    imageId: input.image.name,
    check: "smoke",
    imageRef: input.imageRef,
    sizeBudgetMB: input.image.sizeBudgetMB,
    settings: input.settings,
    container: { name: SMOKE_CONTAINER, command: smokeCommand(input.image, input.settings) },
  });
}

/** The notebook Job of one tier image: run_notebooks.py <tier>, executed notebooks kept on the tier's claim. */
export function notebookJob(input: NotebookJobInput): ValidationJob {
  const digest = digestOf(input.imageRef);
  const name = notebookJobName(input.image.name, digest, input.tier);
  return cpuJob({
    name,
    namespace: input.namespace,
    imageId: input.image.name,
    check: "notebooks",
    extraLabels: { [TIER_LABEL]: labelValue(input.tier) },
    imageRef: input.imageRef,
    sizeBudgetMB: input.image.sizeBudgetMB,
    settings: input.settings,
    fsGroup: input.fsGroup,
    container: {
      name: NOTEBOOK_CONTAINER,
      command: notebookCommand(input.tier, name, input.settings),
      volumeMounts: [{ name: "executed", mountPath: EXECUTED_MOUNT }],
    },
    volumes: [{ name: "executed", persistentVolumeClaim: { claimName: input.claimName } }],
  });
}

/** A core/v1 PersistentVolumeClaim as plain data. */
export interface ExecutedClaim {
  apiVersion: "v1";
  kind: "PersistentVolumeClaim";
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: k8s.types.input.core.v1.PersistentVolumeClaimSpec;
}

export interface ExecutedStorage {
  /** Requested size. @default DEFAULT_EXECUTED_STORAGE (1Gi) */
  size?: string;
  /** @default none: the cluster's default StorageClass */
  storageClassName?: string;
}

/**
 * The claim that keeps a tier's executed notebooks after its Job ended (issue #14): ReadWriteOnce, since a tier runs
 * one Job at a time. `pulumi.com/skipAwait`: with a WaitForFirstConsumer StorageClass (EKS gp2/gp3, kind's
 * local-path) a claim binds only once the Job's pod exists, and pulumi-kubernetes releases before #3130 (and updates
 * before #4181) wait for Bound forever; the Job's own await covers a claim that never binds (its pod stays Pending
 * until DeadlineExceeded).
 */
export function executedClaim(tier: string, namespace: string, storage: ExecutedStorage = {}): ExecutedClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: executedClaimName(tier),
      namespace,
      labels: { "app.kubernetes.io/name": APP_LABEL, [CHECK_LABEL]: "notebooks", [TIER_LABEL]: labelValue(tier) },
      annotations: { "pulumi.com/skipAwait": "true" },
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: storage.size ?? DEFAULT_EXECUTED_STORAGE } },
      ...(storage.storageClassName !== undefined ? { storageClassName: storage.storageClassName } : {}),
    },
  };
}
