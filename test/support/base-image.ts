/**
 * The local base image the container tests build FROM: a Debian bookworm minbase rootfs made by debootstrap
 * (GUIDE §2: ~25 s from Debian's mirror), cached as a tarball under the gitignored `.ci-work/` so reruns skip the
 * download. minbase ships `passwd` (useradd/groupadd), which images/per-user/Dockerfile needs.
 * If debootstrap fails (no mirror), a busybox-static rootfs stands in and a warning says so; it has no
 * useradd, so the per-user tests then fail with that reason.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mustSucceed, removeTree, runCommand } from "./proc";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
/** Fixed cache key: bump the name to force a fresh debootstrap. */
export const BASE_TARBALL = path.join(REPO_ROOT, ".ci-work", "base-bookworm-minbase.tar.gz");
export const BASE_IMAGE = "workbench-test/base:bookworm";

export type BaseSource = "debootstrap" | "debootstrap-cached" | "busybox";

export interface BaseTarball {
  file: string;
  source: BaseSource;
  /** Remove after import (the busybox fallback is never cached, so the next run retries debootstrap). */
  temporary: boolean;
}

const DEBOOTSTRAP = "/usr/sbin/debootstrap";
const BUSYBOX = "/bin/busybox";

/** Returns the cached tarball, or makes one with debootstrap, or (failing that) a temporary busybox one. */
export async function ensureBaseTarball(log: (line: string) => void): Promise<BaseTarball> {
  if (fs.existsSync(BASE_TARBALL) && fs.statSync(BASE_TARBALL).size > 0) {
    return { file: BASE_TARBALL, source: "debootstrap-cached", temporary: false };
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "wb-rootfs-"));
  try {
    const rootfs = path.join(work, "rootfs");
    const mirror = process.env.WORKBENCH_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
    log(`debootstrap --variant=minbase bookworm (${mirror}); cached afterwards in ${BASE_TARBALL}`);
    try {
      mustSucceed(
        await runCommand(DEBOOTSTRAP, ["--variant=minbase", "bookworm", rootfs, mirror], { timeoutMs: 600_000 }),
        "debootstrap --variant=minbase bookworm",
      );
    } catch (e) {
      log(`WARNING: ${(e as Error).message.split("\n")[0]}; falling back to a busybox-static rootfs ` +
        "(no useradd: the per-user image tests will fail)");
      return await busyboxTarball(work);
    }
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
    mustSucceed(
      await runCommand("tar", ["--numeric-owner", "-C", rootfs, "-czf", partial, "."], { timeoutMs: 300_000 }),
      "tar of the debootstrap rootfs",
    );
    fs.renameSync(partial, BASE_TARBALL);
    return { file: BASE_TARBALL, source: "debootstrap", temporary: false };
  } finally {
    await removeTree(work);
  }
}

async function busyboxTarball(work: string): Promise<BaseTarball> {
  const rootfs = path.join(work, "busybox-rootfs");
  for (const d of ["bin", "etc", "tmp", "root", "home"]) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(rootfs, "bin", "busybox"));
  fs.chmodSync(path.join(rootfs, "bin", "busybox"), 0o755);
  const list = mustSucceed(await runCommand(BUSYBOX, ["--list"]), "busybox --list").stdout.split("\n");
  for (const applet of list.map((a) => a.trim()).filter((a) => a !== "" && a !== "busybox")) {
    fs.symlinkSync("busybox", path.join(rootfs, "bin", applet));
  }
  fs.writeFileSync(path.join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  fs.writeFileSync(path.join(rootfs, "etc", "group"), "root:x:0:\n");
  const file = path.join(os.tmpdir(), `wb-busybox-base-${process.pid}.tar.gz`);
  mustSucceed(await runCommand("tar", ["--numeric-owner", "-C", rootfs, "-czf", file, "."]), "tar of busybox rootfs");
  return { file, source: "busybox", temporary: true };
}
