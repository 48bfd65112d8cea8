/**
 * The local base image the container tests build FROM: a Debian bookworm minbase rootfs made by debootstrap,
 * cached as a tarball under the gitignored `.ci-work/` so reruns skip the download. minbase ships `passwd`
 * (useradd/groupadd), which images/per-user/Dockerfile needs.
 *
 * No fallback base: when the rootfs cannot be made, ensureBaseTarball throws one line that names the mirror, the
 * limit, debootstrap's own error and the two fixes. (A busybox-static rootfs used to stand in; it has no useradd,
 * so the per-user tests failed anyway, later and less clearly, and it tested the entrypoint under a shell the real
 * images do not have.)
 *
 * Budgets (the hooks that wait for this add them up, see BASE_IMAGE_BUDGET_MS in ./engine): measured from a cold
 * cache on a 2-core machine with a `yes > /dev/null` busy loop on each core, figures in ./engine.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type CmdResult, mustSucceed, REMOVE_TREE_TIMEOUT_MS, removeTree, runCommand } from "./proc";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
/** Fixed cache key: bump the name to force a fresh debootstrap. */
export const BASE_TARBALL = path.join(REPO_ROOT, ".ci-work", "base-bookworm-minbase.tar.gz");
export const BASE_IMAGE = "workbench-test/base:bookworm";

export const MIRROR_ENV = "WORKBENCH_DEBIAN_MIRROR";
export const DEFAULT_MIRROR = "http://deb.debian.org/debian";

/**
 * One fetch of dists/bookworm/Release by wget (debootstrap's own downloader, so the same proxy settings apply),
 * before debootstrap starts. debootstrap's wget retries 20 times with a 900 s read timeout, so a mirror that drops
 * packets would otherwise hold the run until DEBOOTSTRAP_TIMEOUT_MS.
 */
export const MIRROR_PROBE_TIMEOUT_MS = 30_000;
/** debootstrap --variant=minbase bookworm: 25 s idle, 129 s and more loaded (GUIDE §2); our figures in ./engine. */
export const DEBOOTSTRAP_TIMEOUT_MS = 600_000;
/** tar -czf of the rootfs (49 MB compressed; 10-24 s on a loaded 2-core machine). */
export const TAR_TIMEOUT_MS = 180_000;

/**
 * Worst case of ensureBaseTarball: probe, debootstrap, tar, and removing the work dir (also after a failure).
 * The work dir's removal is bounded by removeTree itself.
 */
export const BASE_TARBALL_BUDGET_MS =
  MIRROR_PROBE_TIMEOUT_MS + DEBOOTSTRAP_TIMEOUT_MS + TAR_TIMEOUT_MS + REMOVE_TREE_TIMEOUT_MS;

export type BaseSource = "debootstrap" | "debootstrap-cached";

export interface BaseTarball {
  file: string;
  source: BaseSource;
}

/** The base could not be made: the message is one line with the cause and the fix, and needs no wrapping. */
export class BaseImageError extends Error {
  override name = "BaseImageError";
}

const DEBOOTSTRAP = "/usr/sbin/debootstrap";
const WGET = "/usr/bin/wget";

function fixHint(): string {
  return `set ${MIRROR_ENV} to a reachable Debian mirror or pre-seed ${path.relative(REPO_ROOT, BASE_TARBALL)} ` +
    "(a tar.gz of a bookworm minbase rootfs: copy it from another machine's .ci-work/)";
}

/** The line of debootstrap's (or wget's) output that says what went wrong: its first `E:` line, else the last line. */
export function firstErrorLine(result: Pick<CmdResult, "stdout" | "stderr">): string {
  const lines = `${result.stderr}\n${result.stdout}`.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines.find((l) => l.startsWith("E:")) ?? lines.at(-1) ?? "no output";
}

/** Returns the cached tarball, or makes it with debootstrap; throws a BaseImageError when it cannot. */
export async function ensureBaseTarball(log: (line: string) => void): Promise<BaseTarball> {
  if (fs.existsSync(BASE_TARBALL) && fs.statSync(BASE_TARBALL).size > 0) {
    return { file: BASE_TARBALL, source: "debootstrap-cached" };
  }
  const mirror = (process.env[MIRROR_ENV] ?? "") === "" ? DEFAULT_MIRROR : (process.env[MIRROR_ENV] as string);
  const cantFetch = (detail: string): BaseImageError =>
    new BaseImageError(`debootstrap could not fetch Debian bookworm from ${mirror} ${detail}; ${fixHint()}`);
  for (const bin of [DEBOOTSTRAP, WGET]) {
    if (!fs.existsSync(bin)) {
      throw new BaseImageError(`${bin} is missing and ${path.relative(REPO_ROOT, BASE_TARBALL)} is not there: ` +
        "apt-get install debootstrap debian-archive-keyring (or run .ci/run), or pre-seed the tarball");
    }
  }
  if (/^https?:\/\//.test(mirror)) {
    const t0 = Date.now();
    const url = `${mirror.replace(/\/+$/, "")}/dists/bookworm/Release`;
    const probe = await runCommand(
      WGET,
      ["--no-verbose", "-O", "/dev/null", "--tries=1", `--timeout=${MIRROR_PROBE_TIMEOUT_MS / 1000}`, url],
      { timeoutMs: MIRROR_PROBE_TIMEOUT_MS + 5_000 },
    );
    if (probe.code !== 0) {
      const why = probe.timedOutAfterMs !== undefined
        ? "no answer"
        : `wget exit ${probe.code ?? probe.signal}: ${firstErrorLine(probe)}`;
      throw cantFetch(`(GET ${url} failed after ${((Date.now() - t0) / 1000).toFixed(1)} s, limit ` +
        `${MIRROR_PROBE_TIMEOUT_MS / 1000} s): ${why}`);
    }
    log(`mirror answered in ${Date.now() - t0} ms (${url})`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "wb-rootfs-"));
  try {
    const rootfs = path.join(work, "rootfs");
    log(`debootstrap --variant=minbase bookworm (${mirror}, limit ${DEBOOTSTRAP_TIMEOUT_MS / 1000} s); cached ` +
      `afterwards in ${BASE_TARBALL}`);
    const t0 = Date.now();
    const result = await runCommand(DEBOOTSTRAP, ["--variant=minbase", "bookworm", rootfs, mirror], {
      timeoutMs: DEBOOTSTRAP_TIMEOUT_MS,
      killGroup: true,
    });
    const secs = Math.round((Date.now() - t0) / 1000);
    if (result.code !== 0) {
      const tail = `${result.stderr}\n${result.stdout}`.trimEnd().split("\n").slice(-15).join("\n");
      log(`debootstrap failed after ${secs} s; last lines of its output:\n${tail}`);
      throw cantFetch(
        result.timedOutAfterMs !== undefined
          ? `within ${DEBOOTSTRAP_TIMEOUT_MS / 1000} s (killed; last output: ${firstErrorLine(result)})`
          : `(exit ${result.code ?? result.signal} after ${secs} s, limit ${DEBOOTSTRAP_TIMEOUT_MS / 1000} s): ` +
            firstErrorLine(result),
      );
    }
    log(`debootstrap done in ${secs} s`);
    // Package lists and .debs are a third of the rootfs and nothing here uses apt (builds run with --network=none).
    for (const sub of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
      const dir = path.join(rootfs, sub);
      for (const f of fs.readdirSync(dir)) {
        if (f !== "partial" && f !== "lock") fs.rmSync(path.join(dir, f), { recursive: true, force: true });
      }
    }
    fs.mkdirSync(path.dirname(BASE_TARBALL), { recursive: true });
    // Written beside the target then renamed, so a concurrent or interrupted run never sees half a tarball.
    const partial = `${BASE_TARBALL}.${process.pid}.partial`;
    const t1 = Date.now();
    try {
      mustSucceed(
        await runCommand("tar", ["--numeric-owner", "-C", rootfs, "-czf", partial, "."], { timeoutMs: TAR_TIMEOUT_MS }),
        "tar of the debootstrap rootfs",
      );
    } catch (e) {
      fs.rmSync(partial, { force: true });
      throw e;
    }
    fs.renameSync(partial, BASE_TARBALL);
    const bytes = fs.statSync(BASE_TARBALL).size;
    log(`tar of the rootfs done in ${Math.round((Date.now() - t1) / 1000)} s (${bytes} bytes)`);
    return { file: BASE_TARBALL, source: "debootstrap" };
  } finally {
    const t2 = Date.now();
    await removeTree(work);
    log(`rootfs work dir removed in ${Math.round((Date.now() - t2) / 1000)} s`);
  }
}
