import * as batchv1 from "@pulumi/kubernetes/batch/v1";
import * as corev1 from "@pulumi/kubernetes/core/v1";
import * as pulumi from "@pulumi/pulumi";
import { after } from "../../lib/outputs";
import { type ExecutedStorage, executedClaim, notebookCommand, notebookJob, type RuntimeJobSettings, type SmokeSubject } from "./runtime-jobs";
import { digestOf, jobCreateTimeout, jobDeadlineSeconds } from "./validation-job";

export interface NotebookValidationArgs {
  image: Pick<SmokeSubject, "name" | "sizeBudgetMB">;
  /** The tier run_notebooks.py runs (the catalog entry's build target, `tier1`…). */
  tier: string;
  /** The image user's group (catalog runAs.gid): the pod's fsGroup, so it can write the claim. */
  fsGroup: number;
  /** `repository@sha256:…` that passed the gates before this one (its smoke test). */
  imageRef: pulumi.Input<string>;
  /** The validation namespace's name, from the Namespace resource so the claim and Job wait for it. */
  namespace: pulumi.Input<string>;
  settings: RuntimeJobSettings;
  /** The claim keeping executed notebooks. @default 1Gi of the cluster's default StorageClass */
  storage?: ExecutedStorage;
}

/**
 * A notebook-validator tier image validated by running its tier's notebooks (issue #14, seed 001): a claim
 * `executed-notebooks-<tier>` that keeps every run's executed notebooks, and a Job running
 * `run_notebooks.py <tier> --output-dir /executed/<job name>` in the image by digest. A failing notebook fails `up`
 * with the runner's verdict (notebook, cell, exception); `validatedRef` resolves only after every notebook passed.
 */
export class NotebookValidation extends pulumi.ComponentResource {
  readonly claim: corev1.PersistentVolumeClaim;
  readonly job: batchv1.Job;
  /** `wbn-<id>-<hash>`: changes exactly when the digest (which carries the notebooks) or the tier changes. */
  readonly jobName: pulumi.Output<string>;
  readonly claimName: pulumi.Output<string>;
  /** Where this run's notebooks are on the claim: `<job name>/<tier>/`. */
  readonly outputPath: pulumi.Output<string>;
  /** The input imageRef, resolved only once the notebooks passed. */
  readonly validatedRef: pulumi.Output<string>;

  constructor(name: string, args: NotebookValidationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:NotebookValidation", name, {}, opts);
    try {
      notebookCommand(args.tier, "x", args.settings);
      if (!Number.isInteger(args.fsGroup) || args.fsGroup < 0) {
        throw new Error(`fsGroup must be the image's numeric group (catalog runAs.gid), got ${args.fsGroup}.`);
      }
      if (typeof args.imageRef === "string") digestOf(args.imageRef);
    } catch (err) {
      throw new pulumi.ResourceError(`NotebookValidation ${name}: ${(err as Error).message}`, this);
    }
    const claim = pulumi.output(args.namespace).apply((namespace) => executedClaim(args.tier, namespace, args.storage));
    this.claim = new corev1.PersistentVolumeClaim(`${name}-executed`, { metadata: claim.metadata, spec: claim.spec }, { parent: this });
    this.claimName = this.claim.metadata.name;
    const job = pulumi
      .all([args.imageRef, args.namespace, this.claimName])
      .apply(([imageRef, namespace, claimName]) =>
        notebookJob({ image: args.image, tier: args.tier, imageRef, namespace, claimName, fsGroup: args.fsGroup, settings: args.settings }),
      );
    const timeout = jobCreateTimeout(jobDeadlineSeconds(args.image, args.settings));
    this.job = new batchv1.Job(
      `${name}-job`,
      { metadata: job.metadata, spec: job.spec },
      { parent: this, customTimeouts: { create: timeout, update: timeout } },
    );
    this.jobName = this.job.metadata.name;
    this.outputPath = this.jobName.apply((n) => `${n}/${args.tier}/`);
    this.validatedRef = after(args.imageRef, this.jobName);
    this.registerOutputs({ jobName: this.jobName, claimName: this.claimName, outputPath: this.outputPath, validatedRef: this.validatedRef });
  }
}
