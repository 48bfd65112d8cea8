/**
 * Every shell script shipped in an image (images/**\/*.sh) passes ShellCheck with no findings at all, including
 * info-level ones: these scripts run as PID 1 or as root during builds, where a quoting slip is a bug, not style.
 * ShellCheck is Debian's package, which .ci/run installs; without it this test fails rather than skips.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/paths";

const IMAGES = path.resolve(PROJECT_ROOT, "images");
const SHELLCHECK = "/usr/bin/shellcheck";

function shellScripts(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...shellScripts(full));
    else if (entry.isFile() && entry.name.endsWith(".sh")) out.push(full);
  }
  return out.sort();
}

const scripts = shellScripts(IMAGES);
/** Folders under images/ owned by other parts of the project: their scripts are checked, not enumerated here. */
const OTHERS = ["checks/", "hub/"];
const ownScripts = scripts.filter((s) => !OTHERS.some((o) => path.relative(IMAGES, s).startsWith(o)));

describe("shell scripts under images/", () => {
  it("has ShellCheck installed", () => {
    if (!fs.existsSync(SHELLCHECK)) {
      throw new Error(`${SHELLCHECK} is missing: install Debian's shellcheck package (.ci/run installs it), then rerun.`);
    }
  });

  it("are the scripts the images ship", () => {
    expect(ownScripts.map((s) => path.relative(IMAGES, s))).toEqual(["per-user/setup-user.sh", "universal/entrypoint.sh"]);
  });

  for (const script of scripts) {
    const rel = path.relative(path.dirname(IMAGES), script);
    it(`${rel} passes ShellCheck with no findings`, () => {
      // -x follows sourced files; --norc keeps a developer's ~/.shellcheckrc from relaxing the check.
      const res = spawnSync(SHELLCHECK, ["--norc", "-x", "--format=gcc", script], { encoding: "utf8" });
      if (res.error) throw new Error(`could not run ${SHELLCHECK} (.ci/run installs it): ${res.error.message}`);
      expect({ status: res.status, output: `${res.stdout}${res.stderr}` }).toEqual({ status: 0, output: "" });
    });
  }

  for (const script of ownScripts) {
    const rel = path.relative(path.dirname(IMAGES), script);
    // Both run on bases without bash (Debian minbase has dash as /bin/sh; the wrapper is PID 1 in any base).
    it(`${rel} is executable and declares a POSIX sh interpreter`, () => {
      expect(fs.readFileSync(script, "utf8").split("\n")[0]).toBe("#!/bin/sh");
      expect(fs.statSync(script).mode & 0o111).toBe(0o111);
    });
  }
});
