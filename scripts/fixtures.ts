import * as fs from "node:fs";
import * as path from "node:path";
import { PROMOTION_FIXTURE, promotionFixtureText } from "./lib/promotion-fixture";
import { type CliIO, parseFlags, runCli, runAsScript } from "./lib/cli";
import { PROJECT_ROOT } from "../lib/paths";

/** npm run fixtures: regenerates the test fixtures that are derived from the program (no flags). */
const CLI = "fixtures";
const HELP = "Usage: npm run fixtures (no options or arguments).";
const root = PROJECT_ROOT;

export interface FixturesIO extends CliIO {
  /** index.ts's program. @default required from the project root */
  program?: () => unknown;
}

/** The CLI as a function (issue #16). Exit 0: fixtures written; 2: any argument (it takes none), nothing written. */
export function main(argv: readonly string[], io: FixturesIO): Promise<number> {
  return runCli(CLI, io, async () => {
    parseFlags(CLI, argv, {}, { help: HELP });
    const program = io.program ?? (require("../index") as () => unknown);
    fs.writeFileSync(path.join(root, PROMOTION_FIXTURE), await promotionFixtureText(root, program));
    io.stdout(`fixtures: wrote ${PROMOTION_FIXTURE}\n`);
    return 0;
  });
}

if (typeof module !== "undefined" && require.main === module) runAsScript(CLI, main);
