/**
 * RuntimeGates under Pulumi's mock runtime (scripts/lib/plan-runtime.ts runPlan): which resources each kind of image
 * gets (GPU: size only; CPU: size → smoke Job; notebook tier: size → smoke Job → notebook Job), their exact inputs,
 * and the dependency chain from the gated ref to what consumes `checkedRef`.
 */
import * as k8s from "@pulumi/kubernetes";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { sizeCheckScript, SIZE_PASSWORD_ENV, SIZE_USERNAME_ENV } from "../../../components/validation/image-size";
import { RuntimeGates, type RuntimeImage } from "../../../components/validation/runtime-gates";
import { executedClaim, notebookJob, smokeJob } from "../../../components/validation/runtime-jobs";
import type { Plan, PlannedResource } from "../../../scripts/lib/plan-runtime";
import { runPlan } from "../../../scripts/lib/plan-runtime";

const REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb";
const SETTINGS = { deadlineSeconds: 900, pullMBps: 25, backoffLimit: 0 };
const digestOf = (id: string) => `sha256:${Buffer.from(id).toString("hex").padEnd(64, "0").slice(0, 64)}`;
const refOf = (id: string) => `${REGISTRY}/${id}@${digestOf(id)}`;

const IMAGES: RuntimeImage[] = [
  { id: "jupyter-ml-gpu", gpu: true, smoke: { command: ["python", "-c", "import torch"] }, sizeBudgetMB: 12000 },
  { id: "jupyter-ml-cpu", gpu: false, smoke: { command: ["python", "-c", "import sklearn"] }, sizeBudgetMB: 5000 },
  {
    id: "notebook-validator-tier2",
    gpu: false,
    smoke: { command: ["python", "-c", "import papermill"] },
    sizeBudgetMB: 4000,
    notebooks: { tier: "tier2", fsGroup: 0 },
  },
];

function plan(credentials: boolean): Promise<Plan> {
  return runPlan({
    project: "workbench-images",
    stack: "test",
    config: {},
    secretKeys: [],
    program: () => {
      // Stands in for GpuValidationSuite's namespace, which index.ts hands to CPU images' gates.
      const ns = new k8s.core.v1.Namespace("validation-namespace", { metadata: { name: "workbench-validation" } });
      const out: Record<string, pulumi.Output<string>> = {};
      for (const image of IMAGES) {
        // Stands in for gateImage: the gated ref resolves after this Command.
        const gate = new command.local.Command(`${image.id}-gate`, { create: `echo ${image.id}` });
        const gates = new RuntimeGates(`${image.id}-runtime`, {
          image,
          imageRef: gate.id.apply(() => refOf(image.id)),
          ...(image.gpu ? {} : { namespace: ns.metadata.name }),
          settings: SETTINGS,
          ...(credentials ? { credentials: { username: "AWS", password: pulumi.secret("token") } } : {}),
        });
        new command.local.Command(`${image.id}-consumer`, { create: pulumi.interpolate`echo ${gates.checkedRef}` });
        out[image.id] = gates.checkedRef;
      }
      return out;
    },
  });
}

function named(p: Plan, name: string): PlannedResource {
  const found = p.resources.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}`);
  return found[0]!;
}
/** The names of `r`'s direct dependencies. */
const depNames = (p: Plan, r: PlannedResource) => r.dependencies.map((u) => p.resources.find((x) => x.urn === u)?.name ?? u).sort();

describe("RuntimeGates under mocks", () => {
  it("gives a GPU image only its size gate, a CPU image a smoke Job, a tier image a smoke and a notebook Job", async () => {
    const p = await plan(false);
    const of = (id: string) =>
      p.resources
        .filter((r) => r.name.startsWith(`${id}-runtime`))
        .map((r) => `${r.type} ${r.name}`)
        .sort();
    expect(of("jupyter-ml-gpu")).toEqual([
      "command:local:Command jupyter-ml-gpu-runtime-size-skopeo",
      "workbench:validation:RuntimeGates jupyter-ml-gpu-runtime",
      "workbench:validation:SizeGate jupyter-ml-gpu-runtime-size",
    ]);
    expect(of("jupyter-ml-cpu")).toEqual([
      "command:local:Command jupyter-ml-cpu-runtime-size-skopeo",
      "kubernetes:batch/v1:Job jupyter-ml-cpu-runtime-smoke-job",
      "workbench:validation:RuntimeGates jupyter-ml-cpu-runtime",
      "workbench:validation:SizeGate jupyter-ml-cpu-runtime-size",
      "workbench:validation:SmokeTest jupyter-ml-cpu-runtime-smoke",
    ]);
    expect(of("notebook-validator-tier2")).toEqual([
      "command:local:Command notebook-validator-tier2-runtime-size-skopeo",
      "kubernetes:batch/v1:Job notebook-validator-tier2-runtime-notebooks-job",
      "kubernetes:batch/v1:Job notebook-validator-tier2-runtime-smoke-job",
      "kubernetes:core/v1:PersistentVolumeClaim notebook-validator-tier2-runtime-notebooks-executed",
      "workbench:validation:NotebookValidation notebook-validator-tier2-runtime-notebooks",
      "workbench:validation:RuntimeGates notebook-validator-tier2-runtime",
      "workbench:validation:SizeGate notebook-validator-tier2-runtime-size",
      "workbench:validation:SmokeTest notebook-validator-tier2-runtime-smoke",
    ]);
    // Parents: every child sits under its image's RuntimeGates.
    const parentName = (n: string) => p.resources.find((r) => r.urn === named(p, n).parent)!.name;
    expect(parentName("notebook-validator-tier2-runtime-notebooks")).toBe("notebook-validator-tier2-runtime");
    expect(parentName("notebook-validator-tier2-runtime-notebooks-job")).toBe("notebook-validator-tier2-runtime-notebooks");
  });

  it("chains gate → size → smoke → notebooks → consumer, each step waiting for the one before", async () => {
    const p = await plan(false);
    const id = "notebook-validator-tier2";
    expect(depNames(p, named(p, `${id}-runtime-size-skopeo`))).toEqual([`${id}-gate`]);
    expect(depNames(p, named(p, `${id}-runtime-smoke-job`))).toEqual([`${id}-gate`, `${id}-runtime-size-skopeo`, "validation-namespace"]);
    expect(depNames(p, named(p, `${id}-runtime-notebooks-executed`))).toEqual(["validation-namespace"]);
    expect(depNames(p, named(p, `${id}-runtime-notebooks-job`))).toEqual([
      `${id}-gate`,
      `${id}-runtime-notebooks-executed`,
      `${id}-runtime-size-skopeo`,
      `${id}-runtime-smoke-job`,
      "validation-namespace",
    ]);
    expect(depNames(p, named(p, `${id}-consumer`))).toEqual([`${id}-gate`, `${id}-runtime-notebooks-job`, `${id}-runtime-size-skopeo`, `${id}-runtime-smoke-job`]);
    // A CPU image's consumer waits for its smoke Job; a GPU image's for its size gate (the GPU Jobs consume that).
    expect(depNames(p, named(p, "jupyter-ml-cpu-consumer"))).toEqual(["jupyter-ml-cpu-gate", "jupyter-ml-cpu-runtime-size-skopeo", "jupyter-ml-cpu-runtime-smoke-job"]);
    expect(depNames(p, named(p, "jupyter-ml-gpu-consumer"))).toEqual(["jupyter-ml-gpu-gate", "jupyter-ml-gpu-runtime-size-skopeo"]);
    expect(p.outputs).toEqual(Object.fromEntries(IMAGES.map((i) => [i.id, refOf(i.id)])));
  });

  it("registers exactly the Job and claim objects runtime-jobs.ts builds, with create timeouts past their deadlines", async () => {
    const p = await plan(false);
    const id = "notebook-validator-tier2";
    const smoke = smokeJob({ image: { name: id, smoke: IMAGES[2]!.smoke, sizeBudgetMB: 4000 }, imageRef: refOf(id), namespace: "workbench-validation", settings: SETTINGS });
    const notebooks = notebookJob({
      image: { name: id, sizeBudgetMB: 4000 },
      tier: "tier2",
      imageRef: refOf(id),
      namespace: "workbench-validation",
      claimName: "executed-notebooks-tier2",
      fsGroup: 0,
      settings: SETTINGS,
    });
    const strip = (o: object) => JSON.parse(JSON.stringify(o)) as unknown;
    expect(named(p, `${id}-runtime-smoke-job`).inputs).toEqual({ apiVersion: "batch/v1", kind: "Job", ...(strip({ metadata: smoke.metadata, spec: smoke.spec }) as object) });
    expect(named(p, `${id}-runtime-notebooks-job`).inputs).toEqual({ apiVersion: "batch/v1", kind: "Job", ...(strip({ metadata: notebooks.metadata, spec: notebooks.spec }) as object) });
    const claim = executedClaim("tier2", "workbench-validation");
    expect(named(p, `${id}-runtime-notebooks-executed`).inputs).toEqual({ apiVersion: "v1", kind: "PersistentVolumeClaim", ...(strip({ metadata: claim.metadata, spec: claim.spec }) as object) });
    // activeDeadlineSeconds 1210 (120 + 4000/25 + 900 + 30) + 300 s margin.
    expect(named(p, `${id}-runtime-smoke-job`).options?.customTimeouts).toEqual({ create: "1510s", update: "1510s" });
    expect(named(p, `${id}-runtime-notebooks-job`).options?.customTimeouts).toEqual({ create: "1510s", update: "1510s" });
  });

  it("runs the size check as `node -e` with the exact script, re-measuring only when it changes", async () => {
    const p = await plan(false);
    const skopeo = named(p, "jupyter-ml-cpu-runtime-size-skopeo");
    const script = sizeCheckScript({ id: "jupyter-ml-cpu", ref: refOf("jupyter-ml-cpu"), budgetMB: 5000 });
    expect(skopeo.inputs).toEqual({ interpreter: ["node", "-e"], create: script, update: "process.exit(0)", triggers: [script] });
  });

  it("passes registry credentials only as environment, the password secret", async () => {
    const p = await plan(true);
    const skopeo = named(p, "jupyter-ml-gpu-runtime-size-skopeo");
    expect(skopeo.inputs["environment"]).toEqual({ [SIZE_USERNAME_ENV]: "AWS", [SIZE_PASSWORD_ENV]: "[secret]" });
    expect(skopeo.inputs["create"]).toBe(sizeCheckScript({ id: "jupyter-ml-gpu", ref: refOf("jupyter-ml-gpu"), budgetMB: 12000, credentials: true }));
    expect(JSON.stringify(skopeo.inputs)).not.toContain("token");
  });

  it("refuses a CPU image without a namespace and a GPU notebook tier, listing both", async () => {
    await expect(
      runPlan({
        project: "workbench-images",
        stack: "test",
        config: {},
        secretKeys: [],
        program: () => {
          new RuntimeGates("bad", {
            image: { id: "t", gpu: true, smoke: { command: ["true"] }, sizeBudgetMB: 1, notebooks: { tier: "tier1", fsGroup: 0 } },
            imageRef: refOf("t"),
            settings: SETTINGS,
          });
          new RuntimeGates("bad2", { image: { id: "c", gpu: false, smoke: { command: ["true"] }, sizeBudgetMB: 1 }, imageRef: refOf("c"), settings: SETTINGS });
          return {};
        },
      }),
    ).rejects.toThrow(/image "t" is a GPU image with a notebook tier; notebook tiers run on CPU nodes/);
  });
});
