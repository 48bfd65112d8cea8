/**
 * The universal image's hashed lock (seed 000, "Lockfile option"): images/universal/requirements.in declares the
 * layer's Python additions, images/universal/lock.py resolves them inside the pinned base image into
 * requirements.lock with a sha256 per file, and the Dockerfile installs that with `pip install --require-hashes`.
 *
 * lock.py needs PyPI and download.pytorch.org, which this machine and CI cannot reach, so the real lock is made by a
 * maintainer. What runs here for real is the same code path on a local wheel index: lock.py (with Debian's
 * python3 and pip, in a venv from python3-venv) locks hand-built wheels with a transitive dependency, and real pip
 * installs that lock in hash-checking mode, refuses a tampered hash and refuses an incomplete lock.
 *
 * The repository itself is checked in whichever state it is in: without requirements.lock the Dockerfile must
 * still install exactly requirements.in's pins inline; with it, the lock must be well-formed, cover exactly
 * requirements.in, and be what the Dockerfile installs, with --require-hashes and no inline pins left.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/paths";

const ROOT = PROJECT_ROOT;
const UNIVERSAL = path.join(ROOT, "images", "universal");
const LOCK = path.join(UNIVERSAL, "requirements.lock");
const LOCK_PY = path.join(UNIVERSAL, "lock.py");
const PYTHON = "/usr/bin/python3";
const DEBIAN_WHEELS = "/usr/share/python-wheels";

const PIN = /^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!_-]*)$/;
const normalize = (name: string): string => name.replace(/[-_.]+/g, "-").toLowerCase();

// ---------------------------------------------------------------------------------------------------------------
// Lock and Dockerfile model
// ---------------------------------------------------------------------------------------------------------------

interface LockEntry {
  name: string;
  version: string;
  hashes: string[];
  /** Options other than --hash=sha256:<64 hex>: there must be none. */
  other: string[];
  /** The `# ...` annotation lines right after the entry. */
  notes: string[];
}

/** Parses a pip requirements file written the pip-compile way: `name==version \` then `--hash=...` lines. */
function parseLock(text: string): { entries: LockEntry[]; problems: string[] } {
  const entries: LockEntry[] = [];
  const problems: string[] = [];
  const physical = text.split("\n");
  for (let i = 0; i < physical.length; i++) {
    let line = physical[i] ?? "";
    if (line.trim().startsWith("#")) {
      if (entries.length > 0 && /^\s+#/.test(line)) entries.at(-1)?.notes.push(line.trim().replace(/^#\s*/, ""));
      continue;
    }
    if (line.trim() === "") continue;
    while (line.endsWith("\\")) line = `${line.slice(0, -1)} ${physical[++i] ?? ""}`;
    const [req = "", ...options] = line.trim().split(/\s+/);
    const m = PIN.exec(req);
    if (!m) {
      problems.push(`"${req}" is not an exact name==version pin`);
      continue;
    }
    const hashes = options.filter((o) => /^--hash=sha256:[0-9a-f]{64}$/.test(o)).map((o) => o.slice("--hash=sha256:".length));
    entries.push({ name: normalize(m[1] ?? ""), version: m[2] ?? "", hashes, other: options.filter((o) => !o.startsWith("--hash=sha256:") || !/^--hash=sha256:[0-9a-f]{64}$/.test(o)), notes: [] });
  }
  return { entries, problems };
}

/** The lock's format and coverage problems against the declared pins (requirements.in); empty when it is right. */
function lockProblems(text: string, declared: Map<string, string>): string[] {
  const { entries, problems } = parseLock(text);
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) problems.push(`${e.name} is locked twice`);
    seen.add(e.name);
    if (e.hashes.length === 0) problems.push(`${e.name}==${e.version} has no --hash=sha256:`);
    if (e.other.length > 0) problems.push(`${e.name}==${e.version} has other options: ${e.other.join(" ")}`);
  }
  if (entries.length === 0) problems.push("no requirements at all");
  const via = entries.filter((e) => e.notes.includes("via requirements.in"));
  const locked = new Map(via.map((e) => [e.name, e.version.split("+")[0] ?? ""]));
  if (JSON.stringify([...locked].sort()) !== JSON.stringify([...declared].sort())) {
    problems.push(`declared ${JSON.stringify([...declared].sort())} but locked via requirements.in ${JSON.stringify([...locked].sort())}`);
  }
  return problems;
}

function readPins(file: string): Map<string, string> {
  const pins = new Map<string, string>();
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const m = PIN.exec(line);
    if (!m) throw new Error(`${file}: "${line}" is not an exact name==version pin`);
    pins.set(normalize(m[1] ?? ""), m[2] ?? "");
  }
  return pins;
}

interface PipStep {
  text: string;
  specs: string[];
  requirementFiles: string[];
  flags: string[];
}

/** `pip install` commands of the universal Dockerfile's RUN lines, in order. */
function pipSteps(): PipStep[] {
  const ast = DockerfileParser.parse(fs.readFileSync(path.join(UNIVERSAL, "Dockerfile"), "utf8"));
  const steps: PipStep[] = [];
  for (const run of ast.getInstructions().filter((i) => i.getKeyword() === "RUN")) {
    for (const segment of (run.getArgumentsContent() ?? "").split(/&&|\|\||;|\n/)) {
      const m = /(?:^|\s)pip3?\s+install\s+(.*)$/.exec(segment);
      if (!m) continue;
      const tokens = (m[1] ?? "").trim().split(/\s+/).filter((t) => t !== "");
      const step: PipStep = { text: segment.trim(), specs: [], requirementFiles: [], flags: [] };
      for (let i = 0; i < tokens.length; i++) {
        const t = tokens[i] ?? "";
        if (t === "-r" || t === "--requirement") step.requirementFiles.push(tokens[++i] ?? "");
        else if (t === "--index-url" || t === "--extra-index-url" || t === "-i") step.flags.push(`${t} ${tokens[++i] ?? ""}`);
        else if (t.startsWith("-")) step.flags.push(t);
        else step.specs.push(t);
      }
      steps.push(step);
    }
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A clean pip environment: no developer's pip.conf, find-links or index settings leak into the test. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PIP_") && !k.startsWith("PYTHON")) env[k] = v;
  return { ...env, PIP_CONFIG_FILE: os.devNull, PIP_DISABLE_PIP_VERSION_CHECK: "1", PIP_NO_INPUT: "1" };
}

function run(file: string, args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: cleanEnv() });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${file}: ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

function sha256(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** Builds a minimal pure-Python wheel with Python's zipfile (what a build backend would write). */
const MAKE_WHEEL = `
import base64, hashlib, sys, zipfile
out, dist, version, *requires = sys.argv[1:]
pkg = dist.replace("-", "_")
files = {
    f"{pkg}/__init__.py": f"VERSION = {version!r}\\n",
    f"{pkg}-{version}.dist-info/METADATA": "Metadata-Version: 2.1\\nName: " + dist + "\\nVersion: " + version + "\\n"
        + "".join(f"Requires-Dist: {r}\\n" for r in requires),
    f"{pkg}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = f"{pkg}-{version}.dist-info/RECORD"
lines = []
for name, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    lines.append(f"{name},sha256={digest},{len(data)}")
lines.append(f"{record},,")
path = f"{out}/{pkg}-{version}-py3-none-any.whl"
with zipfile.ZipFile(path, "w") as z:
    for name, text in sorted(files.items()):
        z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), text)
    z.writestr(zipfile.ZipInfo(record, (2020, 1, 1, 0, 0, 0)), "\\n".join(lines) + "\\n")
print(path)
`;

// ---------------------------------------------------------------------------------------------------------------

describe("images/universal: requirements.in, requirements.lock and the Dockerfile agree", () => {
  const declared = readPins(path.join(UNIVERSAL, "requirements.in"));

  it("declares seed 000's training set, each package once, as exact pins", () => {
    expect(Object.fromEntries(declared)).toEqual({
      torch: "2.8.0",
      accelerate: "1.10.1",
      transformers: "4.56.2",
      peft: "0.17.1",
      datasets: "4.1.1",
      "huggingface-hub": "0.35.3",
      deepspeed: "0.17.6",
      trl: "0.23.0",
      jupyterhub: "5.3.0",
      "nvidia-ml-py": "13.615.71",
    });
  });

  it("installs the declared layer from requirements.lock with --require-hashes once the lock exists, inline until then", () => {
    const steps = pipSteps();
    // flash-attn stays its own guarded amd64 step either way: its setup fetches a wheel no pip hash covers.
    const flash = steps.filter((s) => s.specs.some((p) => p.startsWith("flash-attn==")));
    expect(flash.map((s) => s.specs)).toEqual([["flash-attn==2.8.3", "einops==0.8.1"]]);
    const layer = steps.filter((s) => !flash.includes(s));

    if (!fs.existsSync(LOCK)) {
      // Not generated yet (lock.py needs registry access): the inline pins must be requirements.in, exactly.
      const inline = new Map(
        layer.flatMap((s) => s.specs).map((spec) => {
          const m = PIN.exec(spec);
          if (!m) throw new Error(`images/universal/Dockerfile: unpinned "${spec}"`);
          return [normalize(m[1] ?? ""), m[2] ?? ""] as const;
        }),
      );
      expect(Object.fromEntries(inline)).toEqual(Object.fromEntries(declared));
      expect(layer.flatMap((s) => s.requirementFiles)).toEqual([]);
      return;
    }

    const text = fs.readFileSync(LOCK, "utf8");
    expect(lockProblems(text, declared)).toEqual([]);
    expect(layer.map((s) => ({ specs: s.specs, files: s.requirementFiles.map((f) => path.basename(f)), hashes: s.flags.includes("--require-hashes") }))).toEqual([
      { specs: [], files: ["requirements.lock"], hashes: true },
    ]);
    const ignore = fs.readFileSync(path.join(UNIVERSAL, ".dockerignore"), "utf8");
    expect(ignore.split("\n")).toContain("!requirements.lock");
  });

  it("ships lock.py as an executable Python script, not a shell script", () => {
    expect(fs.readFileSync(LOCK_PY, "utf8").split("\n")[0]).toBe("#!/usr/bin/env python3");
    expect(fs.statSync(LOCK_PY).mode & 0o111).toBe(0o111);
  });
});

describe("lock.py and pip's hash-checking mode, for real on a local wheel index", () => {
  let tmp = "";
  let wheels = "";
  let venvPython = "";
  let demoApp = "";
  let demoDep = "";
  let setuptools = "";

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "universal-lock-"));
    wheels = path.join(tmp, "wheels");
    fs.mkdirSync(wheels);
    const debian = fs.existsSync(DEBIAN_WHEELS) ? fs.readdirSync(DEBIAN_WHEELS).filter((f) => f.startsWith("setuptools-")) : [];
    if (debian.length !== 1) throw new Error(`${DEBIAN_WHEELS} must hold one setuptools wheel: install python3-setuptools-whl (.ci/run does)`);
    setuptools = path.join(wheels, debian[0] ?? "");
    fs.copyFileSync(path.join(DEBIAN_WHEELS, debian[0] ?? ""), setuptools);
    const app = await run(PYTHON, ["-c", MAKE_WHEEL, wheels, "demo-app", "1.0", "demo-dep==2.0", "setuptools"]);
    const dep = await run(PYTHON, ["-c", MAKE_WHEEL, wheels, "demo-dep", "2.0"]);
    if (app.code !== 0 || dep.code !== 0) throw new Error(`could not build test wheels: ${app.stderr}${dep.stderr}`);
    demoApp = app.stdout.trim();
    demoDep = dep.stdout.trim();
    // The "base image": a venv with Debian's pip and setuptools (python3-venv), whose freeze lock.py reads.
    const venv = await run(PYTHON, ["-m", "venv", path.join(tmp, "venv")]);
    if (venv.code !== 0) throw new Error(`python3 -m venv failed (install python3-venv; .ci/run does): ${venv.stderr}`);
    venvPython = path.join(tmp, "venv", "bin", "python");
    fs.writeFileSync(path.join(tmp, "requirements.in"), "# test\ndemo-app==1.0\n");
  }, 180_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const lockArgs = (out: string, ...extra: string[]): string[] => [
    LOCK_PY,
    "--local",
    "--python",
    venvPython,
    "-r",
    path.join(tmp, "requirements.in"),
    "-o",
    out,
    "--pip-arg=--no-index",
    `--pip-arg=--find-links=${wheels}`,
    ...extra,
  ];

  it("locks the declared pin and its closure, one sha256 per file, base packages marked", async () => {
    const out = path.join(tmp, "requirements.lock");
    const res = await run(PYTHON, lockArgs(out));
    expect(res.code, res.stderr).toBe(0);
    const setuptoolsVersion = /^setuptools-([^-]+)-/.exec(path.basename(setuptools))?.[1] ?? "";
    expect(fs.readFileSync(out, "utf8")).toBe(
      [
        "# Generated by images/universal/lock.py from requirements.in: do not edit, rerun it.",
        `# Resolved by: ${venvPython} (--local)`,
        `# pip: --no-index --find-links=${wheels}`,
        "# Install with: pip install --require-hashes -r requirements.lock (every file below, and only these).",
        "#",
        "demo-app==1.0 \\",
        `    --hash=sha256:${sha256(demoApp)}`,
        "    # via requirements.in",
        "demo-dep==2.0 \\",
        `    --hash=sha256:${sha256(demoDep)}`,
        "    # dependency",
        `setuptools==${setuptoolsVersion} \\`,
        `    --hash=sha256:${sha256(setuptools)}`,
        "    # in the base image: already installed there, kept at its version",
        "",
      ].join("\n"),
    );
    expect(lockProblems(fs.readFileSync(out, "utf8"), new Map([["demo-app", "1.0"]]))).toEqual([]);
  });

  it("produces a lock real pip installs with --require-hashes, and that pip refuses when tampered or incomplete", async () => {
    const lock = path.join(tmp, "requirements.lock");
    if (!fs.existsSync(lock)) expect((await run(PYTHON, lockArgs(lock))).code).toBe(0);
    const text = fs.readFileSync(lock, "utf8");
    const install = (file: string, target: string): Promise<Run> =>
      run(venvPython, ["-m", "pip", "install", "--no-index", "--find-links", wheels, "--require-hashes", "--target", path.join(tmp, target), "-r", file]);

    const ok = await install(lock, "ok");
    expect(ok.code, ok.stderr).toBe(0);
    expect(fs.readdirSync(path.join(tmp, "ok")).filter((f) => !f.startsWith(".")).sort()).toEqual(
      expect.arrayContaining(["demo_app", "demo_dep", "setuptools"]),
    );

    const tamperedFile = path.join(tmp, "tampered.lock");
    const depHash = sha256(demoDep);
    fs.writeFileSync(tamperedFile, text.replace(depHash, `${depHash.slice(0, -1)}${depHash.endsWith("0") ? "1" : "0"}`));
    const tampered = await install(tamperedFile, "tampered");
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain("THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE");
    expect(tampered.stderr).toContain("demo-dep==2.0");

    const incompleteFile = path.join(tmp, "incomplete.lock");
    fs.writeFileSync(incompleteFile, text.replace(/demo-dep==2\.0 \\\n {4}--hash=sha256:[0-9a-f]{64}\n {4}# dependency\n/, ""));
    expect(fs.readFileSync(incompleteFile, "utf8")).not.toContain("demo-dep");
    expect(lockProblems(fs.readFileSync(incompleteFile, "utf8"), new Map([["demo-app", "1.0"]]))).toEqual([]);
    const incomplete = await install(incompleteFile, "incomplete");
    expect(incomplete.code).toBe(1);
    expect(incomplete.stderr).toMatch(/Hashes are required in --require-hashes mode|all requirements must have their versions pinned/);
    expect(incomplete.stderr).toContain("demo-dep");
  }, 180_000);

  it("writes nothing when a declared pin does not resolve to the build it must be (torch's +cu128 rule)", async () => {
    const out = path.join(tmp, "refused.lock");
    const res = await run(PYTHON, lockArgs(out, "--require-local", "demo-app=cu128"));
    expect(res.code).toBe(1);
    expect(res.stderr.trimEnd().split("\n").slice(-2)).toEqual(["lock not written:", "  demo-app resolved to 1.0, not the +cu128 build"]);
    expect(fs.existsSync(out)).toBe(false);
  });

  it("finds format and coverage problems in a lock", () => {
    const declared = new Map([["demo-app", "1.0"]]);
    const hash = "a".repeat(64);
    expect(
      lockProblems(
        [
          "demo-app>=1.0 \\",
          `    --hash=sha256:${hash}`,
          "demo-dep==2.0",
          "    # dependency",
          `other==1 --hash=md5:${"b".repeat(32)} --hash=sha256:${hash}`,
          `other==1 --hash=sha256:${hash}`,
          "",
        ].join("\n"),
        declared,
      ),
    ).toEqual([
      '"demo-app>=1.0" is not an exact name==version pin',
      "demo-dep==2.0 has no --hash=sha256:",
      `other==1 has other options: --hash=md5:${"b".repeat(32)}`,
      "other is locked twice",
      'declared [["demo-app","1.0"]] but locked via requirements.in []',
    ]);
  });
});
