#!/usr/bin/env python3
"""One-command proof of gpu_check.py on a machine with an NVIDIA GPU (issue #15).

Runs the check several times as a pool's Job would, once with a long sustained phase and NVML samples, then injects
faults (a wrong product, a driver floor of 999.0, more GPUs than present, no visible device, a broken NCCL
environment, a bad flag) and asserts each gives its expected verdict and exit code. Writes the figures as markdown
between the `prove:begin` / `prove:end` markers of images/checks/README.md and exits non-zero listing every failed
assertion. Needs python3 with a CUDA build of torch and pynvml (nvidia-ml-py); stdlib only otherwise.

    bash images/checks/proof/prove.sh [--runs 5] [--sustain-seconds 10] [--long-seconds 120] [--out DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = os.path.dirname(HERE)
SCRIPT = os.path.join(CHECKS, "gpu_check.py")
README = os.path.join(CHECKS, "README.md")
BEGIN, END = "<!-- prove:begin -->", "<!-- prove:end -->"

PREFLIGHT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
out = {"python": sys.version.split()[0]}
try:
    import torch
    out["torch"] = str(torch.__version__)
    out["torchCuda"] = torch.version.cuda
    out["available"] = bool(torch.cuda.is_available())
    out["count"] = torch.cuda.device_count() if out["available"] else 0
    out["names"] = [torch.cuda.get_device_name(i) for i in range(out["count"])]
    try:
        v = torch.cuda.nccl.version()
        out["nccl"] = ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
    except Exception:
        out["nccl"] = None
except Exception as err:
    out["torchError"] = f"{type(err).__name__}: {err}"
try:
    import pynvml
    out["pynvml"] = True
except Exception as err:
    out["pynvml"] = False
import gpu_check
out["driver"], out["driverSource"] = gpu_check.read_driver_version()
print(json.dumps(out))
"""


def parse_args(argv):
    p = argparse.ArgumentParser(prog="prove.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="ordinary runs (default 5)")
    p.add_argument("--sustain-seconds", type=float, default=10.0,
                   help="sustained phase per measurement in the ordinary runs (default 10)")
    p.add_argument("--long-seconds", type=float, default=120.0,
                   help="sustained phase per measurement in the long run, sampled to CSV (default 120)")
    p.add_argument("--min-driver", default=None, help="driver floor for the passing runs (default: this driver)")
    p.add_argument("--out", default=None, help="where reports, logs and samples go (default: a new temp dir)")
    p.add_argument("--readme", default=README, help="README to write the figures into")
    p.add_argument("--no-readme", action="store_true", help="do not touch the README")
    p.add_argument("--python", default=sys.executable, help="python with torch + CUDA (default: this one)")
    return p.parse_args(argv)


def gfd_product(name: str) -> str:
    return name.strip().replace(" ", "-")


def preflight(python: str) -> dict:
    r = subprocess.run([python, "-c", PREFLIGHT, CHECKS], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    if r.returncode != 0:
        raise SystemExit(f"prove.sh: preflight failed: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def preflight_problems(info: dict, products) -> list:
    """Why this machine cannot run the proof (empty when it can)."""
    if "torchError" in info:
        return [f"cannot import torch ({info['torchError']}): run with a python that has a CUDA build of torch "
                "(PYTHON=/path/to/python3 bash images/checks/proof/prove.sh)"]
    problems = []
    if info.get("torchCuda") is None:
        problems.append(f"torch {info.get('torch')} is a CPU build: run with a python that has a CUDA build of torch")
    elif not info.get("available") or not info.get("count"):
        problems.append(f"no CUDA device is visible (torch {info.get('torch')}, CUDA {info.get('torchCuda')}, "
                        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}): run on a machine with "
                        "an NVIDIA GPU")
    if not info.get("pynvml"):
        problems.append("pynvml is missing: pip install nvidia-ml-py (one pure-Python file; copy its pynvml.py onto "
                        "PYTHONPATH where there is no network)")
    labels = sorted({gfd_product(n) for n in info.get("names") or []})
    if len(labels) > 1:
        problems.append(f"mixed GPUs ({', '.join(labels)}): a pool has one product")
    elif labels and labels[0] not in products:
        problems.append(f"{labels[0]} has no row in datasheets.json: add one with its datasheet source")
    if info.get("available") and not info.get("driver"):
        problems.append("cannot read the driver version")
    return problems


def run_check(python: str, out_dir: str, label: str, args: list, env: dict = None, timeout: float = 900) -> dict:
    log = os.path.join(out_dir, f"{label}.termination-log")
    cmd = [python, SCRIPT] + args + ["--termination-log", log]
    full_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    full_env.pop("CUDA_VISIBLE_DEVICES", None)
    full_env.update(env or {})
    started = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
        rc, stdout, stderr = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as err:
        rc, stdout, stderr = None, err.stdout or "", f"timed out after {timeout:.0f} s"
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
    wall = time.monotonic() - started
    with open(os.path.join(out_dir, f"{label}.json"), "w", encoding="utf-8") as fh:
        fh.write(stdout)
    with open(os.path.join(out_dir, f"{label}.stderr"), "w", encoding="utf-8") as fh:
        fh.write(stderr)
    try:
        report = json.loads(stdout)
    except ValueError:
        report = None
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    termination = None
    if os.path.exists(log):
        with open(log, encoding="utf-8") as fh:
            termination = fh.read()
    return {"label": label, "cmd": cmd, "env": env or {}, "rc": rc, "report": report,
            "lastLine": lines[-1] if lines else "", "termination": termination, "wall": wall}


def check_by_name(report: dict, name: str) -> dict:
    for c in (report or {}).get("checks", []):
        if c["name"] == name:
            return c
    return {}


def assert_pass_run(run: dict, gpus: int, sustain: float) -> list:
    """Assertions on an ordinary or long run; returns failure texts."""
    problems = []
    r = run["report"]
    label = run["label"]
    if r is None:
        return [f"{label}: no JSON report (exit {run['rc']}; last stderr line: {run['lastLine']!r})"]
    if run["rc"] != 0 or r.get("verdict") != "pass":
        problems.append(f"{label}: exit {run['rc']}, verdict {r.get('verdict')}: {r.get('summary')}")
    if run["lastLine"] != r.get("summary"):
        problems.append(f"{label}: last stderr line {run['lastLine']!r} is not the report's summary")
    if (run["termination"] or "").rstrip("\n") != r.get("summary"):
        problems.append(f"{label}: termination log {run['termination']!r} is not the report's summary")
    if len((r.get("summary") or "").encode()) > 1024:
        problems.append(f"{label}: summary longer than 1024 bytes")
    for name in ("matmul_throughput", "memory_bandwidth"):
        c = check_by_name(r, name)
        if c.get("status") != "pass":
            continue
        if not c.get("warmupSeconds", 0) >= 0.3:
            problems.append(f"{label}: {name} warmed up {c.get('warmupSeconds')} s, less than 0.3 s")
        s = c.get("sustained") or {}
        if sustain > 0 and not s.get("seconds", 0) >= 0.9 * sustain:
            problems.append(f"{label}: {name} sustained phase lasted {s.get('seconds')} s, not {sustain:g} s")
        if sustain > 0 and s.get("clockSamples") != "nvml":
            problems.append(f"{label}: {name} has no NVML clock samples ({s.get('clockSamples')})")
    nccl = check_by_name(r, "nccl")
    if gpus == 1 and not (nccl.get("status") == "pass" and nccl.get("worldSize") == 1
                          and "one-rank communicator" in nccl.get("detail", "")):
        problems.append(f"{label}: one-rank NCCL did not run: {nccl.get('status')} {nccl.get('detail')}")
    if gpus >= 2 and not isinstance(nccl.get("busBwGBps"), (int, float)):
        problems.append(f"{label}: no NCCL bus bandwidth: {nccl.get('detail')}")
    return problems


def fault_cases(base: list, product: str, products, gpus: int) -> list:
    """(label, extra args replacing base flags, env, expected exit, expected verdict, checks that must fail)."""
    other = next(p for p in sorted(products) if p != product)

    def with_flag(flag, value):
        args = list(base)
        i = args.index(flag)
        args[i + 1] = value
        return args

    fast = ["--sustain-seconds", "0"]
    return [
        ("fault-wrong-product", with_flag("--expect-product", other) + fast, {}, 3, "node", ["device_product"]),
        ("fault-min-driver-999", with_flag("--min-driver", "999.0") + fast, {}, 3, "node", ["driver_version"]),
        ("fault-more-gpus", with_flag("--expect-gpus", str(gpus + 1)) + fast, {}, 3, "node",
         ["cuda_available", "nvml"]),
        ("fault-no-visible-device", base + fast, {"CUDA_VISIBLE_DEVICES": ""}, 1, "image", ["cuda_available"]),
        # NCCL bootstraps over a socket even for one rank; no interface of this name exists, so it cannot start.
        ("fault-nccl-no-interface", base + fast, {"NCCL_SOCKET_IFNAME": "wbnosuchif0"}, 1, "image", ["nccl"]),
    ]


def assert_fault(run: dict, rc: int, verdict: str, failing: list) -> list:
    r = run["report"]
    label = run["label"]
    if r is None:
        return [f"{label}: no JSON report (exit {run['rc']}; last stderr line: {run['lastLine']!r})"]
    problems = []
    if run["rc"] != rc or r.get("verdict") != verdict:
        problems.append(f"{label}: expected exit {rc} ({verdict}), got exit {run['rc']} ({r.get('verdict')}): "
                        f"{r.get('summary')}")
    failed = {c["name"] for c in r.get("checks", []) if c["status"] == "fail"}
    missing = [n for n in failing if n not in failed]
    if missing:
        problems.append(f"{label}: expected {', '.join(missing)} to fail; "
                        f"failed: {', '.join(sorted(failed)) or 'none'}")
    if run["lastLine"] != r.get("summary") or not r.get("summary", "").startswith(verdict.upper() + " "):
        problems.append(f"{label}: last stderr line {run['lastLine']!r} is not the {verdict.upper()} summary")
    return problems


def _mmm(values: list, digits: int = 1) -> tuple:
    if not values:
        return ("n/a", "n/a", "n/a")
    fmt = (lambda x: f"{x:.{digits}f}")
    return fmt(min(values)), fmt(statistics.median(values)), fmt(max(values))


def figures_of(runs: list) -> dict:
    """Per-run figures from the reports of passing ordinary runs."""
    out = {"burstTflops": [], "sustainedTflops": [], "burstGBps": [], "sustainedGBps": [], "busBwGBps": [],
           "duration": [], "datasheetTflops": None, "datasheetGBps": None}
    for run in runs:
        r = run["report"] or {}
        mm, bw, nccl = (check_by_name(r, n) for n in ("matmul_throughput", "memory_bandwidth", "nccl"))
        if isinstance(mm.get("tflops"), (int, float)):
            out["burstTflops"].append(mm["tflops"])
            out["datasheetTflops"] = mm.get("datasheetTflops")
            if (mm.get("sustained") or {}).get("tflops") is not None:
                out["sustainedTflops"].append(mm["sustained"]["tflops"])
        if isinstance(bw.get("gbps"), (int, float)):
            out["burstGBps"].append(bw["gbps"])
            out["datasheetGBps"] = bw.get("datasheetGBps")
            if (bw.get("sustained") or {}).get("gbps") is not None:
                out["sustainedGBps"].append(bw["sustained"]["gbps"])
        if isinstance(nccl.get("busBwGBps"), (int, float)):
            out["busBwGBps"].append(nccl["busBwGBps"])
        if isinstance(r.get("durationSeconds"), (int, float)):
            out["duration"].append(r["durationSeconds"])
    return out


def sample_summary(path: str) -> list:
    """Rows (phase, gpu, samples, SM MHz min/median/max, power W median/max, temp max, reasons seen) of a CSV."""
    rows = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows.setdefault((row["phase"], row["gpu"]), []).append(row)
    except OSError:
        return []
    out = []
    for (phase, gpu), rs in sorted(rows.items()):
        def nums(key):
            return [float(r[key]) for r in rs if r[key] not in ("", "None")]

        sm, power, temp = nums("sm_mhz"), nums("power_w"), nums("temp_c")
        reasons = {}
        for r in rs:
            for name in filter(None, r["reasons"].split("|")):
                reasons[name] = reasons.get(name, 0) + 1
        seen = ", ".join(f"{k} {v / len(rs):.0%}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        out.append({"phase": phase, "gpu": gpu, "samples": len(rs), "sm": _mmm(sm, 0),
                    "power": _mmm(power, 0), "tempMax": f"{max(temp):.0f}" if temp else "n/a",
                    "reasons": seen or "none"})
    return out


def render(info: dict, product: str, args, runs: list, long_run: dict, samples: list, faults: list,
           failures: list, when: str, host: str) -> str:
    f = figures_of(runs)
    lines = [
        f"Run by `bash images/checks/proof/prove.sh` on {when}, host `{host}`"
        + (f" (node `{os.environ['NODE_NAME']}`)" if os.environ.get("NODE_NAME") else "")
        + f": {info['count']}x {product} (`{info['names'][0]}`), driver {info.get('driver')}, "
        f"torch {info.get('torch')} (CUDA {info.get('torchCuda')}), NCCL {info.get('nccl')}, Python {info.get('python')}. "
        f"{len(runs)} ordinary runs with `--sustain-seconds {args.sustain_seconds:g}`, one long run with "
        f"`--sustain-seconds {args.long_seconds:g}`.",
        "",
        "| Figure | min | median | max | datasheet | median / datasheet |",
        "|---|---|---|---|---|---|",
    ]

    def row(name, values, sheet, digits):
        lo, med, hi = _mmm(values, digits)
        frac = f"{statistics.median(values) / sheet:.1%}" if values and sheet else "n/a"
        lines.append(f"| {name} | {lo} | {med} | {hi} | {sheet if sheet is not None else 'n/a'} | {frac} |")

    row("burst bf16 matmul TFLOP/s", f["burstTflops"], f["datasheetTflops"], 1)
    row(f"sustained bf16 matmul TFLOP/s ({args.sustain_seconds:g} s, steady half)", f["sustainedTflops"],
        f["datasheetTflops"], 1)
    row("burst device copy GB/s", f["burstGBps"], f["datasheetGBps"], 0)
    row(f"sustained device copy GB/s ({args.sustain_seconds:g} s, steady half)", f["sustainedGBps"],
        f["datasheetGBps"], 0)
    if f["busBwGBps"]:
        row("NCCL all-reduce busbw GB/s", f["busBwGBps"], None, 1)
    lo, med, hi = _mmm(f["duration"], 1)
    lines.append(f"| run duration s | {lo} | {med} | {hi} | | |")
    lines += ["", "Per run:", "", "| Run | Exit | Verdict | Burst TFLOP/s | Sustained TFLOP/s | Burst GB/s | "
              "Sustained GB/s | Duration s |", "|---|---|---|---|---|---|---|---|"]
    for run in runs + ([long_run] if long_run else []):
        r = run["report"] or {}
        mm, bw = check_by_name(r, "matmul_throughput"), check_by_name(r, "memory_bandwidth")
        lines.append(f"| {run['label']} | {run['rc']} | {r.get('verdict')} | {mm.get('tflops', 'n/a')} | "
                     f"{(mm.get('sustained') or {}).get('tflops', 'n/a')} | {bw.get('gbps', 'n/a')} | "
                     f"{(bw.get('sustained') or {}).get('gbps', 'n/a')} | {r.get('durationSeconds', 'n/a')} |")
    if samples:
        lines += ["", f"NVML samples of the long run (every 0.2 s; `{os.path.basename(args.samples_path)}`):", "",
                  "| Phase | GPU | Samples | SM MHz min / median / max | Power W min / median / max | Max °C | "
                  "Clock event reasons (share of samples) |", "|---|---|---|---|---|---|---|"]
        for s in samples:
            lines.append(f"| {s['phase']} | {s['gpu']} | {s['samples']} | {' / '.join(s['sm'])} | "
                         f"{' / '.join(s['power'])} | {s['tempMax']} | {s['reasons']} |")
    lines += ["", "Fault injections:", "", "| Injection | Expected | Got | Result |", "|---|---|---|---|"]
    for run, rc, verdict, failing, problems in faults:
        r = run["report"] or {}
        got = f"exit {run['rc']}, {r.get('verdict')}"
        lines.append(f"| `{run['label']}` | exit {rc}, {verdict} ({', '.join(failing)}) | {got} | "
                     f"{'ok' if not problems else 'FAILED'} |")
    lines += ["", "Failures: " + ("none." if not failures else "")]
    lines += [f"- {p}" for p in failures]
    return "\n".join(lines)


def replace_section(text: str, section: str) -> str:
    """text with everything between the markers replaced by section; the markers must appear once each."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"README must hold {BEGIN} and {END} once each, in that order")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{section}\n{END}{tail}"


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, CHECKS)
    with open(os.path.join(CHECKS, "datasheets.json"), encoding="utf-8") as fh:
        products = json.load(fh)["products"]
    info = preflight(args.python)
    problems = preflight_problems(info, products)
    if problems:
        print("prove.sh: cannot prove gpu_check.py here:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    out = args.out or tempfile.mkdtemp(prefix="gpu-check-proof-")
    os.makedirs(out, exist_ok=True)
    args.samples_path = os.path.join(out, "long-samples.csv")
    gpus = info["count"]
    product = gfd_product(info["names"][0])
    cuda = ".".join(str(info["torchCuda"]).split(".")[:2])
    base = ["--mode", "gpu", "--expect-cuda", cuda, "--expect-gpus", str(gpus), "--expect-product", product,
            "--min-driver", args.min_driver or info["driver"]]
    print(f"prove.sh: {gpus}x {product}, driver {info['driver']}, torch {info['torch']}; output in {out}",
          file=sys.stderr)
    failures, runs = [], []
    for i in range(1, args.runs + 1):
        run = run_check(args.python, out, f"run-{i}", base + ["--sustain-seconds", f"{args.sustain_seconds:g}"])
        print(f"  run {i}: exit {run['rc']} in {run['wall']:.0f} s: {run['lastLine']}", file=sys.stderr)
        failures += assert_pass_run(run, gpus, args.sustain_seconds)
        runs.append(run)
    long_run = run_check(args.python, out, "long", base + ["--sustain-seconds", f"{args.long_seconds:g}",
                                                           "--samples-file", args.samples_path],
                         timeout=900 + 4 * args.long_seconds)
    print(f"  long run: exit {long_run['rc']} in {long_run['wall']:.0f} s: {long_run['lastLine']}", file=sys.stderr)
    failures += assert_pass_run(long_run, gpus, args.long_seconds)
    samples = sample_summary(args.samples_path)
    want = int(args.long_seconds / 0.2 * 0.5)
    for phase in ("matmul", "copy"):
        got = [s for s in samples if s["phase"] == phase]
        if len(got) != gpus or any(s["samples"] < want for s in got):
            failures.append(f"long: expected >= {want} NVML samples per GPU in the {phase} phase, got "
                            f"{[s['samples'] for s in got]}")
    faults = []
    for label, fargs, env, rc, verdict, failing in fault_cases(base, product, products, gpus):
        run = run_check(args.python, out, label, fargs, env)
        problems = assert_fault(run, rc, verdict, failing)
        print(f"  {label}: exit {run['rc']} ({'ok' if not problems else 'FAILED'}): {run['lastLine']}",
              file=sys.stderr)
        failures += problems
        faults.append((run, rc, verdict, failing, problems))
    usage = run_check(args.python, out, "fault-bad-flag", base + ["--matmul-fraction", "2"])
    problems = []
    if usage["rc"] != 2 or usage["report"] is not None or not usage["lastLine"].startswith("gpu_check.py: usage error"):
        problems.append(f"fault-bad-flag: expected exit 2 with one usage line, got exit {usage['rc']}: "
                        f"{usage['lastLine']!r}")
    failures += problems
    faults.append((usage, 2, "usage", ["--matmul-fraction 2"], problems))
    try:
        rec = subprocess.run([args.python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import gpu_check; "
                              "gpu_check.record_nvml(sys.argv[2])", CHECKS, os.path.join(out, "nvml-recording.json")],
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        if rec.returncode != 0:
            failures.append(f"record_nvml failed: {rec.stderr.strip().splitlines()[-1:]}")
    except subprocess.TimeoutExpired:
        failures.append("record_nvml timed out")
    section = render(info, product, args, runs, long_run, samples, faults, failures,
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), platform.node())
    with open(os.path.join(out, "figures.md"), "w", encoding="utf-8") as fh:
        fh.write(section + "\n")
    if not args.no_readme:
        with open(args.readme, encoding="utf-8") as fh:
            text = fh.read()
        with open(args.readme, "w", encoding="utf-8") as fh:
            fh.write(replace_section(text, section))
    print(section)
    if failures:
        print(f"prove.sh: {len(failures)} assertion(s) failed:", file=sys.stderr)
        for p in failures:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"prove.sh: all assertions hold; reports in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
