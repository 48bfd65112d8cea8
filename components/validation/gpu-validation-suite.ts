import * as corev1 from "@pulumi/kubernetes/core/v1";
import * as pulumi from "@pulumi/pulumi";
import type { GpuPool } from "../../lib/gpu-pool";
import {
  APP_LABEL,
  type CheckFiles,
  CPU_POOL,
  checksConfigMapName,
  laneOrder,
  loadCheckFiles,
  type ValidationSettings,
  type ValidationTarget,
  type ValidationVariant,
} from "./validation-job";
import { GpuValidation } from "./gpu-validation";
import { ReportAttestation, type ReportAttestationArgs } from "./report-attestation";
import type { ValidationFigures } from "./validation-report";

/** One GPU image to validate, on each of its compatible pools. */
export interface GpuValidationImage {
  variant: ValidationVariant & { gpu: boolean };
  /** `repository@sha256:…`, already scanned and signed (the gate's output, so the Jobs wait for the gate). */
  imageRef: pulumi.Input<string>;
  /** The pools it is validated and offered on (config's poolsByVariant). Ignored in cpu mode. */
  pools: GpuPool[];
}

/** The stack's `validation.*` keys: where the Jobs run and how they judge. */
export interface ValidationSuiteSettings extends ValidationSettings {
  /** Namespace of the Jobs and the check ConfigMap. */
  namespace: string;
  /** `gpu`: on GPU pools; `cpu`: one Job per image on any node, GPU-only checks skipped (local stack). */
  mode: "gpu" | "cpu";
}

export interface GpuValidationSuiteArgs {
  validation: ValidationSuiteSettings;
  /** Absolute path of images/checks: every check file there goes into the ConfigMap. */
  checksDir: string;
  targets: GpuValidationImage[];
  /** Namespace created for the Jobs and the ConfigMap. @default validation.namespace */
  namespace?: string;
  /** `cpu`: one Job per variant, no GPU, GPU-only checks skipped (local stack). @default validation.mode */
  mode?: "gpu" | "cpu";
  /**
   * How many cpu-mode Jobs run at once. cpu mode is the local stack: one laptop cluster, and each Job pulls a
   * multi-GB image and imports torch. @default 1
   */
  cpuConcurrency?: number;
  /**
   * A suite whose namespace, check ConfigMap and lanes this one continues (issue #11: per-user images are validated
   * after their bases, so their Jobs come from a second suite). Its Jobs keep the first suite's child names, with an
   * alias to their former parent, and each pool's lanes start after the first suite's last Job in that lane, so a
   * pool never runs more than maxConcurrentJobs Jobs at once. @default none: this suite creates its own
   */
  continues?: GpuValidationSuite;
  /**
   * Attach each image's validation reports (every pool's, read back from the Jobs) to its digest as one attestation
   * (issue #15): `outputDir` as in Attestations; with `signing`, `cosign attest` with the stack's key. Each variant's
   * `validatedRefs` entry then also waits for its attestation, so nothing is published or promoted without it.
   * @default none: the figures still reach `figures`, nothing is written or attested
   */
  attestation?: Pick<ReportAttestationArgs, "outputDir" | "signing" | "credentials">;
}

/**
 * GPU validation for a whole stack (issue #5): the namespace, ONE ConfigMap `workbench-checks-<hash>` holding the
 * check files, and a GpuValidation (one Job) per (GPU variant × compatible pool). Kubernetes names are unique per
 * namespace, so the namespace and ConfigMap are shared here rather than made per pair. On each pool the Jobs are
 * chained into at most `maxConcurrentJobs` lanes, so validation never asks a pool for more GPUs than it can spare.
 *
 * `validatedRefs[variant]` is the variant's imageRef, resolved only after every one of its Jobs succeeded; a
 * variant with no pool (all excluded) has no entry, because nothing validated it.
 */
export class GpuValidationSuite extends pulumi.ComponentResource {
  readonly namespace: corev1.Namespace;
  readonly checksConfigMap: corev1.ConfigMap;
  /** sha256 of the check files: part of every Job name. */
  readonly checksHash: string;
  readonly validations: GpuValidation[];
  /** variant → imageRef, depending on every Job of that variant. */
  readonly validatedRefs: Record<string, pulumi.Output<string>>;
  /** variant → the pools its Jobs run on (["cpu"] in cpu mode), in the order given. */
  readonly validatedPools: Record<string, string[]>;
  /** variant → pool → Job name. */
  readonly jobNames: Record<string, Record<string, pulumi.Output<string>>>;
  /** variant → pool → what its Job measured (the `validation` stack output), read back after the Job succeeded. */
  readonly figures: Record<string, Record<string, pulumi.Output<ValidationFigures>>>;
  /** variant → its reports' attestation (only with `attestation`, for variants some Job validated). */
  readonly attestations: Record<string, ReportAttestation>;
  /** The name its Jobs' components are named after (its own, or the continued suite's). */
  readonly childPrefix: string;
  /** pool → the last Job of each lane, in lane order: where a continuing suite's lanes start. */
  readonly laneTails: Map<string, GpuValidation[]>;

  constructor(name: string, args: GpuValidationSuiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:GpuValidationSuite", name, {}, opts);
    const mode = args.mode ?? args.validation.mode;
    const namespaceName = args.namespace ?? args.validation.namespace;
    const cpuLanes = args.cpuConcurrency ?? 1;

    const problems = validateTargets(args.targets, mode);
    if (!Number.isInteger(cpuLanes) || cpuLanes < 1) problems.push(`cpuConcurrency must be a whole number ≥ 1, got ${cpuLanes}.`);
    let checks: CheckFiles | undefined;
    try {
      checks = loadCheckFiles(args.checksDir);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (problems.length > 0 || checks === undefined) {
      throw new pulumi.ResourceError(`GpuValidationSuite ${name}:\n${problems.map((p) => `  - ${p}`).join("\n")}`, this);
    }
    this.checksHash = checks.hash;
    const prior = args.continues;
    if (prior !== undefined && prior.checksHash !== checks.hash) {
      throw new pulumi.ResourceError(`GpuValidationSuite ${name}: continues a suite with other check files. Pass the same checksDir.`, this);
    }
    this.childPrefix = prior?.childPrefix ?? name;
    this.laneTails = new Map();

    const labels = { "app.kubernetes.io/name": APP_LABEL, "app.kubernetes.io/part-of": "workbench-images" };
    this.namespace = prior?.namespace ?? new corev1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: namespaceName,
          // The Jobs meet the "restricted" Pod Security profile; enforcing it keeps anything else out of a namespace
          // whose pods run freshly built images on GPU nodes (Kubernetes Pod Security Admission docs).
          labels: { ...labels, "pod-security.kubernetes.io/enforce": "restricted" },
        },
      },
      { parent: this },
    );
    this.checksConfigMap = prior?.checksConfigMap ?? new corev1.ConfigMap(
      `${name}-checks`,
      {
        metadata: { name: checksConfigMapName(checks.hash), namespace: this.namespace.metadata.name, labels },
        data: checks.files,
        // The name is the content hash: new checks make a new ConfigMap, and this one never changes in place.
        immutable: true,
      },
      { parent: this },
    );

    // pool → its pairs: each pool is a set of lanes of its own.
    type Pair = { image: GpuValidationImage; target: ValidationTarget };
    const lanes = new Map<string, { lanes: number; pairs: Pair[] }>();
    const add = (pool: string, laneCount: number, pair: Pair) => {
      const entry = lanes.get(pool) ?? { lanes: laneCount, pairs: [] };
      entry.pairs.push(pair);
      lanes.set(pool, entry);
    };
    for (const image of args.targets) {
      if (mode === "cpu") add(CPU_POOL, cpuLanes, { image, target: { mode: "cpu" } });
      else for (const pool of image.pools) add(pool.name, pool.maxConcurrentJobs, { image, target: { mode: "gpu", pool } });
    }

    this.validations = [];
    const byVariant = new Map<string, GpuValidation[]>();
    for (const [pool, { lanes: laneCount, pairs }] of [...lanes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const ordered = laneOrder(pairs, (p) => p.image.variant.name, laneCount);
      const created: GpuValidation[] = [];
      const priorTails = prior?.laneTails.get(pool) ?? [];
      for (const [i, { item, after }] of ordered.entries()) {
        const start = after === undefined ? priorTails[i] : undefined;
        const v = new GpuValidation(
          `${this.childPrefix}-${item.image.variant.name}-${pool}`,
          {
            variant: item.image.variant,
            target: item.target,
            imageRef: item.image.imageRef,
            namespace: this.namespace.metadata.name,
            checksConfigMap: this.checksConfigMap.metadata.name,
            checksHash: checks.hash,
            validation: args.validation,
            ...(after !== undefined ? { after: created[after]!.job } : start !== undefined ? { after: start.job } : {}),
          },
          { parent: this, ...(prior !== undefined ? { aliases: [{ parent: prior }] } : {}) },
        );
        created.push(v);
        this.validations.push(v);
        byVariant.set(item.image.variant.name, [...(byVariant.get(item.image.variant.name) ?? []), v]);
      }
      // The last Job of each lane (lane k holds items k, k + lanes, …), after the continued suite's if this one has none.
      const tails = Array.from({ length: laneCount }, (_, k) => {
        const mine = created.filter((_, i) => i % laneCount === k);
        return mine.length > 0 ? mine[mine.length - 1] : priorTails[k];
      }).filter((t): t is GpuValidation => t !== undefined);
      this.laneTails.set(pool, tails);
    }
    for (const [pool, tails] of prior?.laneTails ?? []) if (!this.laneTails.has(pool)) this.laneTails.set(pool, tails);

    this.validatedRefs = {};
    this.validatedPools = {};
    this.jobNames = {};
    this.figures = {};
    this.attestations = {};
    for (const image of args.targets) {
      const variant = image.variant.name;
      const vs = byVariant.get(variant) ?? [];
      this.validatedPools[variant] = mode === "cpu" ? [CPU_POOL] : image.pools.map((p) => p.name);
      this.jobNames[variant] = Object.fromEntries(vs.map((v) => [v.pool, v.jobName]));
      this.figures[variant] = Object.fromEntries(vs.map((v) => [v.pool, v.figures]));
      if (vs.length > 0) {
        const attestation = args.attestation
          ? new ReportAttestation(
              `${this.childPrefix}-${variant}-reports`,
              {
                ref: image.imageRef,
                image: variant,
                checksHash: checks.hash,
                reports: vs.map((v) => ({ pool: v.pool, job: v.jobName, namespace: this.namespace.metadata.name, report: v.reportText })),
                ...args.attestation,
              },
              { parent: this },
            )
          : undefined;
        if (attestation) this.attestations[variant] = attestation;
        this.validatedRefs[variant] = pulumi
          .all([image.imageRef, ...vs.map((v) => v.jobName), ...(attestation ? [attestation.attestedRef] : [])])
          .apply(([ref]) => ref as string);
      }
    }
    this.registerOutputs({ validatedRefs: this.validatedRefs, validatedPools: this.validatedPools, jobNames: this.jobNames, figures: this.figures });
  }
}

/** Every problem with the targets, each naming `targets[i]…`, the value and the fix. */
function validateTargets(targets: readonly GpuValidationImage[], mode: "gpu" | "cpu"): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const poolLanes = new Map<string, number>();
  targets.forEach((t, i) => {
    const at = `targets[${i}] (variant "${t.variant.name}")`;
    const first = seen.get(t.variant.name);
    if (first !== undefined) problems.push(`${at} repeats targets[${first}]. Give each variant once, with all its pools.`);
    else seen.set(t.variant.name, i);
    if (!t.variant.gpu || t.variant.cuda === undefined) {
      problems.push(`${at} is not a GPU variant with a cuda version (gpu: ${t.variant.gpu}, cuda: ${JSON.stringify(t.variant.cuda ?? null)}). Validate only GPU variants; CPU images skip this gate.`);
    }
    if (mode === "cpu") return;
    const pools = new Set<string>();
    t.pools.forEach((p, j) => {
      if (pools.has(p.name)) problems.push(`${at}.pools[${j}] repeats pool "${p.name}". List each pool once.`);
      pools.add(p.name);
      const lanes = poolLanes.get(p.name);
      if (lanes !== undefined && lanes !== p.maxConcurrentJobs) {
        problems.push(`${at}.pools[${j}] gives pool "${p.name}" maxConcurrentJobs ${p.maxConcurrentJobs}, but another target gives ${lanes}. Pass the same pool object (config gpuPools) everywhere.`);
      }
      poolLanes.set(p.name, p.maxConcurrentJobs);
    });
  });
  return problems;
}
