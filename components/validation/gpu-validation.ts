import * as batchv1 from "@pulumi/kubernetes/batch/v1";
import * as corev1 from "@pulumi/kubernetes/core/v1";
import * as rbacv1 from "@pulumi/kubernetes/rbac/v1";
import * as pulumi from "@pulumi/pulumi";
import {
  APP_LABEL,
  CPU_POOL,
  checkCommand,
  digestOf,
  jobCreateTimeout,
  jobDeadlineSeconds,
  labelValue,
  POOL_LABEL,
  type ValidationSettings,
  type ValidationTarget,
  type ValidationVariant,
  VARIANT_LABEL,
  validationJob,
  validationJobName,
} from "./validation-job";
import { REPORT_KEY, reportConfigMapName, reporterName, reporterRules, reportFigures, type ValidationFigures } from "./validation-report";

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
  after?: batchv1.Job;
}

/**
 * One GPU image checked on one pool (issue #5): a batch/v1 Job running images/checks/gpu_check.py in the image, by
 * digest, on the pool's nodes. Pulumi awaits the Job, so a failed check fails `up` and everything that consumes
 * `validatedRef` waits for it. The pod stores its report in a ConfigMap of its own, which is read back once the Job
 * succeeded (`reportText`, `figures`: issue #15). Built by GpuValidationSuite, which owns the shared namespace and
 * the check ConfigMap.
 */
export class GpuValidation extends pulumi.ComponentResource {
  readonly job: batchv1.Job;
  /** `wbv-<variant>-<pool>-<hash>`: changes exactly when the image digest or the checks change. */
  readonly jobName: pulumi.Output<string>;
  /** The pool's name, or "cpu". */
  readonly pool: string;
  /** The input imageRef, resolved only once the Job has succeeded. */
  readonly validatedRef: pulumi.Output<string>;
  /** The empty ConfigMap `<job>-report` the check pod writes its report into. */
  readonly reportConfigMap: corev1.ConfigMap;
  /** The report as stored by the pod, read back after the Job succeeded ("" when absent, and under mocks). */
  readonly reportText: pulumi.Output<string>;
  /** What the report says, for the stack outputs. */
  readonly figures: pulumi.Output<ValidationFigures>;

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

    // The report's way back (issue #15): an empty ConfigMap named after the Job, and a service account whose Role may
    // only `patch` that one object. The pod stores its report there; the program reads it back once the Job has
    // succeeded, publishes its figures and attests it, so nothing in the pod can sign.
    const names = pulumi.output(args.imageRef).apply((ref) => {
      const job = validationJobName(args.variant.name, this.pool, digestOf(ref), args.checksHash, args.target.mode === "gpu" ? args.target.pool.driverVersion : "");
      return { job, configMap: reportConfigMapName(job), reporter: reporterName(job) };
    });
    const labels = { "app.kubernetes.io/name": APP_LABEL, [VARIANT_LABEL]: labelValue(args.variant.name), [POOL_LABEL]: labelValue(this.pool) };
    this.reportConfigMap = new corev1.ConfigMap(
      `${name}-report`,
      {
        // No `data`: with server-side apply (the provider's default) the program never owns data["report.json"],
        // so no later apply or refresh takes the pod's report away (a refresh prunes live fields that are not
        // inputs: pulumi-kubernetes provider.go Read, pruneLiveState).
        metadata: {
          name: names.configMap,
          namespace: args.namespace,
          labels,
          annotations: { "workbench-images/report": `written by the Job's gpu_check.py --report-configmap as data["${REPORT_KEY}"]` },
        },
      },
      { parent: this },
    );
    const serviceAccount = new corev1.ServiceAccount(
      `${name}-reporter`,
      // The pod asks for its token explicitly; nothing else that might run as this account gets one by default.
      { metadata: { name: names.reporter, namespace: args.namespace, labels }, automountServiceAccountToken: false },
      { parent: this },
    );
    const role = new rbacv1.Role(
      `${name}-reporter-role`,
      { metadata: { name: names.reporter, namespace: args.namespace, labels }, rules: this.reportConfigMap.metadata.name.apply(reporterRules) },
      { parent: this },
    );
    const binding = new rbacv1.RoleBinding(
      `${name}-reporter-binding`,
      {
        metadata: { name: names.reporter, namespace: args.namespace, labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
        subjects: [{ kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace: args.namespace }],
      },
      { parent: this },
    );

    const job = pulumi
      .all([args.imageRef, args.namespace, args.checksConfigMap, this.reportConfigMap.metadata.name, serviceAccount.metadata.name])
      .apply(([imageRef, namespace, checksConfigMap, configMap, reporter]) =>
        validationJob({
          variant: args.variant,
          target: args.target,
          imageRef,
          namespace,
          checksConfigMap,
          checksHash: args.checksHash,
          validation: args.validation,
          report: { configMap, serviceAccount: reporter },
        }),
      );
    const timeout = jobCreateTimeout(jobDeadlineSeconds(args.variant, args.validation));
    this.job = new batchv1.Job(
      `${name}-job`,
      { metadata: job.metadata, spec: job.spec },
      {
        parent: this,
        // The binding must exist before the pod patches (the ConfigMap and the account are inputs already).
        dependsOn: [binding, ...(args.after !== undefined ? [args.after] : [])],
        // Longer than activeDeadlineSeconds, so the Job's own DeadlineExceeded is what fails `up`. A replacement is
        // a create, so `update` only covers in-place metadata edits. No deleteBeforeReplace: a changed image or
        // check changes the name, and create-before-delete keeps the last passing Job until the new one passes;
        // a same-name replacement (changed thresholds) is deleted first by the Kubernetes provider itself.
        customTimeouts: { create: timeout, update: timeout },
      },
    );
    // Read back only after the Job succeeded: its id resolves when the provider's await has seen it complete (a
    // failed check fails `up` first). In a preview of a new Job the id is unknown, and the engine skips a read
    // whose id is unknown (pulumi pkg/resource/deploy/step.go ReadStep.Apply), so a preview never reads a
    // ConfigMap that does not exist yet; an unchanged Job's report is read in previews too.
    const readback = corev1.ConfigMap.get(
      `${name}-report-readback`,
      pulumi.all([this.job.id, args.namespace, this.reportConfigMap.metadata.name]).apply(([, ns, cm]) => `${ns}/${cm}`),
      { parent: this, dependsOn: [this.job] },
    );
    this.reportText = readback.data.apply((d) => d?.[REPORT_KEY] ?? "");
    this.jobName = this.job.metadata.name;
    this.validatedRef = pulumi.all([args.imageRef, this.jobName]).apply(([ref]) => ref);
    this.figures = pulumi.all([this.jobName, this.reportText]).apply(([job, text]) => reportFigures(text, { job, pool: this.pool }));
    this.registerOutputs({ jobName: this.jobName, pool: this.pool, validatedRef: this.validatedRef, figures: this.figures });
  }
}
