/**
 * The validation report's way back (issue #15): the check pod stores its report in a pre-created ConfigMap it alone
 * may patch, the program reads it back after the Job succeeded, publishes its figures and attests it to the digest.
 * Pure functions on recorded reports (test/fixtures/validation-report), the Job's pod and the real gpu_check.py
 * parser, the resources under Pulumi's mocks (scripts/lib/plan-runtime.ts: nothing is read from a cluster), and
 * under our own mocks that answer the read-back with a stored report, the attestation command.
 */
import { registryAuthSetup } from "../../../components/supply-chain/cosign";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { GpuValidationSuite, type GpuValidationImage } from "../../../components/validation/gpu-validation-suite";
import { reportAttestCommand, reportVerifyCommand } from "../../../components/validation/report-attestation";
import { checkCommand, loadCheckFiles, validationJob, type ValidationJobInput, validationJobName } from "../../../components/validation/validation-job";
import {
  GPU_VALIDATION_PREDICATE_TYPE,
  REPORT_FIELD_MANAGER,
  REPORT_KEY,
  reportConfigMapName,
  reporterName,
  reporterRules,
  reportFigures,
  SERVICEACCOUNT_DIR,
  spread,
  validationPredicate,
} from "../../../components/validation/validation-report";
import type { GpuPool, ValidationConfig } from "../../../config";
import type { CatalogVariant } from "../../../config/catalog";
import { PROJECT_ROOT } from "../../../lib/paths";
import { type Plan, type PlannedResource, runPlan } from "../../../scripts/lib/plan-runtime";

const CHECKS_DIR = path.resolve(PROJECT_ROOT, "images", "checks");
const CHECKS = loadCheckFiles(CHECKS_DIR);
const FIXTURES = path.resolve(PROJECT_ROOT, "test", "fixtures", "validation-report");
const PASS_TEXT = fs.readFileSync(path.join(FIXTURES, "report-pass-h200.json"), "utf8");
const NODE_TEXT = fs.readFileSync(path.join(FIXTURES, "report-node-h200x2.json"), "utf8");
const REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb";
const DIGEST = `sha256:${"ab".repeat(32)}`;
const REF = `${REGISTRY}/alpha@${DIGEST}`;
const KEY = "awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const NS = "workbench-validation";
const sha = (t: string) => crypto.createHash("sha256").update(t, "utf8").digest("hex");

const validation: ValidationConfig = {
  namespace: NS,
  mode: "gpu",
  matmulFraction: 0.7,
  bandwidthFraction: 0.8,
  deadlineSeconds: 900,
  pullMBps: 25,
  podStartSeconds: 120,
  backoffLimit: 0,
  shmSize: "8Gi",
};

function gpuVariant(name: string): CatalogVariant {
  return {
    name,
    family: "test",
    context: name,
    dockerfile: "Dockerfile",
    platforms: ["linux/amd64"],
    buildArgs: {},
    base: { arg: "BASE_IMAGE", ref: `docker.io/nvidia/cuda:12.8.1-runtime-ubuntu24.04@sha256:${"0".repeat(64)}` },
    extraBases: {},
    cuda: "12.8",
    gpu: true,
    ships: { flashAttn: false },
    smoke: { command: ["python", "-c", "import torch"], imports: ["torch"] },
    sizeBudgetMB: 9000,
    contextDir: `/nonexistent/${name}`,
    dockerfilePath: `/nonexistent/${name}/Dockerfile`,
  };
}

function pool(name: string): GpuPool {
  return {
    name,
    nodeSelector: { "workbench/pool": name },
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
    product: "NVIDIA-H200",
    driverVersion: "570.133.20",
    gpusPerNode: 1,
    maxConcurrentJobs: 1,
  };
}
const refOf = (variant: string) => `${REGISTRY}/${variant}@sha256:${Buffer.from(variant).toString("hex").padEnd(64, "0").slice(0, 64)}`;
const jobNameOf = (variant: string, p: string) => validationJobName(variant, p, refOf(variant).split("@")[1]!, CHECKS.hash, "570.133.20");

describe("the report's names and the reporter's Role", () => {
  it("names the ConfigMap and the reporter after the Job, and gives the Role nothing but `patch` on that one ConfigMap", () => {
    const job = "wbv-alpha-h100-0123456789";
    expect(reportConfigMapName(job)).toBe("wbr-alpha-h100-0123456789");
    expect(reporterName(job)).toBe("wbw-alpha-h100-0123456789");
    // The longest Job name (63) keeps its length: every name stays within the 63 characters object names get.
    const longest = `wbv-${"a".repeat(46)}-p-0123456789`;
    expect([longest.length, reportConfigMapName(longest).length, reporterName(longest).length]).toEqual([63, 63, 63]);
    expect(reporterRules("wbr-alpha-h100-0123456789")).toEqual([
      { apiGroups: [""], resources: ["configmaps"], resourceNames: ["wbr-alpha-h100-0123456789"], verbs: ["patch"] },
    ]);
  });

  it("shares its constants with gpu_check.py (one definition each side, compared here)", () => {
    const script = fs.readFileSync(path.join(CHECKS_DIR, "gpu_check.py"), "utf8");
    expect(script).toContain(`REPORT_KEY = "${REPORT_KEY}"`);
    expect(script).toContain(`REPORT_FIELD_MANAGER = "${REPORT_FIELD_MANAGER}"`);
    expect(script).toContain(`SERVICEACCOUNT_DIR = "${SERVICEACCOUNT_DIR}"`);
    // cosign takes a non-keyword --type verbatim only when Go's url.ParseRequestURI accepts it: absolute, no spaces.
    expect(GPU_VALIDATION_PREDICATE_TYPE).toMatch(/^https:\/\/[^\s]+$/);
    expect(() => new URL(GPU_VALIDATION_PREDICATE_TYPE)).not.toThrow();
  });
});

describe("reportFigures (what the `validation` stack output carries)", () => {
  it("a passing H200: min/median/max, fractions, sustained clocks, power and reasons, node and GPU identity", () => {
    expect(reportFigures(PASS_TEXT, { job: "wbv-a-h200-0123456789", pool: "h200" })).toEqual({
      job: "wbv-a-h200-0123456789",
      pool: "h200",
      report: "stored",
      reportSha256: sha(PASS_TEXT),
      verdict: "pass",
      summary: "PASS 13/13 checks (2 skipped) matmul=781.2TF/s (sustained 760.3) bw=4210GB/s (sustained 4188) 83.4s",
      mode: "gpu",
      durationSeconds: 83.41,
      node: "ip-10-0-1-23.ec2.internal",
      product: "NVIDIA-H200",
      driver: "570.124.06",
      torch: "2.8.0+cu128",
      gpus: [{ index: 0, name: "NVIDIA H200", uuid: "GPU-5d0b7c2e-1111-4a1b-9c3d-000000000001", serial: "1654123000001" }],
      matmul: {
        unit: "TFLOP/s",
        burst: { min: 781.2, median: 781.2, max: 781.2 },
        datasheet: 989.5,
        fraction: 0.789,
        required: 0.7,
        sustained: {
          seconds: 30.2,
          perGpu: { min: 760.3, median: 760.3, max: 760.3 },
          ratio: 0.973,
          smClockMHz: { min: 1755, median: 1755, max: 1755 },
          memClockMHz: { min: 3201, median: 3201, max: 3201 },
          powerW: { min: 698.4, median: 698.4, max: 698.4 },
          temperatureMaxC: 71,
          throttleReasons: ["sw_power_cap"],
          faultReasons: [],
        },
      },
      bandwidth: {
        unit: "GB/s",
        burst: { min: 4210, median: 4210, max: 4210 },
        datasheet: 4800,
        fraction: 0.877,
        required: 0.8,
        sustained: {
          seconds: 30.1,
          perGpu: { min: 4188, median: 4188, max: 4188 },
          ratio: 0.995,
          smClockMHz: { min: 1980, median: 1980, max: 1980 },
          memClockMHz: { min: 3201, median: 3201, max: 3201 },
          powerW: { min: 512.6, median: 512.6, max: 512.6 },
          temperatureMaxC: 68,
          throttleReasons: [],
          faultReasons: [],
        },
      },
      nccl: { worldSize: 1 },
    });
  });

  it("a 2-GPU node whose GPU 1 throttles for heat: spreads over both GPUs, the hot GPU's reasons, verdict node", () => {
    const f = reportFigures(NODE_TEXT, { job: "j", pool: "p" });
    expect(f.verdict).toBe("node");
    expect(f.gpus?.map((g) => g.uuid)).toEqual(["GPU-5d0b7c2e-1111-4a1b-9c3d-000000000001", "GPU-5d0b7c2e-1111-4a1b-9c3d-000000000002"]);
    expect(f.matmul?.sustained).toMatchObject({
      smClockMHz: { min: 1410, median: 1695, max: 1980 },
      powerW: { min: 652, median: 671, max: 690 },
      temperatureMaxC: 91,
      throttleReasons: ["sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown"],
      faultReasons: ["hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown"],
    });
    expect(f.nccl).toEqual({ worldSize: 2, busBwGBps: 134.2, algBwGBps: 134.2 });
    expect(f.summary).toMatch(/^NODE matmul_throughput: NVML GPU 1 throttled/);
  });

  it("says when there is no report or not a v2 report, and never throws (outputs are computed on every run)", () => {
    expect(reportFigures(undefined, { job: "j", pool: "p" })).toEqual({ job: "j", pool: "p", report: "missing" });
    expect(reportFigures("  ", { job: "j", pool: "p" })).toEqual({ job: "j", pool: "p", report: "missing" });
    expect(reportFigures("{not json", { job: "j", pool: "p" })).toEqual({ job: "j", pool: "p", report: "invalid", reportSha256: sha("{not json") });
    expect(reportFigures('{"version": 1, "checks": []}', { job: "j", pool: "p" }).report).toBe("invalid");
  });

  it("a cpu-mode report: no product, no measurements (their checks are skipped)", () => {
    const cpu = JSON.parse(PASS_TEXT) as { mode: string; checks: Array<{ name: string; status: string }> };
    cpu.mode = "cpu";
    for (const c of cpu.checks) if (["matmul_throughput", "memory_bandwidth", "nccl"].includes(c.name)) c.status = "skip";
    const f = reportFigures(JSON.stringify(cpu), { job: "j", pool: "cpu" });
    expect(f.mode).toBe("cpu");
    expect(Object.keys(f)).not.toContain("product");
    expect(Object.keys(f)).not.toContain("matmul");
    expect(Object.keys(f)).not.toContain("bandwidth");
    expect(Object.keys(f)).not.toContain("nccl");
  });

  it("spread: min, median (mean of the middle two for an even count), max", () => {
    expect(spread([])).toBeUndefined();
    expect(spread([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3 });
    expect(spread([4, 1, 3, 2])).toEqual({ min: 1, median: 2.5, max: 4 });
  });
});

describe("validationPredicate (the attestation's content)", () => {
  it("holds every pool's report verbatim (its very bytes) with its hash, sorted by pool, and names pools without a report", () => {
    const { text, missing } = validationPredicate("alpha", CHECKS.hash, [
      { pool: "l4", job: "wbv-alpha-l4-1", namespace: NS, report: "" },
      { pool: "h200", job: "wbv-alpha-h200-2", namespace: NS, report: PASS_TEXT },
    ]);
    expect(missing).toEqual(["l4"]);
    expect(JSON.parse(text)).toEqual({
      image: "alpha",
      checksSha256: CHECKS.hash,
      validations: [
        { pool: "h200", job: "wbv-alpha-h200-2", namespace: NS, reportSha256: sha(PASS_TEXT), report: JSON.parse(PASS_TEXT) },
        { pool: "l4", job: "wbv-alpha-l4-1", namespace: NS, reportSha256: sha(""), report: null },
      ],
    });
    expect(text).toContain(`"report":${PASS_TEXT.trim()}}`);
  });

  it("keeps a 63-bit seed exact, which parsing into a JavaScript number would round", () => {
    const report = '{"version":2,"checks":[{"name":"matmul_correctness","seed":1962535664006334314}]}';
    const { text, missing } = validationPredicate("alpha", CHECKS.hash, [{ pool: "h200", job: "j", namespace: NS, report }]);
    expect(missing).toEqual([]);
    expect(text).toContain('"seed":1962535664006334314');
    expect(text).toContain(`"reportSha256":"${sha(report)}"`);
  });

  it("names a report that is JSON but not an object as missing", () => {
    expect(validationPredicate("alpha", CHECKS.hash, [{ pool: "h200", job: "j", namespace: NS, report: "[1]" }]).missing).toEqual(["h200"]);
  });
});

describe("reportAttestCommand", () => {
  it("attests the predicate file with the KMS key under the custom predicate type, replacing the last one", () => {
    expect(reportAttestCommand({ ref: REF, keyRef: KEY, predicate: ".attestations/dev/sha256-ab.gpu-validation.json", tlogUpload: false })).toBe(
      // The URI is quoted: '#' starts a comment where a shell word starts; lib/shell.ts quotes whatever is not plain.
      `${registryAuthSetup(REF)} && cosign attest --yes --key ${KEY} --type '${GPU_VALIDATION_PREDICATE_TYPE}' ` +
        `--predicate .attestations/dev/sha256-ab.gpu-validation.json --replace --tlog-upload=false ${REF}`,
    );
    const guarded = reportAttestCommand({ ref: REF, keyRef: KEY, predicate: "p.json", tlogUpload: true, registryAuth: false, cosignVersion: "v2.5.3" });
    expect(guarded).toMatch(/^\{ cosign version --json .* && cosign attest --yes /);
    expect(guarded).not.toContain("DOCKER_CONFIG");
    expect(guarded).toContain("--tlog-upload=true");
    expect(reportVerifyCommand(REF, "cosign.pub", false)).toBe(
      `cosign verify-attestation --key cosign.pub --type '${GPU_VALIDATION_PREDICATE_TYPE}' --insecure-ignore-tlog=true ${REF}`,
    );
  });

  it("refuses a tag, a key reference without a region and an empty predicate path", () => {
    expect(() => reportAttestCommand({ ref: `${REGISTRY}/alpha:latest`, keyRef: KEY, predicate: "p", tlogUpload: false })).toThrow(/digest/);
    expect(() => reportAttestCommand({ ref: REF, keyRef: "awskms:///alias/x", predicate: "p", tlogUpload: false })).toThrow(
      /args.signing.keyRef must be a KMS key ARN reference .* got "awskms:\/\/\/alias\/x"/,
    );
    expect(() => reportAttestCommand({ ref: REF, keyRef: KEY, predicate: " ", tlogUpload: false })).toThrow(/predicate/);
  });
});

describe("the Job's pod with a report ConfigMap", () => {
  const input: ValidationJobInput = {
    variant: { name: "alpha", cuda: "12.8", ships: { flashAttn: false }, smoke: { command: ["true"], imports: [] }, sizeBudgetMB: 9000 },
    target: { mode: "gpu", pool: pool("h200") },
    imageRef: REF,
    namespace: NS,
    checksConfigMap: "workbench-checks-0123456789",
    checksHash: CHECKS.hash,
    validation,
    report: { configMap: "wbv-x-report", serviceAccount: "wbv-x-reporter" },
  };

  it("runs as the reporter with its token mounted, passes --report-configmap namespace/name, and stays restricted", () => {
    const job = validationJob(input);
    const pod = (job.spec.template as unknown as { spec: Record<string, any> }).spec;
    expect(pod["serviceAccountName"]).toBe("wbv-x-reporter");
    expect(pod["automountServiceAccountToken"]).toBe(true);
    const cmd = pod["containers"][0].command as string[];
    expect(cmd.slice(-4)).toEqual(["--termination-log", "/dev/termination-log", "--report-configmap", `${NS}/wbv-x-report`]);
    // Pod Security "restricted" (Kubernetes Pod Security Standards): nothing about service account tokens; the rest holds.
    expect(pod["securityContext"]).toEqual({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod["containers"][0].securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    // Failure semantics unchanged: exit 4 is one more failed pod, counted against backoffLimit.
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.podFailurePolicy).toEqual({ rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] }] });
  });

  it("without one, the pod has no token and no service account, exactly as before", () => {
    const { report: _r, ...plain } = input;
    const pod = (validationJob(plain).spec.template as unknown as { spec: Record<string, unknown> }).spec;
    expect(pod["automountServiceAccountToken"]).toBe(false);
    expect(Object.keys(pod)).not.toContain("serviceAccountName");
    expect(checkCommand(input.variant, input.target, validation)).not.toContain("--report-configmap");
  });

  it("the real gpu_check.py parses --report-configmap to the intended value", () => {
    const cmd = checkCommand(input.variant, input.target, validation, `${NS}/wbv-x-report`);
    const argv = cmd.slice(cmd.indexOf("--mode"));
    const probe = spawnSync(
      "/usr/bin/python3",
      ["-c", "import json, sys; sys.path.insert(0, sys.argv[1]); import gpu_check as g; a = g.parse_args(sys.argv[2:]); print(json.dumps([g.option(a, 'report_configmap'), g.option(a, 'serviceaccount_dir')]))", CHECKS_DIR, ...argv],
      { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } },
    );
    expect(probe.stderr).toBe("");
    expect(JSON.parse(probe.stdout)).toEqual([`${NS}/wbv-x-report`, SERVICEACCOUNT_DIR]);
  });
});

const JOB = "kubernetes:batch/v1:Job";
function named(plan: Plan, name: string): PlannedResource {
  const found = plan.resources.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}: ${plan.resources.map((r) => r.name).join(", ")}`);
  return found[0]!;
}

function suiteProgram(attestation: boolean, consumers: string[] = []) {
  return () => {
    const targets: GpuValidationImage[] = ["alpha"].map((name) => {
      const gate = new command.local.Command(`gate-${name}`, { create: `echo ${name}` });
      return { variant: gpuVariant(name), pools: [pool("h200"), pool("l4")], imageRef: gate.id.apply(() => refOf(name)) };
    });
    const suite = new GpuValidationSuite("gpu-validation", {
      validation,
      checksDir: CHECKS_DIR,
      targets,
      ...(attestation
        ? {
            attestation: {
              outputDir: ".attestations/dev",
              signing: { keyRef: KEY, tlogUpload: false, cosignVersion: "v2.5.3" },
              credentials: { username: "AWS", password: pulumi.secret("token") },
            },
          }
        : {}),
    });
    for (const name of consumers) new command.local.Command(`consumer-${name}`, { create: pulumi.interpolate`echo ${suite.validatedRefs[name]!}` });
    return { validatedRefs: suite.validatedRefs, figures: suite.figures };
  };
}

describe("GpuValidation's report resources under Pulumi's mocks (plan-runtime: nothing is read from a cluster)", () => {
  it("creates an empty ConfigMap, a service account, a Role and a RoleBinding per Job, named after it", async () => {
    const p = await runPlan({ project: "workbench-images", stack: "test", config: {}, secretKeys: [], program: suiteProgram(false) });
    const job = jobNameOf("alpha", "h200");
    const labels = { "app.kubernetes.io/name": "workbench-validation", "workbench-images/pool": "h200", "workbench-images/variant": "alpha" };
    const base = "gpu-validation-alpha-h200";
    expect(named(p, `${base}-report`).inputs).toEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        annotations: { "workbench-images/report": 'written by the Job\'s gpu_check.py --report-configmap as data["report.json"]' },
        labels,
        name: `wbr-${job.slice(4)}`,
        namespace: NS,
      },
    });
    expect(named(p, `${base}-reporter`).inputs).toEqual({
      apiVersion: "v1",
      kind: "ServiceAccount",
      automountServiceAccountToken: false,
      metadata: { labels, name: `wbw-${job.slice(4)}`, namespace: NS },
    });
    expect(named(p, `${base}-reporter-role`).inputs).toEqual({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { labels, name: `wbw-${job.slice(4)}`, namespace: NS },
      rules: [{ apiGroups: [""], resourceNames: [`wbr-${job.slice(4)}`], resources: ["configmaps"], verbs: ["patch"] }],
    });
    expect(named(p, `${base}-reporter-binding`).inputs).toEqual({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { labels, name: `wbw-${job.slice(4)}`, namespace: NS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `wbw-${job.slice(4)}` },
      subjects: [{ kind: "ServiceAccount", name: `wbw-${job.slice(4)}`, namespace: NS }],
    });
    // The Job runs as the reporter, after the binding exists, and writes to its own ConfigMap.
    const jobRes = named(p, `${base}-job`);
    expect(jobRes.type).toBe(JOB);
    expect(jobRes.dependencies).toEqual(
      expect.arrayContaining([named(p, `${base}-report`).urn, named(p, `${base}-reporter`).urn, named(p, `${base}-reporter-binding`).urn]),
    );
    const pod = (jobRes.inputs as any).spec.template.spec;
    expect(pod.serviceAccountName).toBe(`wbw-${job.slice(4)}`);
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.containers[0].command.slice(-2)).toEqual(["--report-configmap", `${NS}/wbr-${job.slice(4)}`]);
    // The other pool's Role names only its own ConfigMap.
    expect((named(p, "gpu-validation-alpha-l4-reporter-role").inputs as any).rules[0].resourceNames).toEqual([`wbr-${jobNameOf("alpha", "l4").slice(4)}`]);
  });

  it("publishes a `missing` report under mocks, and the attestation command would fail, naming the pools", async () => {
    const p = await runPlan({ project: "workbench-images", stack: "test", config: {}, secretKeys: [], program: suiteProgram(true, ["alpha"]) });
    expect(p.outputs["figures"]).toEqual({
      alpha: {
        h200: { job: jobNameOf("alpha", "h200"), pool: "h200", report: "missing" },
        l4: { job: jobNameOf("alpha", "l4"), pool: "l4", report: "missing" },
      },
    });
    const attest = named(p, "gpu-validation-alpha-reports-attest");
    expect((attest.inputs as { create: string }).create).toBe(
      "echo 'GPU validation report missing or not JSON for pool(s) h200, l4 of alpha: its Job passed, but its report ConfigMap " +
        "(wbr-…, in the validation namespace) holds no report.json. Run the check again: pulumi up --replace <URN of its Job>.' >&2; exit 1",
    );
    // What consumes validatedRefs (the hub, release tags, the promotable outputs) waits for the attestation.
    expect(named(p, "consumer-alpha").dependencies).toContain(attest.urn);
    expect(named(p, "gpu-validation-alpha-reports").type).toBe("workbench:validation:ReportAttestation");
  });
});

/** Our own mocks: like plan-runtime's, but the read-back of a `<job>-report` ConfigMap finds the given reports. */
async function runWithReports(reports: Record<string, string>, program: () => unknown) {
  const created: Array<{ type: string; name: string; id?: string; inputs: Record<string, any> }> = [];
  pulumi.runtime.setAllConfig({}, []);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        created.push({ type: args.type, name: args.name, ...(args.id ? { id: args.id } : {}), inputs: args.inputs });
        if (args.type === "kubernetes:core/v1:ConfigMap" && args.id) {
          const [ns, name] = args.id.split("/");
          const pool = Object.keys(reports).find((p) => name === `wbr-${jobNameOf("alpha", p).slice(4)}`);
          return { id: args.id, state: { metadata: { name, namespace: ns }, ...(pool ? { data: { [REPORT_KEY]: reports[pool] } } : {}) } };
        }
        const state = args.type.startsWith("kubernetes:") ? { ...args.inputs, metadata: { ...args.inputs.metadata } } : { ...args.inputs, stdout: "", stderr: "" };
        return { id: args.custom === false ? undefined : `${args.name}-id`, state } as pulumi.runtime.MockResourceResult;
      },
      call: (args) => args.inputs,
    },
    "workbench-images",
    "test",
    false,
  );
  const result = program() as Record<string, pulumi.Output<unknown>>;
  await (pulumi.runtime as any).waitForRPCs();
  const outputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(result)) {
    outputs[k] = await new Promise<unknown>((done) => {
      (pulumi.output(v as any) as pulumi.Output<unknown>).apply((x: unknown) => done(x));
    });
  }
  await (pulumi.runtime as any).waitForRPCs();
  return { created, outputs };
}

describe("with the reports read back (our mocks answer the read with stored reports)", () => {
  it("reads each Job's own ConfigMap by namespace/name, publishes the figures and attests one predicate for both pools", async () => {
    const { created, outputs } = await runWithReports({ h200: PASS_TEXT, l4: NODE_TEXT }, suiteProgram(true, ["alpha"]));
    const reads = created.filter((c) => c.id !== undefined).map((c) => [c.name, c.id]);
    expect(reads).toEqual(
      expect.arrayContaining([
        ["gpu-validation-alpha-h200-report-readback", `${NS}/wbr-${jobNameOf("alpha", "h200").slice(4)}`],
        ["gpu-validation-alpha-l4-report-readback", `${NS}/wbr-${jobNameOf("alpha", "l4").slice(4)}`],
      ]),
    );
    const figures = outputs["figures"] as Record<string, Record<string, { report: string; verdict: string; reportSha256: string }>>;
    expect(figures["alpha"]!["h200"]).toEqual(reportFigures(PASS_TEXT, { job: jobNameOf("alpha", "h200"), pool: "h200" }));
    expect(figures["alpha"]!["l4"]!.verdict).toBe("node");

    const attest = created.find((c) => c.name === "gpu-validation-alpha-reports-attest")!;
    const file = `.attestations/dev/sha256-${refOf("alpha").split("@sha256:")[1]}.gpu-validation.json`;
    expect(attest.type).toBe("command:local:Command");
    expect(attest.inputs["create"]).toBe(
      `mkdir -p .attestations/dev && cat > ${file} && ` +
        reportAttestCommand({ ref: refOf("alpha"), keyRef: KEY, predicate: file, tlogUpload: false, cosignVersion: "v2.5.3" }),
    );
    expect(attest.inputs["stdin"]).toBe(
      validationPredicate("alpha", CHECKS.hash, [
        { pool: "h200", job: jobNameOf("alpha", "h200"), namespace: NS, report: PASS_TEXT },
        { pool: "l4", job: jobNameOf("alpha", "l4"), namespace: NS, report: NODE_TEXT },
      ]).text,
    );
    const predicate = JSON.parse(attest.inputs["stdin"]);
    expect(predicate.validations.map((v: { pool: string }) => v.pool)).toEqual(["h200", "l4"]);
    // The output's hash and the attested report's hash are the same bytes.
    expect(predicate.validations[0].reportSha256).toBe(figures["alpha"]!["h200"]!.reportSha256);
    // The password is a secret, so the whole environment travels as one (Pulumi's secret signature, then the value).
    expect(attest.inputs["environment"]).toEqual({
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
      value: { AWS_REGION: "eu-west-1", REGISTRY_USERNAME: "AWS", REGISTRY_PASSWORD: "token" },
    });
    expect(attest.inputs["update"]).toBe("true");
    expect(attest.inputs["triggers"]).toEqual([`sha256:${refOf("alpha").split("@sha256:")[1]}`, attest.inputs["create"], sha(attest.inputs["stdin"])]);
    // validatedRefs wait for the attestation: the consumer's command resolves only after it.
    expect(outputs["validatedRefs"]).toEqual({ alpha: refOf("alpha") });
  });

  it("without signing only writes the predicate file (local stack)", async () => {
    const program = () => {
      const suite = new GpuValidationSuite("gpu-validation", {
        validation: { ...validation, mode: "cpu" },
        checksDir: CHECKS_DIR,
        targets: [{ variant: gpuVariant("alpha"), pools: [], imageRef: refOf("alpha") }],
        attestation: { outputDir: ".attestations/local" },
      });
      return { figures: suite.figures };
    };
    const cpuJob = validationJobName("alpha", "cpu", refOf("alpha").split("@")[1]!, CHECKS.hash);
    const created: Array<{ name: string; inputs: Record<string, any> }> = [];
    pulumi.runtime.setAllConfig({}, []);
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          created.push({ name: args.name, inputs: args.inputs });
          if (args.type === "kubernetes:core/v1:ConfigMap" && args.id === `${NS}/wbr-${cpuJob.slice(4)}`) {
            return { id: args.id, state: { data: { [REPORT_KEY]: PASS_TEXT } } };
          }
          return { id: args.custom === false ? undefined : `${args.name}-id`, state: args.inputs } as pulumi.runtime.MockResourceResult;
        },
        call: (args) => args.inputs,
      },
      "workbench-images",
      "test",
      false,
    );
    program();
    await (pulumi.runtime as any).waitForRPCs();
    const attest = created.find((c) => c.name === "gpu-validation-alpha-reports-attest")!;
    const file = `.attestations/local/sha256-${refOf("alpha").split("@sha256:")[1]}.gpu-validation.json`;
    expect(attest.inputs["create"]).toBe(`mkdir -p .attestations/local && cat > ${file}`);
    expect(Object.keys(attest.inputs)).not.toContain("environment");
  });
});
