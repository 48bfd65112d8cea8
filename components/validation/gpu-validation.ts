import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  CPU_POOL,
  checkCommand,
  digestOf,
  jobCreateTimeout,
  jobDeadlineSeconds,
  type ValidationSettings,
  type ValidationTarget,
  type ValidationVariant,
  validationJob,
} from "./validation-job";

export interface GpuValidationArgs {
  variant: ValidationVariant;
  /** A GPU pool, or cpu mode (local stack: one Job per variant on any node, GPU-only checks skipped). */
  target: ValidationTarget;
  /** `repository@sha256:…` of the scanned and signed image: the Job waits for whatever produced it. */
  imageRef: pulumi.Input<string>;
  /** The validation namespace's name, from the Namespace resource so the Job waits for it. */
  namespace: pulumi.Input<string>;
  /** The check ConfigMap's name, from the ConfigMap resource so the Job waits for it. */
  checksConfigMap: pulumi.Input<string>;
  /** Hash of the ConfigMap's files: part of the Job's name, so new checks re-validate. */
  checksHash: string;
  validation: ValidationSettings;
  /**
   * The Job this one runs after (the previous Job in its pool's lane), so a pool runs a bounded number at once.
   * @default none: the Job starts as soon as its inputs exist
   */
  after?: k8s.batch.v1.Job;
}

/**
 * One GPU image checked on one pool (issue #5): a batch/v1 Job running images/checks/gpu_check.py in the image, by
 * digest, on the pool's nodes. Pulumi awaits the Job, so a failed check fails `up` and everything that consumes
 * `validatedRef` waits for it. Built by GpuValidationSuite, which owns the shared namespace and ConfigMap.
 */
export class GpuValidation extends pulumi.ComponentResource {
  readonly job: k8s.batch.v1.Job;
  /** `wbv-<variant>-<pool>-<hash>`: changes exactly when the image digest or the checks change. */
  readonly jobName: pulumi.Output<string>;
  /** The pool's name, or "cpu". */
  readonly pool: string;
  /** The input imageRef, resolved only once the Job has succeeded. */
  readonly validatedRef: pulumi.Output<string>;

  constructor(name: string, args: GpuValidationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:GpuValidation", name, {}, opts);
    this.pool = args.target.mode === "gpu" ? args.target.pool.name : CPU_POOL;
    try {
      // Fail at construction with the variant named, not later inside an apply.
      checkCommand(args.variant, args.target, args.validation);
      if (typeof args.imageRef === "string") digestOf(args.imageRef);
    } catch (err) {
      throw new pulumi.ResourceError(`GpuValidation ${name}: ${(err as Error).message}`, this);
    }

    const job = pulumi
      .all([args.imageRef, args.namespace, args.checksConfigMap])
      .apply(([imageRef, namespace, checksConfigMap]) =>
        validationJob({
          variant: args.variant,
          target: args.target,
          imageRef,
          namespace,
          checksConfigMap,
          checksHash: args.checksHash,
          validation: args.validation,
        }),
      );
    const timeout = jobCreateTimeout(jobDeadlineSeconds(args.variant, args.validation));
    this.job = new k8s.batch.v1.Job(
      `${name}-job`,
      { metadata: job.metadata, spec: job.spec },
      {
        parent: this,
        ...(args.after !== undefined ? { dependsOn: [args.after] } : {}),
        // Longer than activeDeadlineSeconds, so the Job's own DeadlineExceeded is what fails `up`. A replacement is
        // a create, so `update` only covers in-place metadata edits. No deleteBeforeReplace: a changed image or
        // check changes the name, and create-before-delete keeps the last passing Job until the new one passes;
        // a same-name replacement (changed thresholds) is deleted first by the Kubernetes provider itself.
        customTimeouts: { create: timeout, update: timeout },
      },
    );
    this.jobName = this.job.metadata.name;
    this.validatedRef = pulumi.all([args.imageRef, this.jobName]).apply(([ref]) => ref);
    this.registerOutputs({ jobName: this.jobName, pool: this.pool, validatedRef: this.validatedRef });
  }
}
