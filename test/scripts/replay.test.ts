/**
 * The honest floor of `npm run bench` (scripts/lib/replay.ts, issue #16) is only honest if it registers what the
 * program registers: the dev plan is recorded, replayed with no project logic, and the two plans compared. The
 * replay passes plain values with `dependsOn` where the program passed Outputs, so only the per-property dependency
 * map may differ; everything else (URNs, types, parents, providers, inputs, dependencies, options) must be equal.
 * Both run under runPlan, whose stack settings are checked here too.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { observeYields } from "../../lib/pacing";
import { type Plan, runPlan } from "../../scripts/lib/plan-runtime";
import { type Recording, replay, startRecording } from "../../scripts/lib/replay";
import { readStackConfig } from "../../scripts/lib/stack-files";
import { loadProgram, ROOT } from "../support/harness";

const withoutPropertyDependencies = (plan: Plan) => plan.resources.map(({ propertyDependencies: _, ...rest }) => rest);

describe("the honest floor's replay", () => {
  it("registers exactly the dev plan's resources, yielding where the program yields", async () => {
    const { project, config, secretKeys } = readStackConfig(ROOT, path.join(ROOT, "Pulumi.dev.yaml"));
    const program = await loadProgram();
    let recorder: ReturnType<typeof startRecording> | undefined;
    const planned = await runPlan({
      project,
      stack: "dev",
      config,
      secretKeys,
      program: () => {
        recorder = startRecording();
        return program();
      },
    });
    const recording: Recording = await recorder!.finish(planned.outputs);
    let replayYields = 0;
    observeYields(() => replayYields++);
    const replayed = await runPlan({ project, stack: "dev", config: {}, secretKeys: [], program: () => replay(recording) }).finally(() => observeYields(undefined));

    expect(withoutPropertyDependencies(replayed)).toEqual(withoutPropertyDependencies(planned));
    expect(replayed.outputs).toEqual(planned.outputs);
    // index.ts yields after each image's build and gates, and after each CPU image's run-time gates.
    const images = planned.resources.filter((r) => r.type === "workbench:image:ImageVariant").length;
    const cpuImages = planned.resources.filter((r) => r.type === "workbench:validation:SmokeTest").length;
    expect(recording.yields).toHaveLength(images + cpuImages);
    expect(recording.yields.every((n, i) => i === 0 || n > recording.yields[i - 1]!)).toBe(true);
    expect(replayYields).toBe(recording.yields.length);
  });
});

describe("runPlan (what the bench and the offline plan run under)", () => {
  it("runs with unformatted stacks (no source positions for the mock monitor) and restores the caller's stack settings", async () => {
    const before = { limit: Error.stackTraceLimit, prepare: Error.prepareStackTrace };
    let during: { limit: number; stack: string | undefined } | undefined;
    await runPlan({
      project: "workbench-images",
      stack: "dev",
      config: {},
      secretKeys: [],
      program: () => {
        Error.stackTraceLimit = Number.POSITIVE_INFINITY; // what the SDK does for every resource
        during = { limit: Error.stackTraceLimit, stack: new Error("probe").stack };
        Error.stackTraceLimit = 0;
        return {};
      },
    });
    expect(during).toEqual({ limit: Number.POSITIVE_INFINITY, stack: "Error: probe" });
    expect({ limit: Error.stackTraceLimit, prepare: Error.prepareStackTrace }).toEqual(before);
  });
});
