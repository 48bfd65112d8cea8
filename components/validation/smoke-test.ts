import * as batchv1 from "@pulumi/kubernetes/batch/v1";
import * as pulumi from "@pulumi/pulumi";
import { type RuntimeJobSettings, type SmokeSubject, smokeCommand, smokeJob } from "./runtime-jobs";
import { digestOf, jobCreateTimeout, jobDeadlineSeconds } from "./validation-job";
import { after, combine } from "../../lib/outputs";

export interface SmokeTestArgs {
  image: SmokeSubject;
  /** `repository@sha256:…` that passed the gates before this one: the Job waits for whatever produced it. */
  imageRef: pulumi.Input<string>;
  /** The validation namespace's name, from the Namespace resource so the Job waits for it. */
  namespace: pulumi.Input<string>;
  settings: RuntimeJobSettings;
}

/**
 * A CPU image's smoke test in the cluster (issue #14): one Job running the catalog's smoke.command in the image, by
 * digest, on a CPU node (runtime-jobs.ts smokeJob). Pulumi awaits the Job, so a failing command fails `up` with its
 * one-line verdict, and `smokedRef` resolves only after it passed. GPU images run their smoke test inside the GPU
 * check instead (gpu_check.py smoke_test).
 */
export class SmokeTest extends pulumi.ComponentResource {
  readonly job: batchv1.Job;
  /** `wbs-<id>-<hash>`: changes exactly when the digest or the smoke command changes. */
  readonly jobName: pulumi.Output<string>;
  /** The input imageRef, resolved only once the Job has succeeded. */
  readonly smokedRef: pulumi.Output<string>;

  constructor(name: string, args: SmokeTestArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:SmokeTest", name, {}, opts);
    try {
      smokeCommand(args.image, args.settings);
      if (typeof args.imageRef === "string") digestOf(args.imageRef);
    } catch (err) {
      throw new pulumi.ResourceError(`SmokeTest ${name}: ${(err as Error).message}`, this);
    }
    const job = combine(args.imageRef, args.namespace, (imageRef, namespace) => smokeJob({ image: args.image, imageRef, namespace, settings: args.settings }));
    const timeout = jobCreateTimeout(jobDeadlineSeconds(args.image, args.settings));
    this.job = new batchv1.Job(
      `${name}-job`,
      { metadata: job.metadata, spec: job.spec },
      // As the GPU check (gpu-validation.ts): longer than activeDeadlineSeconds, so the Job's own failure is reported.
      { parent: this, customTimeouts: { create: timeout, update: timeout } },
    );
    this.jobName = this.job.metadata.name;
    this.smokedRef = after(args.imageRef, this.jobName);
    this.registerOutputs({ jobName: this.jobName, smokedRef: this.smokedRef });
  }
}
