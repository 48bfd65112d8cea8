import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";

// The plan CLI as users and CI run it (npm run plan → node dist/scripts/plan.js, compiled by test/unit-setup.ts), in
// its own process: two runs, for what only a process shows (exit status, which stream gets what). Flags, files and
// messages: cli-main.test.ts, in-process.
function plan(args: string[]) {
  const r = spawnSync(process.execPath, ["dist/scripts/plan.js", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run plan", () => {
  it("exits 2 on invalid configuration with every problem on stderr, nothing on stdout and no stack trace", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-cli-"));
    const file = path.join(dir, "Pulumi.bad.yaml");
    fs.writeFileSync(
      file,
      [
        "config:",
        "  workbench-images:environment: dev",
        "  workbench-images:registy: {}",
        "  workbench-images:registry: { kind: ecr, region: us-east-1, accountId: 1234 }",
      ].join("\n"),
    );
    try {
      const r = plan(["--stack", "bad", "--config", file]);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        [
          'Invalid configuration for stack "bad" (2 problems):',
          '  - workbench-images:registy: is not a setting of this program. Did you mean "registry"? Remove it or correct the spelling. (got {})',
          "  - workbench-images:registry.accountId: must be the 12-digit AWS account id, in quotes. (got 1234)",
          "",
        ].join("\n"),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("writes the dev plan as JSON with a repository and an image per catalog entry", () => {
    const r = plan(["--stack", "dev", "--format", "json"]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { project: string; stack: string; resources: Array<{ type: string }> };
    expect([out.project, out.stack]).toEqual(["workbench-images", "dev"]);
    expect(out.resources.filter((x) => x.type === "aws:ecr/repository:Repository")).toHaveLength(13);
    expect(out.resources.filter((x) => x.type === "docker-build:index:Image")).toHaveLength(13);
  });
});
