/**
 * The promotion contract end to end (issue #10): the source outputs `npm run promote` is tested on are generated
 * from the mini dev stack's offline plan (scripts/lib/promotion-fixture.ts), so they are what the program exports,
 * per-user images included, and the promote CLI promotes them.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseStackOutputs } from "../../config";
import { PROMOTION_FIXTURE, promotionFixtureText } from "../../scripts/lib/promotion-fixture";
import { loadProgram, ROOT } from "../support/harness";
import { runCommand } from "../support/proc";

const USER_ID = "user-h-baker-at-hertie-school-lan-thesis";
const TSX = path.join(ROOT, "node_modules/.bin/tsx");
const PROD = fs.readFileSync(path.join(ROOT, "test/fixtures/promotion/Pulumi.prod.yaml"), "utf8");
const committed = fs.readFileSync(path.join(ROOT, PROMOTION_FIXTURE), "utf8");
const outputs = JSON.parse(committed) as { validatedImages: Record<string, { digest: string; imageRef: string; validatedPools: string[] }> };
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function stackFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-promote-plan-"));
  dirs.push(dir);
  const file = path.join(dir, "Pulumi.prod.yaml");
  fs.writeFileSync(file, text);
  return file;
}

async function promote(file: string) {
  const r = await runCommand(TSX, ["scripts/promote.ts", "--from", "dev", "--to", "prod", "--from-file", PROMOTION_FIXTURE, "--stack-file", file], {
    cwd: ROOT,
    timeoutMs: 60_000,
  });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

describe("the promotion source fixture", () => {
  it("is exactly what the mini dev stack's offline plan exports (run `npm run fixtures` after changing the program)", async () => {
    expect(await promotionFixtureText(ROOT, await loadProgram())).toBe(committed);
  });

  it("lists every validated image, the per-user image included, with the gates' evidence", () => {
    const parsed = parseStackOutputs(outputs, PROMOTION_FIXTURE, "dev");
    expect(parsed.problems).toEqual([]);
    expect(parsed.entryProblems).toEqual({});
    expect(Object.keys(parsed.images)).toEqual(["app-cpu", "app-gpu", USER_ID]);
    expect(parsed.images[USER_ID]).toEqual({
      imageRef: `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb-1722830498/thesis@${outputs.validatedImages[USER_ID]!.digest}`,
      digest: outputs.validatedImages[USER_ID]!.digest,
      validatedPools: [],
      scanned: true,
      signed: true,
    });
    expect(parsed.images["app-gpu"]!.validatedPools).toEqual(["h100"]);
  });
});

describe("npm run promote --from-file <dev plan outputs>", () => {
  it("promotes the per-user image into a prod stack that has its user", async () => {
    const file = stackFile(PROD);
    const r = await promote(file);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
    const d = (id: string) => outputs.validatedImages[id]!.digest;
    expect(r.stdout.split("\n").slice(0, 4)).toEqual([
      `promote: promoted 3 image(s) from dev into ${file}:`,
      `  app-cpu: sha256:${"1".repeat(64)} → ${d("app-cpu")}`,
      `  app-gpu: sha256:${"2".repeat(64)} → ${d("app-gpu")}`,
      `  ${USER_ID}: (new) → ${d(USER_ID)}`,
    ]);
    expect(fs.readFileSync(file, "utf8")).toContain(
      [
        `      ${USER_ID}:`,
        `        digest: ${d(USER_ID)}`,
        `        source: ${outputs.validatedImages[USER_ID]!.imageRef}`,
        "        validatedPools: []",
      ].join("\n"),
    );
  });

  it("refuses, exit 2 and nothing written, a per-user image the prod stack has no user for", async () => {
    const noUsers = PROD.replace(/ {2}workbench-images:users:\n(?: {4}.*\n)+/, "");
    expect(noUsers).not.toContain("users:");
    const file = stackFile(noUsers);
    const r = await promote(file);
    expect(r).toEqual({
      status: 2,
      stdout: "",
      stderr:
        "promote: refused, nothing written (1 problem):\n" +
        `  - ${file}: workbench-images:promotion.images.${USER_ID}: names no catalog variant or user image. Re-run \`npm run promote\`. (got "${USER_ID}")\n`,
    });
    expect(fs.readFileSync(file, "utf8")).toBe(noUsers);
  });
});
