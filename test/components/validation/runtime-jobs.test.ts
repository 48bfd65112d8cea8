/**
 * The smoke and notebook Jobs of issue #14 as plain data (components/validation/runtime-jobs.ts): exact objects,
 * names, the strict Kubernetes 1.32 Job schema, and the smoke script run for real by sh.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Job } from "kubernetes-models/batch/v1/Job";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { describe, expect, it } from "vitest";
import {
  executedClaim,
  executedClaimName,
  notebookJob,
  notebookJobName,
  smokeJob,
  smokeJobName,
  smokeScript,
} from "../../../components/validation/runtime-jobs";
import { PROJECT_ROOT } from "../../../lib/paths";
import { strictValidator } from "../../support/upstream";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const REF = `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/jupyter-ml-cpu@${DIGEST}`;
const SETTINGS = { deadlineSeconds: 900, pullMBps: 25, backoffLimit: 0 };
const SMOKE = { name: "jupyter-ml-cpu", smoke: { command: ["python", "-c", "import torch, sklearn"] }, sizeBudgetMB: 5000 };
const TIER_REF = `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/notebook-validator-tier2@${DIGEST}`;
const NOTEBOOK = {
  image: { name: "notebook-validator-tier2", sizeBudgetMB: 4000 },
  tier: "tier2",
  imageRef: TIER_REF,
  namespace: "workbench-validation",
  claimName: "executed-notebooks-tier2",
  fsGroup: 0,
  settings: SETTINGS,
};

const POD_SECURITY = { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };
const CONTAINER_SECURITY = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };
const AFFINITY = {
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: "nvidia.com/gpu.present", operator: "NotIn", values: ["true"] }] }],
    },
  },
};

describe("smoke Job", () => {
  it("is exactly the GPU check's safety knobs around the catalog's smoke command, on a CPU node", () => {
    const job = smokeJob({ image: SMOKE, imageRef: REF, namespace: "workbench-validation", settings: SETTINGS });
    const name = smokeJobName("jupyter-ml-cpu", DIGEST, SMOKE.smoke.command);
    const labels = {
      "app.kubernetes.io/name": "workbench-validation",
      "workbench-images/variant": "jupyter-ml-cpu",
      "workbench-images/pool": "cpu",
      "workbench-images/check": "smoke",
    };
    expect(job).toEqual({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name, namespace: "workbench-validation", labels, annotations: { "pulumi.com/replaceUnready": "true" } },
      spec: {
        backoffLimit: 0,
        // pod start 120 + pull 5000/25 = 200 + deadline 900 + kill grace 30
        activeDeadlineSeconds: 1250,
        podFailurePolicy: { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] }] },
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: POD_SECURITY,
            affinity: AFFINITY,
            containers: [
              {
                name: "smoke",
                image: REF,
                imagePullPolicy: "IfNotPresent",
                command: ["sh", "-c", smokeScript("jupyter-ml-cpu", 900), "smoke", "python", "-c", "import torch, sklearn"],
                env: [{ name: "PYTHONDONTWRITEBYTECODE", value: "1" }],
                resources: { requests: { cpu: "1", memory: "2Gi" } },
                securityContext: CONTAINER_SECURITY,
                terminationMessagePath: "/dev/termination-log",
                terminationMessagePolicy: "FallbackToLogsOnError",
              },
            ],
          },
        },
      },
    });
    expect(name).toMatch(/^wbs-jupyter-ml-cpu-[0-9a-f]{10}$/);
    // No FailJob rule, no TTL: the only failure reasons the provider reports are BackoffLimitExceeded/DeadlineExceeded.
    expect(JSON.stringify(job)).not.toContain("FailJob");
    expect(Object.keys(job.spec)).not.toContain("ttlSecondsAfterFinished");
  });

  it("is named from the digest and the command: either change renames it, the same pair keeps it", () => {
    const a = smokeJobName("x", DIGEST, ["python", "-c", "import a"]);
    expect(smokeJobName("x", DIGEST, ["python", "-c", "import a"])).toBe(a);
    expect(smokeJobName("x", `sha256:${"cd".repeat(32)}`, ["python", "-c", "import a"])).not.toBe(a);
    expect(smokeJobName("x", DIGEST, ["python", "-c", "import b"])).not.toBe(a);
    const long = smokeJobName("user-averyveryverylongusername-averyveryverylongprojectname-x", DIGEST, ["true"]);
    // 63 = "wbs-" + 48 characters of the id + "-" + 10 hex: the id is cut, never the hash.
    expect(long).toMatch(/^wbs-user-averyveryverylongusername-averyveryverylong-[0-9a-f]{10}$/);
    expect(long).toHaveLength(63);
  });

  it("refuses an empty smoke command and a tag, naming the fix", () => {
    expect(() => smokeJob({ image: { ...SMOKE, smoke: { command: [] } }, imageRef: REF, namespace: "n", settings: SETTINGS })).toThrow(
      'image "jupyter-ml-cpu" has an empty smoke.command. Give it a command (e.g. ["python", "-c", "import torch"]) in images/catalog.yaml.',
    );
    expect(() => smokeJob({ image: SMOKE, imageRef: "registry.example.com/wb/x:latest", namespace: "n", settings: SETTINGS })).toThrow(/is not pinned by digest/);
  });
});

describe("notebook Job and its claim", () => {
  it("runs run_notebooks.py for its tier under timeout, writing to the claim under its own name", () => {
    const job = notebookJob(NOTEBOOK);
    const name = notebookJobName("notebook-validator-tier2", DIGEST, "tier2");
    const labels = {
      "app.kubernetes.io/name": "workbench-validation",
      "workbench-images/variant": "notebook-validator-tier2",
      "workbench-images/pool": "cpu",
      "workbench-images/check": "notebooks",
      "workbench-images/notebook-tier": "tier2",
    };
    expect(job).toEqual({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name, namespace: "workbench-validation", labels, annotations: { "pulumi.com/replaceUnready": "true" } },
      spec: {
        backoffLimit: 0,
        // 120 + 4000/25 = 160 + 900 + 30
        activeDeadlineSeconds: 1210,
        podFailurePolicy: { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] }] },
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: { ...POD_SECURITY, fsGroup: 0, fsGroupChangePolicy: "OnRootMismatch" },
            affinity: AFFINITY,
            containers: [
              {
                name: "notebooks",
                image: TIER_REF,
                imagePullPolicy: "IfNotPresent",
                command: [
                  "timeout",
                  "--kill-after=30s",
                  "900s",
                  "python",
                  "/opt/app-root/notebook-validator/run_notebooks.py",
                  "tier2",
                  "--output-dir",
                  `/executed/${name}`,
                  "--timeout",
                  "600",
                  "--termination-log",
                  "/dev/termination-log",
                ],
                env: [{ name: "PYTHONDONTWRITEBYTECODE", value: "1" }],
                resources: { requests: { cpu: "1", memory: "2Gi" } },
                securityContext: CONTAINER_SECURITY,
                terminationMessagePath: "/dev/termination-log",
                terminationMessagePolicy: "FallbackToLogsOnError",
                volumeMounts: [{ name: "executed", mountPath: "/executed" }],
              },
            ],
            volumes: [{ name: "executed", persistentVolumeClaim: { claimName: "executed-notebooks-tier2" } }],
          },
        },
      },
    });
    expect(name).toMatch(/^wbn-notebook-validator-tier2-[0-9a-f]{10}$/);
  });

  it("caps the per-cell timeout at the run's deadline", () => {
    const job = notebookJob({ ...NOTEBOOK, settings: { ...SETTINGS, deadlineSeconds: 120 } });
    const cmd = (job.spec.template as { spec: { containers: Array<{ command: string[] }> } }).spec.containers[0]!.command;
    expect(cmd.slice(0, 3)).toEqual(["timeout", "--kill-after=30s", "120s"]);
    expect(cmd[cmd.indexOf("--timeout") + 1]).toBe("120");
  });

  it("refuses a tier that is not a folder name", () => {
    expect(() => notebookJob({ ...NOTEBOOK, tier: "../tier2" })).toThrow(
      'notebook tier "../tier2" is not a folder name of images/notebook-validator/notebooks (letters, digits, \'.\', \'_\', \'-\').',
    );
  });

  it("keeps executed notebooks on a 1Gi ReadWriteOnce claim per tier that Pulumi does not await", () => {
    expect(executedClaimName("tier2")).toBe("executed-notebooks-tier2");
    const claim = executedClaim("tier2", "workbench-validation");
    expect(claim).toEqual({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: {
        name: "executed-notebooks-tier2",
        namespace: "workbench-validation",
        labels: { "app.kubernetes.io/name": "workbench-validation", "workbench-images/check": "notebooks", "workbench-images/notebook-tier": "tier2" },
        annotations: { "pulumi.com/skipAwait": "true" },
      },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
    expect(executedClaim("tier2", "n", { size: "5Gi", storageClassName: "gp3" }).spec).toEqual({
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "5Gi" } },
      storageClassName: "gp3",
    });
    // kubernetes-models: the Kubernetes OpenAPI schema, offline (no strict PVC schema in ../shared).
    expect(() => new PersistentVolumeClaim(claim as never).validate()).not.toThrow();
  });
});

describe("against Kubernetes' own schemas", () => {
  const jobs = () => [
    smokeJob({ image: SMOKE, imageRef: REF, namespace: "workbench-validation", settings: SETTINGS }),
    notebookJob(NOTEBOOK),
  ];
  it("validates with kubernetes-models", () => {
    for (const job of jobs()) expect(() => new Job(job as never).validate()).not.toThrow();
  });

  // Upstream oracle: Kubernetes 1.32's own Job schema, strict (unknown fields rejected), from ../shared/upstream.
  const STRICT_JOB = path.resolve(PROJECT_ROOT, "..", "shared", "upstream", "kubernetes-1.32.2-strict", "job-batch-v1.json");
  it.skipIf(!fs.existsSync(STRICT_JOB))(`passes Kubernetes 1.32's strict Job schema (skipped without ${STRICT_JOB})`, () => {
    const validate = strictValidator("batch/v1", "Job"); // STRICT_JOB, compiled once per worker
    for (const job of jobs()) expect(validate(JSON.parse(JSON.stringify(job))) ? [] : validate.errors).toEqual([]);
    const wrong = JSON.parse(JSON.stringify(jobs()[1])) as { spec: { template: { spec: Record<string, unknown> } } };
    wrong.spec.template.spec["fsGroup"] = 0; // belongs in securityContext: the strict schema must refuse it here
    expect(validate(wrong)).toBe(false);
  });
});

describe("the smoke script, run by sh", () => {
  const run = (deadline: number, command: string[]) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "smoke-"));
    try {
      const tl = path.join(dir, "termination-log");
      const r = spawnSync("sh", ["-c", smokeScript("img", deadline, tl), "smoke", ...command], { encoding: "utf8", timeout: 60_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr, verdict: fs.existsSync(tl) ? fs.readFileSync(tl, "utf8") : null };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it("passes a working command and says so", () => {
    expect(run(30, ["sh", "-c", "echo imported torch"])).toEqual({ code: 0, stdout: "imported torch\n", stderr: "", verdict: "PASSED smoke test of img: sh -c echo imported torch\n" });
  });

  it("fails with the exit status and the last line of output (the exception), passing arguments through unchanged", () => {
    const py = "import sys; print('Traceback (most recent call last):'); print(\"ModuleNotFoundError: No module named 'xgboost'\", file=sys.stderr); sys.exit(1)";
    const r = run(30, ["python3", "-c", py]);
    expect(r).toEqual({
      code: 1,
      stdout: "Traceback (most recent call last):\nModuleNotFoundError: No module named 'xgboost'\n",
      stderr: "",
      verdict: "FAILED smoke test of img (exit 1): ModuleNotFoundError: No module named 'xgboost'\n",
    });
  });

  it("stops a command at its own deadline and says it timed out", () => {
    expect(run(1, ["sleep", "20"])).toEqual({ code: 124, stdout: "", stderr: "", verdict: "FAILED smoke test of img (timed out after 1 s): no output\n" });
  });

  it("reports a command that does not exist", () => {
    const r = run(30, ["no-such-command-here"]);
    expect(r.code).toBe(127);
    expect(r.verdict).toMatch(/^FAILED smoke test of img \(exit 127\): timeout: failed to run command .no-such-command-here.: No such file or directory\n$/);
  });
});
