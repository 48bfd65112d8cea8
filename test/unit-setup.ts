/**
 * vitest globalSetup of the `unit` project: compiles the CLIs to dist/ once before any test, as every CLI's npm script
 * does first (scripts/build-dist.cjs: a stat per source file when nothing changed). The few end-to-end CLI tests then
 * run in their own process exactly what `npm run <cli>` runs, `node dist/scripts/<cli>.js` (issue #16).
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";

export default function setup(): void {
  execFileSync(process.execPath, [path.resolve(__dirname, "..", "scripts", "build-dist.cjs")], { stdio: "inherit", timeout: 300_000 });
}
