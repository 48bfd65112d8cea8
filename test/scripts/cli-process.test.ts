/**
 * plan:diff and bench as npm runs them (node dist/scripts/<cli>.js in a child process, compiled by test/unit-setup.ts):
 * one run each, for what only a process shows (exit status 2, the one line on stderr, nothing on stdout, no stack
 * trace), and the launcher npm scripts use (scripts/run-cli.cjs). Everything else is in-process in cli-main.test.ts
 * (issue #16).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";
import { runCommand } from "../support/proc";

const DIST_SCRIPTS = path.join(ROOT, "dist", "scripts");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function cli(script: string, args: string[], cwd = ROOT) {
  const r = await runCommand(process.execPath, [path.join(DIST_SCRIPTS, script.replace(/\.ts$/, ".js")), ...args], { cwd, timeoutMs: 60_000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

describe("CLIs in their own process", () => {
  it("plan:diff on a malformed plan exits 2 with one line", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-cli-proc-"));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, "base.json"), '{"project": "workbench-images", "resources": [');
    fs.writeFileSync(path.join(dir, "head.json"), '{"project": "workbench-images", "stack": "dev", "resources": [], "outputs": {}}');
    expect(await cli("plan-diff.ts", ["base.json", "head.json"], dir)).toEqual({
      status: 2,
      stdout: "",
      stderr: "plan:diff: base.json: is not valid JSON (line 1, column 47). Write it with `npm run plan -- --stack <name> --format json --out <file>`.\n",
    });
  });

  it("bench with an unknown flag exits 2 with one line, before measuring anything", async () => {
    expect(await cli("bench.ts", ["--variants-max", "10"])).toEqual({
      status: 2,
      stdout: "",
      stderr: 'bench: --variants-max: is not an option of bench. Usage: npm run bench (no options; it prints a table of figures).\n',
    });
  });

  it("npm's launcher runs the named CLI as the main module, with the flags after the name", async () => {
    const r = await runCommand(process.execPath, [path.join(ROOT, "scripts", "run-cli.cjs"), "plan-diff", "--bogus"], { cwd: ROOT, timeoutMs: 60_000 });
    expect({ status: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 2,
      stdout: "",
      stderr:
        "plan:diff: --bogus: is not an option of plan:diff. plan:diff takes no options. Usage: npm run plan:diff -- <base.json> <head.json> (two files written by `npm run plan -- --format json --out <file>`).\n" +
        "plan:diff: arguments: needs two plan files, base then head; got 0. Usage: npm run plan:diff -- <base.json> <head.json> (two files written by `npm run plan -- --format json --out <file>`).\n",
    });
  });

  it("npm's launcher refuses a CLI it does not know, with exit 2 and the list", async () => {
    const r = await runCommand(process.execPath, [path.join(ROOT, "scripts", "run-cli.cjs"), "deploy"], { cwd: ROOT, timeoutMs: 60_000 });
    expect({ status: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 2,
      stdout: "",
      stderr: 'run-cli: unknown CLI "deploy"; expected one of bench, fixtures, pin-bases, pin-chart-images, plan, plan-diff, promote.\n',
    });
  });
});
