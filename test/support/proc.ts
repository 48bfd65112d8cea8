/**
 * Process helpers for the real-container tests: run a command to completion, start a daemon that outlives the
 * caller, and stop a daemon by PID. Nothing here ever signals a process by name (GUIDE §2: stop what you start,
 * by PID), and stopPid refuses to signal a PID whose command line no longer names our temp dir (PID reuse).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";

export interface CmdResult {
  /** Exit code, or null when the process died from a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when runCommand killed it for running past `timeoutMs` (the value it ran under). */
  timedOutAfterMs?: number;
}

/** runCommand's limit when the caller names none. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 300_000;
/** After a timeout kill, how long runCommand waits for the output pipes to close before it stops reading them. */
export const KILL_GRACE_MS = 5_000;

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, then stdin is closed. @default stdin is closed at once */
  input?: string | Buffer;
  /** Killed with SIGKILL after this long; the result then has signal SIGKILL and timedOutAfterMs. @default 300_000 */
  timeoutMs?: number;
  /**
   * Run it in a process group of its own and SIGKILL the whole group on timeout. For commands that fork workers
   * which would otherwise outlive the kill (debootstrap's wget, dpkg and chroot keep writing into the rootfs).
   * @default only the process itself is killed
   */
  killGroup?: boolean;
}

/** Runs `file args...` without a shell and collects its output. Never rejects for a non-zero exit. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      detached: opts.killGroup === true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (opts.killGroup === true && child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
          return;
        } catch {
          // the group is gone already; fall through to the process itself
        }
      }
      child.kill("SIGKILL");
      // 'close' waits for every holder of the output pipes; a grandchild outside the group could hold them forever.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, KILL_GRACE_MS).unref();
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${file}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ...(timedOut ? { timedOutAfterMs: timeoutMs } : {}),
      });
    });
    child.stdin.on("error", () => undefined); // the child may exit before reading stdin
    child.stdin.end(opts.input ?? "");
  });
}

/** Throws with the command line and the tail of its output unless it exited 0. Returns the result otherwise. */
export function mustSucceed(result: CmdResult, what: string): CmdResult {
  if (result.code === 0) return result;
  const tail = (s: string): string => s.trimEnd().split("\n").slice(-25).join("\n");
  const how = result.timedOutAfterMs !== undefined
    ? `timed out after ${result.timedOutAfterMs / 1000} s and was killed`
    : `exit ${result.code ?? "none"}${result.signal ? `, signal ${result.signal}` : ""}`;
  throw new Error(
    `${what} failed (${how})\n` +
      `--- stderr ---\n${tail(result.stderr)}\n--- stdout ---\n${tail(result.stdout)}`,
  );
}

/**
 * Starts a long-running daemon detached from the caller (own process group, output to `logFile`), so it survives
 * the vitest worker that started it; the global teardown stops it by PID.
 */
export function spawnDaemon(file: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv): number {
  const fd = fs.openSync(logFile, "a");
  try {
    const child = spawn(file, args, { detached: true, stdio: ["ignore", fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${file} (see ${logFile})`);
    child.on("error", () => undefined);
    child.unref();
    return child.pid;
  } finally {
    fs.closeSync(fd);
  }
}

/** The process's command line (NUL-separated args joined by spaces), or null when there is no such process. */
export function cmdlineOf(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return null;
  }
}

/**
 * True while the process exists and is not a zombie. A daemon whose parent (a finished vitest worker) is gone is
 * reparented to PID 1, which in a container may never reap it: kill(pid, 0) would then succeed forever.
 */
export function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM, wait up to `graceMs`, then SIGKILL. Only when the command line still contains `mustContain` (our unique
 * temp dir), so a recycled PID is never signalled.
 */
export async function stopPid(pid: number, mustContain: string, graceMs = 20_000): Promise<void> {
  const cmd = cmdlineOf(pid);
  if (cmd === null || !cmd.includes(mustContain) || !isAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  if (cmdlineOf(pid)?.includes(mustContain) && isAlive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** PIDs of every live process whose command line mentions `needle` (containerd shims, stray build steps). */
export function pidsMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    if (cmdlineOf(pid)?.includes(needle) && isAlive(pid)) found.push(pid);
  }
  return found;
}

/** removeTree's limit for unmounting and deleting together (it was 30 s per mount plus 120 s for rm). */
export const REMOVE_TREE_TIMEOUT_MS = 120_000;

/**
 * Unmounts whatever is still mounted below `dir` (deepest first), then removes it, all within `timeoutMs`.
 * `rm --one-file-system` is the second guard: a bind mount of /dev or /proc left by a failed debootstrap is never
 * descended into. Never throws: what could not be removed in time is left behind.
 */
export async function removeTree(dir: string, timeoutMs = REMOVE_TREE_TIMEOUT_MS): Promise<void> {
  if (!fs.existsSync(dir)) return;
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(1_000, deadline - Date.now());
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(prefix)))
    .map((m) => m.replace(/\\040/g, " "))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await runCommand("umount", ["-l", m], { timeoutMs: left() });
  await runCommand("rm", ["-rf", "--one-file-system", dir], { timeoutMs: left() });
}
