/**
 * `npm run up:local` (scripts/up-local.sh) before it touches anything (issue #13): every missing tool reported at
 * once, the Docker daemon asked whether it answers, a stack flag that would deploy another stack refused; one line
 * each on stderr, exit 2, nothing on stdout. Run by bash with a PATH of stand-in scripts, so what is "installed" is
 * exactly what each test puts there.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";
import { runCommand } from "../support/proc";

const SCRIPT = path.join(ROOT, "scripts/up-local.sh");
// What the script itself needs from the system besides the tools under test.
const UTILITIES = ["dirname", "tr", "cut", "timeout", "grep", "mkdir", "cat"];
const dirs: string[] = [];
const hadStateDir = fs.existsSync(path.join(ROOT, ".pulumi"));
afterAll(() => {
  dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
  if (!hadStateDir) fs.rmSync(path.join(ROOT, ".pulumi"), { recursive: true, force: true });
});

/** A bin directory with the system utilities and the given stand-ins; each stand-in logs its arguments. */
function bin(stubs: Record<string, string>): { dir: string; log: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-up-local-"));
  dirs.push(dir);
  const log = path.join(dir, "calls.log");
  for (const u of UTILITIES) {
    const real = ["/usr/bin", "/bin"].map((d) => path.join(d, u)).find((p) => fs.existsSync(p));
    if (real !== undefined) fs.symlinkSync(real, path.join(dir, u));
  }
  for (const [name, body] of Object.entries(stubs)) {
    fs.writeFileSync(path.join(dir, name), `#!/bin/bash\necho "${name} $*" >> ${JSON.stringify(log)}\n${body}\n`, { mode: 0o755 });
  }
  return { dir, log };
}

async function upLocal(stubs: Record<string, string>, args: string[] = []) {
  const { dir, log } = bin(stubs);
  const r = await runCommand("/bin/bash", [SCRIPT, ...args], { cwd: ROOT, env: { PATH: dir, HOME: dir }, timeoutMs: 30_000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr, calls: fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "" };
}

const DAEMON_UP = 'if [ "$1" = info ]; then echo 28.0.1; fi; exit 0';
const ALL = { pulumi: "exit 0", docker: DAEMON_UP, kind: 'if [ "$1 $2" = "get clusters" ]; then echo workbench; fi; exit 0' };
const missing = (tool: string, how: string) => `up:local: ${tool}: is not on PATH; install it (${how}), then run npm run up:local again.`;

describe("npm run up:local checks before it starts", () => {
  it("reports every missing tool at once, one line each, exit 2", async () => {
    expect(await upLocal({})).toEqual({
      status: 2,
      stdout: "",
      calls: "",
      stderr: [
        missing("pulumi", "https://www.pulumi.com/docs/install/"),
        missing("docker", "https://docs.docker.com/engine/install/; the local registry and the builds run there"),
        missing("kind", "https://kind.sigs.k8s.io/docs/user/quick-start/"),
        "",
      ].join("\n"),
    });
  });

  it("asks the Docker daemon and reports it with the other problems; its message reaches the line without control characters", async () => {
    const r = await upLocal({
      pulumi: "exit 0",
      docker: "printf 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\\n\\033[31mIs the docker daemon running?\\n' >&2; exit 1",
    });
    expect(r).toEqual({
      status: 2,
      stdout: "",
      calls: "docker info --format {{.ServerVersion}}\n",
      stderr: [
        missing("kind", "https://kind.sigs.k8s.io/docs/user/quick-start/"),
        "up:local: docker: the Docker daemon does not answer (docker info: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. [31mIs the docker daemon running?); start Docker (or set DOCKER_HOST to a running daemon), then run npm run up:local again.",
        "",
      ].join("\n"),
    });
  });

  it("refuses extra arguments that would deploy another stack or directory, before anything runs", async () => {
    const r = await upLocal(ALL, ["--yes", "--stack", "prod", "-C/tmp", "--stack=dev\u001b"]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")).toEqual([
      "up:local: --stack: up:local always deploys the local stack; leave the stack flag out (use `pulumi up --stack <name>` for another stack).",
      "up:local: -C/tmp: up:local runs in the project root; leave --cwd out.",
      "up:local: $'--stack=dev\\E': up:local always deploys the local stack; leave the stack flag out (use `pulumi up --stack <name>` for another stack).",
      "",
    ]);
    expect(r.calls).not.toMatch(/^(pulumi|kind) /m);
  });

  it("with everything present, runs pulumi up on the local stack with the extra arguments", async () => {
    const r = await upLocal(ALL, ["--yes"]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    // No `pulumi login`: the user's own backend stays selected for their other stacks.
    expect(r.calls.split("\n").filter((l) => l.startsWith("pulumi "))).toEqual([
      "pulumi stack select local --create",
      "pulumi up --stack local --yes",
    ]);
  });
});
