/**
 * gpu_check.py --report-configmap (issue #15) against a real HTTPS server on 127.0.0.1 standing in for the API
 * server: the exact request (method, path, query, headers, body), TLS verified against the mounted ca.crt, the token
 * from the mounted service account directory, proxies ignored, retries on 5xx only, and the exit code and verdict
 * line when the report cannot be stored. The check itself runs in cpu mode under Debian's CPU torch.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/paths";

const PYTHON = "/usr/bin/python3";
const SCRIPT = resolve(PROJECT_ROOT, "images", "checks", "gpu_check.py");
const BASE = ["--mode", "cpu", "--expect-cuda", "12.8", "--expect-gpus", "1", "--expect-product", "NVIDIA-H200", "--min-driver", "570.26"];
const TARGET = "workbench-validation/wbv-alpha-h200-0123456789-report";
const TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-token";

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
interface Server {
  port: number;
  seen: Seen[];
  /** Status codes to answer, in order; the last one repeats. */
  answers: number[];
  close(): Promise<void>;
}

let work: string;
let saDir: string;
let otherCa: string;
let cert: { key: string; cert: string };

function openssl(args: string[]): void {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A self-signed certificate for 127.0.0.1 (the CA the kubelet would mount as ca.crt). */
function selfSigned(dir: string, name: string): { key: string; cert: string } {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
    "-days", "2", "-subj", "/CN=kubernetes", "-addext", "subjectAltName=IP:127.0.0.1"]);
  return { key, cert: crt };
}

async function apiServer(answers: number[]): Promise<Server> {
  const seen: Seen[] = [];
  const state = { answers: [...answers] };
  const server = https.createServer({ key: fs.readFileSync(cert.key), cert: fs.readFileSync(cert.cert) }, (req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (d: string) => (body += d));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const status = state.answers.length > 1 ? state.answers.shift()! : state.answers[0]!;
      res.writeHead(status, { "Content-Type": "application/json" });
      // The API server's answers: the patched object, or a Status with its message (apimachinery metav1.Status).
      res.end(
        status === 200
          ? JSON.stringify({ kind: "ConfigMap", apiVersion: "v1", metadata: { name: "x" } })
          : JSON.stringify({
              kind: "Status",
              apiVersion: "v1",
              status: "Failure",
              message:
                status === 403
                  ? 'configmaps "wbv-alpha-h200-0123456789-report" is forbidden: User "system:serviceaccount:workbench-validation:wbv-alpha-h200-0123456789-reporter" cannot patch resource "configmaps" in API group "" in the namespace "workbench-validation"'
                  : "etcdserver: leader changed",
              reason: status === 403 ? "Forbidden" : "InternalError",
              code: status,
            }),
      );
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", () => done()));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    answers,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  log: string;
}

function run(label: string, args: string[], env: Record<string, string>): Promise<Run> {
  const log = join(work, `${label}-termination-log`);
  const { NODE_NAME: _n, PYTHONPATH: _p, KUBERNETES_SERVICE_HOST: _h, KUBERNETES_SERVICE_PORT: _o, ...base } = process.env;
  return new Promise((done) => {
    const child = spawn(PYTHON, [SCRIPT, ...args, "--termination-log", log], { env: { ...base, PYTHONDONTWRITEBYTECODE: "1", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr, log: fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "" });
    });
  });
}

const lastLine = (text: string) => text.trimEnd().split("\n").pop() ?? "";
const inCluster = (port: number) => ({ KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(port) });

const servers: Record<string, Server> = {};
const runs: Record<string, Run> = {};

beforeAll(async () => {
  work = fs.mkdtempSync(join(tmpdir(), "gpu-check-report-"));
  cert = selfSigned(work, "apiserver");
  otherCa = join(work, "other");
  fs.mkdirSync(otherCa);
  fs.copyFileSync(selfSigned(work, "other").cert, join(otherCa, "ca.crt"));
  fs.writeFileSync(join(otherCa, "token"), TOKEN);
  saDir = join(work, "serviceaccount");
  fs.mkdirSync(saDir);
  fs.copyFileSync(cert.cert, join(saDir, "ca.crt"));
  fs.writeFileSync(join(saDir, "token"), `${TOKEN}\n`);
  for (const [name, answers] of Object.entries({ ok: [200], forbidden: [403], flaky: [503, 200], badCa: [200], imageFault: [403] })) {
    servers[name] = await apiServer(answers);
  }
  const flags = (sa = saDir) => ["--report-configmap", TARGET, "--serviceaccount-dir", sa];
  // Each run imports torch (~2 s of CPU): all start at once.
  const pending: Record<string, Promise<Run>> = {
    // A proxy in the environment must not be used for the in-cluster API (it would not reach it, or would see the token).
    ok: run("ok", [...BASE, ...flags()], { ...inCluster(servers.ok!.port), HTTPS_PROXY: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9" }),
    forbidden: run("forbidden", [...BASE, ...flags()], inCluster(servers.forbidden!.port)),
    flaky: run("flaky", [...BASE, ...flags()], inCluster(servers.flaky!.port)),
    badCa: run("badCa", [...BASE, ...flags(otherCa)], inCluster(servers.badCa!.port)),
    noToken: run("noToken", [...BASE, ...flags(join(work, "nowhere"))], inCluster(servers.ok!.port)),
    notInPod: run("notInPod", [...BASE, ...flags()], {}),
    // An image defect (a smoke import that fails) whose report cannot be stored either: exit 1 stays exit 1.
    imageFault: run("imageFault", [...BASE, "--smoke-imports", "no_such_module_xyz", ...flags()], inCluster(servers.imageFault!.port)),
  };
  for (const [k, p] of Object.entries(pending)) runs[k] = await p;
}, 180_000);

afterAll(async () => {
  for (const s of Object.values(servers)) await s.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

it("has openssl to make the stand-in API server's certificate (.ci/run installs Debian's openssl)", () => {
  expect(spawnSync("openssl", ["version"]).status).toBe(0);
});

describe("gpu_check.py --report-configmap against a stand-in API server (HTTPS on 127.0.0.1)", () => {
  it("PATCHes the compact report into data['report.json'] as a JSON merge patch, with the mounted token, once", () => {
    const r = runs.ok!;
    expect(r.stderr).not.toContain("Traceback");
    expect(r.status).toBe(0);
    const seen = servers.ok!.seen;
    expect(seen).toHaveLength(1);
    const req = seen[0]!;
    expect(req.method).toBe("PATCH");
    expect(req.url).toBe("/api/v1/namespaces/workbench-validation/configmaps/wbv-alpha-h200-0123456789-report?fieldManager=workbench-gpu-check");
    expect(req.headers["authorization"]).toBe(`Bearer ${TOKEN}`);
    expect(req.headers["content-type"]).toBe("application/merge-patch+json");
    expect(req.headers["accept"]).toBe("application/json");
    expect(req.headers["user-agent"]).toBe("gpu_check.py/2");
    const body = JSON.parse(req.body) as { data: Record<string, string> };
    expect(Object.keys(body)).toEqual(["data"]);
    expect(Object.keys(body.data)).toEqual(["report.json"]);
    const stored = body.data["report.json"]!;
    // The same report as stdout, compact (no indentation, one line). Compared by Python: the report's seed is a
    // 63-bit integer, which JSON.parse would round.
    expect(stored).not.toContain("\n");
    const same = spawnSync(PYTHON, ["-c", "import json, sys; a, b = sys.stdin.read().split('\\x00'); sys.exit(0 if json.dumps(json.loads(b), separators=(',', ':')) == a else 1)"], {
      input: `${stored}\x00${r.stdout}`,
    });
    expect(same.status).toBe(0);
    // The verdict line is untouched.
    expect(lastLine(r.stderr)).toMatch(/^PASS 13\/13 checks/);
    expect(r.log.trim()).toBe(lastLine(r.stderr));
  });

  it("exits 4 when the API server refuses (403): no retry, the Status message in the verdict line and the termination log", () => {
    const r = runs.forbidden!;
    expect(r.status).toBe(4);
    expect(servers.forbidden!.seen).toHaveLength(1);
    // The report on stdout is still the check's own (its verdict is pass).
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: "pass", exitCode: 0 });
    const line = lastLine(r.stderr);
    expect(line).toMatch(
      new RegExp(
        "^REPORT NOT STORED in workbench-validation/wbv-alpha-h200-0123456789-report: PATCH configmaps " +
          'workbench-validation/wbv-alpha-h200-0123456789-report failed: HTTP 403 Forbidden: configmaps "wbv-alpha-h200-0123456789-report" ' +
          'is forbidden: User "system:serviceaccount:workbench-validation:wbv-alpha-h200-0123456789-reporter" cannot patch .* ' +
          "\\(the check itself: PASS 13/13 checks .*\\)$",
      ),
    );
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(1024);
    expect(r.log.trim()).toBe(line);
    expect(r.stderr).toContain("gpu_check.py: error: report not stored: PATCH configmaps");
  });

  it("retries a 503 (an API server restarting) and then stores the report", () => {
    expect(runs.flaky!.status).toBe(0);
    expect(servers.flaky!.seen.map((s) => s.method)).toEqual(["PATCH", "PATCH"]);
    expect(servers.flaky!.seen[0]!.body).toBe(servers.flaky!.seen[1]!.body);
  });

  it("verifies the API server against the mounted ca.crt: another CA fails at once (exit 4), nothing is sent", () => {
    const r = runs.badCa!;
    expect(r.status).toBe(4);
    expect(servers.badCa!.seen).toHaveLength(0);
    expect(lastLine(r.stderr)).toMatch(/^REPORT NOT STORED in .*: PATCH configmaps .* failed: SSLCertVerificationError: .*certificate verify failed/);
  });

  it("says what is missing without a token or outside a pod (exit 4)", () => {
    expect(runs.noToken!.status).toBe(4);
    expect(lastLine(runs.noToken!.stderr)).toMatch(
      /^REPORT NOT STORED in workbench-validation\/wbv-alpha-h200-0123456789-report: no service account token in .*\/nowhere \(No such file or directory\): the pod needs automountServiceAccountToken: true and its reporter service account \(the check itself: PASS/,
    );
    expect(runs.notInPod!.status).toBe(4);
    expect(lastLine(runs.notInPod!.stderr)).toMatch(
      /^REPORT NOT STORED in .*: KUBERNETES_SERVICE_HOST\/KUBERNETES_SERVICE_PORT are not set: not running in a pod \(the check itself: PASS/,
    );
  });

  it("keeps a failed check's own exit code and verdict line when its report cannot be stored either", () => {
    const r = runs.imageFault!;
    expect(r.status).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/^IMAGE smoke_imports: /);
    expect(r.log.trim()).toBe(lastLine(r.stderr));
    expect(r.stderr).toContain("gpu_check.py: error: report not stored: PATCH configmaps workbench-validation/wbv-alpha-h200-0123456789-report failed: HTTP 403");
  });

  it("refuses a --report-configmap that is not namespace/name (usage error, exit 2, nothing stored)", () => {
    const r = spawnSync(PYTHON, [SCRIPT, ...BASE, "--report-configmap", "Workbench/x_y"], { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(
      "gpu_check.py: usage error: argument --report-configmap: must be NAMESPACE/NAME of a ConfigMap, e.g. 'workbench-validation/wbv-x-report', got 'Workbench/x_y' (see --help)",
    );
  });
});
