/**
 * Issue #11 point 1: a failed check must end `pulumi up` at once, with the check's verdict, and an evicted pod must
 * never fail it. This encodes the two upstream rules the Job relies on and runs our real Job spec through them:
 *
 * - Kubernetes' Job controller (Job docs, "Pod failure policy" and "Pod backoff failure policy", batch/v1 1.32):
 *   rules are evaluated in order, first match wins; `FailJob` ends the Job with reason `PodFailurePolicy`; `Ignore`
 *   does not count the pod against backoffLimit and replaces it; `Count` (and a pod no rule matches) counts; when
 *   the failed count exceeds backoffLimit the Job fails with reason `BackoffLimitExceeded`.
 * - pulumi-kubernetes' Job await (provider/pkg/await/checker/job/check.go, collectJobConditionErrors): the update
 *   fails only on a Failed condition with reason BackoffLimitExceeded or DeadlineExceeded; any other reason is
 *   ignored and the update waits for its customTimeouts. The pod aggregator (checker/pod/check.go,
 *   containerTerminatedError) reports `[<reason>] <termination message>` of a terminated container.
 */
import { describe, expect, it } from "vitest";
import { validationJob, type ValidationJobInput } from "../../../components/validation/validation-job";

type PodExit = { exitCode: number; message: string } | { disrupted: true };
interface FailurePolicyRule {
  action: "FailJob" | "Ignore" | "Count" | "FailIndex";
  onExitCodes?: { containerName?: string; operator: "In" | "NotIn"; values: number[] };
  onPodConditions?: Array<{ type: string; status: string }>;
}

/** The Job controller's verdict after these pod failures: still running (a new pod), or Failed with a reason. */
function jobController(spec: { backoffLimit?: number; podFailurePolicy?: { rules: FailurePolicyRule[] } }, exits: PodExit[]) {
  let failed = 0;
  for (const exit of exits) {
    const rule = (spec.podFailurePolicy?.rules ?? []).find((r) =>
      "disrupted" in exit
        ? (r.onPodConditions ?? []).some((c) => c.type === "DisruptionTarget" && c.status === "True")
        : r.onExitCodes !== undefined && (r.onExitCodes.operator === "In") === r.onExitCodes.values.includes(exit.exitCode),
    );
    const action = rule?.action ?? "Count";
    if (action === "FailJob") return { failed: true, reason: "PodFailurePolicy" };
    if (action === "Ignore") continue;
    failed += 1;
    // backoffLimit defaults to 6 in Kubernetes.
    if (failed > (spec.backoffLimit ?? 6)) return { failed: true, reason: "BackoffLimitExceeded" };
  }
  return { failed: false };
}

/** pulumi-kubernetes: the update's error, or undefined while it keeps waiting. */
function providerVerdict(job: { failed: boolean; reason?: string }, lastExit: PodExit | undefined): string | undefined {
  if (!job.failed || (job.reason !== "BackoffLimitExceeded" && job.reason !== "DeadlineExceeded")) return undefined;
  const pod = lastExit !== undefined && !("disrupted" in lastExit) ? ` [Error] ${lastExit.message}` : "";
  return `[${job.reason}] Job has reached the specified backoff limit${pod}`;
}

const input: ValidationJobInput = {
  variant: { name: "jupyter-ml-gpu", cuda: "12.8", ships: { flashAttn: false }, smoke: { command: ["true"], imports: [] }, sizeBudgetMB: 9000 },
  target: {
    mode: "gpu",
    pool: { name: "h100", nodeSelector: {}, tolerations: [], product: "NVIDIA-H100-80GB-HBM3", gpusPerNode: 8, driverVersion: "570.133.20" },
  },
  imageRef: `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/jupyter-ml-gpu@sha256:${"a".repeat(64)}`,
  namespace: "workbench-validation",
  checksConfigMap: "workbench-checks-0123456789",
  checksHash: "b".repeat(64),
  validation: { matmulFraction: 0.7, bandwidthFraction: 0.8, deadlineSeconds: 900, pullMBps: 25, backoffLimit: 0, shmSize: "8Gi" },
};
const spec = validationJob(input).spec as unknown as Parameters<typeof jobController>[0];
const IMAGE_FAULT: PodExit = { exitCode: 1, message: "FAIL 12/13 checks: matmul_throughput 512.0 TFLOP/s < 0.7 × 989" };
const NODE_FAULT: PodExit = { exitCode: 3, message: "NODE FAULT on ip-10-0-1-2: ecc_health 3 volatile uncorrectable errors; drain the node" };
const USAGE: PodExit = { exitCode: 2, message: "usage: gpu_check.py: error: --expect-product" };
const TIMED_OUT: PodExit = { exitCode: 124, message: "sustained phase 612/900 s" };
const EVICTED: PodExit = { disrupted: true };

describe("a failed check fails `pulumi up` at once (Job controller + provider await rules)", () => {
  it.each([
    ["an image fault (exit 1)", IMAGE_FAULT],
    ["a Job built wrong (exit 2)", USAGE],
    ["a node fault (exit 3)", NODE_FAULT],
    ["the check's own deadline (timeout, exit 124)", TIMED_OUT],
  ])("%s: the first failed pod fails the update, carrying the verdict", (_what, exit) => {
    const job = jobController(spec, [exit]);
    expect(job).toEqual({ failed: true, reason: "BackoffLimitExceeded" });
    expect(providerVerdict(job, exit)).toBe(`[BackoffLimitExceeded] Job has reached the specified backoff limit [Error] ${(exit as { message: string }).message}`);
  });

  it("an evicted or preempted pod is replaced and never fails the update", () => {
    const job = jobController(spec, [EVICTED, EVICTED, EVICTED]);
    expect(job).toEqual({ failed: false });
    expect(providerVerdict(job, EVICTED)).toBeUndefined();
    // ... and the retry's own failure still fails at once.
    expect(jobController(spec, [EVICTED, IMAGE_FAULT])).toEqual({ failed: true, reason: "BackoffLimitExceeded" });
  });

  it("the old FailJob rule would have left `pulumi up` waiting for its timeout (the rules above can fail)", () => {
    const old = {
      backoffLimit: 1,
      podFailurePolicy: {
        rules: [
          { action: "FailJob" as const, onExitCodes: { containerName: "check", operator: "In" as const, values: [1, 2] } },
          { action: "Ignore" as const, onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
        ],
      },
    };
    const job = jobController(old, [IMAGE_FAULT]);
    expect(job).toEqual({ failed: true, reason: "PodFailurePolicy" });
    expect(providerVerdict(job, IMAGE_FAULT)).toBeUndefined();
  });

  it("no rule of ours may end the Job with a reason the provider ignores", () => {
    expect(spec.podFailurePolicy!.rules.map((r) => r.action)).toEqual(["Ignore"]);
  });
});
