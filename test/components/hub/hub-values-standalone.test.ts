/**
 * The chart values validator that scripts/build-dist.cjs precompiles for the compiled CLIs (issue #16) must be the
 * run-time one: the same errors, objects and all (validateHubValues' messages are made from them), and it must be
 * used only when it was compiled from the schema and Ajv that the run-time one would compile now.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  compileValuesValidator,
  type HubValues,
  loadChartDefaults,
  loadPrecompiledValidator,
  mergeHubValues,
  PRECOMPILED_VALIDATOR_FILE,
  writePrecompiledValidator,
} from "../../../components/hub/hub-values";
import { PROJECT_ROOT } from "../../../lib/paths";

let dir: string;
let generated: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-values-standalone-"));
  // The generated module requires Ajv's runtime helpers and ajv-formats' formats by package name, as it does from
  // dist/components/hub/: the temp folder resolves them from the project's node_modules.
  fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  generated = path.join(dir, "generated.validate.js");
  writePrecompiledValidator(generated);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The dev stack's own hub values over the chart defaults, as config/load.ts checks them. */
function devValues(): HubValues {
  const stack = parse(fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, { values: HubValues }> };
  return mergeHubValues(loadChartDefaults(), stack.config["workbench-images:jupyterhub"]!.values, {});
}

const over = (stackValues: HubValues, generatedValues: HubValues = {}) => mergeHubValues(loadChartDefaults(), stackValues, generatedValues);

/** [keyword, instancePath, params] of each error: what the case is about, asserted before the whole objects. */
type Summary = [string, string, Record<string, unknown>][];

const cases: { name: string; values: () => HubValues; expected: Summary | null }[] = [
  { name: "the dev stack's values", values: devValues, expected: null },
  {
    name: "unknown keys, top-level and nested",
    values: () => over({ hubb: {}, singleuser: { memory: { limt: "1G" } } }),
    expected: [
      ["additionalProperties", "", { additionalProperty: "hubb" }],
      ["additionalProperties", "/singleuser/memory", { additionalProperty: "limt" }],
    ],
  },
  {
    name: "a wrong type",
    values: () => over({ singleuser: { cpu: { limit: "lots" } } }),
    expected: [["type", "/singleuser/cpu/limit", { type: ["number", "null"] }]],
  },
  {
    name: "a value outside an enum",
    values: () => over({ proxy: { service: { type: "Ingress" } } }),
    expected: [["enum", "/proxy/service/type", { allowedValues: ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] }]],
  },
  {
    name: "a hub.extraConfig value that is not Python source (the tightened schema)",
    values: () => over({}, { hub: { extraConfig: { profiles: 5 } } }),
    expected: [["type", "/hub/extraConfig/profiles", { type: "string" }]],
  },
];

describe("the precompiled chart values validator", () => {
  it("is generated from the chart's schema as it is now", () => {
    expect(loadPrecompiledValidator(generated)).toBeTypeOf("function");
  });

  it.each(cases)("reports exactly the run-time validator's errors for $name", ({ values, expected }) => {
    const precompiled = loadPrecompiledValidator(generated)!;
    const runtime = compileValuesValidator();
    const doc = values();

    expect(precompiled(doc)).toBe(expected === null);
    const summary = precompiled.errors?.map((e) => [e.keyword, e.instancePath, e.params]) ?? null;
    expect(summary).toEqual(expected);

    expect(runtime(doc)).toBe(expected === null);
    // Whole error objects: message, schemaPath, and verbose's schema, parentSchema and data.
    expect(precompiled.errors).toEqual(runtime.errors);
  });

  it("reports a oneOf and its branches, and a required section, as the run-time validator does", () => {
    const doc = over({ cull: null, hub: { extraFiles: { script: { mountPath: "/x" } } } });
    const precompiled = loadPrecompiledValidator(generated)!;
    const runtime = compileValuesValidator();
    expect(precompiled(doc)).toBe(false);
    expect(runtime(doc)).toBe(false);
    expect(precompiled.errors!.map((e) => e.keyword)).toEqual(["required", "required", "required", "required", "oneOf"]);
    expect(precompiled.errors).toEqual(runtime.errors);
  });
});

describe("loadPrecompiledValidator", () => {
  it("ignores a module compiled from another schema or Ajv (its fingerprint differs)", () => {
    const stale = path.join(dir, "stale.validate.js");
    const source = fs.readFileSync(generated, "utf8");
    const edited = source.replace(/module\.exports\.fingerprint = "[0-9a-f]{64}";/, `module.exports.fingerprint = "${"0".repeat(64)}";`);
    expect(edited).not.toBe(source);
    fs.writeFileSync(stale, edited);
    expect(loadPrecompiledValidator(stale)).toBeUndefined();
  });

  it("ignores a module without a fingerprint, one that does not load, and a missing one", () => {
    const bare = path.join(dir, "bare.validate.js");
    fs.writeFileSync(bare, "module.exports = function validate() { return true; };\n");
    const broken = path.join(dir, "broken.validate.js");
    fs.writeFileSync(broken, "module.exports = function validate( {\n");
    expect(loadPrecompiledValidator(bare)).toBeUndefined();
    expect(loadPrecompiledValidator(broken)).toBeUndefined();
    expect(loadPrecompiledValidator(path.join(dir, "missing.validate.js"))).toBeUndefined();
  });
});

describe("build-dist's precompiled validator", () => {
  const compiledDir = path.join(PROJECT_ROOT, "dist", "components", "hub");

  it("is where the compiled hub-values module looks for it, and current (the unit project's setup ran build-dist)", () => {
    expect(loadPrecompiledValidator(path.join(compiledDir, PRECOMPILED_VALIDATOR_FILE))).toBeTypeOf("function");
  });

  it("is what the compiled module validates with: a plan loads no Ajv compiler and gets the same messages", () => {
    const script = `
      const hv = require(${JSON.stringify(path.join(compiledDir, "hub-values.js"))});
      const messages = hv.validateHubValues(hv.mergeHubValues(hv.loadChartDefaults(), { hubb: {}, proxy: { service: { type: "Ingress" } } }, {}));
      const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/]ajv(-formats)?[\\\\/]/.test(f)).map((f) => f.slice(f.lastIndexOf("node_modules")));
      process.stdout.write(JSON.stringify({ messages, loaded }));`;
    const result = JSON.parse(execFileSync(process.execPath, ["-e", script], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60_000 })) as unknown;
    expect(result).toEqual({
      messages: [
        'hubb: unknown key, the chart\'s schema allows no others here; did you mean "hub"?',
        'proxy.service.type: must be one of "ClusterIP", "NodePort", "LoadBalancer" or "ExternalName", got "Ingress"',
      ],
      // Only the package manifests, read for the fingerprint.
      loaded: [path.join("node_modules", "ajv", "package.json"), path.join("node_modules", "ajv-formats", "package.json")],
    });
  });
});
