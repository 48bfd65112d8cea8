/**
 * Runs the real images/checks/gpu_check.py under Debian's python3-torch (CPU torch 1.13 for /usr/bin/python3; the
 * pyenv python3 first on PATH has no torch), its NVML layer against recorded NVML answers replayed by a fake pynvml
 * (test/fixtures/gpu-check/), the pure helpers of the check and of its proof script, and, on a machine with an
 * NVIDIA GPU and a CUDA build of torch (GPU_CHECK_PYTHON), the measurements that need CUDA.
 *
 * Every torch-importing run starts at once in the first beforeAll (each costs ~1.5 s of CPU importing torch), so
 * the file stays within a few seconds on two cores.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareDriverVersions } from "../../lib/cuda";
import { PROJECT_ROOT } from "../../lib/paths";

const PYTHON = "/usr/bin/python3";
const CHECKS_DIR = resolve(PROJECT_ROOT, "images", "checks");
const SCRIPT = join(CHECKS_DIR, "gpu_check.py");
const PROVE_SH = join(CHECKS_DIR, "proof", "prove.sh");
const README = join(CHECKS_DIR, "README.md");
const FIXTURES = resolve(PROJECT_ROOT, "test", "fixtures", "gpu-check");
const FAKE_PYNVML = join(FIXTURES, "fake-pynvml");
/** A torch that does not import: the fake-NVML runs judge the node through NVML alone, without torch's import cost. */
const NO_TORCH = join(FIXTURES, "no-torch");
const BASE = ["--expect-cuda", "12.8", "--expect-gpus", "1", "--expect-product", "NVIDIA-H200", "--min-driver", "570.26"];
const CHECK_NAMES = [
  "torch_import",
  "cuda_version",
  "cuda_available",
  "driver_version",
  "nvml",
  "device_product",
  "matmul_correctness",
  "matmul_throughput",
  "memory_bandwidth",
  "nccl",
  "flash_attn",
  "smoke_imports",
  "gpu_health",
];
const UUID0 = "GPU-5d0b7c2e-1111-4a1b-9c3d-000000000001";
const UUID1 = "GPU-5d0b7c2e-1111-4a1b-9c3d-000000000002";
const IDENTITY0 = { index: 0, name: "NVIDIA H200", uuid: UUID0, serial: "1654123000001", pciBusId: "00000000:19:00.0" };
/** datasheets.json's products, sorted as the check lists them. */
const KNOWN =
  "NVIDIA-A100-80GB-PCIe, NVIDIA-A100-PCIE-40GB, NVIDIA-A100-SXM4-40GB, NVIDIA-A100-SXM4-80GB, NVIDIA-A10G, " +
  "NVIDIA-H100-80GB-HBM3, NVIDIA-H100-NVL, NVIDIA-H100-PCIe, NVIDIA-H200, NVIDIA-H200-NVL, NVIDIA-L4, NVIDIA-L40S";
const IDENTITY1 = { index: 1, name: "NVIDIA H200", uuid: UUID1, serial: "1654123000002", pciBusId: "00000000:3b:00.0" };

/**
 * GPU-only tests use GPU_CHECK_PYTHON (a python with a CUDA build of torch and pynvml) and run only where an NVIDIA
 * device node exists; the probe itself is skipped elsewhere so that a CPU machine pays nothing for it.
 */
const GPU_PYTHON = process.env.GPU_CHECK_PYTHON ?? PYTHON;
const hasCuda =
  existsSync("/dev/nvidiactl") &&
  spawnSync(GPU_PYTHON, ["-c", "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"], { timeout: 120_000 })
    .status === 0;
const NO_GPU = "skipped here: needs an NVIDIA GPU and GPU_CHECK_PYTHON with a CUDA torch and pynvml; this machine has no GPU";

interface Check {
  name: string;
  status: "pass" | "fail" | "skip";
  detail: string;
  fault?: "image" | "node";
  [figure: string]: unknown;
}
interface Report {
  version: number;
  mode: string;
  verdict: "pass" | "image" | "node";
  exitCode: number;
  passed: boolean;
  reasons: { check: string; fault: string; detail: string }[];
  summary: string;
  durationSeconds: number;
  expect: Record<string, unknown>;
  settings: Record<string, unknown>;
  device: Record<string, unknown>;
  checks: Check[];
}
interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  log: string;
}

let work: string;

/** Runs a command to completion without blocking the event loop, so that several run at once. */
function exec(cmd: string, args: string[], env: Record<string, string | undefined>, timeoutMs = 90_000): Promise<Omit<Run, "log">> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { env: env as NodeJS.ProcessEnv });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

/** The caller's CUDA_VISIBLE_DEVICES, NODE_NAME and PYTHONPATH must not change what the script reports. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const { CUDA_VISIBLE_DEVICES: _c, NODE_NAME: _n, PYTHONPATH: _p, ...env } = process.env;
  return { ...env, PYTHONDONTWRITEBYTECODE: "1", ...extra };
}

async function check(label: string, args: string[], extraEnv: Record<string, string> = {}, python = PYTHON): Promise<Run> {
  const log = join(work, `${label}-termination-log`);
  const r = await exec(python, [SCRIPT, ...args, "--termination-log", log], cleanEnv(extraEnv));
  return { ...r, log };
}

function fakeNvml(recording: string): Record<string, string> {
  return { PYTHONPATH: `${FAKE_PYNVML}:${NO_TORCH}`, FAKE_PYNVML_RECORDING: join(FIXTURES, recording) };
}

function report(run: { stdout: string }): Report {
  return JSON.parse(run.stdout) as Report;
}

function byName(r: Report): Record<string, Check> {
  return Object.fromEntries(r.checks.map((c) => [c.name, c]));
}

function lastLine(text: string): string {
  return text.trimEnd().split("\n").pop() ?? "";
}

/** Usage errors: [label, argv, the one stderr line]. The first two run as real processes, the rest through main(). */
const USAGE_CASES: [string, string[], string][] = [
  [
    "unknown product",
    ["--mode", "gpu", ...BASE.slice(0, 4), "--expect-product", "NVIDIA-H999", "--min-driver", "570.26"],
    `gpu_check.py: usage error: unknown --expect-product 'NVIDIA-H999': not in ${join(CHECKS_DIR, "datasheets.json")}; ` +
      `known products: ${KNOWN} (see --help)`,
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
  [
    "negative sustained phase",
    ["--mode", "gpu", ...BASE, "--sustain-seconds", "-1"],
    "gpu_check.py: usage error: argument --sustain-seconds: must be between 0 and 3600 seconds, got '-1' (see --help)",
  ],
  [
    "sustained ratio above 1",
    ["--mode", "gpu", ...BASE, "--sustained-ratio", "1.2"],
    "gpu_check.py: usage error: argument --sustained-ratio: must be a number in (0, 1], got '1.2' (see --help)",
  ],
  [
    "busbw fraction of 0",
    ["--mode", "gpu", ...BASE, "--busbw-fraction", "0"],
    "gpu_check.py: usage error: argument --busbw-fraction: must be a number in (0, 1], got '0' (see --help)",
  ],
  [
    "per-product thresholds with every kind of problem, collected into one line",
    [
      "--mode", "gpu", ...BASE, "--product-thresholds",
      '{"NVIDIA-H200": {"matmulFraction": 0, "tflops": 700}, "NVIDIA-B200": {"matmulFraction": 0.5}}',
    ],
    "gpu_check.py: usage error: --product-thresholds: NVIDIA-H200.matmulFraction: must be a number in (0, 1], got 0; " +
      "NVIDIA-H200.tflops: unknown key (use matmulFraction, bandwidthFraction, sustainedRatio, busbwFraction); " +
      `NVIDIA-B200: unknown product (known: ${KNOWN}) (see --help)`,
  ],
  [
    "per-product thresholds file that does not exist",
    ["--mode", "gpu", ...BASE, "--product-thresholds", "@/nonexistent/thresholds.json"],
    "gpu_check.py: usage error: --product-thresholds: cannot read /nonexistent/thresholds.json: No such file or directory " +
      "(see --help)",
  ],
];

let torchMissing: string | undefined;
type RunName = "cpu" | "noGpu" | "healthy" | "faults" | "simulated" | "prove" | "usage-0" | "usage-1";
const runs = {} as Record<RunName, Run>;
let readmeBefore: string;
let probe: Record<string, any>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "gpu-check-test-"));
  const mods = join(work, "mods");
  mkdirSync(mods, { recursive: true });
  writeFileSync(join(mods, "noisy_mod.py"), 'import os\nprint("hello from print")\nos.write(1, b"hello from fd 1\\n")\n');
  readmeBefore = readFileSync(README, "utf8");
  const usageFile = join(work, "usage-cases.json");
  writeFileSync(
    usageFile,
    JSON.stringify(USAGE_CASES.slice(2).map(([label, args], i) => [label, [...args, "--termination-log", join(work, `usage-${i + 2}-log`)]])),
  );
  const unit = exec(PYTHON, [join(FIXTURES, "unit_probe.py"), CHECKS_DIR, FIXTURES, work, usageFile], cleanEnv());
  const pending: Partial<Record<RunName, Promise<Run>>> = {
    cpu: check(
      "cpu",
      [
        "--mode", "cpu", ...BASE, "--smoke-imports", "torch,json,noisy_mod", "--matmul-fraction", "0.75",
        "--product-thresholds", '{"NVIDIA-H200": {"bandwidthFraction": 0.85}, "NVIDIA-L4": {"matmulFraction": 0.5}}',
      ],
      { PYTHONPATH: mods, NODE_NAME: "ip-10-0-1-23.ec2.internal" },
    ),
    noGpu: check("no-gpu", ["--mode", "gpu", ...BASE, "--smoke-imports", "torch,json"]),
    healthy: check("healthy", ["--mode", "gpu", ...BASE, "--smoke-imports", "json,no_such_module_xyz"], {
      ...fakeNvml("nvml-h200-healthy.json"),
      NODE_NAME: "gpu-node-1",
    }),
    // The GPU code paths on a CPU stand-in for torch.cuda: two "GPUs", GPU 1 overheating in NVML's answers.
    simulated: (async () => {
      const log = join(work, "simulated-termination-log");
      const r = await exec(
        PYTHON,
        [
          join(FIXTURES, "cuda_on_cpu.py"), CHECKS_DIR, "--mode", "gpu", "--expect-cuda", "12.8", "--expect-gpus", "2",
          "--expect-product", "NVIDIA-H200", "--min-driver", "570.26", "--matmul-size", "64", "--bandwidth-bytes", "1048576",
          "--sustain-seconds", "0.4", "--matmul-fraction", "0.000001", "--bandwidth-fraction", "0.000001",
          "--sustained-ratio", "0.01", "--samples-file", join(work, "simulated-samples.csv"), "--termination-log", log,
        ],
        cleanEnv({ SIM_GPUS: "2", PYTHONPATH: FAKE_PYNVML, FAKE_PYNVML_RECORDING: join(FIXTURES, "nvml-h200x2-one-hot.json") }),
      );
      return { ...r, log };
    })(),
    faults: check(
      "faults",
      ["--mode", "gpu", "--expect-cuda", "12.8", "--expect-gpus", "2", "--expect-product", "NVIDIA-H200", "--min-driver", "570.26"],
      fakeNvml("nvml-h200x2-faults.json"),
    ),
  };
  pending["usage-0"] = check("usage-0", USAGE_CASES[0]?.[1] ?? []);
  pending["usage-1"] = check("usage-1", USAGE_CASES[1]?.[1] ?? []);
  if (!hasCuda) {
    // Without a GPU the proof script must refuse in its preflight; on a GPU machine it would run for minutes.
    pending.prove = exec("bash", [PROVE_SH], cleanEnv({ PYTHON })).then((r) => ({ ...r, log: "" }));
  }
  await Promise.all(Object.entries(pending).map(async ([k, p]) => (runs[k as RunName] = await p)));
  // The cpu-mode run's own torch_import check says whether this python has torch (no separate probe: ~1.5 s of CPU).
  let torchImport: Check | undefined;
  try {
    torchImport = byName(report(runs.cpu)).torch_import;
  } catch {
    torchImport = undefined; // no report at all: the cpu-mode tests below fail and show why
  }
  if (torchImport !== undefined && torchImport.status !== "pass") {
    torchMissing =
      `${PYTHON} cannot import torch (${torchImport.detail}). ` +
      "These tests run the real check under Debian's CPU torch: .ci/run installs python3-torch " +
      "(apt-get install -y python3-torch); install it the same way to run them locally.";
  }
  const u = await unit;
  if (u.status !== 0) throw new Error(`unit_probe.py failed:\n${u.stderr}`);
  probe = JSON.parse(u.stdout) as Record<string, any>;
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Every describe below that runs the check needs torch: fail (never skip) when it is missing. */
function requireTorch(): void {
  if (torchMissing !== undefined) throw new Error(torchMissing);
}

it("has a /usr/bin/python3 that imports torch (.ci/run installs python3-torch)", () => {
  if (torchMissing !== undefined) expect.fail(torchMissing);
});

describe("gpu_check.py --mode cpu (CPU torch)", () => {
  beforeAll(requireTorch);

  it("exits 0 with a passing report and nothing but the report on stdout", () => {
    const run = runs.cpu;
    expect(run.stderr).not.toContain("Traceback");
    expect(run.status).toBe(0);
    const r = report(run);
    expect(Object.keys(r)).toEqual([
      "version", "mode", "verdict", "exitCode", "passed", "reasons", "summary", "durationSeconds", "expect", "settings",
      "device", "checks",
    ]);
    expect(r).toMatchObject({ version: 2, mode: "cpu", verdict: "pass", exitCode: 0, passed: true, reasons: [] });
    expect(r.durationSeconds).toBeGreaterThan(0);
    expect(r.durationSeconds).toBeLessThan(60);
    // The flag sets the matmul share, the H200 row of --product-thresholds the bandwidth share; the L4 row is unused.
    expect(r.expect).toEqual({
      cuda: "12.8",
      gpus: 1,
      product: "NVIDIA-H200",
      minDriver: "570.26",
      matmulFraction: 0.75,
      bandwidthFraction: 0.85,
      flashAttn: "absent",
      smokeImports: ["torch", "json", "noisy_mod"],
    });
    expect(r.settings).toEqual({
      sustainSeconds: 30,
      sampleIntervalSeconds: 0.2,
      sustainedRatio: 0.85,
      busbwFraction: 0.2,
      thresholdSources: { matmulFraction: "flag", bandwidthFraction: "override", sustainedRatio: "default", busbwFraction: "default" },
    });
    expect(r.device).toMatchObject({
      torchCuda: null,
      cudaDeviceCount: 0,
      names: [],
      products: [],
      driver: null,
      driverSource: null,
      node: "ip-10-0-1-23.ec2.internal",
      nvml: null,
      gpus: [],
    });
    expect(r.device.torch).toMatch(/^1\.13\./);
    expect(r.device).not.toHaveProperty("driverCudaVersion");
  });

  it("runs the CPU subset and skips every GPU-only check with detail 'cpu mode'", () => {
    const r = report(runs.cpu);
    expect(r.checks.map((c) => [c.name, c.status, c.detail])).toEqual([
      ["torch_import", "pass", `torch ${String(r.device.torch)}`],
      ["cuda_version", "skip", "CPU build of torch"],
      ["cuda_available", "skip", "cpu mode"],
      ["driver_version", "skip", "cpu mode"],
      ["nvml", "skip", "cpu mode"],
      ["device_product", "skip", "cpu mode"],
      ["matmul_correctness", "pass", expect.stringMatching(/^bf16 256x256x256 matmul on cpu matches fp32 \(relative error \d\.\d\de-0[23]\)$/)],
      ["matmul_throughput", "skip", "cpu mode"],
      ["memory_bandwidth", "skip", "cpu mode"],
      ["nccl", "skip", "cpu mode"],
      ["flash_attn", "skip", "cpu mode"],
      ["smoke_imports", "pass", "imported torch, json, noisy_mod"],
      ["gpu_health", "skip", "cpu mode"],
    ]);
    expect(r.checks.filter((c) => "fault" in c)).toEqual([]);
  });

  it("reports the matmul figures: a real error (never zero inputs), the CPU tolerance, the size and the seed", () => {
    const mm = byName(report(runs.cpu)).matmul_correctness;
    expect(Object.keys(mm ?? {})).toEqual(["name", "status", "detail", "relError", "tolerance", "size", "seed"]);
    expect(mm?.relError).toBeGreaterThan(1e-4); // bf16 rounding always shows; zero error means zero inputs
    expect(mm?.relError).toBeLessThan(0.05);
    expect(mm?.tolerance).toBe(0.05);
    expect(mm?.size).toBe(256);
    expect(Number.isInteger(mm?.seed)).toBe(true);
    expect(byName(report(runs.cpu)).smoke_imports?.modules).toEqual({ torch: "ok", json: "ok", noisy_mod: "ok" });
  });

  it("ends with the one-line verdict: last on stderr, in the report's summary and in the termination log", () => {
    const r = report(runs.cpu);
    expect(r.summary).toMatch(/^PASS 13\/13 checks \(10 skipped\) \d+\.\ds$/);
    expect(lastLine(runs.cpu.stderr)).toBe(r.summary);
    expect(readFileSync(runs.cpu.log, "utf8")).toBe(`${r.summary}\n`);
  });

  it("keeps stdout for the report when an import prints (Python or C level)", () => {
    expect(runs.cpu.stderr).toContain("hello from print");
    expect(runs.cpu.stderr).toContain("hello from fd 1");
    expect(runs.cpu.stdout.trimStart().startsWith("{")).toBe(true);
  });
});

describe("gpu_check.py --mode gpu on a machine without a GPU (no pynvml, no driver)", () => {
  beforeAll(requireTorch);

  it("fails the CPU build and the missing pynvml as image defects, skipping what needs a device", () => {
    const run = runs.noGpu;
    expect(run.stderr).not.toContain("Traceback");
    const r = report(run);
    expect(r.checks.map((c) => c.name)).toEqual(CHECK_NAMES);
    const c = byName(r);
    expect(c.cuda_version).toEqual({
      name: "cuda_version",
      status: "fail",
      detail: `torch ${String(r.device.torch)} is a CPU build (torch.version.cuda is None); the image must ship torch built for CUDA 12.8`,
      expected: "12.8",
      found: null,
      fault: "image",
    });
    expect(c.cuda_available).toEqual({
      name: "cuda_available",
      status: "fail",
      detail: "no CUDA device is visible: torch.cuda.is_available() is False (this torch is a CPU build)",
      expected: 1,
      found: 0,
      fault: "image",
    });
    expect(c.nvml).toEqual({
      name: "nvml",
      status: "fail",
      detail:
        "nvml unavailable: import pynvml failed (ModuleNotFoundError: No module named 'pynvml'); the image must ship " +
        "nvidia-ml-py (pip install nvidia-ml-py) so the check can read clocks, throttle reasons and health",
      fault: "image",
    });
    expect(c.device_product).toEqual({ name: "device_product", status: "skip", detail: "not run: nvml and cuda_available failed" });
    for (const name of ["matmul_correctness", "matmul_throughput", "memory_bandwidth"]) {
      expect(c[name]).toEqual({ name, status: "skip", detail: "not run: cuda_available failed" });
    }
    expect(c.nccl).toEqual({
      name: "nccl",
      status: "fail",
      detail: "NCCL is not available in this torch build (torch.distributed.is_nccl_available() is False)",
      fault: "image",
    });
    expect(c.flash_attn).toEqual({
      name: "flash_attn",
      status: "skip",
      detail: "flash-attn not required for this variant (--flash-attn absent)",
    });
    expect(c.smoke_imports?.status).toBe("pass");
    expect(c.gpu_health).toEqual({ name: "gpu_health", status: "skip", detail: "not run: nvml failed" });
  });

  it("blames the node only for the unreadable driver: exit 3 when no driver can be read, else the image's exit 1", () => {
    const run = runs.noGpu;
    const r = report(run);
    const driver = byName(r).driver_version;
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
        fault: "node",
      });
      expect(run.status).toBe(3);
      expect(r).toMatchObject({ verdict: "node", exitCode: 3 });
      expect(r.reasons.map((x) => [x.check, x.fault])).toEqual([
        ["cuda_version", "image"],
        ["cuda_available", "image"],
        ["driver_version", "node"],
        ["nvml", "image"],
        ["nccl", "image"],
      ]);
      expect(r.summary).toBe(
        `NODE driver_version: ${String(driver.detail)} (+4 more: cuda_version [image], cuda_available [image], nvml [image], nccl [image])`,
      );
    } else {
      // The driver is read from the host (NVML, nvidia-smi, /proc), which some machines without a GPU have.
      expect(driver?.found).toMatch(/^\d+(\.\d+)+$/);
      expect(run.status).toBe(driver?.status === "pass" ? 1 : 3);
    }
    expect(readFileSync(run.log, "utf8")).toBe(`${r.summary}\n`);
    expect(lastLine(run.stderr)).toBe(r.summary);
  });
});

describe("gpu_check.py --mode gpu with recorded NVML answers (fake pynvml) and a torch that does not import", () => {
  const torchFailed = "import torch failed: ImportError: torch is hidden by test/fixtures/gpu-check/no-torch";

  it("a healthy H200: NVML, the product (from NVML names, as GFD does) and gpu_health pass; torch and a smoke import are the image's faults", () => {
    const run = runs.healthy;
    expect(run.stderr).not.toContain("Traceback");
    expect(run.status).toBe(1);
    const r = report(run);
    expect(r.verdict).toBe("image");
    const smokeFailed = "import no_such_module_xyz failed: ModuleNotFoundError: No module named 'no_such_module_xyz'";
    expect(r.reasons).toEqual([
      { check: "torch_import", fault: "image", detail: torchFailed },
      { check: "smoke_imports", fault: "image", detail: smokeFailed },
    ]);
    const c = byName(r);
    expect(c.torch_import).toEqual({ name: "torch_import", status: "fail", detail: torchFailed, fault: "image" });
    expect(c.smoke_imports).toEqual({
      name: "smoke_imports",
      status: "fail",
      detail: smokeFailed,
      modules: { json: "ok", no_such_module_xyz: "ModuleNotFoundError: No module named 'no_such_module_xyz'" },
      fault: "image",
    });
    expect(r.checks.map((x) => [x.name, x.status])).toEqual([
      ["torch_import", "fail"],
      ["cuda_version", "skip"],
      ["cuda_available", "skip"],
      ["driver_version", "pass"],
      ["nvml", "pass"],
      ["device_product", "pass"],
      ["matmul_correctness", "skip"],
      ["matmul_throughput", "skip"],
      ["memory_bandwidth", "skip"],
      ["nccl", "skip"],
      ["flash_attn", "skip"],
      ["smoke_imports", "fail"],
      ["gpu_health", "pass"],
    ]);
    expect(c.driver_version).toEqual({
      name: "driver_version",
      status: "pass",
      detail: "driver 570.124.06 >= 570.26 (read via pynvml)",
      required: "570.26",
      found: "570.124.06",
      source: "pynvml",
    });
    expect(c.nvml).toMatchObject({ status: "pass", count: 1, xidEvents: "monitored" });
    expect(c.nvml?.detail).toMatch(/^NVML \(pynvml.*\) sees 1 GPU\(s\): NVIDIA H200; Xid events monitored$/);
    expect(c.device_product).toEqual({
      name: "device_product",
      status: "pass",
      detail: "1x NVIDIA-H200 (NVML)",
      expected: "NVIDIA-H200",
      found: ["NVIDIA-H200"],
      source: "NVML",
    });
    expect(c.gpu_health?.status).toBe("pass");
    expect(c.gpu_health?.detail).toBe(
      "1 GPU(s): no uncorrected ECC errors, no pending row remaps or page retirements, power limits at default, no Xid events",
    );
    expect(c.gpu_health?.notes).toEqual([
      `GPU 0 (${UUID0}): PCIe link not judged (no samples under load; idle links may train down)`,
    ]);
    expect(r.device).toMatchObject({ torch: null, node: "gpu-node-1", driver: "570.124.06", driverSource: "pynvml", gpus: [IDENTITY0] });
    expect(r.device.nvml).toMatch(/^pynvml/);
    expect(r.summary).toBe(`IMAGE torch_import: ${torchFailed} (+1 more: smoke_imports [image])`);
    expect(lastLine(run.stderr)).toBe(r.summary);
    expect(readFileSync(run.log, "utf8")).toBe(`${r.summary}\n`);
  });

  it("a faulty 2-GPU node: every hardware fault named per GPU, verdict node, exit 3, the node fault first in the line", () => {
    const run = runs.faults;
    expect(run.stderr).not.toContain("Traceback");
    expect(run.status).toBe(3);
    const r = report(run);
    const health = byName(r).gpu_health;
    const problems = [
      `GPU 0 (${UUID0}): 2 uncorrected ECC error(s) since the driver loaded (volatile): drain the node and reset the GPU`,
      `GPU 0 (${UUID0}): a row remap is pending: reset the GPU (or reboot the node) to apply it`,
      `GPU 0 (${UUID0}): 16 of 18 NVLink links are up`,
      `GPU 1 (${UUID1}): power limit 500 W is below the board default 700 W: restore it (nvidia-smi -rpl or the node's power settings)`,
      `GPU 1 (${UUID1}): Xid 79 during the run: look it up in NVIDIA's Xid catalog; drain the node`,
    ].join("; ");
    expect(health).toMatchObject({ status: "fail", fault: "node", detail: problems, xidEvents: "monitored" });
    expect(health?.xids).toEqual([
      { index: 1, uuid: UUID1, xid: 79 },
      { index: 0, uuid: UUID0, xid: 13 },
    ]);
    expect((health?.gpus as { health: unknown }[]).map((g) => g.health)).toEqual([
      expect.objectContaining({
        eccVolatileUncorrected: 2,
        remappedRows: { correctable: 0, uncorrectable: 2, pending: true, failure: false },
        nvlink: { supported: 18, active: 16 },
      }),
      expect.objectContaining({ eccAggregateUncorrected: 3, power: { enforcedLimitW: 500, defaultLimitW: 700 } }),
    ]);
    expect(r).toMatchObject({ verdict: "node", exitCode: 3, device: { gpus: [IDENTITY0, IDENTITY1] } });
    expect(r.reasons.map((x) => [x.check, x.fault])).toEqual([
      ["torch_import", "image"],
      ["gpu_health", "node"],
    ]);
    expect(r.summary).toBe(`NODE gpu_health: ${problems} (+1 more: torch_import [image])`);
    expect(Buffer.byteLength(r.summary)).toBeLessThanOrEqual(1024);
    expect(readFileSync(run.log, "utf8")).toBe(`${r.summary}\n`);
    expect(lastLine(run.stderr)).toBe(r.summary);
  });
});

describe("gpu_check.py's GPU code paths on a CPU stand-in for torch.cuda (cuda_on_cpu.py; the figures mean nothing)", () => {
  beforeAll(requireTorch);
  const hot = ["hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown"];

  it("runs burst and sustained phases on both GPUs, samples NVML, and fails both measurements on GPU 1's throttling (node, exit 3)", () => {
    const run = runs.simulated;
    expect(run.stderr).not.toContain("Traceback");
    expect(run.status).toBe(3);
    const r = report(run);
    expect(r.verdict).toBe("node");
    expect(r.reasons.map((x) => [x.check, x.fault])).toEqual([
      ["matmul_throughput", "node"],
      ["memory_bandwidth", "node"],
    ]);
    const c = byName(r);
    expect(c.matmul_correctness?.status).toBe("pass"); // _disable_tf32 on torch 1.13 too
    for (const name of ["matmul_throughput", "memory_bandwidth"]) {
      const m = c[name] as Check & { sustained: { perDevice: { index: number; nvml: { gpu: number; faultReasons: string[]; clockReasons: Record<string, number>; samples: number } }[]; clockSamples: string; requiredRatio: number } };
      expect(m.detail).toMatch(/^NVML GPU 1 throttled for heat or power delivery: hw_slowdown in (\d+)\/\1 samples, sw_thermal_slowdown in \1\/\1 samples, hw_thermal_slowdown in \1\/\1 samples \(burst /);
      expect(m.sustained).toMatchObject({ clockSamples: "nvml", requiredRatio: 0.01 });
      // CUDA devices map to NVML GPUs by UUID; GPU 0 is only power-capped, which is not a fault.
      const [gpu0, gpu1] = m.sustained.perDevice;
      expect([gpu0?.index, gpu0?.nvml.gpu, gpu1?.index, gpu1?.nvml.gpu]).toEqual([0, 0, 1, 1]);
      expect(gpu0?.nvml.faultReasons).toEqual([]);
      expect(Object.keys(gpu0?.nvml.clockReasons ?? {})).toEqual(["sw_power_cap"]);
      expect(gpu1?.nvml.faultReasons).toEqual(hot);
      expect(gpu1?.nvml.samples).toBeGreaterThanOrEqual(1);
    }
    expect(c.nccl).toEqual({
      name: "nccl",
      status: "pass",
      detail:
        "NCCL 2.21.5: all-reduce (sum) across 2 GPUs is correct; 256 MiB: algbw 134.2 GB/s, busbw 134.2 GB/s " +
        "(floor 90.0 = 20% of the 450 GB/s NVLink link figure)",
      nccl: "2.21.5",
      worldSize: 2,
      bytes: 268435456,
      algBwGBps: 134.2,
      busBwGBps: 134.2,
      basisGBps: 450,
      basis: "NVLink",
      required: 0.2,
      floorGBps: 90,
    });
    // Under load the recorded links run at Gen5 x16: judged, and at full speed.
    expect(c.gpu_health?.detail).toBe(
      "2 GPU(s): no uncorrected ECC errors, no pending row remaps or page retirements, power limits at default, PCIe " +
        "links at full speed under load, 18 NVLink links up per GPU, no Xid events",
    );
    expect(r.summary).toMatch(/^NODE matmul_throughput: NVML GPU 1 throttled .* \(\+1 more: memory_bandwidth \[node\]\)$/);
    expect(lastLine(run.stderr)).toBe(r.summary);
  });

  it("writes every NVML sample of both phases to --samples-file, reasons decoded", () => {
    const rows = readFileSync(join(work, "simulated-samples.csv"), "utf8").trim().split("\n");
    expect(rows[0]).toBe("phase,t_s,gpu,sm_mhz,mem_mhz,power_w,temp_c,pcie_gen,pcie_width,reasons_mask,reasons");
    const seen = new Set(rows.slice(1).map((row) => row.split(",").filter((_, i) => [0, 2, 9, 10].includes(i)).join(",")));
    expect([...seen].sort()).toEqual([
      "copy,0,0x4,sw_power_cap",
      "copy,1,0x6c,sw_power_cap|hw_slowdown|sw_thermal_slowdown|hw_thermal_slowdown",
      "matmul,0,0x4,sw_power_cap",
      "matmul,1,0x6c,sw_power_cap|hw_slowdown|sw_thermal_slowdown|hw_thermal_slowdown",
    ]);
  });
});

describe("gpu_check.py usage errors", () => {
  beforeAll(requireTorch);
  it.each(USAGE_CASES.slice(0, 2))("%s (own process): exit 2, one stderr line, no traceback, no report, no termination log", (label, _args, message) => {
    const result = runs[label === USAGE_CASES[0]?.[0] ? "usage-0" : "usage-1"];
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(`${message}\n`);
    expect(existsSync(result.log)).toBe(false);
  });

  it.each(USAGE_CASES.slice(2))("%s (through main()): exit 2, one stderr line, no report, no termination log", (label, _args, message) => {
    expect(probe.usage[label]).toEqual({ code: 2, stdout: "", stderr: `${message}\n`, log: false });
  });
});

describe("gpu_check.py helpers (pure functions, NVML adapter on recordings, sampler)", () => {
  it("compare_versions, gfd_product and the /proc driver parser agree with lib/cuda.ts", () => {
    const pairs: [string, string][] = [
      ["570.26", "570.124.06"],
      ["570.124.06", "570.26"],
      ["570.26", "570.26.0"],
      ["535.104.05", "535.54.03"],
      ["99.0", "100.0"],
      ["580", "575.51.03"],
    ];
    const program = [
      "import json, sys",
      `sys.path.insert(0, ${JSON.stringify(CHECKS_DIR)})`,
      "import gpu_check as g",
      `pairs = json.loads(${JSON.stringify(JSON.stringify(pairs))})`,
      "print(json.dumps({",
      "  'compare': [g.compare_versions(a, b) for a, b in pairs],",
      "  'products': [g.gfd_product(n) for n in ['NVIDIA H100 80GB HBM3', 'NVIDIA A100-SXM4-40GB', 'NVIDIA H200', ' NVIDIA L4 ', 'NVIDIA A100 80GB PCIe', 'NVIDIA H200 NVL']],",
      "  'proc': [g.parse_proc_driver_version(t) for t in [",
      "    'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.124.06  Release Build  (dvs-builder@U16)  Tue Feb 25 2025\\n',",
      "    'NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\\n',",
      "    'garbage']],",
      "}))",
    ].join("\n");
    const result = spawnSync(PYTHON, ["-c", program], { encoding: "utf8", env: cleanEnv() as NodeJS.ProcessEnv });
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual({
      compare: pairs.map(([a, b]) => compareDriverVersions(a, b)),
      products: ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-40GB", "NVIDIA-H200", "NVIDIA-L4", "NVIDIA-A100-80GB-PCIe", "NVIDIA-H200-NVL"],
      proc: ["570.124.06", "535.104.05", null],
    });
  });

  it("decodes NVML clocks event reason bitmasks bit by bit, and picks out heat and power-delivery faults", () => {
    expect(probe.decode).toEqual({
      "0x0": [],
      "0x1": ["gpu_idle"],
      "0x4": ["sw_power_cap"],
      "0x24": ["sw_power_cap", "sw_thermal_slowdown"],
      "0x48": ["hw_slowdown", "hw_thermal_slowdown"],
      "0xc8": ["hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"],
      "0x1ff": [
        "gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost", "sw_thermal_slowdown",
        "hw_thermal_slowdown", "hw_power_brake_slowdown", "display_clock_setting",
      ],
      "0x1000": ["unknown_0x1000"],
      "0x2008": ["hw_slowdown", "unknown_0x2000"],
    });
    // A GPU at full load meets its power limit by design: sw_power_cap (and application clocks) are not faults.
    expect(probe.faultReasons).toEqual({
      "0x4": [],
      "0x24": ["sw_thermal_slowdown"],
      "0x48": ["hw_slowdown", "hw_thermal_slowdown"],
      "0x80": ["hw_power_brake_slowdown"],
      "0x2": [],
    });
  });

  it("computes bus bandwidth as nccl-tests does: busbw = algbw * 2(n-1)/n (256 MiB in 1 ms)", () => {
    expect(probe.busbw).toEqual({
      "1": [268.435456, 0],
      "2": [268.435456, 268.435456],
      "4": [268.435456, 402.653184],
      "8": [268.435456, 469.762048],
    });
  });

  it("parses --product-thresholds (inline or @file) and reports every problem with its key path", () => {
    const valid = { "NVIDIA-H200": { matmulFraction: 0.75, busbwFraction: 0.5 }, "NVIDIA-L4": { bandwidthFraction: 0.6 } };
    expect(probe.thresholds.valid).toEqual({ ok: valid });
    expect(probe.thresholds.fromFile).toEqual({ ok: valid });
    expect(probe.thresholds.notJson.error).toBe(
      "--product-thresholds: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); " +
        'pass an object such as \'{"NVIDIA-H200": {"matmulFraction": 0.75}}\' or @FILE',
    );
    expect(probe.thresholds.notObject.error).toBe("--product-thresholds: must be a JSON object keyed by product, got [1]");
    expect(probe.thresholds.problems.error).toBe(
      `--product-thresholds: NVIDIA-H999: unknown product (known: ${KNOWN}); ` +
        "NVIDIA-H200.matmulFraction: must be a number in (0, 1], got 1.5; NVIDIA-H200.tflops: unknown key (use matmulFraction, " +
        "bandwidthFraction, sustainedRatio, busbwFraction); NVIDIA-H200.bandwidthFraction: must be a number in (0, 1], got true; " +
        'NVIDIA-L4: must be an object such as {"matmulFraction": 0.75}, got 0.7',
    );
    expect(probe.thresholds.missingFile.error).toBe("--product-thresholds: cannot read /nonexistent/thresholds.json: No such file or directory");
  });

  it("resolves thresholds: the product's override, then the flag (either spelling), then the default", () => {
    expect(probe.resolved.overridden).toEqual({
      matmulFraction: 0.75,
      bandwidthFraction: 0.9,
      sustainedRatio: 0.8,
      busbwFraction: 0.5,
      sources: { matmulFraction: "override", bandwidthFraction: "flag", sustainedRatio: "flag", busbwFraction: "override" },
    });
    expect(probe.resolved.noOverrides).toEqual({
      matmulFraction: 0.7,
      bandwidthFraction: 0.9,
      sustainedRatio: 0.8,
      busbwFraction: 0.2,
      sources: { matmulFraction: "default", bandwidthFraction: "flag", sustainedRatio: "flag", busbwFraction: "default" },
    });
    // A command line without the issue #15 flags parses to the same namespace as before (the Job side compares it).
    expect(probe.resolved.namespaceKeys).toEqual([
      "bandwidth_bytes", "bandwidth_fraction", "datasheets", "expect_cuda", "expect_gpus", "expect_product", "flash_attn",
      "matmul_fraction", "matmul_size", "min_driver", "mode", "smoke_imports", "termination_log",
    ]);
    expect(probe.resolved.optionDefaults).toEqual({
      sustain_seconds: 30,
      sustained_ratio: 0.85,
      busbw_fraction: 0.2,
      product_thresholds: null,
      samples_file: null,
      // --report-configmap (issue #15; test/images/gpu-check-report.test.ts): off unless given.
      report_configmap: null,
      serviceaccount_dir: "/var/run/secrets/kubernetes.io/serviceaccount",
    });
  });

  it("gives the verdict: node outranks image, the fault defaults per check, exit 0/1/3", () => {
    expect(probe.verdict.pass).toEqual(["pass", 0]);
    expect(probe.verdict.image).toEqual([
      "image",
      [
        { check: "cuda_version", fault: "image", detail: "cuda_version d" },
        { check: "smoke_imports", fault: "image", detail: "smoke_imports d" },
      ],
      1,
    ]);
    expect(probe.verdict.mixed).toEqual([
      "node",
      [
        { check: "cuda_version", fault: "image", detail: "cuda_version d" },
        { check: "driver_version", fault: "node", detail: "driver_version d" },
        { check: "flash_attn", fault: "image", detail: "flash_attn d" }, // no fault given: flash_attn's default
        { check: "gpu_health", fault: "node", detail: "gpu_health d" },
      ],
      3,
    ]);
  });

  it("writes one summary line per verdict, with burst and sustained figures, and cuts it at 1024 bytes", () => {
    expect(probe.summary.pass).toBe(
      "PASS 13/13 checks (0 skipped) matmul=781.2TF/s (sustained 760.3) bw=4210GB/s (sustained 4188) 74.2s",
    );
    expect(probe.summary.image).toBe("IMAGE cuda_version: cuda_version d (+1 more: smoke_imports [image])");
    expect(probe.summary.mixed).toBe(
      "NODE driver_version: driver_version d (+3 more: cuda_version [image], flash_attn [image], gpu_health [node])",
    );
    expect(probe.summary.longBytes).toBe(1024);
    expect(probe.summary.long).toMatch(/^IMAGE smoke_imports: smoke_imports é+\.\.\.$/);
  });

  it("tells image from node when CUDA sees no or too few GPUs", () => {
    expect(probe.classifyDevices).toEqual({
      cpuBuild: ["image", "this torch is a CPU build"],
      cvdEmpty: ["image", "CUDA_VISIBLE_DEVICES='' in the container's environment hides GPUs (NVML sees 1): the image must not set it"],
      cvdSubset: ["image", "CUDA_VISIBLE_DEVICES='0' in the container's environment hides GPUs (NVML sees 8): the image must not set it"],
      nvmlCountWrong: [
        "node",
        "the container holds 1 GPU(s) (NVML) where 2 were requested: the node's device plugin or container runtime handed out the wrong devices",
      ],
      driverTooOld: [
        "node",
        "CUDA cannot initialise: RuntimeError: The NVIDIA driver on your system is too old (found version 11040). " +
          "(the node's driver is older than this image's CUDA runtime needs)",
      ],
      fabricManager: [
        "node",
        "CUDA cannot initialise: RuntimeError: Unexpected error from cudaGetDeviceCount(). Error 802: system not yet " +
          "initialized (on NVSwitch systems this means the node's fabric manager is not running)",
      ],
      compat803: [
        "image",
        "CUDA cannot initialise: RuntimeError: Error 803: system has unsupported display driver / cuda driver combination " +
          "(the image's CUDA compatibility libraries do not match the node's driver)",
      ],
      noDevice: [
        "node",
        "torch is built for CUDA 12.8 but no GPU is in the container: the pod requests nvidia.com/gpu, so the node's " +
          "NVIDIA container runtime did not inject it",
      ],
      someMissing: ["node", "CUDA initialises 7 of the 8 GPU(s) the pod requested"],
    });
    expect(probe.classifyError).toEqual({ ecc: "node", arch: "image", other: "node" });
  });

  it("summarises sustained-phase samples: steady-state clocks and power from the second half, reasons over all", () => {
    expect(probe.samples).toEqual({
      "0": {
        samples: 4,
        steadySamples: 3,
        smClockMHz: { median: 1710, min: 1695, max: 1755 },
        memClockMHz: { median: 3201, min: 3201, max: 3201 },
        powerW: { median: 700, min: 699.5, max: 700.1 },
        temperatureC: { max: 76 },
        clockReasons: { sw_power_cap: 4, sw_thermal_slowdown: 1 },
        faultReasons: ["sw_thermal_slowdown"],
        pcieGen: 5,
        pcieWidth: 16,
      },
      "1": {
        samples: 1,
        steadySamples: 1,
        smClockMHz: { median: null, min: null, max: null },
        memClockMHz: { median: null, min: null, max: null },
        powerW: { median: null, min: null, max: null },
        temperatureC: { max: null },
        clockReasons: {},
        faultReasons: [],
        pcieGen: 4,
        pcieWidth: 8,
      },
    });
  });

  it("reads a healthy H200 recording through the NVML adapter: identity, one sample, the health block", () => {
    expect(probe.healthy.source).toMatch(/^pynvml/);
    expect(probe.healthy).toMatchObject({ count: 1, identities: [IDENTITY0], xid: "monitored" });
    expect(probe.healthy.sample).toEqual({
      smClockMHz: 345,
      memClockMHz: 3201,
      powerW: 75.3,
      temperatureC: 32,
      reasons: 1,
      pcieGen: 1,
      pcieWidth: 16,
    });
    expect(probe.healthy.health).toEqual({
      eccEnabled: true,
      eccVolatileUncorrected: 0,
      eccAggregateUncorrected: 0,
      remappedRows: { correctable: 0, uncorrectable: 0, pending: false, failure: false },
      retiredPages: null,
      pcie: { gen: 1, width: 16, maxGen: 5, maxWidth: 16, replays: 0 },
      nvlink: { supported: 18, active: 18 },
      power: { enforcedLimitW: 700, defaultLimitW: 700 },
      maxClocks: { smMHz: 1980, memMHz: 3201 },
      unreadable: {},
    });
    expect(probe.healthy.evaluate).toEqual([
      [],
      [`GPU 0 (${UUID0}): PCIe link not judged (no samples under load; idle links may train down)`],
    ]);
    // Gen1 at idle is normal; Gen4 while the sustained phase ran is a link that trained down.
    expect(probe.healthy.evaluateLoadedGen4).toEqual([
      `GPU 0 (${UUID0}): PCIe link runs Gen4 x16 under load where Gen5 x16 is possible: reseat the GPU or check the slot and riser`,
    ]);
  });

  it("reads a faulty recording: Xid events by GPU, problems (node faults) and notes; NVLink judged only for multi-GPU pods", () => {
    expect(probe.faults.xids).toEqual([
      { index: 1, uuid: UUID1, xid: 79 },
      { index: 0, uuid: UUID0, xid: 13 },
    ]);
    const [problems, notes] = probe.faults.evaluate as [string[], string[]];
    expect(problems).toEqual([
      `GPU 0 (${UUID0}): 2 uncorrected ECC error(s) since the driver loaded (volatile): drain the node and reset the GPU`,
      `GPU 0 (${UUID0}): a row remap is pending: reset the GPU (or reboot the node) to apply it`,
      `GPU 0 (${UUID0}): 16 of 18 NVLink links are up`,
      `GPU 1 (${UUID1}): power limit 500 W is below the board default 700 W: restore it (nvidia-smi -rpl or the node's power settings)`,
      `GPU 1 (${UUID1}): Xid 79 during the run: look it up in NVIDIA's Xid catalog; drain the node`,
    ]);
    expect(notes).toEqual([
      `GPU 0 (${UUID0}): 2 uncorrected ECC error(s) over the GPU's lifetime (aggregate)`,
      `GPU 0 (${UUID0}): PCIe link not judged (no samples under load; idle links may train down)`,
      `GPU 1 (${UUID1}): 3 uncorrected ECC error(s) over the GPU's lifetime (aggregate)`,
      `GPU 1 (${UUID1}): PCIe link not judged (no samples under load; idle links may train down)`,
      `GPU 0 (${UUID0}): Xid 13 during the run (application-class)`,
    ]);
    const [oneGpuProblems, oneGpuNotes] = probe.faults.evaluateOneGpuPod as [string[], string[]];
    expect(oneGpuProblems).toEqual(problems.filter((p) => !p.includes("NVLink") && !p.includes("Xid")));
    expect(oneGpuNotes.at(-1)).toBe("Xid events unsupported (x)");
  });

  it("reports NVML that will not start as a node fault, and pynvml's absence (above) as the image's", () => {
    expect(probe.noDriver).toEqual({
      fault: "node",
      detail:
        "nvml unavailable: nvmlInit failed (Driver Not Loaded); the container has no working libnvidia-ml.so.1: the " +
        "node's NVIDIA container runtime must mount the driver's utility libraries (NVIDIA_DRIVER_CAPABILITIES includes utility)",
    });
  });

  it("samples clocks, power and reasons on a thread, in order, and finds the throttling a hot GPU shows", () => {
    expect(probe.sampler).toEqual({
      atLeast4: true,
      first3: [
        { gpu: 0, smClockMHz: 1980, powerW: 699, temperatureC: 71, reasons: 4, pcieGen: 5 },
        { gpu: 0, smClockMHz: 1755, powerW: 700, temperatureC: 84, reasons: 36, pcieGen: 5 },
        { gpu: 0, smClockMHz: 1410, powerW: 652, temperatureC: 91, reasons: 72, pcieGen: 5 },
      ],
      ordered: true,
      faultReasons: ["hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown"],
    });
  });

  it("turns TF32 off for the fp32 reference on torch 1.13 (AssertionError on unknown names) and on torch >= 2.9", () => {
    expect(probe.disableTf32).toEqual({ torch113: { set_allow_tf32: false }, torch29: { fp32_precision: "ieee" } });
  });

  it("record_nvml writes the format the fake pynvml replays (record, replay, same answers)", () => {
    expect(probe.recordRoundTrip).toBe(true);
  });
});

describe("the proof script (images/checks/proof/prove.sh)", () => {
  it("helpers: README markers, the fault injections and their expected verdicts, preflight reasons, assertions", () => {
    expect(probe.prove.replace).toBe("a\n<!-- prove:begin -->\nnew\n<!-- prove:end -->\nb\n");
    expect(probe.prove.replaceError).toBe("README must hold <!-- prove:begin --> and <!-- prove:end --> once each, in that order");
    const base = ["--expect-gpus", "1", "--expect-product", "NVIDIA-H200", "--min-driver", "570"];
    const fast = ["--sustain-seconds", "0"];
    expect(probe.prove.faultCases).toEqual([
      ["fault-wrong-product", ["--expect-gpus", "1", "--expect-product", "NVIDIA-A100-80GB-PCIe", "--min-driver", "570", ...fast], {}, 3, "node", ["device_product"]],
      ["fault-min-driver-999", ["--expect-gpus", "1", "--expect-product", "NVIDIA-H200", "--min-driver", "999.0", ...fast], {}, 3, "node", ["driver_version"]],
      ["fault-more-gpus", ["--expect-gpus", "2", "--expect-product", "NVIDIA-H200", "--min-driver", "570", ...fast], {}, 3, "node", ["cuda_available", "nvml"]],
      ["fault-no-visible-device", [...base, ...fast], { CUDA_VISIBLE_DEVICES: "" }, 1, "image", ["cuda_available"]],
      ["fault-nccl-no-interface", [...base, ...fast], { NCCL_SOCKET_IFNAME: "wbnosuchif0" }, 1, "image", ["nccl"]],
    ]);
    expect(probe.prove.preflightCpu).toEqual([
      "torch 1.13.0 is a CPU build: run with a python that has a CUDA build of torch",
      "pynvml is missing: pip install nvidia-ml-py (one pure-Python file; copy its pynvml.py onto PYTHONPATH where there is no network)",
    ]);
    expect(probe.prove.preflightUnknown).toEqual(["NVIDIA-B200 has no row in datasheets.json: add one with its datasheet source"]);
    expect(probe.prove.assertFault).toEqual({
      ok: [],
      wrong: [
        "fault-x: expected exit 3 (node), got exit 1 (image): IMAGE cuda_available: no",
        "fault-x: expected nvml to fail; failed: cuda_available",
        "fault-x: last stderr line 'IMAGE cuda_available: no' is not the NODE summary",
      ],
    });
  });

  it.skipIf(hasCuda)("refuses to run without a GPU: exit 1, the reasons listed, the README untouched [runs where there is no GPU]", () => {
    requireTorch();
    const run = runs.prove;
    expect(run.status).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      "prove.sh: cannot prove gpu_check.py here:\n" +
        "  - torch 1.13.0a0 is a CPU build: run with a python that has a CUDA build of torch\n" +
        "  - pynvml is missing: pip install nvidia-ml-py (one pure-Python file; copy its pynvml.py onto PYTHONPATH where there is no network)\n",
    );
    expect(readFileSync(README, "utf8")).toBe(readmeBefore);
  });

  it("the README keeps the markers prove.sh writes between, and says the figures await a run", () => {
    const text = readFileSync(README, "utf8");
    const section = text.split("<!-- prove:begin -->")[1]?.split("<!-- prove:end -->")[0] ?? "";
    expect(text.split("<!-- prove:begin -->")).toHaveLength(2);
    expect(text.split("<!-- prove:end -->")).toHaveLength(2);
    if (!/Run by `bash images\/checks\/proof\/prove\.sh`/.test(section)) {
      expect(section.trim()).toMatch(/^_Awaiting a run on an NVIDIA GPU/);
    }
  });
});

/**
 * The measurements that need CUDA: they run on a GPU machine (GPU_CHECK_PYTHON with a CUDA torch and pynvml) and
 * are skipped here with the reason in their name.
 */
describe("on an NVIDIA GPU (GPU_CHECK_PYTHON)", () => {
  function gpuPython(program: string, timeout = 300_000): unknown {
    const r = spawnSync(GPU_PYTHON, ["-c", `import json, sys\nsys.path.insert(0, ${JSON.stringify(CHECKS_DIR)})\nimport gpu_check as g\n${program}`], {
      encoding: "utf8",
      env: cleanEnv() as NodeJS.ProcessEnv,
      timeout,
    });
    if (r.status !== 0) throw new Error(`GPU probe failed (${r.status}):\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split("\n").pop() ?? "null");
  }

  it.skipIf(!hasCuda)(`time_burst warms up >= 0.3 s however short the call (no 200-call cap) [${NO_GPU}]`, () => {
    const out = gpuPython(
      "import torch\nsrc = torch.empty(1 << 18, device='cuda:0').uniform_(); dst = torch.empty_like(src)\n" +
        "print(json.dumps(g.time_burst(torch, lambda: dst.copy_(src))))",
    ) as { seconds: number; inner: number; warmupSeconds: number; warmupCalls: number };
    expect(out.warmupSeconds).toBeGreaterThanOrEqual(0.3);
    expect(out.warmupCalls).toBeGreaterThan(200);
    expect(out.seconds).toBeGreaterThan(0);
  });

  it.skipIf(!hasCuda)(`bf16_matmul_error on cuda:0 is bf16 rounding, not garbage (TF32 off for the reference) [${NO_GPU}]`, () => {
    const out = gpuPython("import torch\ng._disable_tf32(torch)\nprint(json.dumps(g.bf16_matmul_error(torch, 1024, 'cuda:0', 1234)))") as number;
    expect(out).toBeGreaterThan(1e-4);
    expect(out).toBeLessThan(1e-2);
  });

  it.skipIf(!hasCuda)(`run_sustained keeps every GPU busy in timed windows for the whole phase [${NO_GPU}]`, () => {
    const out = gpuPython(
      "import torch\nops = []\nfor d in range(torch.cuda.device_count()):\n" +
        "    a = torch.randn((2048, 2048), device=f'cuda:{d}').to(torch.bfloat16); c = torch.empty_like(a)\n" +
        "    ops.append((d, (lambda a=a, c=c: torch.matmul(a, a, out=c)), 1e-3))\n" +
        "w, elapsed = g.run_sustained(torch, ops, 2.0)\n" +
        "print(json.dumps({'elapsed': elapsed, 'windows': {d: len(v) for d, v in w.items()}, 'steady': [g.steady_seconds(v) for v in w.values()]}))",
    ) as { elapsed: number; windows: Record<string, number>; steady: number[] };
    expect(out.elapsed).toBeGreaterThanOrEqual(2);
    for (const n of Object.values(out.windows)) expect(n).toBeGreaterThanOrEqual(3);
    for (const s of out.steady) expect(s).toBeGreaterThan(0);
  });

  it.skipIf(!hasCuda)(`run_nccl forms a real NCCL communicator (one rank on one GPU, busbw on several) [${NO_GPU}]`, () => {
    const out = gpuPython("import torch\nprint(json.dumps({'n': torch.cuda.device_count(), 'r': g.run_nccl(torch.cuda.device_count())}))") as {
      n: number;
      r: { status: string; seconds: number | null };
    };
    expect(out.r.status).toBe("ok");
    if (out.n >= 2) expect(out.r.seconds).toBeGreaterThan(0);
    else expect(out.r.seconds).toBeNull();
  });

  it.skipIf(!hasCuda)(`the NVML adapter reads this machine's GPUs, and record_nvml records them [${NO_GPU}]`, () => {
    const out = gpuPython(
      "nv = g.Nvml.open(); nv.start_xid_monitoring()\n" +
        "print(json.dumps({'ids': nv.identities, 'health': [nv.health(i) for i in range(nv.count)], 'sample': nv.sample(0), 'xid': nv.xid_status, " +
        `'recorded': len(g.record_nvml(${JSON.stringify(join(tmpdir(), "gpu-check-nvml-recording.json"))})['devices'])}))\nnv.close()`,
    ) as { ids: { uuid: string }[]; health: { pcie: { maxGen: number } }[]; sample: { smClockMHz: number }; recorded: number };
    expect(out.ids.length).toBeGreaterThan(0);
    expect(out.recorded).toBe(out.ids.length);
    for (const id of out.ids) expect(id.uuid).toMatch(/^GPU-/);
    expect(out.sample.smClockMHz).toBeGreaterThan(0);
  });

  it.skipIf(!hasCuda)(`gpu mode passes on this machine's GPUs with burst and sustained figures [${NO_GPU}]`, async () => {
    const info = gpuPython(
      "import torch\nv, _ = g.read_driver_version()\n" +
        "print(json.dumps({'n': torch.cuda.device_count(), 'cuda': '.'.join(torch.version.cuda.split('.')[:2]), 'product': g.gfd_product(torch.cuda.get_device_name(0)), 'driver': v}))",
    ) as { n: number; cuda: string; product: string; driver: string };
    const run = await check(
      "gpu-real",
      ["--mode", "gpu", "--expect-cuda", info.cuda, "--expect-gpus", String(info.n), "--expect-product", info.product, "--min-driver", info.driver, "--sustain-seconds", "3"],
      {},
      GPU_PYTHON,
    );
    const r = report(run);
    expect(r.summary).toMatch(/^PASS 13\/13 checks/);
    expect(run.status).toBe(0);
    const c = byName(r);
    for (const name of ["matmul_throughput", "memory_bandwidth"]) {
      expect(c[name]?.warmupSeconds).toBeGreaterThanOrEqual(0.3);
      expect((c[name]?.sustained as { seconds: number; clockSamples: string }).seconds).toBeGreaterThanOrEqual(2.7);
      expect((c[name]?.sustained as { clockSamples: string }).clockSamples).toBe("nvml");
    }
    expect(c.nccl?.worldSize).toBe(info.n);
  }, 600_000);
});
