/**
 * Runs the real images/checks/gpu_check.py under Debian's python3-torch (CPU torch 1.13 for /usr/bin/python3; the
 * pyenv python3 first on PATH has no torch). GPU-only paths are covered on a GPU machine, not here.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareDriverVersions } from "../lib/cuda";

const PYTHON = "/usr/bin/python3";
const CHECKS_DIR = resolve(__dirname, "..", "images", "checks");
const SCRIPT = join(CHECKS_DIR, "gpu_check.py");
const BASE = ["--expect-cuda", "12.8", "--expect-gpus", "1", "--expect-product", "NVIDIA-H200", "--min-driver", "570.26"];
const CHECK_NAMES = [
  "torch_import",
  "cuda_version",
  "cuda_available",
  "driver_version",
  "device_product",
  "matmul_correctness",
  "matmul_throughput",
  "memory_bandwidth",
  "nccl",
  "flash_attn",
  "smoke_imports",
];

interface Check {
  name: string;
  status: "pass" | "fail" | "skip";
  detail: string;
  [figure: string]: unknown;
}
interface Report {
  version: number;
  mode: string;
  passed: boolean;
  durationSeconds: number;
  expect: Record<string, unknown>;
  device: Record<string, unknown>;
  checks: Check[];
}

let work: string;

function run(args: string[], extraEnv: Record<string, string> = {}): SpawnSyncReturns<string> {
  // A CUDA_VISIBLE_DEVICES from the caller's shell must not change what the script reports.
  const { CUDA_VISIBLE_DEVICES: _ignored, ...env } = process.env;
  return spawnSync(PYTHON, [SCRIPT, ...args], {
    encoding: "utf8",
    env: { ...env, PYTHONDONTWRITEBYTECODE: "1", ...extraEnv },
    timeout: 90_000,
  });
}

function report(result: SpawnSyncReturns<string>): Report {
  return JSON.parse(result.stdout) as Report;
}

function statuses(r: Report): [string, string][] {
  return r.checks.map((c) => [c.name, c.status]);
}

let torchMissing: string | undefined;

beforeAll(() => {
  const probe = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
  if (probe.status !== 0) {
    torchMissing =
      `${PYTHON} cannot import torch (${(probe.stderr || String(probe.error)).trim().split("\n").pop()}). ` +
      "These tests run the real check under Debian's CPU torch: .ci/run installs python3-torch " +
      "(apt-get install -y python3-torch); install it the same way to run them locally.";
  }
  work = mkdtempSync(join(tmpdir(), "gpu-check-test-"));
});

/** Every describe below needs torch: fail (never skip) when it is missing. */
function requireTorch(): void {
  if (torchMissing !== undefined) throw new Error(torchMissing);
}

it("has a /usr/bin/python3 that imports torch (.ci/run installs python3-torch)", () => {
  if (torchMissing !== undefined) expect.fail(torchMissing);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("gpu_check.py --mode cpu (CPU torch)", () => {
  let result: SpawnSyncReturns<string>;
  let log: string;

  beforeAll(() => {
    requireTorch();
    log = join(work, "cpu-termination-log");
    result = run(["--mode", "cpu", ...BASE, "--smoke-imports", "torch,json", "--termination-log", log]);
  });

  it("exits 0 with a passing report and nothing but the report on stdout", () => {
    expect(result.stderr).not.toContain("Traceback");
    expect(result.status).toBe(0);
    const r = report(result);
    expect(Object.keys(r)).toEqual(["version", "mode", "passed", "durationSeconds", "expect", "device", "checks"]);
    expect(r.version).toBe(1);
    expect(r.mode).toBe("cpu");
    expect(r.passed).toBe(true);
    expect(r.durationSeconds).toBeGreaterThan(0);
    expect(r.durationSeconds).toBeLessThan(60);
    expect(r.expect).toEqual({
      cuda: "12.8",
      gpus: 1,
      product: "NVIDIA-H200",
      minDriver: "570.26",
      matmulFraction: 0.7,
      bandwidthFraction: 0.8,
      flashAttn: "absent",
      smokeImports: ["torch", "json"],
    });
    expect(r.device).toMatchObject({
      torchCuda: null,
      cudaDeviceCount: 0,
      names: [],
      products: [],
      driver: null,
      driverSource: null,
    });
    expect(r.device.torch).toMatch(/^1\.13\./);
    expect(r.device).not.toHaveProperty("driverCudaVersion");
  });

  it("runs the CPU subset and skips every GPU-only check with detail 'cpu mode'", () => {
    const r = report(result);
    expect(r.checks.map((c) => [c.name, c.status, c.detail])).toEqual([
      ["torch_import", "pass", `torch ${String(r.device.torch)}`],
      ["cuda_version", "skip", "CPU build of torch"],
      ["cuda_available", "skip", "cpu mode"],
      ["driver_version", "skip", "cpu mode"],
      ["device_product", "skip", "cpu mode"],
      ["matmul_correctness", "pass", expect.stringMatching(/^bf16 256x256x256 matmul on cpu matches fp32 \(relative error \d\.\d\de-0[23]\)$/)],
      ["matmul_throughput", "skip", "cpu mode"],
      ["memory_bandwidth", "skip", "cpu mode"],
      ["nccl", "skip", "cpu mode"],
      ["flash_attn", "skip", "cpu mode"],
      ["smoke_imports", "pass", "imported torch, json"],
    ]);
  });

  it("reports the matmul figures: a real error (never zero inputs), the CPU tolerance, the size and the seed", () => {
    const mm = report(result).checks.find((c) => c.name === "matmul_correctness");
    expect(Object.keys(mm ?? {})).toEqual(["name", "status", "detail", "relError", "tolerance", "size", "seed"]);
    expect(mm?.relError).toBeGreaterThan(1e-4); // bf16 rounding always shows; zero error means zero inputs
    expect(mm?.relError).toBeLessThan(0.05);
    expect(mm?.tolerance).toBe(0.05);
    expect(mm?.size).toBe(256);
    expect(Number.isInteger(mm?.seed)).toBe(true);
    expect(report(result).checks.find((c) => c.name === "smoke_imports")?.modules).toEqual({ torch: "ok", json: "ok" });
  });

  it("writes a one-line PASS summary to the termination log", () => {
    expect(readFileSync(log, "utf8")).toMatch(/^PASS 11\/11 checks \(8 skipped\) \d+\.\ds\n$/);
  });
});

describe("gpu_check.py --mode gpu on a machine without a GPU", () => {
  let result: SpawnSyncReturns<string>;
  let log: string;

  beforeAll(() => {
    requireTorch();
    log = join(work, "gpu-termination-log");
    result = run(["--mode", "gpu", ...BASE, "--smoke-imports", "torch,json", "--termination-log", log]);
  });

  it("exits 1 and says no CUDA device is visible", () => {
    expect(result.stderr).not.toContain("Traceback");
    expect(result.status).toBe(1);
    const r = report(result);
    expect(r.mode).toBe("gpu");
    expect(r.passed).toBe(false);
    expect(r.checks.find((c) => c.name === "cuda_available")).toEqual({
      name: "cuda_available",
      status: "fail",
      detail: "no CUDA device is visible: torch.cuda.is_available() is False (this torch is a CPU build)",
      expected: 1,
      found: 0,
    });
  });

  it("fails the CPU build, skips what needs a device naming the failed check, and still runs the imports", () => {
    const r = report(result);
    expect(r.checks.map((c) => c.name)).toEqual(CHECK_NAMES);
    const byName = Object.fromEntries(r.checks.map((c) => [c.name, c]));
    expect(byName.cuda_version).toEqual({
      name: "cuda_version",
      status: "fail",
      detail: `torch ${String(r.device.torch)} is a CPU build (torch.version.cuda is None); the image must ship torch built for CUDA 12.8`,
      expected: "12.8",
      found: null,
    });
    for (const name of ["device_product", "matmul_correctness", "matmul_throughput", "memory_bandwidth"]) {
      expect(byName[name]).toEqual({ name, status: "skip", detail: "not run: cuda_available failed" });
    }
    expect(byName.nccl).toEqual({
      name: "nccl",
      status: "fail",
      detail: "NCCL is not available in this torch build (torch.distributed.is_nccl_available() is False)",
    });
    expect(byName.flash_attn).toEqual({
      name: "flash_attn",
      status: "skip",
      detail: "flash-attn not required for this variant (--flash-attn absent)",
    });
    expect(byName.smoke_imports?.status).toBe("pass");
    // The driver is read from the host (NVML, nvidia-smi, /proc), which this machine may or may not have.
    const driver = byName.driver_version;
    if (driver?.found === null) {
      expect(driver).toEqual({
        name: "driver_version",
        status: "fail",
        detail:
          "could not read the NVIDIA driver version (tried pynvml, NVML (libnvidia-ml.so.1), nvidia-smi, " +
          "/proc/driver/nvidia/version); the container needs the driver's utility libraries " +
          "(NVIDIA_DRIVER_CAPABILITIES must include utility)",
        required: "570.26",
        found: null,
      });
    } else {
      expect(driver?.found).toMatch(/^\d+(\.\d+)+$/);
      expect(["pass", "fail"]).toContain(driver?.status);
    }
  });

  it("writes a one-line FAIL summary naming the first failed check", () => {
    const line = readFileSync(log, "utf8");
    expect(line).toMatch(/^FAIL cuda_version: torch .* is a CPU build .*\(\+\d more: cuda_available, .*nccl\)\n$/);
    expect(line.trimEnd().split("\n")).toHaveLength(1);
  });
});

describe("gpu_check.py usage errors", () => {
  beforeAll(requireTorch);
  const usage = (args: string[]) => {
    const log = join(work, `usage-${args.length}-${Math.random().toString(36).slice(2)}`);
    const result = run([...args, "--termination-log", log]);
    return { result, log };
  };

  it.each([
    [
      "unknown product",
      ["--mode", "gpu", ...BASE.slice(0, 4), "--expect-product", "NVIDIA-H999", "--min-driver", "570.26"],
      `gpu_check.py: usage error: unknown --expect-product 'NVIDIA-H999': not in ${join(CHECKS_DIR, "datasheets.json")}; ` +
        "known products: NVIDIA-A100-SXM4-40GB, NVIDIA-A100-SXM4-80GB, NVIDIA-A10G, NVIDIA-H100-80GB-HBM3, " +
        "NVIDIA-H100-NVL, NVIDIA-H100-PCIe, NVIDIA-H200, NVIDIA-L4, NVIDIA-L40S (see --help)",
    ],
    [
      "fraction above 1",
      ["--mode", "gpu", ...BASE, "--matmul-fraction", "1.5"],
      "gpu_check.py: usage error: argument --matmul-fraction: must be a number in (0, 1], got '1.5' (see --help)",
    ],
    [
      "fraction of 0",
      ["--mode", "cpu", ...BASE, "--bandwidth-fraction", "0"],
      "gpu_check.py: usage error: argument --bandwidth-fraction: must be a number in (0, 1], got '0' (see --help)",
    ],
    [
      "missing required flag",
      ["--mode", "gpu", ...BASE.slice(0, 6)],
      "gpu_check.py: usage error: the following arguments are required: --min-driver (see --help)",
    ],
    [
      "bad mode",
      ["--mode", "tpu", ...BASE],
      "gpu_check.py: usage error: argument --mode: invalid choice: 'tpu' (choose from 'gpu', 'cpu') (see --help)",
    ],
    [
      "malformed CUDA version",
      ["--mode", "gpu", "--expect-cuda", "12", ...BASE.slice(2)],
      "gpu_check.py: usage error: argument --expect-cuda: must look like '12.8', got '12' (see --help)",
    ],
    [
      "empty module name",
      ["--mode", "cpu", ...BASE, "--smoke-imports", "torch,,json"],
      "gpu_check.py: usage error: argument --smoke-imports: must be comma-separated module names such as " +
        "'torch,transformers'; invalid: '' (see --help)",
    ],
    [
      "missing datasheets file",
      ["--mode", "cpu", ...BASE, "--datasheets", "/nonexistent/datasheets.json"],
      "gpu_check.py: usage error: datasheets file not found: /nonexistent/datasheets.json (pass --datasheets PATH) " +
        "(see --help)",
    ],
  ])("%s: exit 2, one stderr line, no traceback, no report", (_label, args, message) => {
    const { result, log } = usage(args);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(`${message}\n`);
    expect(result.stderr).not.toContain("Traceback");
    expect(existsSync(log)).toBe(false);
  });
});

describe("gpu_check.py output hygiene", () => {
  beforeAll(requireTorch);
  it("keeps stdout for the report when an import prints (Python or C level) and skips a missing log directory", () => {
    const mods = join(work, "mods");
    mkdirSync(mods, { recursive: true });
    writeFileSync(
      join(mods, "noisy_mod.py"),
      'import os\nprint("hello from print")\nos.write(1, b"hello from fd 1\\n")\n',
    );
    const result = run(
      ["--mode", "cpu", ...BASE, "--smoke-imports", "noisy_mod", "--termination-log", join(work, "no", "such", "dir", "log")],
      { PYTHONPATH: mods },
    );
    expect(result.status).toBe(0);
    expect(report(result).passed).toBe(true);
    expect(result.stderr).toContain("hello from print");
    expect(result.stderr).toContain("hello from fd 1");
    expect(result.stderr).not.toContain("termination log"); // skipped silently
    expect(existsSync(join(work, "no"))).toBe(false);
  });

  it("reports a failing smoke import with the exception and exits 1", () => {
    const log = join(work, "smoke-log");
    const result = run(["--mode", "cpu", ...BASE, "--smoke-imports", "json,no_such_module_xyz", "--termination-log", log]);
    expect(result.status).toBe(1);
    expect(report(result).checks.find((c) => c.name === "smoke_imports")).toEqual({
      name: "smoke_imports",
      status: "fail",
      detail: "import no_such_module_xyz failed: ModuleNotFoundError: No module named 'no_such_module_xyz'",
      modules: { json: "ok", no_such_module_xyz: "ModuleNotFoundError: No module named 'no_such_module_xyz'" },
    });
    expect(readFileSync(log, "utf8")).toBe(
      "FAIL smoke_imports: import no_such_module_xyz failed: ModuleNotFoundError: No module named " +
        "'no_such_module_xyz'\n",
    );
  });
});

describe("gpu_check.py helpers agree with lib/cuda.ts", () => {
  const pairs: [string, string][] = [
    ["570.26", "570.124.06"],
    ["570.124.06", "570.26"],
    ["570.26", "570.26.0"],
    ["535.104.05", "535.54.03"],
    ["99.0", "100.0"],
    ["580", "575.51.03"],
  ];

  it("compare_versions, gfd_product and the /proc driver parser", () => {
    const program = [
      "import json, sys",
      `sys.path.insert(0, ${JSON.stringify(CHECKS_DIR)})`,
      "import gpu_check as g",
      `pairs = json.loads(${JSON.stringify(JSON.stringify(pairs))})`,
      "print(json.dumps({",
      "  'compare': [g.compare_versions(a, b) for a, b in pairs],",
      "  'products': [g.gfd_product(n) for n in ['NVIDIA H100 80GB HBM3', 'NVIDIA A100-SXM4-40GB', 'NVIDIA H200', ' NVIDIA L4 ']],",
      "  'proc': [g.parse_proc_driver_version(t) for t in [",
      "    'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.124.06  Release Build  (dvs-builder@U16)  Tue Feb 25 2025\\n',",
      "    'NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\\n',",
      "    'garbage']],",
      "}))",
    ].join("\n");
    const result = spawnSync(PYTHON, ["-c", program], {
      encoding: "utf8",
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" }, // no __pycache__ in images/checks
    });
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual({
      compare: pairs.map(([a, b]) => compareDriverVersions(a, b)),
      products: ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-40GB", "NVIDIA-H200", "NVIDIA-L4"],
      proc: ["570.124.06", "535.104.05", null],
    });
  });
});
