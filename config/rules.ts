import type { Problem } from "../lib/problems";
import { renderReceived } from "../lib/problems";
import { type Environment, LOCAL_CONTEXT, type StackInput } from "./schema";

/**
 * Rules across keys that depend on the environment (issues #4, #7): prod never builds; only a local stack may go
 * without cloud, signing or scans; the local stack talks only to a local cluster.
 */
export function environmentProblems(c: StackInput, environment: Environment, mode: "build" | "promote", ns: string): Problem[] {
  const problems: Problem[] = [];
  const at = (key: string, message: string, received?: unknown) =>
    problems.push({ path: `${ns}${key}`, message, ...(received !== undefined ? { received: renderReceived(received) } : {}) });
  if (environment === "prod" && mode === "build") {
    at("mode", 'is "build" on a prod stack. Prod never builds: it promotes digests that dev validated. Set mode: promote.', mode);
  }
  if (environment === "local") {
    if (c.registry.kind !== "local") at("registry.kind", 'must be "local" on the local stack, which uses no cloud.', c.registry.kind);
    if (c.kubeconfig !== undefined) at("kubeconfig", "is set on the local stack. The local stack talks only to a local cluster context: remove it and set cluster.context.");
    if (c.cluster.context === undefined || !LOCAL_CONTEXT.test(c.cluster.context)) {
      at("cluster.context", 'must name a local cluster (kind-*, k3d-*, minikube, docker-desktop, rancher-desktop, orbstack, colima) on the local stack. Point it at your kind or k3d cluster, e.g. "kind-workbench".', c.cluster.context ?? null);
    }
    if (mode === "promote") at("mode", 'is "promote" on the local stack, which has nothing to promote from. Set mode: build.', mode);
  } else {
    if (c.registry.kind !== "ecr") at("registry.kind", `must be "ecr" on the ${environment} stack. The local registry is for the local stack only.`, c.registry.kind);
    if (c.signing.mode === "none") at("signing.mode", `is "none" on the ${environment} stack. Only the local stack may skip signing: set mode: cosign-kms with keyAlias and signerRoleArns.`, "none");
    if (c.scan.scanner === "none") at("scan.scanner", `is "none" on the ${environment} stack. Only the local stack may skip the scan gate: set scanner: trivy.`, "none");
    if (c.cluster.context === undefined && c.kubeconfig === undefined) {
      at("cluster", "names no cluster. Set the kubeconfig secret (`pulumi config set --secret workbench-images:kubeconfig < kubeconfig`) or cluster.context.");
    }
  }
  if (c.registry.kind === "local" && c.signing.mode !== "none") {
    at("signing.mode", 'is "cosign-kms" with a local registry. KMS signing needs ECR; set mode: none on the local stack.', c.signing.mode);
  }

  return problems;
}
