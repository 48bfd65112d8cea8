/**
 * `npm run promote` end to end (issues #7, #16): the real script in a child process, exactly as npm runs it, on
 * dev's generated plan outputs (test/fixtures/promotion/dev-plan-outputs.json) and the mini dev stack's file. Two
 * runs only, for what only a process shows: exit status, which stream each line reaches, and the file on disk.
 * Every message and rule is tested in-process in promote-main.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROMOTION_FIXTURE, PROMOTION_SOURCE_STACK } from "../../scripts/lib/promotion-fixture";
import { ROOT } from "../support/harness";
import { runCommand } from "../support/proc";

const PROD = fs.readFileSync(path.join(ROOT, "test/fixtures/promotion/Pulumi.prod.yaml"), "utf8");
const PLAN_TEXT = fs.readFileSync(path.join(ROOT, PROMOTION_FIXTURE), "utf8");
const PLAN = JSON.parse(PLAN_TEXT) as { validatedImages: Record<string, { imageRef: string; digest: string }> };
const USER_ID = "user-h-baker-at-hertie-school-lan-thesis";
const digest = (id: string) => PLAN.validatedImages[id]!.digest;
const hex = (c: string) => c.repeat(64);

// `npm run promote` is `node dist/scripts/promote.js` (compiled by test/unit-setup.ts); run directly, without npm's
// start-up.
const PROMOTE = path.join(ROOT, "dist/scripts/promote.js");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function stackFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-promote-cli-"));
  dirs.push(dir);
  const file = path.join(dir, "Pulumi.prod.yaml");
  fs.writeFileSync(file, PROD);
  return file;
}

async function promote(args: string[]) {
  const r = await runCommand(process.execPath, [PROMOTE, ...args], { cwd: ROOT, timeoutMs: 60_000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

const FROM_DEV = ["--from", "dev", "--to", "prod", "--from-stack-file", PROMOTION_SOURCE_STACK];

describe("npm run promote (a process)", () => {
  it("exit 0: promotes dev's real outputs into the file, the summary on stdout only", async () => {
    const file = stackFile();
    const r = await promote([...FROM_DEV, "--from-file", PROMOTION_FIXTURE, "--stack-file", file]);
    expect(r).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        `promote: promoted 3 image(s) from dev into ${file}:`,
        `  app-cpu: sha256:${hex("1")} → ${digest("app-cpu")}`,
        `  app-gpu: sha256:${hex("2")} → ${digest("app-gpu")}`,
        `  ${USER_ID}: (new) → ${digest(USER_ID)}`,
        `promote: next, open a pull request with ${file}; after review and merge, \`pulumi up --stack prod\` copies these digests.`,
        "",
      ].join("\n"),
    });
    // The exact text is promote-main.test.ts's; here, that the process wrote it and left nothing beside it.
    const written = fs.readFileSync(file, "utf8");
    expect(written).toContain(`        source: ${PLAN.validatedImages[USER_ID]!.imageRef}\n        validatedPools: []\n`);
    expect(written.split("\n").filter((l) => l.includes("#"))).toEqual(PROD.split("\n").filter((l) => l.includes("#")));
    expect(fs.readdirSync(path.dirname(file))).toEqual(["Pulumi.prod.yaml"]);
  });

  it("exit 2: a refusal goes to stderr only, every problem at once, and the file stays byte-identical", async () => {
    const file = stackFile();
    const outputs = path.join(path.dirname(file), "outputs.json");
    const json = JSON.parse(PLAN_TEXT) as { validatedImages: Record<string, Record<string, unknown>> };
    json.validatedImages["app-cpu"]!["imageRef"] = `docker.io/attacker/evil@${digest("app-cpu")}`;
    json.validatedImages["app-gpu"]!["validatedPools"] = [];
    fs.writeFileSync(outputs, JSON.stringify(json));
    const r = await promote([...FROM_DEV, "--from-file", outputs, "--stack-file", file]);
    const retake = "Promote what `pulumi stack output --json --stack dev` prints, unedited.";
    const dev = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
    expect(r).toEqual({
      status: 2,
      stdout: "",
      stderr: [
        "promote: refused, nothing written (2 problems):",
        `  - ${outputs}: validatedImages.app-cpu.imageRef: is not an image dev pushed: its registry is docker.io, not dev's registry ${dev}. Only digests in dev's own repositories (${dev}/wb/app-cpu, from registry.* in ${PROMOTION_SOURCE_STACK}) can be promoted. ${retake} (got ${JSON.stringify(`docker.io/attacker/evil@${digest("app-cpu")}`).slice(0, 79)}…)`,
        `  - ${outputs}: validatedImages.app-gpu.validatedPools: is empty, but app-gpu is a GPU image (gpu: true in the catalog): dev validated it on no GPU pool, and a GPU image is promoted only with the pools it was validated on. Let its GPU validation pass on dev's pools (h100), then promote again. (got [])`,
        "",
      ].join("\n"),
    });
    expect(fs.readFileSync(file, "utf8")).toBe(PROD);
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(["Pulumi.prod.yaml", "outputs.json"]);
  });
});
