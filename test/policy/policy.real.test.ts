/**
 * The policy pack in the process the Pulumi CLI starts for `pulumi preview --policy-pack policy` (@pulumi/pulumi's
 * run-policy-pack, ts-node compiling policy/index.ts), called over gRPC: a real-artifact suite (vitest project
 * `real`). The rules themselves are tested in-process in policy.test.ts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as analyzerGrpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzerPb from "@pulumi/pulumi/proto/analyzer_pb";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POLICY_NAMES } from "../../policy/rules";
import { PROJECT_ROOT } from "../../lib/paths";
import { DEADLINE_TAIL, ECR, ecrRepository, MUTABILITY_FIX, PIN_FIX, podSpec, RELEASE, SECRET_TAIL, UNKNOWN } from "./policy-cases";

/**
 * The pack as `pulumi preview --policy-pack policy` runs it: the CLI starts @pulumi/pulumi's run-policy-pack in
 * policy/ (ts-node compiling index.ts), reads the port it prints, and calls the Analyzer gRPC service with each
 * resource's inputs marshalled as the engine does (secrets with their signature, unknowns as sentinels).
 */
describe("the pack over gRPC, as the Pulumi CLI runs it", () => {
  const policyDir = path.resolve(PROJECT_ROOT, "policy");
  let child: ChildProcess | undefined;
  let client: analyzerGrpc.AnalyzerClient;

  beforeAll(async () => {
    const runner = require.resolve("@pulumi/pulumi/cmd/run-policy-pack", { paths: [policyDir] });
    const proc = spawn(process.execPath, [runner, "127.0.0.1:1", "."], { cwd: policyDir, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    const port = await new Promise<string>((resolve, reject) => {
      let out = "";
      let err = "";
      proc.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split("\n")[0]?.trim() ?? "";
        if (/^\d+$/.test(line) && out.includes("\n")) resolve(line);
      });
      proc.stderr?.on("data", (chunk: Buffer) => (err += chunk.toString()));
      proc.on("exit", (code) => reject(new Error(`policy pack exited with ${code}: ${err}${out}`)));
    });
    client = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    child?.kill();
  });

  function analyze(type: string, props: Record<string, unknown>): Promise<[string, string][]> {
    const request = new analyzerPb.AnalyzeRequest();
    request.setType(type);
    request.setUrn(`urn:pulumi:dev::workbench-images::${type}::r`);
    request.setName("r");
    // The engine always sends resource options; @pulumi/policy refuses a request without them (an old CLI).
    request.setOptions(new analyzerPb.AnalyzerResourceOptions());
    request.setProperties(Struct.fromJavaScript(props as Parameters<typeof Struct.fromJavaScript>[0]));
    return new Promise((resolve, reject) =>
      client.analyze(request, (error, response) => {
        if (error !== null) return reject(error);
        resolve(
          response.getDiagnosticsList().map((d) => {
            const level = d.getEnforcementlevel() === analyzerPb.EnforcementLevel.MANDATORY ? "mandatory" : `level ${d.getEnforcementlevel()}`;
            return [`${d.getPolicyname()} (${level})`, d.getMessage()];
          }),
        );
      }),
    );
  }

  it("serves the seven mandatory policies under the pack name workbench-images", async () => {
    const info = await new Promise<analyzerPb.AnalyzerInfo>((resolve, reject) =>
      client.getAnalyzerInfo(new Empty(), (error, response) => (error !== null ? reject(error) : resolve(response))),
    );
    expect(info.getName()).toBe("workbench-images");
    expect(info.getVersion()).toBe("0.1.0");
    expect(info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()])).toEqual(
      Object.values(POLICY_NAMES).map((name) => [name, analyzerPb.EnforcementLevel.MANDATORY]),
    );
  });

  it("reports each message as one mandatory violation, prefixed by the policy description", async () => {
    const diagnostics = await analyze(ECR, ecrRepository({ imageTagMutability: "MUTABLE", imageScanningConfiguration: { scanOnPush: false } }));
    expect(diagnostics).toEqual([
      [
        "ecr-immutable-tags (mandatory)",
        "ECR repositories have immutable tags; only signature (sha256-*, *.sig, *.att, *.sbom) and build-cache " +
          `(buildcache*) tags may be excluded.\nimageTagMutability is "MUTABLE": a pushed tag can be moved to another image; ${MUTABILITY_FIX}`,
      ],
      [
        "ecr-scan-on-push (mandatory)",
        "ECR repositories scan every image on push.\nimageScanningConfiguration.scanOnPush is false: ECR then does not " +
          "scan pushed images and the scan gate has no findings to read; set imageScanningConfiguration: {scanOnPush: true}",
      ],
    ]);
    expect(await analyze(ECR, ecrRepository())).toEqual([]);
  });

  it("sees a Pulumi secret in Helm values as its plain value, and skips preview unknowns without an advisory", async () => {
    const values = {
      hub: { cookieSecret: { [specialSigKey]: specialSecretSig, value: "from-pulumi-config" } },
      singleuser: { image: { name: "repo", tag: UNKNOWN }, profileList: [{ kubespawner_override: { image: "repo:latest" } }] },
    };
    expect(await analyze(RELEASE, { chart: "jupyterhub", values })).toEqual([
      [
        "helm-values-images-pinned-by-digest (mandatory)",
        `Every image reference set in Helm values is pinned by @sha256 digest.\nvalues.singleuser.profileList[0].kubespawner_override.image is "repo:latest": ${PIN_FIX}`,
      ],
      [
        "helm-values-no-plaintext-secrets (mandatory)",
        `Helm values carry no secret values; secrets are referenced from Kubernetes Secrets.\nvalues.hub.cookieSecret ${SECRET_TAIL}`,
      ],
    ]);
  });

  it("checks a Job's pod images and bounds together", async () => {
    const job = { apiVersion: "batch/v1", kind: "Job", spec: { backoffLimit: 0, template: { spec: podSpec(UNKNOWN, "nvidia/cuda:12.4.1-base") } } };
    expect(await analyze("kubernetes:batch/v1:Job", job)).toEqual([
      [
        "workload-images-pinned-by-digest (mandatory)",
        "Every container, init container and ephemeral container image in a Kubernetes workload is pinned by @sha256 " +
          `digest.\nspec.template.spec.containers[1].image (container "c1") is "nvidia/cuda:12.4.1-base": ${PIN_FIX}`,
      ],
      [
        "job-backoff-limit-and-deadline (mandatory)",
        `Jobs (and CronJob job templates) set backoffLimit and activeDeadlineSeconds.\nspec.activeDeadlineSeconds is missing, ${DEADLINE_TAIL}`,
      ],
    ]);
  });
});
