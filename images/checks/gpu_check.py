#!/usr/bin/env python3
"""Workbench GPU image check.

Runs inside a freshly built GPU image, as a Kubernetes Job on a GPU node pool (the program mounts this directory
at /opt/workbench-checks), and answers two questions: does this image work on this pool's hardware and driver, and
is this node healthy enough to trust the answer? It checks the torch build, the CUDA runtime, the driver floor, NVML,
the GPU product, bf16 matmul correctness and speed (burst and sustained), memory bandwidth (burst and sustained),
NCCL, flash-attn, a list of imports and the GPUs' hardware health, then prints one JSON report on stdout and a
one-line verdict as the last line of stderr and in the termination log. The verdict separates "the image is wrong"
(exit 1) from "the node is wrong" (exit 3). See README.md beside this file for every check, flag and exit code.

Needs Python 3.9+, the standard library, torch (1.13 and 2.x both work) and, in gpu mode, pynvml (nvidia-ml-py).
Never uses the network.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import importlib
import json
import math
import multiprocessing
import os
import queue
import re
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REPORT_VERSION = 2
EXIT_PASS, EXIT_IMAGE, EXIT_USAGE, EXIT_NODE = 0, 1, 2, 3
# The check passed, but its report could not be stored in --report-configmap: the program would have no figures to
# publish or attest, so the Job must fail (a distinct code: neither the image nor the node is at fault).
EXIT_REPORT = 4
VERDICT_EXIT = {"pass": EXIT_PASS, "image": EXIT_IMAGE, "node": EXIT_NODE}

# Report order. Names are part of the report format: change them only together with README.md and the tests.
CHECK_NAMES = (
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
)
# Checks that need a GPU: `--mode cpu` skips them with detail "cpu mode".
GPU_ONLY = frozenset(
    {
        "cuda_available",
        "driver_version",
        "nvml",
        "device_product",
        "matmul_throughput",
        "memory_bandwidth",
        "nccl",
        "flash_attn",
        "gpu_health",
    }
)
# Who is at fault when a check fails and the check itself does not say otherwise. "node" is reserved for failures
# with evidence against the hardware, the driver or the node's GPU plumbing: a node verdict is meant to be acted on
# (cordon, drain, retry elsewhere), so an ambiguous failure is blamed on the image, which a rerun can then clear.
DEFAULT_FAULT = {
    "torch_import": "image",
    "cuda_version": "image",
    "cuda_available": "node",
    "driver_version": "node",
    "nvml": "node",
    "device_product": "node",
    "matmul_correctness": "image",
    "matmul_throughput": "image",
    "memory_bandwidth": "node",
    "nccl": "image",
    "flash_attn": "image",
    "smoke_imports": "image",
    "gpu_health": "node",
    "internal": "image",
}

CPU_MATMUL_SIZE = 256  # the CPU correctness check only proves bf16 GEMM is wired up: keep it tiny
MATMUL_TOLERANCE = 1e-2  # relative Frobenius error of bf16 GEMM (fp32 accumulate) against an fp32 reference
# CPU builds may accumulate bf16 GEMMs in bf16: Debian's torch 1.13 (generic BLAS) measures 1.2e-3 * sqrt(k), i.e.
# 0.019 at k = 256, where cuBLAS (fp32 accumulate) gives 1.7e-3 at any k. Garbage output is still ~1.
CPU_MATMUL_TOLERANCE = 5e-2
FLASH_ATTN_TOLERANCE = 1e-2
NCCL_TIMEOUT_S = 120.0
NCCL_BENCH_BYTES = 256 << 20  # all-reduce size for bus bandwidth: NVSwitch systems reach their plateau near here
NCCL_WARMUP_ITERS = 5
NCCL_BENCH_ITERS = 20
BURST_WARMUP_S = 0.3  # long enough for the clocks to leave idle and for the power limiter to have engaged
BURST_REP_S = 0.02  # each timed repetition lasts about this long: event resolution and launch gaps stay out
BURST_REPS = 7
# The sustained phase: DCGM's targeted_stress diagnostic also runs 30 s by default. Power capping acts within
# milliseconds (the burst already sees it), but die and HBM temperatures, and with them leakage power, fan response
# and thermal slowdown, settle over tens of seconds. The steady-state figures come from the second half.
DEFAULT_SUSTAIN_S = 30.0
SUSTAIN_WINDOW_S = 0.5  # one timed window per GPU; the figures are medians over windows
SUSTAIN_MAX_CALLS = 256  # per window: keeps two queued windows well inside CUDA's launch queue
SAMPLE_INTERVAL_S = 0.2  # NVML clock/power/reason samples while the sustained phase runs
DEFAULT_SUSTAINED_RATIO = 0.85  # steady-state throughput must stay >= this share of the GPU's own burst figure
DEFAULT_BUSBW_FRACTION = 0.2  # all-reduce bus bandwidth floor, as a share of the product's per-direction link figure
POWER_LIMIT_MIN_SHARE = 0.9  # an enforced power limit below 90% of the board default is a node misconfiguration
TERMINATION_LOG_MAX = 1024  # bytes. Kubernetes keeps 4096 of the file and 2048 of a log-tail fallback: fits both
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
DRIVER_VERSION = re.compile(r"^\d+(\.\d+)*$")
CUDA_VERSION = re.compile(r"^\d+\.\d+$")
# --report-configmap: a namespace (DNS label) and a ConfigMap name (DNS subdomain), as the API server validates them.
CONFIGMAP_REF = re.compile(r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$")
# Where the kubelet mounts a pod's service account token and the cluster CA (the same paths client-go's
# rest.InClusterConfig reads), and the key of the report in the ConfigMap. Read back by
# components/validation/validation-report.ts (REPORT_KEY): change both together.
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
REPORT_KEY = "report.json"
# managedFields name the writer of data["report.json"]; the program applies the ConfigMap without `data`, so
# server-side apply never takes the report away from this manager.
REPORT_FIELD_MANAGER = "workbench-gpu-check"
# A ConfigMap holds at most 1 MiB (etcd's object limit); leave room for metadata and managedFields.
REPORT_MAX_BYTES = 1000000
REPORT_ATTEMPTS = 4  # a brief API server outage (an upgrade, a leader change) must not fail a passing check
REPORT_TIMEOUT_S = 15.0

# Threshold keys of --product-thresholds, their flags and defaults.
THRESHOLDS = {
    "matmulFraction": ("--matmul-fraction", "matmul_fraction", 0.7),
    "bandwidthFraction": ("--bandwidth-fraction", "bandwidth_fraction", 0.8),
    "sustainedRatio": ("--sustained-ratio", "sustained_ratio", DEFAULT_SUSTAINED_RATIO),
    "busbwFraction": ("--busbw-fraction", "busbw_fraction", DEFAULT_BUSBW_FRACTION),
}


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


def _seconds(low: float, high: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
        if not (low <= value <= high) or math.isnan(value):
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} seconds, got {text!r}")
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


def _configmap_ref(text: str) -> str:
    if len(text) > 253 + 64 or not CONFIGMAP_REF.match(text):
        raise argparse.ArgumentTypeError(f"must be NAMESPACE/NAME of a ConfigMap, e.g. 'workbench-validation/wbv-x-report', got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    here = os.path.dirname(os.path.abspath(__file__))
    p = _Parser(
        prog="gpu_check.py",
        description="Check a GPU image on a GPU node: torch/CUDA build, driver floor, NVML, GPU product, bf16 matmul, "
        "memory bandwidth (burst and sustained), NCCL, flash-attn, imports and GPU health. Prints one JSON report on "
        "stdout and a one-line verdict last on stderr. Exit 0 pass, 1 image defect, 2 usage error, 3 node fault.",
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
                   help="required share of the datasheet dense BF16 peak, burst (default 0.7)")
    p.add_argument("--bandwidth-fraction", type=_fraction(), default=0.8,
                   help="required share of the datasheet memory bandwidth, burst (default 0.8)")
    p.add_argument("--flash-attn", choices=("required", "absent"), default="absent",
                   help="required: import flash_attn and run a forward; absent (default): skip")
    p.add_argument("--smoke-imports", type=_module_list, default=[],
                   help="comma-separated modules that must import, e.g. torch,transformers")
    p.add_argument("--datasheets", default=os.path.join(here, "datasheets.json"),
                   help="datasheet table (default: datasheets.json beside this script)")
    p.add_argument("--termination-log", default="/dev/termination-log",
                   help="where the one-line verdict goes; skipped if its directory does not exist")
    p.add_argument("--matmul-size", type=_int_in(64, 65536), default=8192,
                   help="n for the n x n x n bf16 matmul (default 8192)")
    p.add_argument("--bandwidth-bytes", type=_int_in(1 << 20, 1 << 40), default=1 << 30,
                   help="size of the buffer copied device-to-device (default 1 GiB)")
    # Flags added with issue #15 default to SUPPRESS: a command line that does not use them parses to the same
    # namespace as before (the Job side compares it), and `option()` supplies their defaults.
    p.add_argument("--sustain-seconds", type=_seconds(0.0, 3600.0), default=argparse.SUPPRESS,
                   help=f"sustained phase per measurement, in seconds; 0 skips it (default {DEFAULT_SUSTAIN_S:g})")
    p.add_argument("--sustained-ratio", type=_fraction(), default=argparse.SUPPRESS,
                   help="steady-state throughput must reach this share of the same GPU's burst figure "
                   f"(default {DEFAULT_SUSTAINED_RATIO:g})")
    p.add_argument("--busbw-fraction", type=_fraction(), default=argparse.SUPPRESS,
                   help="with >= 2 GPUs, all-reduce bus bandwidth must reach this share of the product's "
                   f"per-direction GPU link figure in datasheets.json (default {DEFAULT_BUSBW_FRACTION:g})")
    p.add_argument("--product-thresholds", default=argparse.SUPPRESS, metavar="JSON|@FILE",
                   help="per-product overrides, e.g. '{\"NVIDIA-H200\": {\"matmulFraction\": 0.75}}'; keys "
                   + ", ".join(THRESHOLDS) + "; the row for --expect-product wins over the flags")
    p.add_argument("--samples-file", default=argparse.SUPPRESS, metavar="PATH",
                   help="write every NVML sample of the sustained phases to PATH (CSV)")
    p.add_argument("--report-configmap", type=_configmap_ref, default=argparse.SUPPRESS, metavar="NAMESPACE/NAME",
                   help=f"also store the report (compact JSON) as data[{REPORT_KEY!r}] of this existing ConfigMap, "
                   "with the pod's service account token; a passing check whose report cannot be stored exits 4")
    p.add_argument("--serviceaccount-dir", default=argparse.SUPPRESS, metavar="PATH",
                   help=f"where the service account's token and ca.crt are mounted (default {SERVICEACCOUNT_DIR})")
    return p


OPTION_DEFAULTS = {
    "sustain_seconds": DEFAULT_SUSTAIN_S,
    "sustained_ratio": DEFAULT_SUSTAINED_RATIO,
    "busbw_fraction": DEFAULT_BUSBW_FRACTION,
    "product_thresholds": None,
    "samples_file": None,
    "report_configmap": None,
    "serviceaccount_dir": SERVICEACCOUNT_DIR,
}


def option(args: argparse.Namespace, name: str):
    """The value of a flag whose default is SUPPRESS (see build_parser)."""
    return getattr(args, name, OPTION_DEFAULTS[name])


def parse_args(argv: list) -> argparse.Namespace:
    parser = build_parser()
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentTypeError as err:  # raised by type= callables on some Python versions
        raise UsageError(str(err)) from None


def load_table(path: str) -> dict:
    """The whole datasheets.json; every problem is a UsageError (the Job was built wrong, not the image)."""
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
    return table


def load_datasheet(path: str, product: str) -> dict:
    """The datasheet row for `product`; every problem is a UsageError."""
    products = load_table(path)["products"]
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


def interconnect_row(table: dict, product: str):
    """The `interconnect` row for `product` (GPU-to-GPU link figures), or None when the table has none."""
    rows = table.get("interconnect")
    row = rows.get(product) if isinstance(rows, dict) else None
    return row if isinstance(row, dict) else None


def _is_fraction(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value <= 1.0


def parse_product_thresholds(text: str, products) -> dict:
    """Per-product threshold overrides from inline JSON or @FILE: {product: {thresholdKey: fraction}}.

    Every problem is collected into one UsageError naming the key path, the value received and the fix.
    """
    source = "--product-thresholds"
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as err:
            raise UsageError(f"{source}: cannot read {path}: {err.strerror or err}") from None
        source = f"{source} {path}"
    try:
        data = json.loads(text)
    except ValueError as err:
        raise UsageError(f"{source}: not valid JSON ({err}); pass an object such as "
                         "'{\"NVIDIA-H200\": {\"matmulFraction\": 0.75}}' or @FILE") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: must be a JSON object keyed by product, got {json.dumps(data)}")
    problems = []
    known = sorted(products)
    for product, row in data.items():
        if product not in products:
            problems.append(f"{product}: unknown product (known: {', '.join(known)})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{product}: must be an object such as {{\"matmulFraction\": 0.75}}, got {json.dumps(row)}")
            continue
        for key, value in row.items():
            if key not in THRESHOLDS:
                problems.append(f"{product}.{key}: unknown key (use {', '.join(THRESHOLDS)})")
            elif not _is_fraction(value):
                problems.append(f"{product}.{key}: must be a number in (0, 1], got {json.dumps(value)}")
    if problems:
        raise UsageError(f"{source}: " + "; ".join(problems))
    return data


def _flag_given(argv: list, flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def resolve_thresholds(args: argparse.Namespace, argv: list, overrides) -> dict:
    """Effective thresholds and where each came from: the product's override row, then the flag, then the default."""
    row = (overrides or {}).get(args.expect_product, {})
    values, sources = {}, {}
    for key, (flag, attr, default) in THRESHOLDS.items():
        if key in row:
            values[key], sources[key] = float(row[key]), "override"
        elif _flag_given(argv, flag):
            values[key], sources[key] = float(getattr(args, attr)), "flag"
        else:
            values[key], sources[key] = float(getattr(args, attr, default)), "default"
    values["sources"] = sources
    return values


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


def bus_bandwidth(nbytes: int, seconds: float, ranks: int) -> tuple:
    """(algbw, busbw) in GB/s of an all-reduce, as nccl-tests defines them: algbw = bytes / time and
    busbw = algbw * 2(n-1)/n, the per-rank traffic of a ring all-reduce, comparable with one link's bandwidth."""
    algbw = nbytes / seconds / 1e9
    return algbw, algbw * 2.0 * (ranks - 1) / ranks


# NVML clocks event ("throttle") reasons: nvmlClocksEventReason* in nvml.h, bit by bit.
CLOCK_REASONS = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)
# Reasons that mean the node is failing the GPU: heat, or power delivery. sw_power_cap is not one of them: a GPU
# at full load runs into its power limit by design (a lowered limit is caught by gpu_health instead).
FAULT_CLOCK_REASONS = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


def decode_clock_reasons(mask: int) -> list:
    """Names of the reason bits set in an NVML clocks event reasons mask; unknown bits as unknown_0x...."""
    names = [name for bit, name in CLOCK_REASONS if mask & bit]
    known = 0
    for bit, _ in CLOCK_REASONS:
        known |= bit
    rest = mask & ~known
    bit = 1
    while rest:
        if rest & bit:
            names.append(f"unknown_{bit:#x}")
            rest &= ~bit
        bit <<= 1
    return names


def fault_clock_reasons(mask: int) -> list:
    return [n for n in decode_clock_reasons(mask) if n in FAULT_CLOCK_REASONS]


def _stats(values: list, digits: int = 0) -> dict:
    if not values:
        return {"median": None, "min": None, "max": None}
    r = (lambda x: round(x, digits)) if digits else (lambda x: int(round(x)))
    return {"median": r(statistics.median(values)), "min": r(min(values)), "max": r(max(values))}


def summarize_samples(samples: list, phase_seconds: float) -> dict:
    """Per-GPU figures of one sustained phase's NVML samples (dicts with gpu, t, smClockMHz, memClockMHz, powerW,
    temperatureC, reasons, pcieGen, pcieWidth; any of the figures may be None).

    Clocks and power describe the steady state (samples from the second half of the phase); reason counts,
    temperature maximum and the PCIe link cover the whole phase.
    """
    out = {}
    for gpu in sorted({s["gpu"] for s in samples}):
        mine = [s for s in samples if s["gpu"] == gpu]
        steady = [s for s in mine if s["t"] >= phase_seconds / 2.0] or mine

        def values(key, among):
            return [s[key] for s in among if s.get(key) is not None]

        reasons = {}
        for s in mine:
            if s.get("reasons") is not None:
                for name in decode_clock_reasons(int(s["reasons"])):
                    reasons[name] = reasons.get(name, 0) + 1
        faults = sorted((n for n in reasons if n in FAULT_CLOCK_REASONS), key=FAULT_CLOCK_REASONS.index)
        temps = values("temperatureC", mine)
        gens = values("pcieGen", mine)
        widths = values("pcieWidth", mine)
        out[gpu] = {
            "samples": len(mine),
            "steadySamples": len(steady),
            "smClockMHz": _stats(values("smClockMHz", steady)),
            "memClockMHz": _stats(values("memClockMHz", steady)),
            "powerW": _stats(values("powerW", steady), 1),
            "temperatureC": {"max": max(temps) if temps else None},
            "clockReasons": {k: reasons[k] for k in sorted(reasons, key=lambda n: _reason_order(n))},
            "faultReasons": faults,
            "pcieGen": max(gens) if gens else None,
            "pcieWidth": max(widths) if widths else None,
        }
    return out


def _reason_order(name: str) -> int:
    for i, (_, n) in enumerate(CLOCK_REASONS):
        if n == name:
            return i
    return len(CLOCK_REASONS)


# Patterns in CUDA/NCCL error messages that say who is at fault, checked in order.
ERROR_FAULTS = (
    (re.compile(r"uncorrectable ECC|ECC error|GPU is lost|fallen off the bus|HARDWARE_STACK_ERROR|"
                r"hardware error|system not yet initialized|\b802\b", re.I), "node"),
    (re.compile(r"no kernel image is available|not compiled with|named symbol not found|PTX|unsupported toolchain|"
                r"CUBLAS_STATUS_ARCH_MISMATCH|CUBLAS_STATUS_NOT_SUPPORTED|undefined symbol|"
                r"cannot open shared object", re.I), "image"),
)


def classify_error(message: str, default: str) -> str:
    """Who is at fault for an exception raised while running GPU work: node, image, or `default`."""
    for pattern, fault in ERROR_FAULTS:
        if pattern.search(message):
            return fault
    return default


# CUDA_VISIBLE_DEVICES values that hide every GPU.
HIDING_CVD = ("", "-1", "none", "void", "nodevfiles")
# torch.cuda.init() messages when CUDA cannot start, and who is at fault.
CUDA_INIT_FAULTS = (
    (re.compile(r"too old|insufficient", re.I), "node",
     "the node's driver is older than this image's CUDA runtime needs"),
    (re.compile(r"\b802\b|system not yet initialized", re.I), "node",
     "on NVSwitch systems this means the node's fabric manager is not running"),
    (re.compile(r"\b803\b|unsupported display driver", re.I), "image",
     "the image's CUDA compatibility libraries do not match the node's driver"),
    (re.compile(r"\b804\b|forward compatibility", re.I), "image",
     "the image forces CUDA forward compatibility, which this GPU does not support"),
)


def classify_cuda_devices(cuda_build, cvd, nvml_count, expected: int, found: int, init_error) -> tuple:
    """(fault, why) for a failed cuda_available: torch sees `found` GPUs where `expected` were requested.

    cuda_build: torch.version.cuda (None for a CPU build); cvd: CUDA_VISIBLE_DEVICES or None; nvml_count: the GPUs
    NVML sees in the container (None if NVML is unavailable); init_error: torch.cuda.init()'s message, or None.
    """
    if cuda_build is None:
        return "image", "this torch is a CPU build"
    if cvd is not None and (cvd.strip().lower() in HIDING_CVD or (nvml_count is not None and found < nvml_count)):
        seen = f" (NVML sees {nvml_count})" if nvml_count is not None else ""
        return "image", (f"CUDA_VISIBLE_DEVICES={cvd!r} in the container's environment hides GPUs{seen}: the image "
                         "must not set it")
    if nvml_count is not None and nvml_count != expected:
        return "node", (f"the container holds {nvml_count} GPU(s) (NVML) where {expected} were requested: the node's "
                        "device plugin or container runtime handed out the wrong devices")
    if init_error:
        short = " ".join(str(init_error).split())[:300]
        for pattern, fault, hint in CUDA_INIT_FAULTS:
            if pattern.search(short):
                return fault, f"CUDA cannot initialise: {short} ({hint})"
        return "node", f"CUDA cannot initialise: {short}"
    if found == 0:
        return "node", (f"torch is built for CUDA {cuda_build} but no GPU is in the container: the pod requests "
                        "nvidia.com/gpu, so the node's NVIDIA container runtime did not inject it")
    return "node", f"CUDA initialises {found} of the {expected} GPU(s) the pod requested"


def verdict_of(checks: list) -> tuple:
    """(verdict, reasons, exit code). A node fault outranks an image defect: on a faulty node the image's own
    results cannot be trusted, and a rerun on a healthy node shows any image defect again."""
    reasons = [{"check": c["name"], "fault": c.get("fault", DEFAULT_FAULT.get(c["name"], "image")),
                "detail": c["detail"]} for c in checks if c["status"] == "fail"]
    if any(r["fault"] == "node" for r in reasons):
        verdict = "node"
    elif reasons:
        verdict = "image"
    else:
        verdict = "pass"
    return verdict, reasons, VERDICT_EXIT[verdict]


def _fit_bytes(line: str, limit: int) -> str:
    data = line.encode("utf-8")
    if len(data) <= limit:
        return line
    return data[: limit - 3].decode("utf-8", errors="ignore") + "..."


def summary_line(checks: list, duration: float) -> str:
    """The one-line verdict: `PASS 13/13 checks ...`, or `NODE|IMAGE <check>: <detail> (+N more: ...)` naming
    first the first failure that decided the verdict. At most TERMINATION_LOG_MAX bytes."""
    verdict, reasons, _ = verdict_of(checks)
    if reasons:
        first = next(r for r in reasons if r["fault"] == verdict)
        rest = [r for r in reasons if r is not first]
        line = f"{verdict.upper()} {first['check']}: {first['detail']}"
        if rest:
            line += f" (+{len(rest)} more: {', '.join(r['check'] + ' [' + r['fault'] + ']' for r in rest)})"
    else:
        skipped = sum(1 for c in checks if c["status"] == "skip")
        line = f"PASS {len(checks)}/{len(checks)} checks ({skipped} skipped)"
        by_name = {c["name"]: c for c in checks}
        mm = by_name.get("matmul_throughput", {})
        bw = by_name.get("memory_bandwidth", {})
        nccl = by_name.get("nccl", {})
        if isinstance(mm.get("tflops"), (int, float)):
            line += f" matmul={mm['tflops']:.1f}TF/s"
            if isinstance((mm.get("sustained") or {}).get("tflops"), (int, float)):
                line += f" (sustained {mm['sustained']['tflops']:.1f})"
        if isinstance(bw.get("gbps"), (int, float)):
            line += f" bw={bw['gbps']:.0f}GB/s"
            if isinstance((bw.get("sustained") or {}).get("gbps"), (int, float)):
                line += f" (sustained {bw['sustained']['gbps']:.0f})"
        if isinstance(nccl.get("busBwGBps"), (int, float)):
            line += f" busbw={nccl['busBwGBps']:.0f}GB/s"
        line += f" {duration:.1f}s"
    return _fit_bytes(" ".join(line.split()), TERMINATION_LOG_MAX)


# --- NVML ---------------------------------------------------------------------------------------------------------

# nvml.h enums and return codes (stable ABI); named here so the check does not depend on a pynvml version.
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2
NVML_TEMPERATURE_GPU = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC = 0, 1
NVML_NVLINK_MAX_LINKS = 18
NVML_EVENT_TYPE_XID = 0x8  # nvmlEventTypeXidCriticalError
NVML_RETIRE_SBE, NVML_RETIRE_DBE = 0, 1
# Xids that an application's own fault raises (graphics engine exception, GPU memory page fault, GPU stopped
# processing): under this check's workload they come with a failed check of their own, so they are reported
# without failing gpu_health. 45 (preemptive cleanup) follows any process killed while its work ran.
APPLICATION_XIDS = frozenset({13, 31, 43, 45})


class NvmlUnavailable(Exception):
    def __init__(self, fault: str, detail: str):
        super().__init__(detail)
        self.fault = fault
        self.detail = detail


def _nvml_code(err) -> int:
    value = getattr(err, "value", None)
    return value if isinstance(value, int) else -1


def _text(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


class Nvml:
    """Every NVML call the check makes, over the pynvml module (nvidia-ml-py).

    Tests replace pynvml itself: test/fixtures/gpu-check/fake-pynvml/pynvml.py replays a recording (the format
    `record_nvml` writes), so this adapter's parsing runs unchanged against recorded answers.
    """

    def __init__(self, lib, source: str):
        self.lib = lib
        self.source = source
        self.count = int(lib.nvmlDeviceGetCount())
        self.handles = [lib.nvmlDeviceGetHandleByIndex(i) for i in range(self.count)]
        self.identities = [self.identity(i) for i in range(self.count)]
        self._by_uuid = {g["uuid"]: g["index"] for g in self.identities if g["uuid"]}
        self._events = None
        self.xid_status = "not monitored"
        self.xids: list = []
        self._lock = threading.Lock()

    @classmethod
    def open(cls) -> "Nvml":
        try:
            import pynvml  # type: ignore
        except Exception as err:  # noqa: BLE001
            raise NvmlUnavailable(
                "image",
                f"nvml unavailable: import pynvml failed ({type(err).__name__}: {err}); the image must ship "
                "nvidia-ml-py (pip install nvidia-ml-py) so the check can read clocks, throttle reasons and health",
            ) from None
        try:
            pynvml.nvmlInit()
        except Exception as err:  # noqa: BLE001
            raise NvmlUnavailable(
                "node",
                f"nvml unavailable: nvmlInit failed ({err}); the container has no working libnvidia-ml.so.1: the "
                "node's NVIDIA container runtime must mount the driver's utility libraries "
                "(NVIDIA_DRIVER_CAPABILITIES includes utility)",
            ) from None
        try:
            return cls(pynvml, _pynvml_source(pynvml))
        except Exception as err:  # noqa: BLE001
            try:
                pynvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass
            raise NvmlUnavailable("node", f"nvml unavailable: listing GPUs failed ({err})") from None

    def _read(self, index, name: str, *args):
        """(value, problem): problem is None, "unsupported", or an error text."""
        fn = getattr(self.lib, name, None)
        if fn is None:
            return None, "unsupported"
        try:
            return fn(self.handles[index], *args) if index is not None else fn(*args), None
        except Exception as err:  # noqa: BLE001
            code = _nvml_code(err)
            if code in (NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND):
                return None, "unsupported"
            return None, f"{name}: {err}"

    def _value(self, index, name: str, *args):
        return self._read(index, name, *args)[0]

    def identity(self, i: int) -> dict:
        pci = self._value(i, "nvmlDeviceGetPciInfo")
        bus = getattr(pci, "busId", None) if pci is not None else None
        uuid = self._value(i, "nvmlDeviceGetUUID")
        serial = self._value(i, "nvmlDeviceGetSerial")
        name = self._value(i, "nvmlDeviceGetName")
        return {
            "index": i,
            "name": _text(name) if name is not None else None,
            "uuid": _text(uuid) if uuid is not None else None,
            "serial": _text(serial) if serial is not None else None,
            "pciBusId": _text(bus) if bus is not None else None,
        }

    def reasons(self, i: int):
        value, problem = self._read(i, "nvmlDeviceGetCurrentClocksEventReasons")
        if problem == "unsupported":  # pynvml before 12.535 and older drivers name it "throttle reasons"
            value = self._value(i, "nvmlDeviceGetCurrentClocksThrottleReasons")
        return int(value) if value is not None else None

    def sample(self, i: int) -> dict:
        power = self._value(i, "nvmlDeviceGetPowerUsage")
        return {
            "smClockMHz": self._value(i, "nvmlDeviceGetClockInfo", NVML_CLOCK_SM),
            "memClockMHz": self._value(i, "nvmlDeviceGetClockInfo", NVML_CLOCK_MEM),
            "powerW": round(power / 1000.0, 1) if power is not None else None,
            "temperatureC": self._value(i, "nvmlDeviceGetTemperature", NVML_TEMPERATURE_GPU),
            "reasons": self.reasons(i),
            "pcieGen": self._value(i, "nvmlDeviceGetCurrPcieLinkGeneration"),
            "pcieWidth": self._value(i, "nvmlDeviceGetCurrPcieLinkWidth"),
        }

    def health(self, i: int) -> dict:
        errors = {}

        def read(key, name, *args):
            value, problem = self._read(i, name, *args)
            if problem not in (None, "unsupported"):
                errors[key] = problem
            return value

        ecc_mode = read("eccMode", "nvmlDeviceGetEccMode")
        remapped = read("remappedRows", "nvmlDeviceGetRemappedRows")
        retired = None
        if remapped is None:  # pre-Ampere GPUs retire pages instead of remapping rows
            pending = read("retiredPagesPending", "nvmlDeviceGetRetiredPagesPendingStatus")
            if pending is not None:
                sbe = read("retiredPagesSbe", "nvmlDeviceGetRetiredPages", NVML_RETIRE_SBE)
                dbe = read("retiredPagesDbe", "nvmlDeviceGetRetiredPages", NVML_RETIRE_DBE)
                retired = {"pending": bool(pending), "singleBit": len(sbe) if sbe is not None else None,
                           "doubleBit": len(dbe) if dbe is not None else None}
        links = []
        for link in range(NVML_NVLINK_MAX_LINKS):
            state, problem = self._read(i, "nvmlDeviceGetNvLinkState", link)
            if problem is not None:
                if problem != "unsupported" and "Invalid Argument" not in problem:
                    errors[f"nvlink{link}"] = problem
                continue
            links.append(int(state))
        enforced = read("enforcedPowerLimit", "nvmlDeviceGetEnforcedPowerLimit")
        default = read("defaultPowerLimit", "nvmlDeviceGetPowerManagementDefaultLimit")
        return {
            "eccEnabled": bool(ecc_mode[0]) if ecc_mode is not None else None,
            "eccVolatileUncorrected": read("eccVolatile", "nvmlDeviceGetTotalEccErrors",
                                           NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC),
            "eccAggregateUncorrected": read("eccAggregate", "nvmlDeviceGetTotalEccErrors",
                                            NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC),
            "remappedRows": (
                {"correctable": int(remapped[0]), "uncorrectable": int(remapped[1]), "pending": bool(remapped[2]),
                 "failure": bool(remapped[3])} if remapped is not None else None
            ),
            "retiredPages": retired,
            "pcie": {
                "gen": read("pcieGen", "nvmlDeviceGetCurrPcieLinkGeneration"),
                "width": read("pcieWidth", "nvmlDeviceGetCurrPcieLinkWidth"),
                "maxGen": read("pcieMaxGen", "nvmlDeviceGetMaxPcieLinkGeneration"),
                "maxWidth": read("pcieMaxWidth", "nvmlDeviceGetMaxPcieLinkWidth"),
                "replays": read("pcieReplays", "nvmlDeviceGetPcieReplayCounter"),
            },
            "nvlink": {"supported": len(links), "active": sum(1 for s in links if s)},
            "power": {
                "enforcedLimitW": round(enforced / 1000.0, 1) if enforced is not None else None,
                "defaultLimitW": round(default / 1000.0, 1) if default is not None else None,
            },
            "maxClocks": {"smMHz": read("maxSmClock", "nvmlDeviceGetMaxClockInfo", NVML_CLOCK_SM),
                          "memMHz": read("maxMemClock", "nvmlDeviceGetMaxClockInfo", NVML_CLOCK_MEM)},
            "unreadable": errors,
        }

    def start_xid_monitoring(self) -> str:
        try:
            self._events = self.lib.nvmlEventSetCreate()
        except Exception as err:  # noqa: BLE001
            self.xid_status = f"unsupported ({err})"
            return self.xid_status
        registered, failures = 0, []
        for i, handle in enumerate(self.handles):
            try:
                self.lib.nvmlDeviceRegisterEvents(handle, NVML_EVENT_TYPE_XID, self._events)
                registered += 1
            except Exception as err:  # noqa: BLE001
                failures.append(f"GPU {i}: {err}")
        if registered == self.count and self.count > 0:
            self.xid_status = "monitored"
        elif registered:
            self.xid_status = f"monitored on {registered} of {self.count} GPU(s) ({'; '.join(failures)})"
        else:
            self.xid_status = f"unsupported ({'; '.join(failures) or 'no GPU'})"
        return self.xid_status

    def poll_xids(self, timeout_ms: int) -> list:
        """Xid events since the last poll: waits up to timeout_ms for the first, then drains without waiting."""
        if self._events is None or not self.xid_status.startswith("monitored"):
            return []
        wait = getattr(self.lib, "nvmlEventSetWait_v2", None) or self.lib.nvmlEventSetWait
        found = []
        timeout = int(timeout_ms)
        for _ in range(1000):
            try:
                data = wait(self._events, timeout)
            except Exception as err:  # noqa: BLE001
                if _nvml_code(err) != NVML_ERROR_TIMEOUT:
                    found.append({"index": None, "uuid": None, "xid": None, "error": str(err)})
                break
            timeout = 0
            uuid = None
            try:
                uuid = _text(self.lib.nvmlDeviceGetUUID(data.device))
            except Exception:  # noqa: BLE001
                pass
            found.append({"index": self._by_uuid.get(uuid), "uuid": uuid, "xid": int(data.eventData)})
        with self._lock:
            self.xids.extend(found)
        return found

    def close(self) -> None:
        if self._events is not None:
            try:
                self.lib.nvmlEventSetFree(self._events)
            except Exception:  # noqa: BLE001
                pass
            self._events = None
        try:
            self.lib.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def _pynvml_source(module) -> str:
    try:
        from importlib import metadata

        return f"pynvml (nvidia-ml-py {metadata.version('nvidia-ml-py')})"
    except Exception:  # noqa: BLE001
        version = getattr(module, "__version__", None)
        return f"pynvml {version}" if version else "pynvml"


class Sampler:
    """Samples every NVML GPU each SAMPLE_INTERVAL_S on a thread while a sustained phase runs, and collects Xid
    events in between (the wait for events is the pause between samples)."""

    def __init__(self, nvml: Nvml, interval: float = SAMPLE_INTERVAL_S):
        self.nvml = nvml
        self.interval = interval
        self.samples: list = []
        self._stop = threading.Event()
        self._thread = None
        self._t0 = 0.0

    def start(self) -> "Sampler":
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic() - self._t0
            for i in range(self.nvml.count):
                try:
                    s = self.nvml.sample(i)
                except Exception:  # noqa: BLE001 - a sampler must never take the check down
                    continue
                s["gpu"] = i
                s["t"] = round(t, 3)
                self.samples.append(s)
            if self.nvml.xid_status.startswith("monitored"):
                self.nvml.poll_xids(int(self.interval * 1000))
            else:
                self._stop.wait(self.interval)

    def stop(self) -> list:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self.samples


def evaluate_health(gpus: list, expect_gpus: int, link_row, loaded: dict, xids: list, xid_status: str) -> tuple:
    """(problems, notes) of gpu_health. gpus: identity + `health` per NVML GPU; link_row: the product's
    `interconnect` row or None; loaded: {gpu index: {"pcieGen", "pcieWidth"}} seen under load (sustained phases);
    xids: events seen during the run. Problems are node faults; notes are reported without failing."""
    problems, notes = [], []
    want_links = link_row.get("nvlinkLinks") if link_row else None
    for g in gpus:
        h = g["health"]
        who = f"GPU {g['index']} ({g.get('uuid') or 'no uuid'})"
        for key, text in sorted(h.get("unreadable", {}).items()):
            if "GPU is lost" in text or "GPU_IS_LOST" in text:
                problems.append(f"{who}: NVML says the GPU is lost ({key}): the GPU fell off the bus; reset the GPU "
                                "or reboot the node")
                break
        vol = h.get("eccVolatileUncorrected")
        if vol:
            problems.append(f"{who}: {vol} uncorrected ECC error(s) since the driver loaded (volatile): drain the "
                            "node and reset the GPU")
        agg = h.get("eccAggregateUncorrected")
        if agg:
            notes.append(f"{who}: {agg} uncorrected ECC error(s) over the GPU's lifetime (aggregate)")
        rows = h.get("remappedRows")
        if rows:
            if rows["failure"]:
                problems.append(f"{who}: row remapping failed (no spare rows left): the GPU needs replacing")
            if rows["pending"]:
                problems.append(f"{who}: a row remap is pending: reset the GPU (or reboot the node) to apply it")
        retired = h.get("retiredPages")
        if retired and retired["pending"]:
            problems.append(f"{who}: a page retirement is pending: reset the GPU (or reboot the node) to apply it")
        pcie = h.get("pcie", {})
        seen = loaded.get(g["index"])
        max_gen, max_width = pcie.get("maxGen"), pcie.get("maxWidth")
        if seen and seen.get("pcieGen") is not None and max_gen is not None and max_width is not None:
            gen, width = seen["pcieGen"], seen.get("pcieWidth")
            if gen < max_gen or (width is not None and width < max_width):
                problems.append(f"{who}: PCIe link runs Gen{gen} x{width} under load where Gen{max_gen} "
                                f"x{max_width} is possible: reseat the GPU or check the slot and riser")
        elif max_gen is not None:
            notes.append(f"{who}: PCIe link not judged (no samples under load; idle links may train down)")
        nv = h.get("nvlink", {})
        if want_links and expect_gpus >= 2 and nv.get("active", 0) < want_links:
            problems.append(f"{who}: {nv.get('active', 0)} of {want_links} NVLink links are up")
        power = h.get("power", {})
        limit, default = power.get("enforcedLimitW"), power.get("defaultLimitW")
        if limit is not None and default and limit < POWER_LIMIT_MIN_SHARE * default:
            problems.append(f"{who}: power limit {limit:g} W is below the board default {default:g} W: restore "
                            "it (nvidia-smi -rpl or the node's power settings)")
    for x in xids:
        if x.get("xid") is None:
            notes.append(f"Xid monitoring error: {x.get('error')}")
            continue
        who = f"GPU {x['index']} ({x['uuid']})" if x.get("index") is not None else f"GPU {x.get('uuid')}"
        if x["xid"] in APPLICATION_XIDS:
            notes.append(f"{who}: Xid {x['xid']} during the run (application-class)")
        else:
            problems.append(f"{who}: Xid {x['xid']} during the run: look it up in NVIDIA's Xid catalog; drain "
                            "the node")
    if not xid_status.startswith("monitored"):
        notes.append(f"Xid events {xid_status}")
    return problems, notes


def record_nvml(path: str) -> dict:
    """Write what pynvml answers on this machine in the recording format the tests' fake pynvml replays
    (test/fixtures/gpu-check/fake-pynvml). Run on a GPU machine: images/checks/proof/prove.py does."""
    import pynvml  # type: ignore

    def answer(fn, *args):
        try:
            value = fn(*args)
        except Exception as err:  # noqa: BLE001
            code = _nvml_code(err)
            names = {NVML_ERROR_NOT_SUPPORTED: "NOT_SUPPORTED", NVML_ERROR_FUNCTION_NOT_FOUND: "FUNCTION_NOT_FOUND",
                     NVML_ERROR_INVALID_ARGUMENT: "INVALID_ARGUMENT", NVML_ERROR_GPU_IS_LOST: "GPU_IS_LOST"}
            return {"error": names.get(code, code)}
        if hasattr(value, "busId"):
            return {"busId": _text(value.busId)}
        if isinstance(value, bytes):
            return _text(value)
        if isinstance(value, (list, tuple)):
            return [int(v) if not isinstance(v, (str, bytes)) else _text(v) for v in value]
        return value

    pynvml.nvmlInit()
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            d = {}
            for name in ("nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetSerial", "nvmlDeviceGetPciInfo",
                         "nvmlDeviceGetPowerUsage", "nvmlDeviceGetCurrentClocksEventReasons",
                         "nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlDeviceGetEnforcedPowerLimit",
                         "nvmlDeviceGetPowerManagementDefaultLimit", "nvmlDeviceGetEccMode",
                         "nvmlDeviceGetRemappedRows", "nvmlDeviceGetRetiredPagesPendingStatus",
                         "nvmlDeviceGetCurrPcieLinkGeneration", "nvmlDeviceGetCurrPcieLinkWidth",
                         "nvmlDeviceGetMaxPcieLinkGeneration", "nvmlDeviceGetMaxPcieLinkWidth",
                         "nvmlDeviceGetPcieReplayCounter"):
                fn = getattr(pynvml, name, None)
                if fn is not None:
                    d[name] = answer(fn, h)
            for name, arg_lists in (
                ("nvmlDeviceGetClockInfo", [(NVML_CLOCK_SM,), (NVML_CLOCK_MEM,)]),
                ("nvmlDeviceGetMaxClockInfo", [(NVML_CLOCK_SM,), (NVML_CLOCK_MEM,)]),
                ("nvmlDeviceGetTemperature", [(NVML_TEMPERATURE_GPU,)]),
                ("nvmlDeviceGetTotalEccErrors", [(NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC),
                                                 (NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC)]),
                ("nvmlDeviceGetRetiredPages", [(NVML_RETIRE_SBE,), (NVML_RETIRE_DBE,)]),
                ("nvmlDeviceGetNvLinkState", [(link,) for link in range(NVML_NVLINK_MAX_LINKS)]),
            ):
                fn = getattr(pynvml, name, None)
                if fn is not None:
                    d[name] = {",".join(str(a) for a in args): answer(fn, h, *args) for args in arg_lists}
            devices.append(d)
        recording = {
            "$comment": "Recorded by gpu_check.record_nvml on a real GPU machine; replayed by the tests' fake pynvml.",
            "recordedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "nvmlSystemGetDriverVersion": answer(pynvml.nvmlSystemGetDriverVersion),
            "devices": devices,
            "xidEvents": [],
        }
    finally:
        pynvml.nvmlShutdown()
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(recording, fh, indent=2)
        fh.write("\n")
    return recording


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


# --- measurements -------------------------------------------------------------------------------------------------


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
    try:  # torch >= 2.9 deprecates allow_tf32 in favour of this; torch 1.13 raises AssertionError on unknown names
        if hasattr(matmul, "fp32_precision"):
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


def time_burst(torch, fn, warmup_s: float = BURST_WARMUP_S, target_s: float = BURST_REP_S,
               reps: int = BURST_REPS) -> dict:
    """Burst figure of fn() on the current device: median seconds per call over `reps` timed repetitions of about
    `target_s` each (CUDA events), after a warm-up of at least `warmup_s` of wall time, however short fn() is."""
    start = time.monotonic()
    calls, chunk = 0, 1
    while True:
        t0 = time.monotonic()
        for _ in range(chunk):
            fn()
        torch.cuda.synchronize()
        chunk_s = time.monotonic() - t0
        calls += chunk
        if calls >= 3 and time.monotonic() - start >= warmup_s:
            break
        if chunk_s < 0.05:
            chunk *= 2  # short calls: bigger chunks so synchronisation does not dominate
    warmup = time.monotonic() - start
    per_call = max(chunk_s / chunk, 1e-7)
    inner = max(1, min(1_000_000, int(math.ceil(target_s / per_call))))
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
    return {"seconds": statistics.median(samples), "inner": inner, "reps": reps, "warmupSeconds": warmup,
            "warmupCalls": calls}


def run_sustained(torch, ops: list, seconds: float, window_s: float = SUSTAIN_WINDOW_S,
                  max_calls: int = SUSTAIN_MAX_CALLS) -> tuple:
    """Run every op [(cuda index, fn, burst seconds per call)] on all its GPUs at once for `seconds`.

    Each GPU gets windows of about `window_s` timed with CUDA events; the next window is queued before the previous
    one is awaited, so no GPU idles between windows. Returns ({cuda index: [seconds per call, one per window]},
    elapsed seconds)."""
    plan = [(d, fn, max(1, min(max_calls, int(math.ceil(window_s / max(per_call, 1e-7)))))) for d, fn, per_call in ops]
    windows = {d: [] for d, _, _ in plan}
    started = time.monotonic()
    deadline = started + seconds
    pending: list = []
    while True:
        batch = []
        for d, fn, k in plan:
            with torch.cuda.device(d):
                begin = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                begin.record()
                for _ in range(k):
                    fn()
                end.record()
            batch.append((d, begin, end, k))
        for d, begin, end, k in pending:
            end.synchronize()
            windows[d].append(begin.elapsed_time(end) / 1000.0 / k)
        pending = batch
        if time.monotonic() >= deadline:
            break
    for d, begin, end, k in pending:
        end.synchronize()
        windows[d].append(begin.elapsed_time(end) / 1000.0 / k)
    return windows, time.monotonic() - started


def steady_seconds(windows: list) -> float:
    """Seconds per call in the steady state: the median of the second half of the windows."""
    return statistics.median(windows[len(windows) // 2:])


class Context:
    def __init__(self, args: argparse.Namespace, datasheet: dict, table: dict, thresholds: dict):
        self.args = args
        self.datasheet = datasheet
        self.links = interconnect_row(table, args.expect_product)
        self.thresholds = thresholds
        self.torch = None
        self.cuda_ok = False
        self.device_count = 0
        self.device_names: list = []
        self.driver = None
        self.driver_source = None
        self.results: dict = {}
        self.nvml = None
        self.nvml_error = None
        self._nvml_tried = False
        self.loaded_pcie: dict = {}  # NVML index -> best PCIe gen/width seen while the GPUs were under load
        self.sample_rows: list = []  # (phase, sample) for --samples-file

    @property
    def cpu(self) -> bool:
        return self.args.mode == "cpu"

    def open_nvml(self):
        """The NVML adapter (opened once, gpu mode only), or None with nvml_error set."""
        if not self._nvml_tried and not self.cpu:
            self._nvml_tried = True
            try:
                self.nvml = Nvml.open()
                self.nvml.start_xid_monitoring()
            except NvmlUnavailable as err:
                self.nvml_error = err
        return self.nvml

    def close(self) -> None:
        if self.nvml is not None:
            self.nvml.close()

    def cuda_to_nvml(self) -> dict:
        """{cuda index: NVML index}, by UUID where torch reports one, else by order when both enumerate the same
        GPUs in PCI bus order (CUDA_DEVICE_ORDER=PCI_BUS_ID, set in main, and no CUDA_VISIBLE_DEVICES)."""
        if self.nvml is None:
            return {}
        by_uuid = {}
        for g in self.nvml.identities:
            if g["uuid"]:
                by_uuid[g["uuid"].lower().replace("gpu-", "")] = g["index"]
        out = {}
        for d in range(self.device_count):
            try:
                uuid = str(self.torch.cuda.get_device_properties(d).uuid).lower().replace("gpu-", "")
            except Exception:  # noqa: BLE001 - torch < 2.1 has no uuid
                uuid = None
            if uuid in by_uuid:
                out[d] = by_uuid[uuid]
        if len(out) == self.device_count:
            return out
        if os.environ.get("CUDA_VISIBLE_DEVICES") is None and self.nvml.count == self.device_count:
            return {d: d for d in range(self.device_count)}
        return out


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
            expected=expected, found=None, fault="image",
        )
    found = major_minor(str(build))
    if found != expected:
        return _result("fail", f"torch is built for CUDA {build}, expected CUDA {expected}",
                       expected=expected, found=str(build), fault="image")
    return _result("pass", f"torch built for CUDA {build}", expected=expected, found=str(build))


def _cuda_init_error(torch):
    try:
        torch.cuda.init()
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"
    return None


def check_cuda_available(ctx: Context) -> dict:
    torch = ctx.torch
    expected = ctx.args.expect_gpus
    available = bool(torch.cuda.is_available())
    count = int(torch.cuda.device_count()) if available else 0
    build = getattr(torch.version, "cuda", None)
    nvml = ctx.open_nvml()
    nvml_count = nvml.count if nvml is not None else None
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not available or count == 0:
        init_error = _cuda_init_error(torch) if build is not None else None
        fault, why = classify_cuda_devices(build, cvd, nvml_count, expected, 0, init_error)
        return _result("fail", f"no CUDA device is visible: torch.cuda.is_available() is False ({why})",
                       expected=expected, found=0, fault=fault)
    ctx.device_count = count
    ctx.device_names = [str(torch.cuda.get_device_name(i)) for i in range(count)]
    if count != expected:
        fault, why = classify_cuda_devices(build, cvd, nvml_count, expected, count, None)
        return _result("fail", f"expected {expected} GPU(s), torch sees {count}: {why}",
                       expected=expected, found=count, fault=fault)
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


def check_nvml(ctx: Context) -> dict:
    nvml = ctx.open_nvml()
    if nvml is None:
        err = ctx.nvml_error
        return _result("fail", err.detail if err else "nvml unavailable", fault=err.fault if err else "node")
    expected = ctx.args.expect_gpus
    figures = {"source": nvml.source, "count": nvml.count, "xidEvents": nvml.xid_status}
    if nvml.count != expected:
        return _result("fail", f"NVML sees {nvml.count} GPU(s) in the container where {expected} were requested: "
                               "the node's device plugin or container runtime handed out the wrong devices",
                       fault="node", **figures)
    names = sorted({g["name"] or "?" for g in nvml.identities})
    return _result("pass", f"NVML ({nvml.source}) sees {nvml.count} GPU(s): {', '.join(names)}; Xid events "
                           f"{nvml.xid_status}", **figures)


def check_device_product(ctx: Context) -> dict:
    expected = ctx.args.expect_product
    # GPU Feature Discovery builds the label from NVML's device name: prefer NVML, fall back to torch.
    if ctx.nvml is not None:
        names, source = [g["name"] or "" for g in ctx.nvml.identities], "NVML"
    else:
        names, source = ctx.device_names, "torch"
    products = [gfd_product(n) for n in names]
    wrong = [(i, names[i], p) for i, p in enumerate(products) if p != expected]
    if wrong:
        i, name, product = wrong[0]
        more = f" ({len(wrong) - 1} more GPU(s) differ)" if len(wrong) > 1 else ""
        return _result(
            "fail",
            f"GPU {i} is {product} ({source}: {name!r}), but the pool declares nvidia.com/gpu.product={expected}"
            f"{more}: the node is in the wrong pool or mislabelled",
            expected=expected, found=products, source=source,
        )
    return _result("pass", f"{len(products)}x {expected} ({source})", expected=expected, found=products,
                   source=source)


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
        wrong = [d for d, e in enumerate(errors) if not e <= tolerance]
        if 0 < len(wrong) < len(errors):
            # The same software is right on the other GPUs: these GPUs compute wrong results.
            return _result("fail", f"bf16 {n}x{n}x{n} matmul is wrong on GPU(s) {wrong} only (relative error "
                                   f"{worst:.3g} > {tolerance:g}) and right on the others: faulty GPU(s)",
                           fault="node", perDevice=errors, **figures)
        return _result("fail", f"bf16 {n}x{n}x{n} matmul on {where} is wrong: relative error {worst:.3g} > "
                               f"{tolerance:g} against the fp32 reference", fault="image", **figures)
    return _result("pass", f"bf16 {n}x{n}x{n} matmul on {where} matches fp32 (relative error {worst:.2e})",
                   **figures)


def _sustained_phase(ctx: Context, phase: str, ops: list) -> dict:
    """Run ops together for --sustain-seconds with NVML sampling. Returns windows, NVML summaries by CUDA index,
    and summaries of every NVML GPU."""
    seconds = float(option(ctx.args, "sustain_seconds"))
    sampler = Sampler(ctx.nvml).start() if ctx.nvml is not None else None
    try:
        windows, elapsed = run_sustained(ctx.torch, ops, seconds)
    finally:
        samples = sampler.stop() if sampler is not None else []
    summary = summarize_samples(samples, elapsed)
    for gpu, s in summary.items():
        best = ctx.loaded_pcie.setdefault(gpu, {"pcieGen": None, "pcieWidth": None})
        for key in ("pcieGen", "pcieWidth"):
            if s[key] is not None and (best[key] is None or s[key] > best[key]):
                best[key] = s[key]
    ctx.sample_rows.extend((phase, s) for s in samples)
    return {"windows": windows, "elapsed": elapsed, "nvml": summary, "map": ctx.cuda_to_nvml()}


def _round(value: float, digits: int):
    return round(value, digits) if digits else int(round(value))


def _judge_sustained(ctx: Context, phase: dict, burst: dict, work: dict, unit: str, digits: int) -> tuple:
    """(figures, problems) of a sustained phase: per-GPU steady-state rate (work[d] / seconds per call) against
    the same GPU's burst, and NVML throttle reasons (every NVML GPU, mapped to CUDA indices where possible)."""
    need = ctx.thresholds["sustainedRatio"]
    per_device, problems = [], []
    for d, windows in sorted(phase["windows"].items()):
        steady = work[d] / steady_seconds(windows)
        entry = {
            "index": d,
            unit: _round(steady, digits),
            "first": _round(work[d] / windows[0], digits),
            "min": _round(min(work[d] / w for w in windows), digits),
            "windows": len(windows),
            "ratio": round(steady / burst[d], 3),
        }
        nvml_index = phase["map"].get(d)
        if nvml_index is not None and nvml_index in phase["nvml"]:
            entry["nvml"] = dict(phase["nvml"][nvml_index], gpu=nvml_index)
        if steady < need * burst[d]:
            clocks = entry.get("nvml", {}).get("smClockMHz", {})
            why = f"; SM clock median {clocks['median']} MHz" if clocks.get("median") is not None else ""
            problems.append(f"cuda:{d} sustained {steady:.{digits}f} is {steady / burst[d]:.0%} of its burst "
                            f"{burst[d]:.{digits}f} (need >= {need:.0%}){why}: the GPU slows down under load")
        per_device.append(entry)
    for gpu, s in sorted(phase["nvml"].items()):
        if s["faultReasons"]:
            counts = ", ".join(f"{n} in {s['clockReasons'][n]}/{s['samples']} samples" for n in s["faultReasons"])
            problems.append(f"NVML GPU {gpu} throttled for heat or power delivery: {counts}")
    worst = min(per_device, key=lambda e: e[unit])
    figures = {
        "seconds": round(phase["elapsed"], 1),
        unit: worst[unit],
        "ratio": min(e["ratio"] for e in per_device),
        "requiredRatio": need,
        "perDevice": per_device,
        "clockSamples": "nvml" if ctx.nvml is not None else "unavailable (nvml failed)",
    }
    if ctx.nvml is not None and len(phase["map"]) < len(per_device):
        figures["unmappedNvmlGpus"] = {str(k): v for k, v in sorted(phase["nvml"].items())
                                       if k not in phase["map"].values()}
    return figures, problems


def _power_evidence(ctx: Context) -> list:
    """NVML facts that make a slow GPU the node's fault: a lowered power limit or locked application clocks."""
    out = []
    if ctx.nvml is None:
        return out
    for i in range(ctx.nvml.count):
        h = ctx.nvml.health(i)
        limit, default = h["power"]["enforcedLimitW"], h["power"]["defaultLimitW"]
        if limit is not None and default and limit < POWER_LIMIT_MIN_SHARE * default:
            out.append(f"GPU {i} power limit {limit:g} W < default {default:g} W")
    return out


def _measure(ctx: Context, kind: str) -> dict:
    torch = ctx.torch
    n = ctx.args.matmul_size
    if kind == "matmul":
        peak = float(ctx.datasheet["denseBf16Tflops"])
        need = ctx.thresholds["matmulFraction"]
        unit, digits, label = "tflops", 1, "TFLOP/s"
    else:
        peak = float(ctx.datasheet["memoryBandwidthGBps"])
        need = ctx.thresholds["bandwidthFraction"]
        unit, digits, label = "gbps", 0, "GB/s"
    buffers, ops, burst, work, timing = {}, [], {}, {}, None
    used = ctx.args.bandwidth_bytes
    try:
        for d in range(ctx.device_count):
            dev = f"cuda:{d}"
            with torch.cuda.device(d):
                if kind == "matmul":
                    a = torch.randn((n, n), device=dev, dtype=torch.float32).to(torch.bfloat16)
                    b = torch.randn((n, n), device=dev, dtype=torch.float32).to(torch.bfloat16)
                    c = torch.empty((n, n), device=dev, dtype=torch.bfloat16)
                    buffers[d] = (a, b, c)
                    fn = (lambda a=a, b=b, c=c: torch.matmul(a, b, out=c))
                    work[d] = 2.0 * n ** 3 / 1e12
                else:
                    nbytes = ctx.args.bandwidth_bytes
                    if hasattr(torch.cuda, "mem_get_info"):
                        free, _total = torch.cuda.mem_get_info()
                        nbytes = min(nbytes, int(free * 0.4))  # two buffers must fit with room to spare
                    numel = max(1, nbytes // 4)
                    nbytes = numel * 4
                    used = min(used, nbytes)
                    src = torch.empty(numel, device=dev, dtype=torch.float32)
                    # Random contents: Ampere+ compresses zero/uniform data, which would inflate the figure.
                    src.uniform_()
                    dst = torch.empty_like(src)
                    buffers[d] = (src, dst)
                    fn = (lambda src=src, dst=dst: dst.copy_(src))
                    work[d] = 2.0 * nbytes / 1e9  # every byte is read once and written once
                timing = time_burst(torch, fn)
                burst[d] = work[d] / timing["seconds"]
                ops.append((d, fn, timing["seconds"]))
        sustained, sustained_problems = None, []
        if float(option(ctx.args, "sustain_seconds")) > 0:
            phase = _sustained_phase(ctx, kind, ops)
            sustained, sustained_problems = _judge_sustained(ctx, phase, burst, work, unit, digits)
    finally:
        buffers.clear()
        torch.cuda.empty_cache()
    value = min(burst.values())
    fraction = value / peak
    figures = {
        unit: _round(value, digits),
        ("datasheetTflops" if kind == "matmul" else "datasheetGBps"): peak,
        "fraction": round(fraction, 3),
        "required": need,
        ("size" if kind == "matmul" else "bytes"): (n if kind == "matmul" else used),
        "perDevice": [_round(burst[d], digits) for d in sorted(burst)],
        "warmupSeconds": round(timing["warmupSeconds"], 3),
        "sustained": sustained,
    }
    what = f"{n}^3" if kind == "matmul" else f"device-to-device copy of {used / 2**20:.0f} MiB, read + written"
    text = (f"burst {value:.{digits}f} {label} = {fraction:.0%} of the {peak:g} {label} datasheet figure "
            f"(need >= {need:.0%}; {what}, median of {timing['reps']} runs of {timing['inner']} after "
            f"{timing['warmupSeconds']:.1f} s warm-up")
    text += f", slowest of {len(burst)} GPUs)" if len(burst) > 1 else ")"
    if sustained is not None:
        text += (f"; sustained {sustained[unit]:.{digits}f} {label} ({sustained['ratio']:.0%} of burst) over "
                 f"{sustained['seconds']:.0f} s")
    else:
        text += "; sustained phase off (--sustain-seconds 0)"
    problems = []
    if fraction < need:
        problems.append(f"burst {value:.{digits}f} {label} is below {need:.0%} of the datasheet {peak:g} {label}")
    problems.extend(sustained_problems)
    if not problems:
        return _result("pass", text, **figures)
    # A slow GPU is the node's fault when the GPU itself shows it (throttling, clocks falling under load, a
    # lowered power limit), and always for the copy, which no image can slow down. Otherwise the image's
    # matmul software is the suspect (e.g. a torch/cuBLAS build without kernels tuned for this GPU).
    power = _power_evidence(ctx)
    fault = "node" if (kind == "copy" or sustained_problems or power) else "image"
    return _result("fail", "; ".join(problems + power) + f" ({text})", fault=fault, **figures)


def check_matmul_throughput(ctx: Context) -> dict:
    return _measure(ctx, "matmul")


def check_memory_bandwidth(ctx: Context) -> dict:
    return _measure(ctx, "copy")


def _nccl_worker(rank: int, world: int, store: str, nbytes: int, results) -> None:
    """One rank of the NCCL check (runs in a spawned process: CUDA cannot be forked once initialised)."""
    try:
        import datetime

        import torch
        import torch.distributed as dist

        torch.cuda.set_device(rank)
        dist.init_process_group("nccl", init_method=f"file://{store}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=60))
        dev = f"cuda:{rank}"
        t = torch.full((1 << 20,), float(rank + 1), device=dev, dtype=torch.float32)
        dist.all_reduce(t)
        torch.cuda.synchronize()
        expected = world * (world + 1) / 2.0
        ok = bool(torch.all(t == expected).item())
        got = float(t[0].item())
        seconds = None
        if ok and world >= 2:
            buf = torch.empty(nbytes // 4, device=dev, dtype=torch.float32).uniform_()
            for _ in range(NCCL_WARMUP_ITERS):
                dist.all_reduce(buf)
            torch.cuda.synchronize()
            begin = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            begin.record()
            for _ in range(NCCL_BENCH_ITERS):
                dist.all_reduce(buf)
            end.record()
            end.synchronize()
            seconds = begin.elapsed_time(end) / 1000.0 / NCCL_BENCH_ITERS
        dist.destroy_process_group()
        results.put((rank, "ok" if ok else "wrong", f"rank {rank} got {got:g}, expected {expected:g}", seconds))
    except Exception as err:  # noqa: BLE001
        results.put((rank, "error", f"rank {rank}: {type(err).__name__}: {' '.join(str(err).split())[:400]}", None))


def run_nccl(world: int, nbytes: int = NCCL_BENCH_BYTES, timeout_s: float = NCCL_TIMEOUT_S) -> dict:
    """All-reduce across `world` GPUs, one spawned process per GPU, rendezvous through a FileStore in a temporary
    directory (no network). Returns {"status": ok|wrong|error|timeout, "detail", "seconds"}."""
    tmp = tempfile.mkdtemp(prefix="gpu-check-nccl-")
    store = os.path.join(tmp, "store")
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_nccl_worker, args=(r, world, store, nbytes, results), daemon=True)
             for r in range(world)]
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout_s
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if len(answers) < world:
        missing = sorted(set(range(world)) - {a[0] for a in answers})
        errors = [a[2] for a in answers if a[1] == "error"]
        if errors:
            return {"status": "error", "detail": "; ".join(errors), "seconds": None}
        return {"status": "timeout", "detail": f"all-reduce timed out after {timeout_s:.0f} s (no answer from "
                                               f"rank(s) {missing})", "seconds": None}
    errors = [a for a in sorted(answers) if a[1] == "error"]
    if errors:
        return {"status": "error", "detail": "; ".join(a[2] for a in errors), "seconds": None}
    wrong = [a for a in sorted(answers) if a[1] == "wrong"]
    if wrong:
        return {"status": "wrong", "detail": "; ".join(a[2] for a in wrong), "seconds": None}
    times = [a[3] for a in answers if a[3] is not None]
    return {"status": "ok", "detail": "", "seconds": max(times) if times else None}


def check_nccl(ctx: Context) -> dict:
    torch = ctx.torch
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available():
        return _result("fail", "torch.distributed is not available in this torch build", fault="image")
    if not dist.is_nccl_available():
        return _result("fail", "NCCL is not available in this torch build (torch.distributed.is_nccl_available() "
                               "is False)", fault="image")
    version = None
    try:
        raw = torch.cuda.nccl.version()
        version = ".".join(str(x) for x in raw) if isinstance(raw, tuple) else str(raw)
    except Exception:  # noqa: BLE001
        pass
    label = f"NCCL {version}" if version else "NCCL"
    if not ctx.cuda_ok:
        return _result("skip", f"{label} is available; all-reduce not run: cuda_available failed", nccl=version)
    world = ctx.device_count
    out = run_nccl(world)
    figures = {"nccl": version, "worldSize": world}
    nccl_env = sorted(k for k in os.environ if k.startswith("NCCL_"))
    env_hint = f" (environment sets {', '.join(nccl_env)})" if nccl_env else ""
    if out["status"] == "error":
        # NCCL failing to start or run on one node is its build or its configuration: the image's.
        fault = classify_error(out["detail"], "image")
        return _result("fail", f"{label}: all-reduce across {world} GPU(s) failed: {out['detail']}{env_hint}",
                       fault=fault, **figures)
    if out["status"] in ("wrong", "timeout"):
        fault = "node" if world >= 2 else "image"
        return _result("fail", f"{label}: all-reduce across {world} GPU(s): {out['detail']}{env_hint}",
                       fault=fault, **figures)
    if world == 1:
        return _result("pass", f"{label}: one-rank communicator formed and all-reduce (sum) ran on cuda:0",
                       **figures)
    algbw, busbw = bus_bandwidth(NCCL_BENCH_BYTES, out["seconds"], world)
    need = ctx.thresholds["busbwFraction"]
    basis = (ctx.links or {}).get("allReduceBasisGBps")
    figures.update({"bytes": NCCL_BENCH_BYTES, "algBwGBps": round(algbw, 1), "busBwGBps": round(busbw, 1)})
    text = (f"{label}: all-reduce (sum) across {world} GPUs is correct; {NCCL_BENCH_BYTES >> 20} MiB: algbw "
            f"{algbw:.1f} GB/s, busbw {busbw:.1f} GB/s")
    if not isinstance(basis, (int, float)) or basis <= 0:
        return _result("pass", text + f" (no interconnect row for {ctx.args.expect_product}: not judged)",
                       **figures)
    floor = need * basis
    figures.update({"basisGBps": basis, "basis": (ctx.links or {}).get("basis"), "required": need,
                    "floorGBps": round(floor, 1)})
    text += f" (floor {floor:.1f} = {need:.0%} of the {basis:g} GB/s {(ctx.links or {}).get('basis', '')} link figure)"
    if busbw < floor:
        return _result("fail", text + ": the GPUs talk over a slower path than this product's links", fault="node",
                       **figures)
    return _result("pass", text, **figures)


def check_flash_attn(ctx: Context) -> dict:
    torch = ctx.torch
    try:
        import flash_attn
        from flash_attn import flash_attn_func
    except Exception as err:  # noqa: BLE001
        return _result("fail", f"import flash_attn failed: {type(err).__name__}: {err}", fault="image")
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
                               f"{err:.3g} > {FLASH_ATTN_TOLERANCE:g}", version=version, relError=err, fault="image")
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
        return _result("fail", "; ".join(f"import {n} failed: {modules[n]}" for n in failed), modules=modules,
                       fault="image")
    return _result("pass", f"imported {', '.join(names)}", modules=modules)


def check_gpu_health(ctx: Context) -> dict:
    nvml = ctx.nvml
    nvml.poll_xids(0)
    gpus = [dict(g, health=nvml.health(g["index"])) for g in nvml.identities]
    problems, notes = evaluate_health(gpus, ctx.args.expect_gpus, ctx.links, ctx.loaded_pcie, nvml.xids,
                                      nvml.xid_status)
    figures = {"gpus": gpus, "xids": nvml.xids, "xidEvents": nvml.xid_status, "notes": notes}
    if problems:
        return _result("fail", "; ".join(problems), fault="node", **figures)
    checked = ["no uncorrected ECC errors", "no pending row remaps or page retirements", "power limits at default"]
    if ctx.loaded_pcie:
        checked.append("PCIe links at full speed under load")
    if (ctx.links or {}).get("nvlinkLinks") and ctx.args.expect_gpus >= 2:
        checked.append(f"{ctx.links['nvlinkLinks']} NVLink links up per GPU")
    checked.append("no Xid events" if nvml.xid_status.startswith("monitored") and not nvml.xids
                   else f"Xid events {nvml.xid_status}")
    return _result("pass", f"{len(gpus)} GPU(s): " + ", ".join(checked), **figures)


CHECKS = {
    "torch_import": check_torch_import,
    "cuda_version": check_cuda_version,
    "cuda_available": check_cuda_available,
    "driver_version": check_driver_version,
    "nvml": check_nvml,
    "device_product": check_device_product,
    "matmul_correctness": check_matmul_correctness,
    "matmul_throughput": check_matmul_throughput,
    "memory_bandwidth": check_memory_bandwidth,
    "nccl": check_nccl,
    "flash_attn": check_flash_attn,
    "smoke_imports": check_smoke_imports,
    "gpu_health": check_gpu_health,
}
# A check that cannot run because an earlier one failed is skipped, naming that check.
NEEDS_TORCH = frozenset({"cuda_version", "cuda_available", "matmul_correctness", "matmul_throughput",
                         "memory_bandwidth", "nccl", "flash_attn"})
NEEDS_CUDA = frozenset({"matmul_correctness", "matmul_throughput", "memory_bandwidth", "flash_attn"})


def _failed(ctx: Context, name: str) -> bool:
    return ctx.results.get(name, {}).get("status") == "fail"


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
    if name == "device_product" and ctx.nvml is None and not ctx.cuda_ok:
        return "not run: nvml and cuda_available failed"
    if name in ("matmul_throughput", "memory_bandwidth") and _failed(ctx, "device_product"):
        return "not run: device_product failed (the datasheet figures are for another GPU)"
    if name == "matmul_throughput" and ctx.results.get("matmul_correctness", {}).get("status") != "pass":
        return "not run: matmul_correctness failed"
    if name == "gpu_health" and ctx.nvml is None:
        return "not run: nvml failed"
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
                message = f"{type(err).__name__}: {err}"
                result = _result("fail", message, fault=classify_error(message, DEFAULT_FAULT[name]))
        result["detail"] = " ".join(str(result["detail"]).split())  # one line, always
        if result["status"] == "fail":
            result.setdefault("fault", DEFAULT_FAULT[name])
            result["fault"] = result.pop("fault")  # keep it last, after the figures
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
        # The Job sets NODE_NAME from the downward API (spec.nodeName): the hostname is only the pod's name.
        "node": os.environ.get("NODE_NAME") or None,
        "nvml": ctx.nvml.source if ctx.nvml is not None else None,
        "gpus": list(ctx.nvml.identities) if ctx.nvml is not None else [],
    }
    if torch is not None and info["torchCuda"] is not None and not ctx.cpu:
        try:  # the CUDA version the driver supports, e.g. 12080 -> "12.8"; helps read a driver-floor failure
            v = int(torch._C._cuda_getDriverVersion())
            info["driverCudaVersion"] = f"{v // 1000}.{(v % 1000) // 10}" if v > 0 else None
        except Exception:  # noqa: BLE001
            info["driverCudaVersion"] = None
    return info


def write_samples(path: str, rows: list) -> None:
    """Every NVML sample of the sustained phases as CSV (phase, t_s, gpu, figures, decoded reasons)."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(["phase", "t_s", "gpu", "sm_mhz", "mem_mhz", "power_w", "temp_c", "pcie_gen", "pcie_width",
                          "reasons_mask", "reasons"])
            for phase, s in rows:
                mask = s.get("reasons")
                out.writerow([phase, s["t"], s["gpu"], s.get("smClockMHz"), s.get("memClockMHz"), s.get("powerW"),
                              s.get("temperatureC"), s.get("pcieGen"), s.get("pcieWidth"),
                              "" if mask is None else f"{mask:#x}",
                              "" if mask is None else "|".join(decode_clock_reasons(int(mask)))])
    except OSError as err:
        print(f"gpu_check.py: warning: cannot write samples file {path}: {err}", file=sys.stderr)


class ReportNotStored(Exception):
    """The report could not be written to --report-configmap; the message says why, in one line."""


def _api_error(err: urllib.error.HTTPError) -> str:
    """`HTTP 403 Forbidden: <the Status message>` from the API server's error response."""
    try:
        body = err.read(65536).decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001
        body = ""
    message = ""
    try:
        message = str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError):
        message = body.strip()
    return f"HTTP {err.code} {err.reason}" + (f": {' '.join(message.split())[:300]}" if message else "")


def store_report(ref: str, text: str, sa_dir: str = SERVICEACCOUNT_DIR, env=None, attempts: int = REPORT_ATTEMPTS,
                 timeout_s: float = REPORT_TIMEOUT_S, sleep=time.sleep) -> dict:
    """PATCH data[REPORT_KEY] = text into the ConfigMap `ref` (namespace/name) over the in-cluster API.

    As client-go's rest.InClusterConfig: the API server from KUBERNETES_SERVICE_HOST/PORT (the kubelet sets them in
    every pod, enableServiceLinks or not), HTTPS verified against the mounted ca.crt, the mounted token as bearer.
    A JSON merge patch (RFC 7386) touches only that key, and the pod's Role grants `patch` on this one ConfigMap
    (resourceNames) and nothing else. Proxies from the environment are ignored: the API server is in the cluster.
    Connection errors, 429 and 5xx are retried; anything else (401, 403, 404, 413, 422) fails at once.
    Returns {"attempts": n, "status": code}; raises ReportNotStored."""
    env = os.environ if env is None else env
    namespace, name = ref.split("/", 1)
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ReportNotStored("KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set: not running in a pod")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 service address
    try:
        with open(os.path.join(sa_dir, "token"), encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as err:
        raise ReportNotStored(f"no service account token in {sa_dir} ({err.strerror}): the pod needs "
                              "automountServiceAccountToken: true and its reporter service account") from None
    body = json.dumps({"data": {REPORT_KEY: text}}, separators=(",", ":")).encode("utf-8")
    if len(body) > REPORT_MAX_BYTES:
        raise ReportNotStored(f"the report is {len(body)} bytes, more than a ConfigMap holds ({REPORT_MAX_BYTES})")
    try:
        tls = ssl.create_default_context(cafile=os.path.join(sa_dir, "ca.crt"))
    except (OSError, ssl.SSLError) as err:
        raise ReportNotStored(f"cannot load the cluster CA {os.path.join(sa_dir, 'ca.crt')}: {err}") from None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls))
    url = (f"https://{host}:{port}/api/v1/namespaces/{urllib.parse.quote(namespace)}/configmaps/"
           f"{urllib.parse.quote(name)}?fieldManager={REPORT_FIELD_MANAGER}")
    request = urllib.request.Request(url, data=body, method="PATCH", headers={
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/merge-patch+json",
        "Accept": "application/json",
        "User-Agent": f"gpu_check.py/{REPORT_VERSION}",
    })
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            with opener.open(request, timeout=timeout_s) as resp:
                resp.read()
                return {"attempts": attempt, "status": resp.status}
        except urllib.error.HTTPError as err:
            last = _api_error(err)
            if err.code != 429 and err.code < 500:
                break
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            last = f"{type(reason).__name__}: {reason}"
            if isinstance(reason, ssl.SSLError):
                break  # a certificate that does not verify will not verify on a retry
        if attempt < attempts:
            sleep(min(2.0 ** (attempt - 1), 8.0))
    raise ReportNotStored(f"PATCH configmaps {ref} failed: {last}")


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
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        table = load_table(args.datasheets)
        datasheet = load_datasheet(args.datasheets, args.expect_product)
        overrides_text = option(args, "product_thresholds")
        overrides = parse_product_thresholds(overrides_text, table["products"]) if overrides_text else None
        thresholds = resolve_thresholds(args, argv, overrides)
    except UsageError as err:
        print(f"gpu_check.py: usage error: {' '.join(str(err).split())} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    # CUDA's default order is fastest-first; PCI bus order is NVML's, so CUDA index i is NVML index i when nothing
    # restricts the devices. Set before torch initialises CUDA; an explicit setting is kept.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    report_out = _reserve_stdout()
    ctx = Context(args, datasheet, table, thresholds)
    try:
        checks = run_checks(ctx)
        device = device_info(ctx)
    except Exception as err:  # noqa: BLE001 - a bug here must still end as a failed report, not a traceback
        checks = [{"name": "internal", "status": "fail", "detail": f"{type(err).__name__}: {err}", "fault": "image"}]
        device = {}
    finally:
        ctx.close()
    duration = time.monotonic() - started
    verdict, reasons, code = verdict_of(checks)
    line = summary_line(checks, duration)
    report = {
        "version": REPORT_VERSION,
        "mode": args.mode,
        "verdict": verdict,
        "exitCode": code,
        "passed": verdict == "pass",
        "reasons": reasons,
        "summary": line,
        "durationSeconds": round(duration, 2),
        "expect": {
            "cuda": args.expect_cuda,
            "gpus": args.expect_gpus,
            "product": args.expect_product,
            "minDriver": args.min_driver,
            "matmulFraction": thresholds["matmulFraction"],
            "bandwidthFraction": thresholds["bandwidthFraction"],
            "flashAttn": args.flash_attn,
            "smokeImports": args.smoke_imports,
        },
        "settings": {
            "sustainSeconds": float(option(args, "sustain_seconds")),
            "sampleIntervalSeconds": SAMPLE_INTERVAL_S,
            "sustainedRatio": thresholds["sustainedRatio"],
            "busbwFraction": thresholds["busbwFraction"],
            "thresholdSources": thresholds["sources"],
        },
        "device": device,
        "checks": checks,
    }
    report_out.write(json.dumps(_finite(report), indent=2, allow_nan=False, default=str) + "\n")
    report_out.flush()
    if option(args, "samples_file"):
        write_samples(option(args, "samples_file"), ctx.sample_rows)
    target = option(args, "report_configmap")
    if target:
        # The same report, compact: the program reads it back after the Job completed and publishes and attests
        # it, so the pod itself never holds signing credentials (issue #15).
        compact = json.dumps(_finite(report), separators=(",", ":"), allow_nan=False, default=str)
        try:
            store_report(target, compact, option(args, "serviceaccount_dir"))
        except ReportNotStored as err:
            print(f"gpu_check.py: error: report not stored: {err}", file=sys.stderr)
            if code == EXIT_PASS:
                code = EXIT_REPORT
                line = _fit_bytes(f"REPORT NOT STORED in {target}: {err} (the check itself: {line})", TERMINATION_LOG_MAX)
    write_termination_log(args.termination_log, line)
    # The verdict is the last line of the container's log too: FallbackToLogsOnError shows it when the
    # termination log could not be written.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return code


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
