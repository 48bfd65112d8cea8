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
import { BASE_IMAGE, type BaseSource, ensureBaseTarball, REPO_ROOT } from "./base-image";
import {
  type CmdResult,
  isAlive,
  mustSucceed,
  pidsMentioning,
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
 * not yet there. Throws (never skips) when it cannot; the message says how to skip on purpose.
 */
export async function ensureEngine(needs: EngineNeeds = {}): Promise<EngineInfo> {
  try {
    return await acquire(needs.baseImage ?? true);
  } catch (e) {
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
  const info = await withLock(stateDir, "engine.lock", async () => {
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
  return withLock(stateDir, "base.lock", async () => {
    const current = JSON.parse(fs.readFileSync(infoFile, "utf8")) as EngineInfo;
    if (current.baseSource === null) {
      current.baseSource = await importBase(current);
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

/** mkdir is atomic: whoever creates the lock dir goes first; a lock whose owner died is broken. */
async function withLock<T>(stateDir: string, name: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(stateDir, name);
  const deadline = Date.now() + 280_000;
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
      if (Date.now() > deadline) throw new Error(`timed out waiting for the engine lock ${lock}`);
      await sleep(250);
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
  await waitFor("containerd", 20_000, ctdPid, ctdLog, async () => fs.existsSync(ctdSock) && canConnect(ctdSock));

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
  await waitFor("dockerd", 60_000, dockerdPid, dockerdLog, () => dockerPing(dockerSock));

  // registries
  const registries: string[] = [];
  for (const label of ["a", "b"]) {
    const storage = path.join(root, `registry-${label}`);
    fs.mkdirSync(storage);
    const config = path.join(root, `registry-${label}.yml`);
    const regLog = path.join(root, `registry-${label}.log`);
    // The free port is released before the registry binds it; should anything take it in between, the registry
    // exits at once and the next attempt gets a fresh port.
    for (let attempt = 1; ; attempt++) {
      const addr = `127.0.0.1:${await freePort()}`;
      fs.writeFileSync(config, registryConfig(storage, addr));
      const pid = spawnDaemon(REGISTRY, ["serve", config], regLog, daemonEnv);
      recordPid(stateDir, { name: `registry-${label}`, pid });
      try {
        await waitForRegistry(addr, 20_000, () => isAlive(pid));
        registries.push(addr);
        break;
      } catch (e) {
        await stopPid(pid, root, 2_000);
        if (attempt >= 3) throw new Error(`${(e as Error).message}; last lines of ${regLog}:\n${logTail(regLog)}`);
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
  const driver = await docker(info, ["info", "--format", "{{.Driver}}"]);
  log(`dockerd (${driver.stdout.trim()}), containerd and registries ${info.registryA} ${info.registryB} up in ` +
    `${Date.now() - t0} ms`);
  return info;
}

/** Imports the base image from the cached (or freshly debootstrapped) tarball; returns where the rootfs came from. */
async function importBase(info: EngineInfo): Promise<BaseSource> {
  const t0 = Date.now();
  const tarball = await ensureBaseTarball(log);
  try {
    mustSucceed(
      await docker(info, ["import", "--change", `ENV PATH=${IMAGE_PATH}`, "--change", 'CMD ["sh"]', tarball.file, BASE_IMAGE]),
      `docker import ${tarball.file}`,
    );
  } finally {
    if (tarball.temporary) fs.rmSync(tarball.file, { force: true });
  }
  log(`${BASE_IMAGE} imported (${tarball.source}) in ${Date.now() - t0} ms`);
  return tarball.source;
}

async function stopProcesses(stateDir: string): Promise<void> {
  const root = path.join(stateDir, "run");
  const pids = readPids(stateDir).reverse(); // registries, dockerd, containerd: dockerd stops its containers first
  for (const rec of pids) await stopPid(rec.pid, root);
  for (const pid of pidsMentioning(root)) await stopPid(pid, root, 2_000);
}

/** Stops every process the engine in `stateDir` started and removes the dir. Safe to call twice. */
export async function stopEngine(stateDir: string): Promise<void> {
  if (!fs.existsSync(stateDir)) return;
  const t0 = Date.now();
  const started = readPids(stateDir).length > 0;
  await stopProcesses(stateDir);
  const t1 = Date.now();
  await removeTree(stateDir);
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

/** Runs the Debian docker client against the private engine. */
export function docker(engine: EngineInfo, args: readonly string[], opts: Omit<RunOptions, "env"> = {}): Promise<CmdResult> {
  return runCommand(DOCKER_CLI, args, { ...opts, env: dockerEnv(engine) });
}

/** `docker push` prints "<tag>: digest: sha256:<hex> size: <n>"; returns that digest. */
export function pushedDigest(pushOutput: string): string {
  const m = /: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(pushOutput);
  if (!m?.[1]) throw new Error(`no digest line in docker push output:\n${pushOutput}`);
  return m[1];
}
