#!/usr/bin/env node
"use strict";
/**
 * What the CLIs' npm scripts run: `node scripts/run-cli.cjs <cli> [flags]` brings dist/ up to date
 * (scripts/build-dist.cjs) and then runs dist/scripts/<cli>.js as the main module of this same process, exactly as
 * `node dist/scripts/<cli>.js [flags]` would. One Node start-up instead of two (issue #16: ~50 ms of a dev plan).
 */
const fs = require("node:fs");
const path = require("node:path");
const Module = require("node:module");
const { build } = require("./build-dist.cjs");

const CLIS = ["bench", "fixtures", "pin-bases", "pin-chart-images", "plan", "plan-diff", "promote"];

const name = process.argv[2];
if (!CLIS.includes(name)) {
  process.stderr.write(`run-cli: unknown CLI ${JSON.stringify(name ?? "")}; expected one of ${CLIS.join(", ")}.\n`);
  process.exit(2);
}
if (!build()) process.exit(1);
const entry = path.join(__dirname, "..", "dist", "scripts", `${name}.js`);
if (!fs.existsSync(entry)) {
  process.stderr.write(`run-cli: ${path.relative(process.cwd(), entry)} was not built; run \`npm run build\`.\n`);
  process.exit(1);
}
// argv as `node dist/scripts/<cli>.js [flags]` gives it; runMain loads it as the main module (require.main), as
// Node does for the file named on its command line.
process.argv.splice(1, 2, entry);
Module.runMain();
