/**
 * `npm run promote` end to end (issue #7): the real script in a child process against a copy of the fixture prod
 * stack file. Success rewrites the file exactly as expected, comments kept; any refusal exits 2 with every problem on
 * stderr and leaves the file byte-identical, with no temporary file behind.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";
import { runCommand } from "../support/proc";

const FIXTURES = path.join(ROOT, "test/fixtures/promotion");
const PROD = fs.readFileSync(path.join(FIXTURES, "Pulumi.prod.yaml"), "utf8");
const PROD_EXPECTED = fs.readFileSync(path.join(FIXTURES, "Pulumi.prod.expected.yaml"), "utf8");
const OUTPUTS = "test/fixtures/promotion/dev-outputs.json";
const hex = (c: string) => c.repeat(64);
const USER_ID = "user-h-baker-at-hertie-school-lan-thesis";

// `npm run promote` is `tsx scripts/promote.ts`; the tsx binary directly saves npx's second of start-up per run.
const TSX = path.join(ROOT, "node_modules/.bin/tsx");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Each test works on its own copy of the fixture in its own directory. */
function workspace() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-promote-cli-"));
  dirs.push(dir);
  const stackFile = path.join(dir, "Pulumi.prod.yaml");
  fs.writeFileSync(stackFile, PROD);
  return {
    dir,
    stackFile,
    writeOutputs(validatedImages: unknown): string {
      const file = path.join(dir, "outputs.json");
      fs.writeFileSync(file, JSON.stringify({ validatedImages }));
      return file;
    },
    /** The target is unchanged and nothing else was left in its directory (no temporary file). */
    expectUntouched(extra: string[] = []): void {
      expect(fs.readFileSync(stackFile, "utf8")).toBe(PROD);
      expect(fs.readdirSync(dir).sort()).toEqual(["Pulumi.prod.yaml", ...extra].sort());
    },
  };
}

async function promote(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = await runCommand(TSX, ["scripts/promote.ts", ...args], { cwd: ROOT, env, timeoutMs: 60_000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run promote", () => {
  it("writes dev's validated digests into the stack file, comments and order kept, and says what changed", async () => {
    const { dir, stackFile } = workspace();
    const r = await promote(["--from", "dev", "--to", "prod", "--from-file", OUTPUTS, "--stack-file", stackFile]);
    expect(r).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        `promote: promoted 2 image(s) from dev into ${stackFile}:`,
        `  app-cpu: sha256:${hex("1")} → sha256:${hex("3")}`,
        `  ${USER_ID}: (new) → sha256:${hex("4")}`,
        `promote: next, open a pull request with ${stackFile}; after review and merge, \`pulumi up --stack prod\` copies these digests.`,
        "",
      ].join("\n"),
    });
    expect(fs.readFileSync(stackFile, "utf8")).toBe(PROD_EXPECTED);
    expect(fs.readdirSync(dir)).toEqual(["Pulumi.prod.yaml"]);

    const again = await promote(["--from", "dev", "--to", "prod", "--from-file", OUTPUTS, "--stack-file", stackFile]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain("promote: the stack file already holds these digests; nothing to write.\n");
    expect(fs.readFileSync(stackFile, "utf8")).toBe(PROD_EXPECTED);
  });

  it("--dry-run shows what --variants would promote and writes nothing", async () => {
    const { stackFile, expectUntouched } = workspace();
    const dry = await promote(["--from", "dev", "--to", "prod", "--variants", "app-cpu", "--from-file", OUTPUTS, "--stack-file", stackFile, "--dry-run"]);
    expect(dry).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        `promote: would promote 1 image(s) from dev into ${stackFile}:`,
        `  app-cpu: sha256:${hex("1")} → sha256:${hex("3")}`,
        "promote: --dry-run, nothing written.",
        "",
      ].join("\n"),
    });
    expectUntouched();
  });

  it("refuses a variant dev did not validate: exit 2, the variant named, the file byte-identical", async () => {
    const { stackFile, expectUntouched } = workspace();
    const r = await promote(["--from", "dev", "--to", "prod", "--variants", "app-cpu,app-gpu", "--from-file", OUTPUTS, "--stack-file", stackFile]);
    expect(r).toEqual({
      status: 2,
      stdout: "",
      stderr: [
        "promote: refused, nothing written (1 problem):",
        `  - ${OUTPUTS}: validatedImages.app-gpu: is missing: dev did not validate "app-gpu", so it cannot be promoted (dev validated: app-cpu, ${USER_ID}). Validate it on dev first (scan, signing and GPU validation must pass), or leave it out of --variants.`,
        "",
      ].join("\n"),
    });
    expectUntouched();
  });

  it("refuses an unsigned image and a malformed digest in one message", async () => {
    const { stackFile, writeOutputs, expectUntouched } = workspace();
    const ref = (d: string) => `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-cpu@${d}`;
    const outputs = writeOutputs({
      "app-cpu": { imageRef: ref(`sha256:${hex("3")}`), digest: `sha256:${hex("3")}`, validatedPools: [], scanned: true, signed: false },
      "app-gpu": { imageRef: ref(`sha256:${hex("5")}`), digest: "sha256:5555", validatedPools: ["h100"], scanned: true, signed: true },
    });
    const r = await promote(["--from", "dev", "--to", "prod", "--from-file", outputs, "--stack-file", stackFile]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      [
        "promote: refused, nothing written (2 problems):",
        `  - ${outputs}: validatedImages.app-cpu.signed: is false: the image is not signed. Only signed images can be promoted; sign it on dev (signing.mode: cosign-kms). (got false)`,
        `  - ${outputs}: validatedImages.app-gpu.digest: is not a digest "sha256:" followed by 64 lowercase hex characters. (got "sha256:5555")`,
        "",
      ].join("\n"),
    );
    expectUntouched(["outputs.json"]);
  });

  it("refuses a validated image the prod stack does not know (config/'s own check), writing nothing", async () => {
    const { stackFile, writeOutputs, expectUntouched } = workspace();
    const d = `sha256:${hex("6")}`;
    const outputs = writeOutputs({
      "app-tpu": { imageRef: `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-tpu@${d}`, digest: d, validatedPools: [], scanned: true, signed: true },
    });
    const r = await promote(["--from", "dev", "--to", "prod", "--from-file", outputs, "--stack-file", stackFile]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      [
        "promote: refused, nothing written (1 problem):",
        `  - ${stackFile}: workbench-images:promotion.images.app-tpu: names no catalog variant or user image. Did you mean "app-cpu"? Re-run \`npm run promote\`. (got "app-tpu")`,
        "",
      ].join("\n"),
    );
    expectUntouched(["outputs.json"]);
  });

  it("without --from-file needs the Pulumi CLI, and says so", async () => {
    const { dir, stackFile, expectUntouched } = workspace();
    // A PATH holding only node: wherever this runs, no pulumi is found on it.
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, "node"));
    const r = await promote(["--from", "dev", "--to", "prod", "--stack-file", stackFile], { ...process.env, PATH: bin });
    expect(r).toEqual({
      status: 2,
      stdout: "",
      stderr:
        "promote: refused, nothing written (1 problem):\n  - pulumi: was not found on PATH: install the Pulumi CLI or pass --from-file with a saved `pulumi stack output --json`.\n",
    });
    expectUntouched(["bin"]);
  });

  it("without --from-file reads `pulumi stack output --json` of the --from stack", async () => {
    const { dir, stackFile } = workspace();
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, "node"));
    // A stand-in for the Pulumi CLI: records its argv and prints the saved outputs.
    fs.writeFileSync(
      path.join(bin, "pulumi"),
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${JSON.stringify(path.join(dir, "argv.txt"))}\ncat ${JSON.stringify(path.join(FIXTURES, "dev-outputs.json"))}\n`,
      { mode: 0o755 },
    );
    const r = await promote(["--from", "dev", "--to", "prod", "--stack-file", stackFile], { ...process.env, PATH: `${bin}:/usr/bin:/bin` });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    expect(fs.readFileSync(path.join(dir, "argv.txt"), "utf8")).toBe("stack\noutput\n--json\n--show-secrets=false\n--stack\ndev\n");
    expect(fs.readFileSync(stackFile, "utf8")).toBe(PROD_EXPECTED);
  });

  it("rejects bad flags with the usage line", async () => {
    const { dir } = workspace();
    const r = await promote(["--from", "dev", "--to", "dev", "--variants", " "]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      [
        "promote: bad flags, nothing written (2 problems):",
        '  - --to: names the source stack. Promotion copies from one stack to another: --from dev --to prod. (got "dev")',
        "  - --variants: is empty. List variant names separated by commas, or leave the flag out to promote every validated image.",
        "usage: npm run promote -- --from <stack> --to <stack> [--variants a,b] [--from-file outputs.json] [--stack-file Pulumi.<to>.yaml] [--dry-run]",
        "",
      ].join("\n"),
    );
    const missing = await promote(["--from", "dev", "--to", "prod", "--from-file", OUTPUTS, "--stack-file", path.join(dir, "Pulumi.nope.yaml")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`${path.join(dir, "Pulumi.nope.yaml")}: does not exist. Create the prod stack first`);
  });
});
