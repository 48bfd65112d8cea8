/**
 * Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policy` (see README.md). Constructing the
 * PolicyPack starts the policy server and prints its port for the engine, so only the CLI may load this file:
 * tests import policies.ts and rules.ts instead.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("workbench-images", {
  description: "workbench-images guardrails (issue 4): immutable, scanned, KMS-encrypted ECR repositories; " +
    "digest-pinned images in workloads and Helm values; bounded Jobs; no secret values in Helm values.",
  enforcementLevel: "mandatory",
  policies,
});
