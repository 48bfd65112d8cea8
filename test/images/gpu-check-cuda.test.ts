/**
 * gpu_check.py's functions that need CUDA and are not covered one by one in gpu-check.test.ts ("on an NVIDIA GPU"):
 * the matmul correctness and throughput checks themselves (burst, then a short sustained phase with NVML samples),
 * the CUDA → NVML mapping by UUID, CUDA initialisation and the driver's CUDA version, and flash-attn's forward. They
 * run where /dev/nvidiactl exists and GPU_CHECK_PYTHON (default /usr/bin/python3) has a CUDA torch and pynvml, and
 * are skipped elsewhere, saying why in their names. Their CPU-runnable logic is covered in gpu-check.test.ts (the
 * CPU stand-in for torch.cuda, recorded NVML answers).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/paths";

const CHECKS_DIR = resolve(PROJECT_ROOT, "images", "checks");
const GPU_PYTHON = process.env.GPU_CHECK_PYTHON ?? "/usr/bin/python3";
const hasCuda =
  existsSync("/dev/nvidiactl") &&
  spawnSync(GPU_PYTHON, ["-c", "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"], { timeout: 120_000 }).status === 0;
const hasFlashAttn = hasCuda && spawnSync(GPU_PYTHON, ["-c", "import flash_attn"], { timeout: 120_000 }).status === 0;
const NO_GPU = "skipped here: needs an NVIDIA GPU and GPU_CHECK_PYTHON with a CUDA torch and pynvml; this machine has no GPU";
const NO_FLASH = hasCuda
  ? "skipped here: GPU_CHECK_PYTHON has no flash_attn (the check runs only in images that ship it)"
  : NO_GPU;

/**
 * A Context as main() builds it after cuda_available passed: this machine's GPUs, its product's datasheet row
 * (NVIDIA-H200's where the product has none, so the figures are judged against some row), NVML open.
 */
const CONTEXT = `
import torch
n = torch.cuda.device_count()
product = g.gfd_product(torch.cuda.get_device_name(0))
table = g.load_table(g.build_parser().get_default("datasheets"))
if product not in table["products"]:
    product = "NVIDIA-H200"
argv = ["--mode", "gpu", "--expect-cuda", ".".join(torch.version.cuda.split(".")[:2]), "--expect-gpus", str(n),
        "--expect-product", product, "--min-driver", "1.0", "--sustain-seconds", "2", "--matmul-size", "4096",
        "--bandwidth-bytes", str(1 << 28), "--matmul-fraction", "0.000001", "--bandwidth-fraction", "0.000001",
        "--sustained-ratio", "0.01"]
a = g.parse_args(argv)
ctx = g.Context(a, g.load_datasheet(a.datasheets, product), table, g.resolve_thresholds(a, argv, None))
ctx.torch = torch
ctx.cuda_ok = True
ctx.device_count = n
ctx.device_names = [torch.cuda.get_device_name(d) for d in range(n)]
ctx.open_nvml()
g._disable_tf32(torch)
`;

function gpuPython(program: string, timeout = 300_000): unknown {
  const { CUDA_VISIBLE_DEVICES: _c, PYTHONPATH: _p, ...env } = process.env;
  const r = spawnSync(GPU_PYTHON, ["-c", `import json, os, sys\nos.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")\nsys.path.insert(0, ${JSON.stringify(CHECKS_DIR)})\nimport gpu_check as g\n${CONTEXT}\n${program}`], {
    encoding: "utf8",
    env: { ...env, PYTHONDONTWRITEBYTECODE: "1" },
    timeout,
  });
  if (r.status !== 0) throw new Error(`GPU probe failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "null");
}

describe("gpu_check.py's CUDA code paths, one by one (GPU_CHECK_PYTHON)", () => {
  it.skipIf(!hasCuda)(`CUDA initialises, and device_info reads the driver's CUDA version [${NO_GPU}]`, () => {
    const out = gpuPython("print(json.dumps({'init': g._cuda_init_error(torch), 'info': g.device_info(ctx)}))") as {
      init: string | null;
      info: { driverCudaVersion: string | null; cudaDeviceCount: number; gpus: { uuid: string }[] };
    };
    expect(out.init).toBeNull();
    expect(out.info.driverCudaVersion).toMatch(/^\d+\.\d+$/);
    expect(out.info.gpus).toHaveLength(out.info.cudaDeviceCount);
  });

  it.skipIf(!hasCuda)(`maps every CUDA device to the NVML GPU with the same UUID [${NO_GPU}]`, () => {
    const out = gpuPython(
      "m = ctx.cuda_to_nvml()\n" +
        "print(json.dumps({'n': n, 'map': {str(k): v for k, v in m.items()}, 'cuda': [str(torch.cuda.get_device_properties(d).uuid) if hasattr(torch.cuda.get_device_properties(d), 'uuid') else None for d in range(n)], 'nvml': [i['uuid'] for i in ctx.nvml.identities]}))",
    ) as { n: number; map: Record<string, number>; cuda: (string | null)[]; nvml: string[] };
    expect(Object.keys(out.map)).toHaveLength(out.n);
    out.cuda.forEach((uuid, d) => {
      if (uuid !== null) expect(out.nvml[out.map[String(d)]!]!.toLowerCase().replace("gpu-", "")).toBe(uuid.toLowerCase().replace("gpu-", ""));
    });
  });

  it.skipIf(!hasCuda)(`check_matmul_correctness passes on every GPU: bf16 rounding against the fp32 reference [${NO_GPU}]`, () => {
    const out = gpuPython("print(json.dumps(g.check_matmul_correctness(ctx)))") as { status: string; relError: number; tolerance: number; size: number };
    expect(out.status).toBe("pass");
    expect(out.relError).toBeGreaterThan(1e-4);
    expect(out.relError).toBeLessThanOrEqual(out.tolerance);
    expect(out.size).toBe(4096);
  });

  it.skipIf(!hasCuda)(`check_matmul_throughput and check_memory_bandwidth: burst per GPU, then a sustained phase sampled through NVML [${NO_GPU}]`, () => {
    const out = gpuPython("print(json.dumps({'n': n, 'mm': g.check_matmul_throughput(ctx), 'bw': g.check_memory_bandwidth(ctx), 'rows': len(ctx.sample_rows)}))", 600_000) as {
      n: number;
      rows: number;
      mm: Record<string, any>;
      bw: Record<string, any>;
    };
    for (const [c, unit] of [
      [out.mm, "tflops"],
      [out.bw, "gbps"],
    ] as const) {
      expect(c["status"]).toBe("pass");
      expect(c["perDevice"]).toHaveLength(out.n);
      expect(c[unit]).toBeGreaterThan(0);
      expect(c["warmupSeconds"]).toBeGreaterThanOrEqual(0.3);
      expect(c["sustained"]["seconds"]).toBeGreaterThanOrEqual(1.8);
      expect(c["sustained"]["clockSamples"]).toBe("nvml");
      expect(c["sustained"]["perDevice"]).toHaveLength(out.n);
      for (const d of c["sustained"]["perDevice"]) {
        expect(d["windows"]).toBeGreaterThanOrEqual(2);
        expect(d["nvml"]["samples"]).toBeGreaterThanOrEqual(3);
        expect(d["nvml"]["smClockMHz"]["median"]).toBeGreaterThan(0);
        expect(d["nvml"]["powerW"]["median"]).toBeGreaterThan(0);
      }
    }
    expect(out.rows).toBeGreaterThan(0);
  }, 600_000);

  it.skipIf(!hasFlashAttn)(`check_flash_attn: a causal forward matches fp32 softmax attention [${NO_FLASH}]`, () => {
    const out = gpuPython("print(json.dumps(g.check_flash_attn(ctx)))") as { status: string; relError: number };
    expect(out.status).toBe("pass");
    expect(out.relError).toBeLessThanOrEqual(1e-2);
  });
});
