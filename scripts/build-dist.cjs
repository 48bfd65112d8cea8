#!/usr/bin/env node
"use strict";
/**
 * Compiles the program and the CLIs to dist/ (issue #16): `npm run plan` and the other CLIs run compiled JavaScript,
 * which starts in about half the time tsx takes (no transpiling on every run). Every npm script of a CLI runs this
 * first; it is cheap when nothing changed (a stat per source file, no TypeScript loaded) and recompiles only the
 * files whose source is newer than their output, so a fresh clone, a `git pull` or an edit needs no separate step.
 *
 * It transpiles (TypeScript's transpileModule, the options of tsconfig.json): types are `npm run typecheck`'s and
 * `npm test`'s job, so a type error never stops a plan, as it never did under tsx. JSON files a module requires
 * (images/checks/datasheets.json) are copied beside it. Outputs whose source is gone are removed.
 *
 * It also precompiles the JupyterHub chart's values validator (see precompileValidator), so that a plan does not
 * load Ajv and compile the chart's 47 KB schema on every run.
 *
 * Quiet on success; on failure one line on stderr and exit 1.
 */
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const out = path.join(root, "dist");
// What the CLIs load: the program and everything under these folders (tests and policy/ are not part of it).
const SOURCES = ["index.ts", "config", "components", "lib", "scripts"];
// The module that generates the chart values validator, and where: PRECOMPILED_VALIDATOR_FILE beside its output, the
// name repeated here so that the up-to-date check loads nothing (hub-values-standalone.test.ts checks they agree).
const HUB_VALUES = path.join("components", "hub", "hub-values.ts");
const VALIDATOR = path.join(out, "components", "hub", "values-schema.validate.js");
// What the validator is generated from besides the compiled hub-values module: the vendored chart schemas, and the
// installed Ajv and ajv-formats (package-lock.json).
const VALIDATOR_INPUTS = ["schemas", "package-lock.json"];

function walk(rel, files) {
  const abs = path.join(root, rel);
  let st;
  try {
    st = fs.statSync(abs);
  } catch {
    return;
  }
  if (st.isDirectory()) {
    for (const name of fs.readdirSync(abs)) walk(path.join(rel, name), files);
  } else if (rel.endsWith(".ts") && !rel.endsWith(".d.ts")) {
    files.push({ rel, mtimeMs: st.mtimeMs });
  }
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

function jsFor(rel) {
  return path.join(out, rel.replace(/\.ts$/, ".js"));
}

function main() {
  const files = [];
  for (const s of SOURCES) walk(s, files);
  // tsconfig.json changes how every file is emitted.
  const configTime = mtime(path.join(root, "tsconfig.json"));
  const stale = files.filter((f) => {
    const t = mtime(jsFor(f.rel));
    return t < f.mtimeMs || t < configTime;
  });
  const withValidator = files.some((f) => f.rel === HUB_VALUES);
  const expected = new Set(files.map((f) => jsFor(f.rel)));
  if (withValidator) expected.add(VALIDATOR);
  removeOrphans(out, expected);
  if (stale.length > 0) transpile(stale);
  if (withValidator && validatorStale()) precompileValidator();
}

function transpile(stale) {
  const ts = require("typescript");
  const configPath = path.join(root, "tsconfig.json");
  const read = ts.readConfigFile(configPath, ts.sys.readFile);
  if (read.error) throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(read.error.messageText, " ")}`);
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root);
  const options = { ...parsed.options, noEmit: false, declaration: false, sourceMap: false, inlineSourceMap: false, outDir: undefined, rootDir: undefined };
  for (const f of stale) {
    const source = fs.readFileSync(path.join(root, f.rel), "utf8");
    const result = ts.transpileModule(source, { compilerOptions: options, fileName: f.rel, reportDiagnostics: true });
    const syntax = (result.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (syntax.length > 0) throw new Error(`${f.rel}: ${ts.flattenDiagnosticMessageText(syntax[0].messageText, " ")}`);
    const target = jsFor(f.rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // JSON a module requires is copied to the same place relative to its output.
    for (const m of result.outputText.matchAll(/require\("(\.{1,2}\/[^"]+\.json)"\)/g)) {
      const from = path.resolve(path.dirname(path.join(root, f.rel)), m[1]);
      const to = path.resolve(path.dirname(target), m[1]);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(from, to);
    }
    // Written to a temporary name and renamed, so a concurrent run never loads half a file.
    const tmp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, result.outputText);
    fs.renameSync(tmp, target);
  }
}

/** The newest modification time of a file or of any file under a folder; -1 when there is none. */
function newest(abs) {
  let st;
  try {
    st = fs.statSync(abs);
  } catch {
    return -1;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(-1, ...fs.readdirSync(abs).map((name) => newest(path.join(abs, name))));
}

/** Whether the precompiled validator is missing or older than the compiled hub-values module or another input. */
function validatorStale() {
  const t = mtime(VALIDATOR);
  return mtime(jsFor(HUB_VALUES)) > t || VALIDATOR_INPUTS.some((rel) => newest(path.join(root, rel)) > t);
}

/**
 * Generated by the compiled hub-values module itself (writePrecompiledValidator), so the schema's tightening and
 * Ajv's options have one definition, TypeScript's. That loads the module's imports (the Pulumi SDK among them), about
 * a second, only when an input changed. A failure does not fail the build: without a matching precompiled validator
 * hub-values compiles the schema at run time as before, and a broken schema is reported there, in context.
 */
function precompileValidator() {
  try {
    require(jsFor(HUB_VALUES)).writePrecompiledValidator(VALIDATOR);
  } catch (e) {
    fs.rmSync(VALIDATOR, { force: true });
    process.stderr.write(`build: warning: cannot precompile the chart values validator (${firstLine(e)}); plans compile it at run time.\n`);
  }
}

function firstLine(e) {
  return String(e && e.message ? e.message : e).split("\n")[0];
}

/** Removes compiled files whose source no longer exists (a renamed module must not stay loadable). */
function removeOrphans(dir, expected) {
  let names;
  try {
    names = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const d of names) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) removeOrphans(p, expected);
    else if (p.endsWith(".js") && !expected.has(p)) fs.rmSync(p, { force: true });
  }
}

/** Brings dist/ up to date; false (after one line on stderr) when it cannot. */
function build() {
  try {
    main();
    return true;
  } catch (e) {
    process.stderr.write(`build: cannot compile the CLIs to dist/: ${firstLine(e)}. Run \`npm run typecheck\` for details.\n`);
    return false;
  }
}

module.exports = { build };

// `npm run build`; the CLIs' npm scripts build through scripts/run-cli.cjs, in their own process.
if (require.main === module && !build()) process.exit(1);
