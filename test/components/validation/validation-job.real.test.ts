/**
 * The validation Job's exact cpu-mode command (components/validation/validation-job.ts checkCommand) run as a local
 * stack's Job runs it: the real images/checks/gpu_check.py under Debian's /usr/bin/python3 and its CPU torch. A
 * real-torch suite (vitest project `real`); the Job as plain data and the argparse checks: validation-job.test.ts.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CHECKS_MOUNT, checkCommand, type ValidationVariant } from "../../../components/validation/validation-job";
import { PROJECT_ROOT } from "../../../lib/paths";

const CHECKS_DIR = path.resolve(PROJECT_ROOT, "images", "checks");
const PYTHON = "/usr/bin/python3";

const variant: ValidationVariant = {
  name: "jupyter-ml-gpu",
  cuda: "12.8",
  ships: { flashAttn: true },
  smoke: { command: ["python", "-c", "import torch"], imports: ["torch", "transformers"] },
  sizeBudgetMB: 12000,
};
const validation = { matmulFraction: 0.7, bandwidthFraction: 0.8, deadlineSeconds: 900, pullMBps: 25, backoffLimit: 0, shmSize: "8Gi" };

describe("checkCommand", () => {
  it("cpu mode: the Job's exact command passes on a CPU torch and writes the termination log", () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "wbv-cpu-"));
    try {
      const cmd = checkCommand({ ...variant, smoke: { command: ["true"], imports: ["torch", "json"] } }, { mode: "cpu" }, validation);
      // Only the paths that differ between a pod and this machine are rewritten; coreutils' timeout runs as in the pod.
      const local = cmd.map((a) =>
        a === `${CHECKS_MOUNT}/gpu_check.py`
          ? path.join(CHECKS_DIR, "gpu_check.py")
          : a === "/dev/termination-log"
            ? path.join(work, "termination-log")
            : a === "python3"
              ? PYTHON
              : a,
      );
      const r = spawnSync(local[0]!, local.slice(1), { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" }, timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as { mode: string; passed: boolean; expect: Record<string, unknown> };
      expect(report.mode).toBe("cpu");
      expect(report.passed).toBe(true);
      expect(report.expect).toEqual({
        cuda: "12.8",
        gpus: 1,
        product: "NVIDIA-H100-80GB-HBM3",
        minDriver: "570.26",
        matmulFraction: 0.7,
        bandwidthFraction: 0.8,
        flashAttn: "required",
        smokeImports: ["torch", "json"],
      });
      expect(fs.readFileSync(path.join(work, "termination-log"), "utf8")).toMatch(/^PASS 13\/13 checks \(10 skipped\)/);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 150_000);
});
