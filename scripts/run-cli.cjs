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
const v8 = require("node:v8");
const { build } = require("./build-dist.cjs");

// A CLI run is short: V8 sends a function to its optimizing compiler (TurboFan, on background threads that compete for
// the same cores) after a small "interrupt budget" of executed bytecode, and in a ~1 s plan that work costs more than
// it returns. Fifteen times the budget keeps a short plan in the interpreter and baseline tiers and still optimizes
// what stays hot in a long one (measured: dev plan 1.1 s → 0.7 s of CPU; a 300-variant plan unchanged). Set before the
// CLI's modules are compiled; only on the V8 releases of Node 20 to 24 (V8 11 to 13), which have this flag.
const v8Major = Number(process.versions.v8.split(".")[0]);
if (v8Major >= 11 && v8Major <= 13) v8.setFlagsFromString("--interrupt-budget=1000000");

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
