import * as fs from "node:fs";
import * as path from "node:path";
import { PROMOTION_FIXTURE, promotionFixtureText } from "./lib/promotion-fixture";

/** npm run fixtures: regenerates the test fixtures that are derived from the program (no flags). */
const root = path.resolve(__dirname, "..");

async function main(): Promise<void> {
  if (process.argv.length > 2) {
    process.stderr.write(`fixtures: takes no arguments, got ${JSON.stringify(process.argv.slice(2))}.\nusage: npm run fixtures\n`);
    process.exit(2);
  }
  fs.writeFileSync(path.join(root, PROMOTION_FIXTURE), await promotionFixtureText(root, require(path.join(root, "index.ts")) as () => unknown));
  process.stdout.write(`fixtures: wrote ${PROMOTION_FIXTURE}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`fixtures: internal error: ${(e as Error).message ?? String(e)}\n`);
  process.exit(1);
});
