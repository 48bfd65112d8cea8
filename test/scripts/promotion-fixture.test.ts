/**
 * The promotion contract end to end (issue #10): the source outputs `npm run promote` is tested on are generated
 * from the mini dev stack's offline plan (scripts/lib/promotion-fixture.ts), so they are what the program exports,
 * per-user images included. The promote CLI's tests run on them (test/scripts/promote-main.test.ts, promote-cli.test.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseStackOutputs } from "../../config";
import { PROMOTION_FIXTURE, promotionFixtureText } from "../../scripts/lib/promotion-fixture";
import { loadProgram, ROOT } from "../support/harness";

const USER_ID = "user-h-baker-at-hertie-school-lan-thesis";
const committed = fs.readFileSync(path.join(ROOT, PROMOTION_FIXTURE), "utf8");
const outputs = JSON.parse(committed) as { validatedImages: Record<string, { digest: string; imageRef: string; validatedPools: string[] }> };



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
