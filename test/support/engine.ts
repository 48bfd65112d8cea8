/**
 * A private container engine for the real-container tests (GUIDE §2 and §4.3).
 *
 * WHAT it starts, everything under one temp dir ROOT = <state dir>/run (state dir: /tmp/wbe-XXXXXX, or
 * .ci-work/wbe-XXXXXX where /tmp is overlayfs, see makeStateDir):
 *   - containerd with its own config, socket ROOT/containerd/containerd.sock. Our own, because dockerd 20.10 attaches
 *     to a system containerd whenever /run/containerd/containerd.sock exists, and two dockerds in one containerd
 *     namespace would see each other's containers. (Its shims put their sockets in /run/containerd/s/<hash of our
 *     socket path>, as every containerd 1.6 does; the hash keeps them apart from a system containerd's.)
 *   - dockerd 20.10 on unix://ROOT/docker.sock with --data-root/--exec-root/--pidfile under ROOT, an empty
 *     --config-file (a machine's /etc/docker/daemon.json is never read), --bridge=none --iptables=false: no systemd,
 *     no network setup. Builds run with --network=none. 127.0.0.0/8 is an insecure registry by default.
 *   - two docker-registry (Debian's distribution 2.8) on 127.0.0.1:<free port>, our own config (Debian's default
 *     turns on htpasswd auth), filesystem storage under ROOT/registry-a and ROOT/registry-b, http, no auth.
 *   - the image workbench-test/base:bookworm, imported from the debootstrap tarball cached in .ci-work/, once a
 *     test file asks for it (registry-copy.test.ts builds FROM scratch and does not).
 * WHEN: lazily, by the first test file whose beforeAll calls ensureEngine(), so a unit-only run never pays for it.
 *   test/global-setup.ts makes the state dir and provides its path; the first caller starts the engine under a
 *   mkdir lock there and writes engine.json, later test files (other vitest workers) read it back. The base image
 *   is imported under a second lock by the first file that asks for it.
 * HOW it stops: global-setup's teardown calls stopEngine(): SIGTERM by recorded PID (registries, dockerd, then
 *   containerd; SIGKILL after 20 s), then any process still naming ROOT in its command line (containerd shims),
 *   unmount what is left below the state dir, rm -rf it. A PID is only signalled while its command line still
 *   contains ROOT. If a start fails, what was started is stopped at once. Without the globalSetup each test file
 *   starts its own engine and its afterAll(releaseEngine) stops it.
 * An already-running dockerd or containerd on the machine is never touched: nothing here talks to
 * /var/run/docker.sock or /run/containerd/containerd.sock, and no process is signalled by name.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { inject } from "vitest";
import {
  BASE_IMAGE,
  BASE_TARBALL_BUDGET_MS,
  BaseImageError,
  type BaseSource,
  ensureBaseTarball,
  REPO_ROOT,
} from "./base-image";
import {
  type CmdResult,
  isAlive,
  mustSucceed,
  pidsMentioning,
  REMOVE_TREE_TIMEOUT_MS,
  removeTree,
  runCommand,
  type RunOptions,
  sleep,
  spawnDaemon,
  stopPid,
} from "./proc";
import { waitForRegistry } from "./registry-api";

declare module "vitest" {
  interface ProvidedContext {
    /** Made by test/global-setup.ts; the engine (if any test asks for one) lives and is locked here. */
    workbenchEngineStateDir: string;
  }
}

/** Debian 20.10 client: it speaks BuildKit to the 20.10 daemon; the 28.x client first on PATH has no buildx. */
export const DOCKER_CLI = "/usr/bin/docker";
const DOCKERD = "/usr/sbin/dockerd";
const CONTAINERD = "/usr/bin/containerd";
const REGISTRY = "/usr/bin/docker-registry";
export const SKOPEO = "/usr/bin/skopeo";
/** Daemons get a fixed PATH so they find Debian's runc and shims, never something in /usr/local/bin. */
const DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const SKIP_ENV = "WORKBENCH_SKIP_CONTAINER_TESTS";
export const skipContainerTests = process.env[SKIP_ENV] === "1";

// ---------------------------------------------------------------------------------------------------------------
// Budgets. Every step a real-container hook or test waits for has its own limit here, and every hook and test passes
// vitest a timeout that is the sum of the limits of the steps it waits for plus HOOK_MARGIN_MS (budgetMs), so the
// step's own limit always fires first, with a message that names it, and vitest's timeout never cuts it short.
// (The cause, issue "hookTimeout on a cold cache": a 300 s hookTimeout around a 600 s debootstrap limit.)
//
// Measured 2026-12 from a cold cache (no .ci-work/base-bookworm-minbase.tar.gz), 2-core machine, a
// `yes > /dev/null` busy loop on each core plus another test run alongside (load average 3 to 8), four runs of
// `npx vitest run test/images/containers.test.ts test/components/promotion/registry-copy.test.ts`; in brackets one run with two loops per core:
//   engine start (containerd, dockerd, 2 registries)  0.5-1.1 s      mirror probe   0.1-0.2 s
//   debootstrap --variant=minbase bookworm            59-79 s [63]   tar -czf       10-21 s [24]
//   rootfs work dir removed                           2 s            docker import  6.7-11 s [9.1]
//   => base image ready, asked for to imported        88-100 s [98]
//   docker build: entrypoint, per-user, FROM scratch  0.5-1.3 s      docker push    0.2-0.4 s
//   slowest test (per-user push + registry read-back) 6.4-9.5 s      others         under 1.7 s
//   engine stop 0.1-0.3 s, state dir removal 0.9-3.4 s; both files 110-118 s [124] cold, 28 s with the cache.
// GUIDE §2 records debootstrap at 25 s idle and 129 s and more on another loaded 2-core machine (mirror speed counts
// as much as CPU). The limits below are several times the worst seen; debootstrap keeps its 600 s (4.6x 129 s).
// Worst cases that follow: containers.test.ts beforeAll 1376 s (engine 226 s + base 1110 s + lock slack + margin),
// registry-copy.test.ts beforeAll 951 s, a build hook 210 s, an afterAll 242 s.

/** containerd answering on its socket. */
export const CONTAINERD_READY_MS = 20_000;
/** dockerd answering /_ping. */
export const DOCKERD_READY_MS = 60_000;
/** A docker-registry serving /v2/, over up to REGISTRY_ATTEMPTS starts (its port may be taken meanwhile). */
export const REGISTRY_READY_MS = 20_000;
export const REGISTRY_ATTEMPTS = 3;
/** Stopping a registry that did not come up. */
const REGISTRY_STOP_GRACE_MS = 2_000;
/** SIGTERM to SIGKILL, per stop stage (registries, then dockerd, then containerd). */
export const STOP_GRACE_MS = 20_000;
/** containerd shims left after dockerd and containerd are gone. */
const SHIM_STOP_GRACE_MS = 2_000;
/** docker commands that only read or change metadata: info, tag, image inspect, image rm. */
export const DOCKER_QUICK_TIMEOUT_MS = 30_000;
/** stopEngine: three stop stages, the shims, and removing the state dir. */
export const ENGINE_STOP_BUDGET_MS = 3 * STOP_GRACE_MS + SHIM_STOP_GRACE_MS + REMOVE_TREE_TIMEOUT_MS;
/** startEngine end to end, including stopping what it started when a step fails (but not removing the dir). */
export const ENGINE_START_BUDGET_MS =
  CONTAINERD_READY_MS +
  DOCKERD_READY_MS +
  2 * (REGISTRY_READY_MS + 1_000 + REGISTRY_ATTEMPTS * REGISTRY_STOP_GRACE_MS) +
  DOCKER_QUICK_TIMEOUT_MS +
  3 * STOP_GRACE_MS +
  SHIM_STOP_GRACE_MS;
/** `docker import` of the base tarball into the engine. */
export const IMPORT_TIMEOUT_MS = 180_000;
/** importBase end to end: the tarball (cached, or debootstrap + tar) and the import. */
export const BASE_IMAGE_BUDGET_MS = BASE_TARBALL_BUDGET_MS + IMPORT_TIMEOUT_MS;
/** One `docker build` of a test image (FROM the imported base, or FROM scratch), BuildKit, --network=none. */
export const BUILD_TIMEOUT_MS = 180_000;
/** One `docker run --rm` of a test image (a shell one-liner). */
export const RUN_TIMEOUT_MS = 60_000;
/** One `docker push` of a test image to a registry on 127.0.0.1. */
export const PUSH_TIMEOUT_MS = 120_000;
/** One skopeo copy or inspect between the two registries on 127.0.0.1. */
export const SKOPEO_TIMEOUT_MS = 120_000;
/** Added once to every hook and test budget: vitest's own bookkeeping and the code between the limited steps. */
export const HOOK_MARGIN_MS = 30_000;
/** How often a waiter looks at a lock, and the slack it adds to the holder's budget before it gives up. */
const LOCK_POLL_MS = 250;
const LOCK_SLACK_MS = 5_000;

/** A vitest hook or test timeout for work made of these limited steps: their sum plus HOOK_MARGIN_MS. */
export function budgetMs(...stepsMs: number[]): number {
  return stepsMs.reduce((sum, ms) => sum + ms, 0) + HOOK_MARGIN_MS;
}

/**
 * The longest ensureEngine(needs) can take: the engine start (this file's, or waiting on the lock while another
 * file's runs), then the base image (the same). A lock whose holder died is taken over and the work redone; that
 * rare case can take longer, and then vitest's timeout fires.
 */
export function ensureEngineMs(needs: EngineNeeds = {}): number {
  const base = (needs.baseImage ?? true) ? BASE_IMAGE_BUDGET_MS + LOCK_SLACK_MS : 0;
  return ENGINE_START_BUDGET_MS + LOCK_SLACK_MS + base;
}

export interface EngineInfo {
  stateDir: string;
  /** Every file and socket of the engine lives below this dir. */
  root: string;
  /** unix://ROOT/docker.sock */
  dockerHost: string;
  /** An empty DOCKER_CONFIG dir: a developer's credential helpers never run. */
  dockerConfig: string;
  /** host:port of the two registries (plain http on 127.0.0.1). */
  registryA: string;
  registryB: string;
  /** workbench-test/base:bookworm, present once baseSource is set. */
  baseImage: string;
  /** Where the base image's rootfs came from; null until a test asked for it (EngineNeeds.baseImage). */
  baseSource: BaseSource | null;
}

interface PidRecord {
  name: string;
  pid: number;
}

const log = (line: string): void => {
  process.stderr.write(`[workbench engine] ${line}\n`);
};

/** One stderr line with how long a test step took, so every run shows the figures the budgets are checked against. */
export function logTiming(what: string, startedAt: number): void {
  log(`${what} in ${Date.now() - startedAt} ms`);
}

const OVERLAYFS_MAGIC = 0x794c7630;
/**
 * A unix socket path holds at most 107 bytes. The longest below the parent is
 * `/wbe-XXXXXX/run/containerd/containerd.sock.ttrpc` (48), so the parent gets 56 with a little to spare.
 */
const MAX_PARENT_LENGTH = 56;

function isOverlayfs(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === OVERLAYFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes the state dir: short (unix socket paths below it) and, where possible, not on overlayfs. In a CI job that
 * runs inside a container /tmp is overlayfs, where dockerd cannot stack overlay2 and falls back to vfs, which
 * copies the whole rootfs for every container (measured: 99 s instead of 34 s for the suite). The checkout is
 * usually a bind mount there, so .ci-work/ (gitignored) is tried next.
 */
export function makeStateDir(): string {
  const candidates = [os.tmpdir(), "/tmp", path.join(REPO_ROOT, ".ci-work")].filter(
    (d) => d.length <= MAX_PARENT_LENGTH,
  );
  const usable = candidates.find((d) => {
    if (d.endsWith(".ci-work")) fs.mkdirSync(d, { recursive: true });
    return fs.existsSync(d) && !isOverlayfs(d);
  });
  return fs.mkdtempSync(path.join(usable ?? "/tmp", "wbe-"));
}

let ownedStateDir: string | undefined;
let owned: EngineInfo | undefined;

export interface EngineNeeds {
  /**
   * Import workbench-test/base:bookworm (debootstrap on the first run ever, then the cached tarball).
   * @default true; false for tests that build FROM scratch and only need dockerd and the registries
   */
  baseImage?: boolean;
}

/**
 * Returns the running engine, starting it first if no test file has yet, and importing the base image if asked and
 * not yet there. Throws (never skips) when it cannot; the message says how to skip on purpose. Takes at most
 * ensureEngineMs(needs): pass budgetMs(ensureEngineMs(needs), ...) to the beforeAll that calls it.
 */
export async function ensureEngine(needs: EngineNeeds = {}): Promise<EngineInfo> {
  try {
    return await acquire(needs.baseImage ?? true);
  } catch (e) {
    // The base image's errors are one line that already names the cause and the fix.
    if (e instanceof BaseImageError) throw new BaseImageError(`${e.message}; ${SKIP_ENV}=1 skips these tests`);
    throw new Error(
      `${(e as Error).message}\n(the real-container tests need root, dockerd, containerd, docker-registry and ` +
        `skopeo: run .ci/run, or set ${SKIP_ENV}=1 to skip them on purpose)`,
    );
  }
}

/** For afterAll: stops the engine only when this test file started a private one (no globalSetup configured). */
export async function releaseEngine(): Promise<void> {
  if (ownedStateDir === undefined) return;
  const dir = ownedStateDir;
  ownedStateDir = undefined;
  owned = undefined;
  await stopEngine(dir);
}

function providedStateDir(): string | undefined {
  try {
    const dir = inject("workbenchEngineStateDir");
    return dir === "" ? undefined : dir;
  } catch {
    return undefined;
  }
}

async function acquire(needBase: boolean): Promise<EngineInfo> {
  const shared = providedStateDir();
  if (shared === undefined) {
    if (owned === undefined) {
      log("no globalSetup provided a state dir: this test file starts its own engine");
      ownedStateDir ??= makeStateDir();
      owned = await startOrClean(ownedStateDir);
    }
    if (needBase && owned.baseSource === null) owned.baseSource = await importBase(owned);
    return owned;
  }
  const stateDir = shared;
  const infoFile = path.join(stateDir, "engine.json");
  const info = await withLock(stateDir, "engine.lock", ENGINE_START_BUDGET_MS, async () => {
    const failedFile = path.join(stateDir, "failed.txt");
    if (fs.existsSync(infoFile)) return JSON.parse(fs.readFileSync(infoFile, "utf8")) as EngineInfo;
    // One failed start per run is enough: the next test file reports the same reason instead of retrying.
    if (fs.existsSync(failedFile)) throw new Error(fs.readFileSync(failedFile, "utf8"));
    try {
      const started = await startOrClean(stateDir);
      writeJsonAtomic(infoFile, started);
      return started;
    } catch (e) {
      fs.writeFileSync(failedFile, (e as Error).message);
      throw e;
    }
  });
  if (!needBase || info.baseSource !== null) return info;
  // A lock of its own: a test file that needs no base image does not wait for a first-ever debootstrap.
  return withLock(stateDir, "base.lock", BASE_IMAGE_BUDGET_MS, async () => {
    const current = JSON.parse(fs.readFileSync(infoFile, "utf8")) as EngineInfo;
    const baseFailedFile = path.join(stateDir, "base-failed.txt");
    // Like failed.txt: the next test file reports the first file's reason instead of running debootstrap again.
    if (current.baseSource === null && fs.existsSync(baseFailedFile)) {
      const failed = JSON.parse(fs.readFileSync(baseFailedFile, "utf8")) as { message: string; oneLine: boolean };
      throw failed.oneLine ? new BaseImageError(failed.message) : new Error(failed.message);
    }
    if (current.baseSource === null) {
      try {
        current.baseSource = await importBase(current);
      } catch (e) {
        writeJsonAtomic(baseFailedFile, { message: (e as Error).message, oneLine: e instanceof BaseImageError });
        throw e;
      }
      // Only base.lock holders rewrite engine.json after the start; the rename keeps readers from seeing half a file.
      writeJsonAtomic(infoFile, current);
    }
    return current;
  });
}

function writeJsonAtomic(file: string, value: unknown): void {
  fs.writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(value, null, 2));
  fs.renameSync(`${file}.${process.pid}.tmp`, file);
}

async function startOrClean(stateDir: string): Promise<EngineInfo> {
  try {
    return await startEngine(stateDir);
  } catch (e) {
    await stopProcesses(stateDir);
    throw e;
  }
}

/**
 * mkdir is atomic: whoever creates the lock dir goes first; a lock whose owner died is broken. `holderBudgetMs` is
 * the longest the work under this lock can take: a waiter gives up only after that (and a little slack).
 */
async function withLock<T>(stateDir: string, name: string, holderBudgetMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(stateDir, name);
  const waitMs = holderBudgetMs + LOCK_SLACK_MS;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, "owner"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let owner = 0;
      try {
        owner = Number(fs.readFileSync(path.join(lock, "owner"), "utf8"));
      } catch {
        owner = 0;
      }
      if (owner > 0 && !isAlive(owner)) {
        fs.rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${waitMs / 1000} s waiting for ${lock}, held by pid ${owner}: longer than ` +
          "the work under it may take");
      }
      await sleep(LOCK_POLL_MS);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function recordPid(stateDir: string, rec: PidRecord): void {
  const file = path.join(stateDir, "pids.json");
  const list = readPids(stateDir);
  list.push(rec);
  fs.writeFileSync(file, JSON.stringify(list));
}

function readPids(stateDir: string): PidRecord[] {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir, "pids.json"), "utf8")) as PidRecord[];
  } catch {
    return [];
  }
}

function preflight(): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push(`dockerd must run as root (uid is ${process.getuid?.() ?? "unknown"})`);
  for (const bin of [DOCKERD, CONTAINERD, DOCKER_CLI, REGISTRY, SKOPEO, "/usr/sbin/runc"]) {
    if (!fs.existsSync(bin)) problems.push(`${bin} is missing (apt-get install docker.io docker-registry skopeo)`);
  }
  if (problems.length > 0) throw new Error(`cannot start the test engine:\n  - ${problems.join("\n  - ")}`);
}

function logTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

async function waitFor(what: string, timeoutMs: number, pid: number, logFile: string, ok: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) throw new Error(`${what} exited while starting; last lines of ${logFile}:\n${logTail(logFile)}`);
    if (await ok()) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms; last lines of ${logFile}:\n${logTail(logFile)}`);
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

function dockerPing(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: "/_ping", timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** A port the kernel hands out for port 0 on 127.0.0.1, released again for a registry to bind. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", resolve);
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function registryConfig(storage: string, addr: string): string {
  // No `auth:` section (Debian's default config enables htpasswd); no health check poller; http only.
  return [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${storage}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: ${addr}`,
    // A fixed secret silences the "no secret, generating one" warning; nothing is signed with it that matters.
    "  secret: workbench-test-only",
    "",
  ].join("\n");
}

async function startEngine(stateDir: string): Promise<EngineInfo> {
  preflight();
  const t0 = Date.now();
  const root = path.join(stateDir, "run");
  fs.mkdirSync(root, { recursive: true });
  const daemonEnv: NodeJS.ProcessEnv = { PATH: DAEMON_PATH, HOME: root, TMPDIR: root };

  // containerd
  const ctdDir = path.join(root, "containerd");
  fs.mkdirSync(ctdDir);
  const ctdSock = path.join(ctdDir, "containerd.sock");
  const ctdConfig = path.join(ctdDir, "config.toml");
  fs.writeFileSync(
    ctdConfig,
    [
      "version = 2",
      `root = ${JSON.stringify(path.join(ctdDir, "root"))}`,
      `state = ${JSON.stringify(path.join(ctdDir, "state"))}`,
      // The CRI plugin is for Kubernetes and would try to set up CNI; dockerd does not use it.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = ${JSON.stringify(ctdSock)}`,
      "",
    ].join("\n"),
  );
  const ctdLog = path.join(root, "containerd.log");
  const ctdPid = spawnDaemon(CONTAINERD, ["--config", ctdConfig], ctdLog, daemonEnv);
  recordPid(stateDir, { name: "containerd", pid: ctdPid });
  await waitFor("containerd", CONTAINERD_READY_MS, ctdPid, ctdLog, async () => {
    return fs.existsSync(ctdSock) && canConnect(ctdSock);
  });

  // dockerd
  const dockerSock = path.join(root, "docker.sock");
  const daemonJson = path.join(root, "daemon.json");
  fs.writeFileSync(daemonJson, "{}\n");
  const dockerdLog = path.join(root, "dockerd.log");
  const dockerdPid = spawnDaemon(
    DOCKERD,
    [
      `--host=unix://${dockerSock}`,
      `--data-root=${path.join(root, "docker-data")}`,
      `--exec-root=${path.join(root, "docker-exec")}`,
      `--pidfile=${path.join(root, "dockerd.pid")}`,
      `--config-file=${daemonJson}`,
      `--containerd=${ctdSock}`,
      "--bridge=none",
      "--iptables=false",
      "--ip-masq=false",
      "--userland-proxy=false",
      // dockerd picks overlay2, or vfs where /tmp is itself overlayfs (a CI job inside a container); the variable
      // lets a developer force one to reproduce CI.
      ...(process.env.WORKBENCH_DOCKER_STORAGE_DRIVER ? [`--storage-driver=${process.env.WORKBENCH_DOCKER_STORAGE_DRIVER}`] : []),
    ],
    dockerdLog,
    daemonEnv,
  );
  recordPid(stateDir, { name: "dockerd", pid: dockerdPid });
  await waitFor("dockerd", DOCKERD_READY_MS, dockerdPid, dockerdLog, () => dockerPing(dockerSock));

  // registries
  const registries: string[] = [];
  for (const label of ["a", "b"]) {
    const storage = path.join(root, `registry-${label}`);
    fs.mkdirSync(storage);
    const config = path.join(root, `registry-${label}.yml`);
    const regLog = path.join(root, `registry-${label}.log`);
    // The free port is released before the registry binds it; should anything take it in between, the registry
    // exits at once and the next attempt gets a fresh port. All attempts share one REGISTRY_READY_MS.
    const deadline = Date.now() + REGISTRY_READY_MS;
    for (let attempt = 1; ; attempt++) {
      const addr = `127.0.0.1:${await freePort()}`;
      fs.writeFileSync(config, registryConfig(storage, addr));
      const pid = spawnDaemon(REGISTRY, ["serve", config], regLog, daemonEnv);
      recordPid(stateDir, { name: `registry-${label}`, pid });
      try {
        await waitForRegistry(addr, Math.max(1_000, deadline - Date.now()), () => isAlive(pid));
        registries.push(addr);
        break;
      } catch (e) {
        await stopPid(pid, root, REGISTRY_STOP_GRACE_MS);
        if (attempt >= REGISTRY_ATTEMPTS || Date.now() >= deadline) {
          throw new Error(`${(e as Error).message}; last lines of ${regLog}:\n${logTail(regLog)}`);
        }
      }
    }
  }

  const dockerConfig = path.join(root, "docker-client-config");
  fs.mkdirSync(dockerConfig);
  const info: EngineInfo = {
    stateDir,
    root,
    dockerHost: `unix://${dockerSock}`,
    dockerConfig,
    registryA: registries[0] ?? "",
    registryB: registries[1] ?? "",
    baseImage: BASE_IMAGE,
    baseSource: null,
  };
  const driver = mustSucceed(await docker(info, ["info", "--format", "{{.Driver}}"]), "docker info");
  log(`dockerd (${driver.stdout.trim()}), containerd and registries ${info.registryA} ${info.registryB} up in ` +
    `${Date.now() - t0} ms`);
  return info;
}

/**
 * Imports the base image from the cached (or freshly debootstrapped) tarball; returns where the rootfs came from.
 * Takes at most BASE_IMAGE_BUDGET_MS.
 */
async function importBase(info: EngineInfo): Promise<BaseSource> {
  const t0 = Date.now();
  const tarball = await ensureBaseTarball(log);
  const t1 = Date.now();
  const changes = ["--change", `ENV PATH=${IMAGE_PATH}`, "--change", 'CMD ["sh"]'];
  mustSucceed(
    await docker(info, ["import", ...changes, tarball.file, BASE_IMAGE], { timeoutMs: IMPORT_TIMEOUT_MS }),
    `docker import ${tarball.file}`,
  );
  log(`${BASE_IMAGE} imported (${tarball.source}) in ${Date.now() - t1} ms; base image ready ${Date.now() - t0} ms ` +
    "after it was asked for");
  return tarball.source;
}

/**
 * Stops in stages, each process of a stage at once: registries, then dockerd (it stops its containers first), then
 * containerd, then any shim still naming ROOT. Each stage waits at most `graceMs` before SIGKILL.
 */
async function stopProcesses(stateDir: string, graceMs = STOP_GRACE_MS): Promise<void> {
  const root = path.join(stateDir, "run");
  const pids = readPids(stateDir);
  const stages = [
    pids.filter((r) => r.name !== "dockerd" && r.name !== "containerd"),
    pids.filter((r) => r.name === "dockerd"),
    pids.filter((r) => r.name === "containerd"),
  ];
  for (const stage of stages) await Promise.all(stage.map((r) => stopPid(r.pid, root, graceMs)));
  await Promise.all(pidsMentioning(root).map((pid) => stopPid(pid, root, Math.min(graceMs, SHIM_STOP_GRACE_MS))));
}

/**
 * Stops every process the engine in `stateDir` started and removes the dir. Safe to call twice. Takes at most
 * ENGINE_STOP_BUDGET_MS, or about `withinMs` when given (vitest's global teardown has only teardownTimeout: the
 * grace before SIGKILL is then cut to fit).
 */
export async function stopEngine(stateDir: string, withinMs?: number): Promise<void> {
  if (!fs.existsSync(stateDir)) return;
  const t0 = Date.now();
  const started = readPids(stateDir).length > 0;
  // Within a limit: 60% of it for the three stop stages and the shims, the rest for removing the dir.
  const graceMs = withinMs === undefined
    ? STOP_GRACE_MS
    : Math.max(500, Math.min(STOP_GRACE_MS, Math.floor((withinMs * 0.6) / 3.5)));
  await stopProcesses(stateDir, graceMs);
  const t1 = Date.now();
  await removeTree(stateDir, withinMs === undefined ? REMOVE_TREE_TIMEOUT_MS : Math.max(1_000, withinMs - (t1 - t0)));
  if (started) log(`stopped in ${t1 - t0} ms, ${stateDir} removed in ${Date.now() - t1} ms`);
}

/**
 * Last resort for an interrupted run (process 'exit' handlers cannot wait): SIGTERM every recorded PID that still
 * names the engine's ROOT. The temp dir may then be left behind.
 */
export function signalEngineSync(stateDir: string): void {
  const root = path.join(stateDir, "run");
  for (const rec of readPids(stateDir)) {
    try {
      const cmd = fs.readFileSync(`/proc/${rec.pid}/cmdline`, "utf8");
      if (cmd.includes(root)) process.kill(rec.pid, "SIGTERM");
    } catch {
      // gone already
    }
  }
}

/** Environment for the docker client: our socket, BuildKit, an empty config dir, and no inherited DOCKER_* knobs. */
export function dockerEnv(engine: EngineInfo): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("DOCKER_") && !k.startsWith("BUILDKIT_")) env[k] = v;
  env.DOCKER_HOST = engine.dockerHost;
  env.DOCKER_BUILDKIT = "1";
  env.DOCKER_CONFIG = engine.dockerConfig;
  env.BUILDKIT_PROGRESS = "plain";
  return env;
}

/**
 * Runs the Debian docker client against the private engine, killed after `opts.timeoutMs`
 * (@default DOCKER_QUICK_TIMEOUT_MS: pass BUILD/RUN/PUSH/IMPORT_TIMEOUT_MS for anything slower than metadata).
 */
export function docker(engine: EngineInfo, args: readonly string[], opts: Omit<RunOptions, "env"> = {}): Promise<CmdResult> {
  return runCommand(DOCKER_CLI, args, { timeoutMs: DOCKER_QUICK_TIMEOUT_MS, ...opts, env: dockerEnv(engine) });
}

/** `docker push` prints "<tag>: digest: sha256:<hex> size: <n>"; returns that digest. */
export function pushedDigest(pushOutput: string): string {
  const m = /: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(pushOutput);
  if (!m?.[1]) throw new Error(`no digest line in docker push output:\n${pushOutput}`);
  return m[1];
}
