#!/usr/bin/env python3
"""Generate images/universal/requirements.lock: the universal layer's Python additions, hash-pinned.

Seed 000 ("Lockfile option"): the packages the universal image adds on top of the ODH minimal workbench, as a
requirements file with a sha256 for every file, installed with `pip install --require-hashes`, so a build gets
exactly the bytes that were locked or fails. The base's own uv lock stays untouched.

    python3 images/universal/lock.py                # maintainers: needs docker and registry access (PyPI and
                                                    # download.pytorch.org), run from anywhere
    python3 images/universal/lock.py --local ...    # resolve with this interpreter's pip instead of the base's

What it does (default mode):
  1. Starts the catalog's universal base image (images/catalog.yaml, variant `universal`, `base.ref`, amd64 like
     the catalog) and runs this script inside it (`--inside`), so resolution happens on the image's own Python
     3.12, platform and glibc.
  2. Inside: `pip freeze --all` of the base becomes a constraint, so every package the base already ships keeps
     the base's version (seed 000: "do not re-install minimal's pinned Jupyter stack"; "avoid downgrades"). At
     build time pip finds those already satisfied and leaves them alone (without re-checking their hashes: the
     base's digest is what vouches for them).
  3. `pip download` of requirements.in with those constraints from the CUDA 12.8 PyTorch index first and PyPI
     second (the universal Dockerfile's order), then the sha256 of every downloaded file, as `pip hash` computes it.
  4. Writes requirements.lock: one `name==version` per package of the closure, each with `--hash=sha256:...`,
     declared packages marked `# via requirements.in`, the base's marked `# in the base image`.

Every declared pin must come out at its own version (torch as 2.8.0+cu128, the cu128 build), or nothing is
written. pip download records the one file pip picked for this platform, so the lock is amd64-only, like the
catalog's universal variant; for arm64, run again with --platform linux/arm64 and merge the hashes.

Limits: sdist-only packages (deepspeed) are built at install time in an isolated build environment whose build
tools pip does not hash-check. flash-attn and einops are not in the lock: flash-attn's setup downloads its prebuilt
wheel from its GitHub release, which no pip hash covers, so the Dockerfile keeps that step separate, amd64-only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATALOG = HERE.parent / "catalog.yaml"
TORCH_INDEX = "https://download.pytorch.org/whl/cu128"
PYPI = "https://pypi.org/simple"

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!_-]*)$")
WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")
SDIST = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)\.(?:tar\.gz|tar\.bz2|zip)$")


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = PIN.match(line)
        if not m:
            sys.exit(f"{path}:{n}: {line!r} is not an exact name==version pin")
        pins[normalize(m.group(1))] = m.group(2)
    return pins


def base_image_from_catalog() -> str:
    """The universal variant's base.ref, read without a YAML library (maintainers' python3 may lack one)."""
    in_universal = False
    for line in CATALOG.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*-\s+name:\s*", line):
            in_universal = re.match(r"^\s*-\s+name:\s*universal\s*$", line) is not None
        elif in_universal and (m := re.match(r"^\s+ref:\s*(\S+)\s*$", line)):
            return m.group(1)
    sys.exit(f"{CATALOG}: no base.ref for the universal variant; pass --base-image")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def downloaded(wheelhouse: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sorted sha256s) for every file pip download left in the wheelhouse."""
    found: dict[str, tuple[str, list[str]]] = {}
    for f in sorted(wheelhouse.iterdir()):
        m = WHEEL.match(f.name) or SDIST.match(f.name)
        if not m:
            sys.exit(f"cannot tell the name and version of downloaded file {f.name}")
        name, version = normalize(m.group("name")), m.group("version")
        old = found.get(name)
        if old is not None and old[0] != version:
            sys.exit(f"two versions of {name} downloaded: {old[0]} and {version}")
        hashes = sorted({*(old[1] if old else []), sha256(f)})
        found[name] = (version, hashes)
    return found


def render(
    declared: dict[str, str],
    closure: dict[str, tuple[str, list[str]]],
    base: dict[str, str],
    header: list[str],
    require_local: dict[str, str],
) -> str:
    problems = []
    for name, version in declared.items():
        got = closure.get(name)
        if got is None:
            problems.append(f"{name}=={version} is declared but was not downloaded")
        elif got[0].split("+", 1)[0] != version:
            problems.append(f"{name}=={version} is declared but resolved to {got[0]}")
        elif name in require_local and got[0] != f"{version}+{require_local[name]}":
            problems.append(f"{name} resolved to {got[0]}, not the +{require_local[name]} build")
    if problems:
        sys.exit("lock not written:\n  " + "\n  ".join(problems))
    out = [f"# {h}" if h else "#" for h in header]
    for name in sorted(closure):
        version, hashes = closure[name]
        out.append(f"{name}=={version} \\")
        out.extend(f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "") for i, h in enumerate(hashes))
        if name in declared:
            out.append("    # via requirements.in")
        elif base.get(name) == version:
            out.append("    # in the base image: already installed there, kept at its version")
        else:
            out.append("    # dependency")
    return "\n".join(out) + "\n"


def resolve(args: argparse.Namespace, python: str) -> str:
    """Runs in the environment whose interpreter resolves (the base image, or --local): returns the lock text."""
    requirements = Path(args.requirements)
    declared = read_pins(requirements)
    freeze = subprocess.run(
        [python, "-m", "pip", "freeze", "--all"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    base = {normalize(m.group(1)): m.group(2) for line in freeze if (m := PIN.match(line.strip()))}
    with tempfile.TemporaryDirectory(prefix="universal-lock-") as tmp:
        constraints = Path(tmp, "base-constraints.txt")
        # A declared package the base already has is the one case the base's pin must not decide.
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(base.items()) if n not in declared))
        wheelhouse = Path(tmp, "wheelhouse")
        cmd = [python, "-m", "pip", "download", "--disable-pip-version-check", "--no-cache-dir", "--dest", str(wheelhouse),
               "-r", str(requirements), "-c", str(constraints), *args.pip_arg]
        print("+ " + shlex.join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        closure = downloaded(wheelhouse)
    header = [
        "Generated by images/universal/lock.py from requirements.in: do not edit, rerun it.",
        f"Resolved by: {args.resolved_by}",
        "pip: " + " ".join(args.pip_arg),
        "Install with: pip install --require-hashes -r requirements.lock (every file below, and only these).",
        "",
    ]
    require_local = dict(item.split("=", 1) for item in args.require_local)
    return render(declared, closure, base, header, require_local)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("-r", "--requirements", default=str(HERE / "requirements.in"))
    p.add_argument("-o", "--output", default=str(HERE / "requirements.lock"))
    p.add_argument("--base-image", help="image to resolve in (default: the catalog's universal base.ref)")
    p.add_argument("--platform", default="linux/amd64")
    p.add_argument("--docker", default=os.environ.get("DOCKER", "docker"))
    p.add_argument("--local", action="store_true", help="resolve with --python here instead of in the base image")
    p.add_argument("--python", default=sys.executable, help="with --local: the interpreter whose pip resolves")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--resolved-by", default="", help=argparse.SUPPRESS)
    p.add_argument(
        "--require-local",
        action="append",
        default=None,
        metavar="NAME=LABEL",
        help="a declared package must resolve to this local build (default in the base image: torch=cu128)",
    )
    p.add_argument(
        "--pip-arg",
        action="append",
        default=None,
        help="argument for pip download, repeatable (default: --index-url the cu128 index --extra-index-url PyPI)",
    )
    args = p.parse_args(argv)
    if args.pip_arg is None:
        args.pip_arg = ["--index-url", TORCH_INDEX, "--extra-index-url", PYPI]
    if args.require_local is None:
        args.require_local = [] if args.local else ["torch=cu128"]

    if args.inside:
        sys.stdout.write(resolve(args, sys.executable))
        return 0
    if args.local:
        args.resolved_by = args.resolved_by or f"{args.python} (--local)"
        text = resolve(args, args.python)
    else:
        image = args.base_image or base_image_from_catalog()
        req = Path(args.requirements).resolve()
        cmd = [args.docker, "run", "--rm", "-i", "--platform", args.platform, "--user", "1001",
               "-v", f"{HERE}:/lock:ro", "-v", f"{req.parent}:/lock-in:ro", "--entrypoint", "python", image,
               "/lock/lock.py", "--inside", "--requirements", f"/lock-in/{req.name}",
               "--resolved-by", f"{image} ({args.platform})"]
        cmd += [f"--require-local={r}" for r in args.require_local] + [f"--pip-arg={a}" for a in args.pip_arg]
        print("+ " + shlex.join(cmd), file=sys.stderr)
        text = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
