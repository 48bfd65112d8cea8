#!/usr/bin/env python3
"""Workbench GPU image check.

Runs inside a freshly built GPU image, as a Kubernetes Job on a GPU node pool (the program mounts this directory
at /opt/workbench-checks), and answers one question: does this image work on this pool's hardware and driver?
It checks the torch build, the CUDA runtime, the driver floor, the GPU product, bf16 matmul correctness and speed,
memory bandwidth, NCCL, flash-attn and a list of imports, then prints one JSON report on stdout and a one-line
summary to the termination log. See README.md beside this file for every check, flag and exit code.

Needs Python 3.9+, the standard library and torch (1.13 and 2.x both work). Never uses the network.
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import math
import multiprocessing
import os
import queue
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time

REPORT_VERSION = 1
EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Report order. Names are part of the report format: change them only together with README.md and the tests.
CHECK_NAMES = (
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
)
# Checks that need a GPU: `--mode cpu` skips them with detail "cpu mode".
GPU_ONLY = frozenset(
    {
        "cuda_available",
        "driver_version",
        "device_product",
        "matmul_throughput",
        "memory_bandwidth",
        "nccl",
        "flash_attn",
    }
)

CPU_MATMUL_SIZE = 256  # the CPU correctness check only proves bf16 GEMM is wired up: keep it tiny
MATMUL_TOLERANCE = 1e-2  # relative Frobenius error of bf16 GEMM (fp32 accumulate) against an fp32 reference
# CPU builds may accumulate bf16 GEMMs in bf16: Debian's torch 1.13 (generic BLAS) measures 1.2e-3 * sqrt(k), i.e.
# 0.019 at k = 256, where cuBLAS (fp32 accumulate) gives 1.7e-3 at any k. Garbage output is still ~1.
CPU_MATMUL_TOLERANCE = 5e-2
FLASH_ATTN_TOLERANCE = 1e-2
NCCL_TIMEOUT_S = 120.0
TERMINATION_LOG_MAX = 1024  # Kubernetes keeps 4096 bytes of it; one readable line is the point
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
DRIVER_VERSION = re.compile(r"^\d+(\.\d+)*$")
CUDA_VERSION = re.compile(r"^\d+\.\d+$")


class UsageError(Exception):
    """Bad flags or inputs: exit 2 with one line on stderr, never a traceback."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage block plus the error and exits 2; we want exactly one line.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _fraction():
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}") from None
        if not (0.0 < value <= 1.0) or math.isnan(value):
            raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
        return value

    return parse


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not (low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _matching(pattern: re.Pattern, example: str):
    def parse(text: str) -> str:
        if not pattern.match(text):
            raise argparse.ArgumentTypeError(f"must look like {example!r}, got {text!r}")
        return text

    return parse


def _module_list(text: str) -> list:
    names = [part.strip() for part in text.split(",")]
    bad = [n for n in names if not MODULE_NAME.match(n)]
    if bad:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated module names such as 'torch,transformers'; "
            f"invalid: {', '.join(repr(b) for b in bad)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    here = os.path.dirname(os.path.abspath(__file__))
    p = _Parser(
        prog="gpu_check.py",
        description="Check a GPU image on a GPU node: torch/CUDA build, driver floor, GPU product, bf16 matmul, "
        "memory bandwidth, NCCL, flash-attn and imports. Prints one JSON report on stdout.",
        allow_abbrev=False,
    )
    p.add_argument("--mode", required=True, choices=("gpu", "cpu"), help="gpu: full check; cpu: no-GPU subset")
    p.add_argument("--expect-cuda", required=True, type=_matching(CUDA_VERSION, "12.8"),
                   help="CUDA major.minor torch must be built for")
    p.add_argument("--expect-gpus", required=True, type=_int_in(1, 64),
                   help="exact number of GPUs the pod must see")
    p.add_argument("--expect-product", required=True,
                   help="the pool's nvidia.com/gpu.product label, e.g. NVIDIA-H200")
    p.add_argument("--min-driver", required=True, type=_matching(DRIVER_VERSION, "570.26"),
                   help="lowest NVIDIA driver version the image's CUDA runtime accepts")
    p.add_argument("--matmul-fraction", type=_fraction(), default=0.7,
                   help="required share of the datasheet dense BF16 peak (default 0.7)")
    p.add_argument("--bandwidth-fraction", type=_fraction(), default=0.8,
                   help="required share of the datasheet memory bandwidth (default 0.8)")
    p.add_argument("--flash-attn", choices=("required", "absent"), default="absent",
                   help="required: import flash_attn and run a forward; absent (default): skip")
    p.add_argument("--smoke-imports", type=_module_list, default=[],
                   help="comma-separated modules that must import, e.g. torch,transformers")
    p.add_argument("--datasheets", default=os.path.join(here, "datasheets.json"),
                   help="datasheet table (default: datasheets.json beside this script)")
    p.add_argument("--termination-log", default="/dev/termination-log",
                   help="where the one-line summary goes; skipped if its directory does not exist")
    p.add_argument("--matmul-size", type=_int_in(64, 65536), default=8192,
                   help="n for the n x n x n bf16 matmul (default 8192)")
    p.add_argument("--bandwidth-bytes", type=_int_in(1 << 20, 1 << 40), default=1 << 30,
                   help="size of the buffer copied device-to-device (default 1 GiB)")
    return p


def parse_args(argv: list) -> argparse.Namespace:
    parser = build_parser()
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentTypeError as err:  # raised by type= callables on some Python versions
        raise UsageError(str(err)) from None


def load_datasheet(path: str, product: str) -> dict:
    """The datasheet row for `product`; every problem is a UsageError (the Job was built wrong, not the image)."""
    try:
        with open(path, encoding="utf-8") as fh:
            table = json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"datasheets file not found: {path} (pass --datasheets PATH)") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read datasheets file {path}: {err}") from None
    products = table.get("products") if isinstance(table, dict) else None
    if not isinstance(products, dict):
        raise UsageError(f"datasheets file {path} has no \"products\" object")
    row = products.get(product)
    if row is None:
        raise UsageError(
            f"unknown --expect-product {product!r}: not in {path}; known products: {', '.join(sorted(products))}"
        )
    for key in ("denseBf16Tflops", "memoryBandwidthGBps"):
        value = row.get(key) if isinstance(row, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise UsageError(f"datasheets file {path}: products.{product}.{key} must be a positive number")
    return row


# --- small pure helpers (also exercised by the unit tests) -------------------------------------------------------


def compare_versions(a: str, b: str) -> int:
    """-1/0/1 comparing dot-separated numbers component by component ("570.26" < "570.124.06")."""
    left = [int(x) for x in a.split(".")]
    right = [int(x) for x in b.split(".")]
    width = max(len(left), len(right))
    left += [0] * (width - len(left))
    right += [0] * (width - len(right))
    return (left > right) - (left < right)


def gfd_product(device_name: str) -> str:
    """The nvidia.com/gpu.product label GPU Feature Discovery derives from a device name (spaces become '-')."""
    return device_name.strip().replace(" ", "-")


def parse_proc_driver_version(text: str):
    """The driver version in /proc/driver/nvidia/version ("... Kernel Module  570.124.06  ..."), or None."""
    m = re.search(r"Kernel Module\b.*?\s(\d+\.\d+(?:\.\d+)*)\s", text)
    return m.group(1) if m else None


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --- driver discovery ---------------------------------------------------------------------------------------------


def _driver_from_pynvml():
    import pynvml  # type: ignore

    pynvml.nvmlInit()
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
    finally:
        pynvml.nvmlShutdown()
    return version.decode() if isinstance(version, bytes) else str(version)


def _driver_from_nvml_ctypes():
    # The NVIDIA container runtime mounts libnvidia-ml.so.1 whenever NVIDIA_DRIVER_CAPABILITIES includes utility,
    # so this works without pynvml or nvidia-smi in the image.
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    if lib.nvmlInit_v2() != 0:
        raise OSError("nvmlInit_v2 failed")
    try:
        buf = ctypes.create_string_buffer(96)
        if lib.nvmlSystemGetDriverVersion(buf, ctypes.c_uint(len(buf))) != 0:
            raise OSError("nvmlSystemGetDriverVersion failed")
        return buf.value.decode()
    finally:
        lib.nvmlShutdown()


def _driver_from_nvidia_smi():
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    return out.strip().splitlines()[0].strip()


def _driver_from_proc():
    with open("/proc/driver/nvidia/version", encoding="utf-8") as fh:
        version = parse_proc_driver_version(fh.read())
    if version is None:
        raise ValueError("no version in /proc/driver/nvidia/version")
    return version


DRIVER_SOURCES = (
    ("pynvml", _driver_from_pynvml),
    ("NVML (libnvidia-ml.so.1)", _driver_from_nvml_ctypes),
    ("nvidia-smi", _driver_from_nvidia_smi),
    ("/proc/driver/nvidia/version", _driver_from_proc),
)


def read_driver_version():
    """(version, source) from the first source that answers, else (None, None)."""
    for source, read in DRIVER_SOURCES:
        try:
            version = read()
        except Exception:  # noqa: BLE001 - any failure means "try the next source"
            continue
        if version and DRIVER_VERSION.match(version):
            return version, source
    return None, None


# --- the checks ---------------------------------------------------------------------------------------------------


def _result(status: str, detail: str, **figures) -> dict:
    out = {"status": status, "detail": detail}
    out.update(figures)
    return out


def _fresh_seed() -> int:
    # Fresh inputs every run so a kernel that caches or returns stale results cannot pass; the seed is reported.
    return secrets.randbits(62)


def _disable_tf32(torch) -> None:
    # The fp32 reference must be real fp32: TF32 would put ~1e-3 error into the reference itself.
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9 deprecates allow_tf32 in favour of this
        try:
            matmul.fp32_precision = "ieee"
            return
        except Exception:  # noqa: BLE001
            pass
    matmul.allow_tf32 = False


def _rel_error(torch, out, ref) -> float:
    ref_norm = ref.norm().item()
    if not math.isfinite(ref_norm) or ref_norm == 0.0:
        return float("inf")
    return (out - ref).norm().item() / ref_norm


def bf16_matmul_error(torch, n: int, device: str, seed: int) -> float:
    """Relative Frobenius error of a bf16 matmul against the fp32 matmul of the same (bf16-rounded) inputs."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    a = torch.randn((n, n), generator=gen, device=device, dtype=torch.float32).to(torch.bfloat16)
    b = torch.randn((n, n), generator=gen, device=device, dtype=torch.float32).to(torch.bfloat16)
    ref = torch.matmul(a.float(), b.float())
    out = torch.matmul(a, b).float()
    if not bool(torch.isfinite(out).all().item()):
        return float("inf")
    return _rel_error(torch, out, ref)


def _time_cuda(torch, fn, target_s: float = 0.02, reps: int = 7) -> tuple:
    """Median seconds per call of fn() on the current device, timed with CUDA events after a warm-up.

    Warm-up runs for at least 0.3 s so clocks reach their boost state; each timed repetition runs enough calls to
    last about `target_s`, which keeps event resolution and launch gaps out of the figure.
    """
    start_wall = time.monotonic()
    calls = 0
    while calls < 3 or (time.monotonic() - start_wall < 0.3 and calls < 200):
        fn()
        calls += 1
        if calls % 5 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    per_call = max((time.monotonic() - start_wall) / calls, 1e-6)
    inner = max(1, min(200, int(math.ceil(target_s / per_call))))
    samples = []
    for _ in range(reps):
        begin = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        samples.append(begin.elapsed_time(end) / 1000.0 / inner)
    return statistics.median(samples), inner, reps


class Context:
    def __init__(self, args: argparse.Namespace, datasheet: dict):
        self.args = args
        self.datasheet = datasheet
        self.torch = None
        self.cuda_ok = False
        self.device_count = 0
        self.device_names: list = []
        self.driver = None
        self.driver_source = None
        self.results: dict = {}

    @property
    def cpu(self) -> bool:
        return self.args.mode == "cpu"


def check_torch_import(ctx: Context) -> dict:
    try:
        import torch  # noqa: F401
    except Exception as err:  # noqa: BLE001
        return _result("fail", f"import torch failed: {type(err).__name__}: {err}")
    ctx.torch = torch
    return _result("pass", f"torch {torch.__version__}", version=str(torch.__version__))


def check_cuda_version(ctx: Context) -> dict:
    torch = ctx.torch
    expected = ctx.args.expect_cuda
    build = getattr(torch.version, "cuda", None)
    if build is None:
        if ctx.cpu:
            return _result("skip", "CPU build of torch", expected=expected, found=None)
        return _result(
            "fail",
            f"torch {torch.__version__} is a CPU build (torch.version.cuda is None); the image must ship torch "
            f"built for CUDA {expected}",
            expected=expected, found=None,
        )
    found = major_minor(str(build))
    if found != expected:
        return _result("fail", f"torch is built for CUDA {build}, expected CUDA {expected}",
                       expected=expected, found=str(build))
    return _result("pass", f"torch built for CUDA {build}", expected=expected, found=str(build))


def check_cuda_available(ctx: Context) -> dict:
    torch = ctx.torch
    expected = ctx.args.expect_gpus
    available = bool(torch.cuda.is_available())
    count = int(torch.cuda.device_count()) if available else 0
    if not available or count == 0:
        build = getattr(torch.version, "cuda", None)
        why = (
            "this torch is a CPU build"
            if build is None
            else f"torch is built for CUDA {build}: check that the pod requests nvidia.com/gpu and runs with the "
            "NVIDIA container runtime"
        )
        return _result("fail", f"no CUDA device is visible: torch.cuda.is_available() is False ({why})",
                       expected=expected, found=0)
    ctx.device_count = count
    ctx.device_names = [str(torch.cuda.get_device_name(i)) for i in range(count)]
    if count != expected:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        return _result("fail", f"expected {expected} GPU(s), torch sees {count}{hint}", expected=expected, found=count)
    ctx.cuda_ok = True
    return _result("pass", f"{count} CUDA device(s) visible", expected=expected, found=count)


def check_driver_version(ctx: Context) -> dict:
    required = ctx.args.min_driver
    version, source = read_driver_version()
    if version is None:
        return _result(
            "fail",
            "could not read the NVIDIA driver version (tried "
            + ", ".join(name for name, _ in DRIVER_SOURCES)
            + "); the container needs the driver's utility libraries (NVIDIA_DRIVER_CAPABILITIES must include "
            "utility)",
            required=required, found=None,
        )
    ctx.driver, ctx.driver_source = version, source
    if compare_versions(version, required) < 0:
        return _result(
            "fail",
            f"driver {version} is older than {required}, the floor for CUDA {ctx.args.expect_cuda}; upgrade the "
            f"pool's driver or exclude the pool for this variant",
            required=required, found=version, source=source,
        )
    return _result("pass", f"driver {version} >= {required} (read via {source})",
                   required=required, found=version, source=source)


def check_device_product(ctx: Context) -> dict:
    expected = ctx.args.expect_product
    products = [gfd_product(n) for n in ctx.device_names]
    wrong = [(i, ctx.device_names[i], p) for i, p in enumerate(products) if p != expected]
    if wrong:
        i, name, product = wrong[0]
        more = f" ({len(wrong) - 1} more GPU(s) differ)" if len(wrong) > 1 else ""
        return _result(
            "fail",
            f"GPU {i} is {product} (torch: {name!r}), but the pool declares nvidia.com/gpu.product={expected}{more}",
            expected=expected, found=products,
        )
    return _result("pass", f"{len(products)}x {expected}", expected=expected, found=products)


def check_matmul_correctness(ctx: Context) -> dict:
    torch = ctx.torch
    seed = _fresh_seed()
    if ctx.cpu:
        n = min(ctx.args.matmul_size, CPU_MATMUL_SIZE)
        errors = [bf16_matmul_error(torch, n, "cpu", seed)]
        where = "cpu"
        tolerance = CPU_MATMUL_TOLERANCE
    else:
        _disable_tf32(torch)
        n = ctx.args.matmul_size
        tolerance = MATMUL_TOLERANCE
        errors = []
        for d in range(ctx.device_count):
            with torch.cuda.device(d):
                errors.append(bf16_matmul_error(torch, n, f"cuda:{d}", seed + d))
            torch.cuda.empty_cache()
        where = f"{ctx.device_count} GPU(s)"
    worst = max(errors)
    figures = {"relError": worst, "tolerance": tolerance, "size": n, "seed": seed}
    if not worst <= tolerance:
        return _result("fail", f"bf16 {n}x{n}x{n} matmul on {where} is wrong: relative error {worst:.3g} > "
                               f"{tolerance:g} against the fp32 reference", **figures)
    return _result("pass", f"bf16 {n}x{n}x{n} matmul on {where} matches fp32 (relative error {worst:.2e})",
                   **figures)


def check_matmul_throughput(ctx: Context) -> dict:
    torch = ctx.torch
    n = ctx.args.matmul_size
    peak = float(ctx.datasheet["denseBf16Tflops"])
    need = ctx.args.matmul_fraction
    per_device = []
    for d in range(ctx.device_count):
        with torch.cuda.device(d):
            dev = f"cuda:{d}"
            a = torch.randn((n, n), device=dev, dtype=torch.float32).to(torch.bfloat16)
            b = torch.randn((n, n), device=dev, dtype=torch.float32).to(torch.bfloat16)
            c = torch.empty((n, n), device=dev, dtype=torch.bfloat16)
            seconds, inner, reps = _time_cuda(torch, lambda: torch.matmul(a, b, out=c))
            per_device.append(2.0 * n ** 3 / seconds / 1e12)
            del a, b, c
        torch.cuda.empty_cache()
    tflops = min(per_device)
    fraction = tflops / peak
    figures = {"tflops": round(tflops, 1), "datasheetTflops": peak, "fraction": round(fraction, 3),
               "required": need, "size": n, "perDevice": [round(x, 1) for x in per_device]}
    text = (f"{tflops:.1f} TFLOP/s = {fraction:.0%} of the {peak:g} TFLOP/s dense BF16 datasheet peak "
            f"(need >= {need:.0%}; {n}^3, median of {reps} runs of {inner}")
    text += f", slowest of {len(per_device)} GPUs)" if len(per_device) > 1 else ")"
    return _result("pass" if fraction >= need else "fail", text, **figures)


def check_memory_bandwidth(ctx: Context) -> dict:
    torch = ctx.torch
    peak = float(ctx.datasheet["memoryBandwidthGBps"])
    need = ctx.args.bandwidth_fraction
    per_device = []
    used = ctx.args.bandwidth_bytes
    for d in range(ctx.device_count):
        with torch.cuda.device(d):
            nbytes = ctx.args.bandwidth_bytes
            if hasattr(torch.cuda, "mem_get_info"):
                free, _total = torch.cuda.mem_get_info()
                nbytes = min(nbytes, int(free * 0.4))  # two buffers must fit with room to spare
            numel = max(1, nbytes // 4)
            nbytes = numel * 4
            used = min(used, nbytes)
            src = torch.empty(numel, device=f"cuda:{d}", dtype=torch.float32)
            # Random contents: Ampere+ compresses zero/uniform data, which would inflate the figure.
            src.uniform_()
            dst = torch.empty_like(src)
            seconds, inner, reps = _time_cuda(torch, lambda: dst.copy_(src))
            per_device.append(2.0 * nbytes / seconds / 1e9)  # every byte is read once and written once
            del src, dst
        torch.cuda.empty_cache()
    gbps = min(per_device)
    fraction = gbps / peak
    figures = {"gbps": round(gbps), "datasheetGBps": peak, "fraction": round(fraction, 3), "required": need,
               "bytes": used, "perDevice": [round(x) for x in per_device]}
    text = (f"{gbps:.0f} GB/s = {fraction:.0%} of the {peak:g} GB/s datasheet bandwidth (need >= {need:.0%}; "
            f"device-to-device copy of {used / 2**20:.0f} MiB, read + written, median of {reps} runs of {inner}")
    text += f", slowest of {len(per_device)} GPUs)" if len(per_device) > 1 else ")"
    return _result("pass" if fraction >= need else "fail", text, **figures)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nccl_worker(rank: int, world: int, port: int, results) -> None:
    """One rank of the all-reduce (runs in a spawned process: CUDA cannot be forked once initialised)."""
    try:
        import datetime

        import torch
        import torch.distributed as dist

        torch.cuda.set_device(rank)
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=60))
        t = torch.full((1 << 20,), float(rank + 1), device=f"cuda:{rank}", dtype=torch.float32)
        dist.all_reduce(t)
        torch.cuda.synchronize()
        expected = world * (world + 1) / 2.0
        ok = bool(torch.all(t == expected).item())
        got = float(t[0].item())
        dist.destroy_process_group()
        results.put((rank, ok, f"rank {rank} got {got:g}, expected {expected:g}"))
    except Exception as err:  # noqa: BLE001
        results.put((rank, False, f"rank {rank}: {type(err).__name__}: {err}"))


def _all_reduce(world: int) -> tuple:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_nccl_worker, args=(r, world, port, results), daemon=True) for r in range(world)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + NCCL_TIMEOUT_S
    answers = []
    try:
        while len(answers) < world:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                answers.append(results.get(timeout=remaining))
            except queue.Empty:
                break
    finally:
        for p in procs:
            p.join(timeout=max(0.0, min(10.0, deadline - time.monotonic())))
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    if len(answers) < world:
        missing = sorted(set(range(world)) - {a[0] for a in answers})
        return False, f"all-reduce timed out after {NCCL_TIMEOUT_S:.0f} s (no answer from rank(s) {missing})"
    bad = [a for a in sorted(answers) if not a[1]]
    if bad:
        return False, "; ".join(a[2] for a in bad)
    return True, f"all-reduce (sum) across {world} GPUs on 127.0.0.1 is correct"


def check_nccl(ctx: Context) -> dict:
    torch = ctx.torch
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available():
        return _result("fail", "torch.distributed is not available in this torch build")
    if not dist.is_nccl_available():
        return _result("fail", "NCCL is not available in this torch build (torch.distributed.is_nccl_available() "
                               "is False)")
    version = None
    try:
        raw = torch.cuda.nccl.version()
        version = ".".join(str(x) for x in raw) if isinstance(raw, tuple) else str(raw)
    except Exception:  # noqa: BLE001
        pass
    label = f"NCCL {version}" if version else "NCCL"
    if not ctx.cuda_ok:
        return _result("skip", f"{label} is available; all-reduce not run: cuda_available failed", nccl=version)
    if ctx.device_count < 2:
        return _result("pass", f"{label} available; all-reduce needs >= 2 GPUs ({ctx.device_count} visible)",
                       nccl=version, worldSize=ctx.device_count)
    ok, detail = _all_reduce(ctx.device_count)
    return _result("pass" if ok else "fail", f"{label}: {detail}", nccl=version, worldSize=ctx.device_count)


def check_flash_attn(ctx: Context) -> dict:
    torch = ctx.torch
    try:
        import flash_attn
        from flash_attn import flash_attn_func
    except Exception as err:  # noqa: BLE001
        return _result("fail", f"import flash_attn failed: {type(err).__name__}: {err}")
    version = str(getattr(flash_attn, "__version__", "unknown"))
    batch, seq, heads, dim = 1, 256, 4, 64
    gen = torch.Generator(device="cuda:0")
    gen.manual_seed(_fresh_seed())
    q, k, v = (
        torch.randn((batch, seq, heads, dim), generator=gen, device="cuda:0", dtype=torch.float32).to(torch.bfloat16)
        for _ in range(3)
    )
    out = flash_attn_func(q, k, v, causal=True).float()
    # Reference: plain causal softmax attention in fp32 on the same bf16 inputs; layout (batch, seq, heads, dim).
    qf, kf, vf = (x.float().transpose(1, 2) for x in (q, k, v))
    scores = torch.matmul(qf, kf.transpose(-1, -2)) / math.sqrt(dim)
    mask = torch.ones((seq, seq), device="cuda:0", dtype=torch.bool).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    ref = torch.matmul(torch.softmax(scores, dim=-1), vf).transpose(1, 2)
    err = _rel_error(torch, out, ref) if bool(torch.isfinite(out).all().item()) else float("inf")
    shape = f"{batch}x{seq}x{heads}x{dim}"
    if not err <= FLASH_ATTN_TOLERANCE:
        return _result("fail", f"flash-attn {version}: causal forward ({shape} bf16) is wrong: relative error "
                               f"{err:.3g} > {FLASH_ATTN_TOLERANCE:g}", version=version, relError=err)
    return _result("pass", f"flash-attn {version}: causal forward ({shape} bf16) matches reference "
                           f"(relative error {err:.2e})", version=version, relError=err)


def check_smoke_imports(ctx: Context) -> dict:
    names = ctx.args.smoke_imports
    if not names:
        return _result("skip", "no --smoke-imports given", modules={})
    modules = {}
    for name in names:
        try:
            importlib.import_module(name)
            modules[name] = "ok"
        except BaseException as err:  # noqa: BLE001 - a module calling sys.exit() on import is a failure too
            modules[name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    failed = [n for n, r in modules.items() if r != "ok"]
    if failed:
        return _result("fail", "; ".join(f"import {n} failed: {modules[n]}" for n in failed), modules=modules)
    return _result("pass", f"imported {', '.join(names)}", modules=modules)


CHECKS = {
    "torch_import": check_torch_import,
    "cuda_version": check_cuda_version,
    "cuda_available": check_cuda_available,
    "driver_version": check_driver_version,
    "device_product": check_device_product,
    "matmul_correctness": check_matmul_correctness,
    "matmul_throughput": check_matmul_throughput,
    "memory_bandwidth": check_memory_bandwidth,
    "nccl": check_nccl,
    "flash_attn": check_flash_attn,
    "smoke_imports": check_smoke_imports,
}
# A check that cannot run because an earlier one failed is skipped, naming that check.
NEEDS_TORCH = frozenset(CHECK_NAMES) - {"torch_import", "driver_version", "smoke_imports"}
NEEDS_CUDA = frozenset({"device_product", "matmul_correctness", "matmul_throughput", "memory_bandwidth",
                        "flash_attn"})


def _precondition(ctx: Context, name: str):
    """None when `name` should run, else the skip detail."""
    if ctx.cpu and name in GPU_ONLY:
        return "cpu mode"
    if name == "flash_attn" and ctx.args.flash_attn == "absent":
        return "flash-attn not required for this variant (--flash-attn absent)"
    if name in NEEDS_TORCH and ctx.torch is None:
        return "not run: torch_import failed"
    if name in NEEDS_CUDA and not ctx.cpu and not ctx.cuda_ok:
        return "not run: cuda_available failed"
    if name == "matmul_throughput" and ctx.results.get("matmul_correctness", {}).get("status") != "pass":
        return "not run: matmul_correctness failed"
    return None


def run_checks(ctx: Context) -> list:
    checks = []
    for name in CHECK_NAMES:
        skip = _precondition(ctx, name)
        if skip is not None:
            result = _result("skip", skip)
        else:
            try:
                result = CHECKS[name](ctx)
            except Exception as err:  # noqa: BLE001 - one broken check must not hide the others
                result = _result("fail", f"{type(err).__name__}: {err}")
        result["detail"] = " ".join(str(result["detail"]).split())  # one line, always
        ctx.results[name] = result
        checks.append({"name": name, **result})
    return checks


def device_info(ctx: Context) -> dict:
    torch = ctx.torch
    info = {
        "python": ".".join(str(x) for x in sys.version_info[:3]),
        "torch": str(torch.__version__) if torch is not None else None,
        "torchCuda": getattr(torch.version, "cuda", None) if torch is not None else None,
        "cudaDeviceCount": ctx.device_count,
        "names": ctx.device_names,
        "products": [gfd_product(n) for n in ctx.device_names],
        "driver": ctx.driver,
        "driverSource": ctx.driver_source,
        "hostname": socket.gethostname(),
    }
    if torch is not None and info["torchCuda"] is not None and not ctx.cpu:
        try:  # the CUDA version the driver supports, e.g. 12080 -> "12.8"; helps read a driver-floor failure
            v = int(torch._C._cuda_getDriverVersion())
            info["driverCudaVersion"] = f"{v // 1000}.{(v % 1000) // 10}" if v > 0 else None
        except Exception:  # noqa: BLE001
            info["driverCudaVersion"] = None
    return info


def summary_line(checks: list, duration: float) -> str:
    failed = [c for c in checks if c["status"] == "fail"]
    if failed:
        first = failed[0]
        line = f"FAIL {first['name']}: {first['detail']}"
        if len(failed) > 1:
            line += f" (+{len(failed) - 1} more: {', '.join(c['name'] for c in failed[1:])})"
    else:
        skipped = sum(1 for c in checks if c["status"] == "skip")
        line = f"PASS {len(checks)}/{len(checks)} checks ({skipped} skipped)"
        by_name = {c["name"]: c for c in checks}
        if "tflops" in by_name["matmul_throughput"]:
            line += f" matmul={by_name['matmul_throughput']['tflops']:.1f}TF/s"
        if "gbps" in by_name["memory_bandwidth"]:
            line += f" bw={by_name['memory_bandwidth']['gbps']:.0f}GB/s"
        line += f" {duration:.1f}s"
    line = " ".join(line.split())
    return line if len(line) <= TERMINATION_LOG_MAX else line[: TERMINATION_LOG_MAX - 3] + "..."


def write_termination_log(path: str, line: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return  # not in a pod (or a custom path that does not exist): nothing to write to
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError as err:
        print(f"gpu_check.py: warning: cannot write termination log {path}: {err}", file=sys.stderr)


def _reserve_stdout():
    """Keep fd 1 for the JSON report alone: anything else (library prints, C extensions, children) goes to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(saved, "w", encoding="utf-8")


def main(argv=None) -> int:
    started = time.monotonic()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        datasheet = load_datasheet(args.datasheets, args.expect_product)
    except UsageError as err:
        print(f"gpu_check.py: usage error: {' '.join(str(err).split())} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    report_out = _reserve_stdout()
    ctx = Context(args, datasheet)
    try:
        checks = run_checks(ctx)
        device = device_info(ctx)
    except Exception as err:  # noqa: BLE001 - a bug here must still end as a failed report, not a traceback
        checks = [{"name": "internal", "status": "fail", "detail": f"{type(err).__name__}: {err}"}]
        device = {}
    duration = time.monotonic() - started
    passed = all(c["status"] != "fail" for c in checks)
    report = {
        "version": REPORT_VERSION,
        "mode": args.mode,
        "passed": passed,
        "durationSeconds": round(duration, 2),
        "expect": {
            "cuda": args.expect_cuda,
            "gpus": args.expect_gpus,
            "product": args.expect_product,
            "minDriver": args.min_driver,
            "matmulFraction": args.matmul_fraction,
            "bandwidthFraction": args.bandwidth_fraction,
            "flashAttn": args.flash_attn,
            "smokeImports": args.smoke_imports,
        },
        "device": device,
        "checks": checks,
    }
    report_out.write(json.dumps(_finite(report), indent=2, allow_nan=False, default=str) + "\n")
    report_out.flush()
    write_termination_log(args.termination_log, summary_line(checks, duration))
    return EXIT_PASS if passed else EXIT_FAIL


def _finite(value):
    """The report with inf/NaN floats (e.g. the error of a kernel that produced NaN) as strings: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
