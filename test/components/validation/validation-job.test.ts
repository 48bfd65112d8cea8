/**
 * The validation Job as plain data (components/validation/validation-job.ts): exact objects, names, the Kubernetes schema, and the
 * command line against the real images/checks/gpu_check.py argparse (run by Debian's /usr/bin/python3). The cpu-mode
 * run a local stack's Job makes, on that python's CPU torch: validation-job.real.test.ts.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Job } from "kubernetes-models/batch/v1/Job";
import { describe, expect, it } from "vitest";
import {
  checkCommand,
  checksConfigMapName,
  jobCreateTimeout,
  laneOrder,
  loadCheckFiles,
  type ValidationJobInput,
  type ValidationPool,
  type ValidationVariant,
  validationJob,
  validationJobName,
} from "../../../components/validation/validation-job";
import { PROJECT_ROOT } from "../../../lib/paths";
import { strictValidator } from "../../support/upstream";

const CHECKS_DIR = path.resolve(PROJECT_ROOT, "images", "checks");
const PYTHON = "/usr/bin/python3";
const DIGEST = `sha256:${"a".repeat(64)}`;
const REF = `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/jupyter-ml-gpu@${DIGEST}`;
const CHECKS_HASH = "b".repeat(64);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const variant: ValidationVariant = {
  name: "jupyter-ml-gpu",
  cuda: "12.8",
  ships: { flashAttn: true },
  smoke: { command: ["python", "-c", "import torch"], imports: ["torch", "transformers"] },
  sizeBudgetMB: 12000,
};
const pool: ValidationPool = {
  name: "h100",
  nodeSelector: { "node.kubernetes.io/instance-type": "p5.48xlarge" },
  tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
  product: "NVIDIA-H100-80GB-HBM3",
  gpusPerNode: 8,
  driverVersion: "570.133.20",
};
const validation = { matmulFraction: 0.7, bandwidthFraction: 0.8, deadlineSeconds: 900, pullMBps: 25, backoffLimit: 0, shmSize: "8Gi" };

function input(overrides: Partial<ValidationJobInput> = {}): ValidationJobInput {
  return {
    variant,
    target: { mode: "gpu", pool },
    imageRef: REF,
    namespace: "workbench-validation",
    checksConfigMap: "workbench-checks-bbbbbbbbbb",
    checksHash: CHECKS_HASH,
    validation,
    ...overrides,
  };
}

/** The pod spec of a generated Job, as the plain data it is (its type is @pulumi/kubernetes' Input-wrapped one). */
function podSpec(job: ReturnType<typeof validationJob>): Record<string, unknown> & {
  containers: Array<{ image: string }>;
  tolerations?: unknown[];
} {
  return (job.spec.template as unknown as { spec: ReturnType<typeof podSpec> }).spec;
}

const SECURITY = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  runAsNonRoot: true,
  seccompProfile: { type: "RuntimeDefault" },
};
const POD_FAILURE_POLICY = { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] }] };
const VOLUME_MOUNTS = [
  { name: "checks", mountPath: "/opt/workbench-checks", readOnly: true },
  { name: "dshm", mountPath: "/dev/shm" },
];
const VOLUMES = [
  { name: "checks", configMap: { name: "workbench-checks-bbbbbbbbbb", defaultMode: 0o444 } },
  { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "8Gi" } },
];

describe("validationJob", () => {
  it("builds the exact Job for a GPU variant on a pool", () => {
    const labels = {
      "app.kubernetes.io/name": "workbench-validation",
      "workbench-images/variant": "jupyter-ml-gpu",
      "workbench-images/pool": "h100",
    };
    expect(validationJob(input())).toEqual({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: {
        name: "wbv-jupyter-ml-gpu-h100-6f308f039e",
        namespace: "workbench-validation",
        labels,
        annotations: { "pulumi.com/replaceUnready": "true" },
      },
      spec: {
        backoffLimit: 0,
        // 120 s pod start + 12,000 MB at 25 MB/s (480 s) + the check's 900 s + 30 s kill grace.
        activeDeadlineSeconds: 1530,
        podFailurePolicy: POD_FAILURE_POLICY,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
            nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "node.kubernetes.io/instance-type": "p5.48xlarge" },
            tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
            containers: [
              {
                name: "check",
                image: REF,
                imagePullPolicy: "IfNotPresent",
                command: [
                  "timeout", "--kill-after=30s", "900s",
                  "python3", "/opt/workbench-checks/gpu_check.py",
                  "--mode", "gpu",
                  "--expect-cuda", "12.8",
                  "--expect-gpus", "8",
                  "--expect-product", "NVIDIA-H100-80GB-HBM3",
                  "--min-driver", "570.26",
                  "--matmul-fraction", "0.7",
                  "--bandwidth-fraction", "0.8",
                  "--flash-attn", "required",
                  "--smoke-imports", "torch,transformers",
                  "--termination-log", "/dev/termination-log",
                ],
                env: [
                  { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
                  { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                  { name: "NVIDIA_DRIVER_CAPABILITIES", value: "compute,utility" },
                ],
                resources: {
                  requests: { cpu: "2", memory: "8Gi", "nvidia.com/gpu": "8" },
                  limits: { "nvidia.com/gpu": "8" },
                },
                securityContext: SECURITY,
                terminationMessagePath: "/dev/termination-log",
                terminationMessagePolicy: "FallbackToLogsOnError",
                volumeMounts: VOLUME_MOUNTS,
              },
            ],
            volumes: VOLUMES,
          },
        },
      },
    });
  });

  it("builds the exact cpu-mode Job: no GPU limits, selector or tolerations, pool 'cpu'", () => {
    const noFlash: ValidationVariant = { ...variant, ships: { flashAttn: false }, smoke: { command: ["python"], imports: [] } };
    const labels = {
      "app.kubernetes.io/name": "workbench-validation",
      "workbench-images/variant": "jupyter-ml-gpu",
      "workbench-images/pool": "cpu",
    };
    const job = validationJob(input({ variant: noFlash, target: { mode: "cpu" } }));
    expect(job).toEqual({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: {
        name: "wbv-jupyter-ml-gpu-cpu-7e0f326f13",
        namespace: "workbench-validation",
        labels,
        annotations: { "pulumi.com/replaceUnready": "true" },
      },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: 1530,
        podFailurePolicy: POD_FAILURE_POLICY,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
            containers: [
              {
                name: "check",
                image: REF,
                imagePullPolicy: "IfNotPresent",
                command: [
                  "timeout", "--kill-after=30s", "900s",
                  "python3", "/opt/workbench-checks/gpu_check.py",
                  "--mode", "cpu",
                  "--expect-cuda", "12.8",
                  "--expect-gpus", "1",
                  "--expect-product", "NVIDIA-H100-80GB-HBM3",
                  "--min-driver", "570.26",
                  "--matmul-fraction", "0.7",
                  "--bandwidth-fraction", "0.8",
                  "--flash-attn", "absent",
                  "--termination-log", "/dev/termination-log",
                ],
                env: [
                  { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
                  { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                ],
                resources: { requests: { cpu: "1", memory: "2Gi" } },
                securityContext: SECURITY,
                terminationMessagePath: "/dev/termination-log",
                terminationMessagePolicy: "FallbackToLogsOnError",
                volumeMounts: VOLUME_MOUNTS,
              },
            ],
            volumes: VOLUMES,
          },
        },
      },
    });
    expect(Object.keys(podSpec(job))).not.toContain("nodeSelector");
    expect(Object.keys(podSpec(job))).not.toContain("tolerations");
  });

  // Upstream oracle: Kubernetes 1.32's own Job schema, strict (unknown fields rejected), from ../shared/upstream.
  const STRICT_JOB = path.resolve(PROJECT_ROOT, "..", "shared", "upstream", "kubernetes-1.32.2-strict", "job-batch-v1.json");
  it.skipIf(!fs.existsSync(STRICT_JOB))(
    `passes Kubernetes 1.32's strict Job schema, GPU and cpu mode (skipped without ${STRICT_JOB})`,
    () => {
      const validate = strictValidator("batch/v1", "Job"); // STRICT_JOB, compiled once per worker
      for (const job of [validationJob(input()), validationJob(input({ target: { mode: "cpu" } }))]) {
        expect(validate(JSON.parse(JSON.stringify(job))) ? [] : validate.errors).toEqual([]);
      }
      // The schema is strict: a field Kubernetes does not have is refused, so the check above can fail.
      const wrong = JSON.parse(JSON.stringify(validationJob(input()))) as { spec: Record<string, unknown> };
      wrong.spec["deadlineSeconds"] = 1;
      expect(validate(wrong)).toBe(false);
    },
  );

  it("never sets ttlSecondsAfterFinished, runAsUser or privileged", () => {
    for (const job of [validationJob(input()), validationJob(input({ target: { mode: "cpu" } }))]) {
      const text = JSON.stringify(job);
      expect(Object.keys(job.spec)).not.toContain("ttlSecondsAfterFinished");
      expect(text).not.toContain("runAsUser");
      expect(text).not.toContain("privileged");
    }
  });

  it("pins the image by digest and drops a tag written beside it", () => {
    const job = validationJob(input({ imageRef: `registry.example.com/wb/x:build-1@${DIGEST}` }));
    expect(podSpec(job).containers[0]!.image).toBe(`registry.example.com/wb/x@${DIGEST}`);
  });

  it("refuses an image reference without a digest, naming it and the fix", () => {
    expect(() => validationJob(input({ imageRef: "registry.example.com/wb/x:latest" }))).toThrow(
      'validation image "registry.example.com/wb/x:latest" is not pinned by digest. GPU validation runs only ' +
        "repository@sha256:… references (the scanned and signed image): pass the image's imageRef output, not a tag.",
    );
  });

  it("copies a toleration's value and leaves absent fields absent", () => {
    const tainted: ValidationPool = { ...pool, tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu" }] };
    const job = validationJob(input({ target: { mode: "gpu", pool: tainted } }));
    expect(podSpec(job).tolerations).toEqual([{ key: "dedicated", operator: "Equal", value: "gpu" }]);
  });

  it("produces Jobs that validate against the Kubernetes OpenAPI schema", () => {
    const long: ValidationVariant = { ...variant, name: `${"x".repeat(70)}.cuda_12` };
    const longPool: ValidationPool = { ...pool, name: "p".repeat(63), tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoExecute" }] };
    const jobs = [
      validationJob(input()),
      validationJob(input({ target: { mode: "cpu" } })),
      validationJob(input({ variant: long, target: { mode: "gpu", pool: longPool } })),
    ];
    for (const job of jobs) expect(() => new Job(job as never).validate()).not.toThrow();
    // The schema check itself bites: a missing required field is caught.
    const broken = JSON.parse(JSON.stringify(jobs[0])) as { spec: { template: { spec: { containers: Array<{ name?: string }> } } } };
    delete broken.spec.template.spec.containers[0]!.name;
    expect(() => new Job(broken as never).validate()).toThrow(/name/);
  });
});

describe("validationJobName", () => {
  it("keeps a long variant and pool within 63 characters, cutting the names and never the hash", () => {
    const name = validationJobName("a".repeat(60), "p".repeat(63), DIGEST, CHECKS_HASH);
    expect(name).toBe(`wbv-${"a".repeat(23)}-${"p".repeat(24)}-bd21327df9`);
    expect(name).toHaveLength(63);
    expect(name).toMatch(DNS_LABEL);
  });

  it("stays unique for two pools whose names share a long prefix", () => {
    const prefix = "gpu-pool-h100-eu-west-1-availability-zone-";
    const a = validationJobName("jupyter-ml-gpu", `${prefix}a`, DIGEST, CHECKS_HASH);
    const b = validationJobName("jupyter-ml-gpu", `${prefix}b`, DIGEST, CHECKS_HASH);
    expect(a.slice(0, -11)).toBe(b.slice(0, -11));
    expect(a).not.toBe(b);
    for (const n of [a, b]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(DNS_LABEL);
    }
  });

  it("sanitizes variant characters that are not allowed in a DNS label, without a trailing '-' after a cut", () => {
    expect(validationJobName("ml.stack_gpu", "h100", DIGEST, CHECKS_HASH)).toMatch(/^wbv-ml-stack-gpu-h100-[0-9a-f]{10}$/);
    const cut = validationJobName(`${"a".repeat(45)}-bbbb`, "p", DIGEST, CHECKS_HASH);
    expect(cut).toMatch(/^wbv-a{45}-p-[0-9a-f]{10}$/);
  });

  it("budgets a longer pod start for pools that scale from zero (validation.podStartSeconds)", () => {
    // 600 s start + 12,000 MB at 25 MB/s (480 s) + the check's 900 s + 30 s grace.
    expect(validationJob(input({ validation: { ...validation, podStartSeconds: 600 } })).spec.activeDeadlineSeconds).toBe(2010);
    expect(jobCreateTimeout(2010)).toBe("2310s");
  });

  it("changes when the digest, the checks hash or the pool's driver changes, and not otherwise", () => {
    const base = validationJob(input()).metadata.name;
    expect(validationJob(input()).metadata.name).toBe(base);
    // A driver upgrade on the pool re-validates every image on it (issue #11).
    expect(validationJob(input({ target: { mode: "gpu", pool: { ...pool, driverVersion: "575.51.03" } } })).metadata.name).not.toBe(base);
    expect(validationJob(input({ imageRef: REF.replace(/a{64}$/, "c".repeat(64)) })).metadata.name).not.toBe(base);
    expect(validationJob(input({ checksHash: "d".repeat(64) })).metadata.name).not.toBe(base);
    // Thresholds, deadline, namespace and the ConfigMap name are not part of the name (a changed threshold
    // replaces the Job under the same name).
    expect(
      validationJob(
        input({
          validation: { ...validation, matmulFraction: 0.5, deadlineSeconds: 600, backoffLimit: 0 },
          namespace: "other",
          checksConfigMap: "other",
        }),
      ).metadata.name,
    ).toBe(base);
    // The repository is not part of the content: the same digest promoted to another registry keeps the name.
    expect(validationJob(input({ imageRef: `123456789012.dkr.ecr.us-east-1.amazonaws.com/prod/x@${DIGEST}` })).metadata.name).toBe(base);
  });
});

describe("checkCommand", () => {
  it("leaves out --smoke-imports when there is nothing to import (an empty value is a usage error)", () => {
    const cmd = checkCommand({ ...variant, smoke: { command: ["true"], imports: [] } }, { mode: "gpu", pool }, validation);
    expect(cmd).not.toContain("--smoke-imports");
  });

  it("uses the pool's own thresholds over the stack-wide ones, and the real gpu_check.py reads them", () => {
    const strict = { ...pool, thresholds: { matmulFraction: 0.78, sustainedRatio: 0.9, busbwFraction: 0.5, sustainSeconds: 45 } };
    const cmd = checkCommand(variant, { mode: "gpu", pool: strict }, { ...validation, sustainedRatio: 0.8 });
    expect(cmd.slice(cmd.indexOf("--matmul-fraction"), cmd.indexOf("--flash-attn"))).toEqual([
      "--matmul-fraction", "0.78",
      "--bandwidth-fraction", "0.8",
      "--sustained-ratio", "0.9",
      "--busbw-fraction", "0.5",
      "--sustain-seconds", "45",
    ]);
    // Stack-wide values apply where the pool sets none; unset everywhere, the flag is left to the check's default.
    const stackWide = checkCommand(variant, { mode: "gpu", pool }, { ...validation, sustainedRatio: 0.8 });
    expect(stackWide.slice(stackWide.indexOf("--matmul-fraction"), stackWide.indexOf("--flash-attn"))).toEqual([
      "--matmul-fraction", "0.7",
      "--bandwidth-fraction", "0.8",
      "--sustained-ratio", "0.8",
    ]);
    const code = [
      "import json, sys",
      `sys.path.insert(0, ${JSON.stringify(CHECKS_DIR)})`,
      "import gpu_check",
      "a = gpu_check.parse_args(json.loads(sys.argv[1]))",
      "print(json.dumps([a.matmul_fraction, a.bandwidth_fraction, a.sustained_ratio, a.busbw_fraction, a.sustain_seconds]))",
    ].join("\n");
    const r = spawnSync(PYTHON, ["-c", code, JSON.stringify(cmd.slice(5))], { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual([0.78, 0.8, 0.9, 0.5, 45]);
  });

  it("refuses a variant without cuda, naming it and the fix", () => {
    const { cuda: _c, ...noCuda } = variant;
    expect(() => checkCommand(noCuda, { mode: "gpu", pool }, validation)).toThrow(
      'variant "jupyter-ml-gpu" has no cuda version, so it cannot be GPU-validated. Set cuda (e.g. "12.8") in the ' +
        "catalog, or leave the variant out of GPU validation (gpu: false).",
    );
  });

  it("gpu mode: every flag parses in the real gpu_check.py to the intended value", () => {
    const cmd = checkCommand(variant, { mode: "gpu", pool }, validation);
    expect(cmd.slice(0, 5)).toEqual(["timeout", "--kill-after=30s", "900s", "python3", "/opt/workbench-checks/gpu_check.py"]);
    const argv = cmd.slice(5);
    const code = [
      "import json, sys",
      `sys.path.insert(0, ${JSON.stringify(CHECKS_DIR)})`,
      "import gpu_check",
      "a = gpu_check.parse_args(json.loads(sys.argv[1]))",
      "gpu_check.load_datasheet(a.datasheets, a.expect_product)",
      "print(json.dumps({k: v for k, v in vars(a).items() if k != 'datasheets'}, sort_keys=True))",
    ].join("\n");
    const r = spawnSync(PYTHON, ["-c", code, JSON.stringify(argv)], { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      bandwidth_bytes: 1073741824,
      bandwidth_fraction: 0.8,
      expect_cuda: "12.8",
      expect_gpus: 8,
      expect_product: "NVIDIA-H100-80GB-HBM3",
      flash_attn: "required",
      matmul_fraction: 0.7,
      matmul_size: 8192,
      min_driver: "570.26",
      mode: "gpu",
      smoke_imports: ["torch", "transformers"],
      termination_log: "/dev/termination-log",
    });
  });
});

describe("check files, timeouts and lanes", () => {
  it("ships gpu_check.py and datasheets.json, not the README, and hashes exactly their content", () => {
    const checks = loadCheckFiles(CHECKS_DIR);
    expect(Object.keys(checks.files)).toEqual(["datasheets.json", "gpu_check.py"]);
    expect(checks.files["gpu_check.py"]).toBe(fs.readFileSync(path.join(CHECKS_DIR, "gpu_check.py"), "utf8"));
    expect(checks.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(checksConfigMapName(checks.hash)).toBe(`workbench-checks-${checks.hash.slice(0, 10)}`);
  });

  it("changes the hash when a check file changes and not when the README or a dotfile does", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wbv-checks-"));
    try {
      fs.writeFileSync(path.join(dir, "gpu_check.py"), "print('v1')\n");
      fs.writeFileSync(path.join(dir, "datasheets.json"), "{}\n");
      const first = loadCheckFiles(dir).hash;
      fs.writeFileSync(path.join(dir, "README.md"), "docs\n");
      fs.writeFileSync(path.join(dir, ".editorconfig"), "x\n");
      fs.mkdirSync(path.join(dir, "__pycache__"));
      expect(loadCheckFiles(dir).hash).toBe(first);
      fs.writeFileSync(path.join(dir, "datasheets.json"), "{ }\n");
      expect(loadCheckFiles(dir).hash).not.toBe(first);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a directory without the check script", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wbv-empty-"));
    try {
      expect(() => loadCheckFiles(dir)).toThrow(`checks directory ${dir} has no gpu_check.py. Pass the absolute path of images/checks (checksDir).`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives Pulumi 300 s more than the Job's deadline, in Pulumi's duration format", () => {
    expect(jobCreateTimeout(900)).toBe("1200s");
    expect(jobCreateTimeout(60)).toBe("360s");
  });

  it("chains items sorted by key into lanes: item i waits for item i - lanes", () => {
    expect(laneOrder(["c", "a", "d", "b", "e"], (s) => s, 2)).toEqual([
      { item: "a" },
      { item: "b" },
      { item: "c", after: 0 },
      { item: "d", after: 1 },
      { item: "e", after: 2 },
    ]);
    expect(laneOrder(["b", "a"], (s) => s, 5)).toEqual([{ item: "a" }, { item: "b" }]);
    expect(() => laneOrder(["a"], (s) => s, 0)).toThrow("lanes must be a whole number ≥ 1, got 0.");
  });
});
