/**
 * GpuValidationSuite under Pulumi's mock runtime (scripts/lib/plan-runtime.ts runPlan with our own program): which Jobs
 * exist, how they are chained into lanes per pool, and which resources each one and each validatedRef waits for.
 */
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { GpuValidationSuite, type GpuValidationImage } from "../../../components/validation/gpu-validation-suite";
import type { GpuPool, ValidationConfig } from "../../../config";
import type { CatalogVariant } from "../../../config/catalog";
import type { Plan, PlannedResource } from "../../../scripts/lib/plan-runtime";
import { runPlan } from "../../../scripts/lib/plan-runtime";
import { checksConfigMapName, loadCheckFiles } from "../../../components/validation/validation-job";
import { PROJECT_ROOT } from "../../../lib/paths";

const CHECKS_DIR = path.resolve(PROJECT_ROOT, "images", "checks");
const CHECKS = loadCheckFiles(CHECKS_DIR);
const JOB = "kubernetes:batch/v1:Job";
const REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb";

const validationConfig: ValidationConfig = {
  namespace: "workbench-validation",
  mode: "gpu",
  matmulFraction: 0.7,
  bandwidthFraction: 0.8,
  deadlineSeconds: 900,
  pullMBps: 25,
  podStartSeconds: 120,
  backoffLimit: 0,
  shmSize: "8Gi",
};

function gpuVariant(name: string, extra: Partial<CatalogVariant> = {}): CatalogVariant {
  return {
    name,
    family: "test",
    context: name,
    dockerfile: "Dockerfile",
    platforms: ["linux/amd64"],
    buildArgs: {},
    base: { arg: "BASE_IMAGE", ref: `docker.io/nvidia/cuda:12.8.1-runtime-ubuntu24.04@sha256:${"0".repeat(64)}` },
    extraBases: {},
    cuda: "12.8",
    gpu: true,
    ships: { flashAttn: false },
    smoke: { command: ["python", "-c", "import torch"], imports: ["torch"] },
    sizeBudgetMB: 9000,
    contextDir: `/nonexistent/${name}`,
    dockerfilePath: `/nonexistent/${name}/Dockerfile`,
    ...extra,
  };
}

function pool(name: string, maxConcurrentJobs: number): GpuPool {
  return {
    name,
    nodeSelector: { "workbench/pool": name },
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
    product: "NVIDIA-H100-80GB-HBM3",
    driverVersion: "570.133.20",
    gpusPerNode: 1,
    maxConcurrentJobs,
  };
}

/** A digest per variant, stable across runs. */
const digestOf = (variant: string) => `sha256:${Buffer.from(variant).toString("hex").padEnd(64, "0").slice(0, 64)}`;
const refOf = (variant: string) => `${REGISTRY}/${variant}@${digestOf(variant)}`;

interface Setup {
  mode?: "gpu" | "cpu";
  targets: Array<{ variant: CatalogVariant; pools: GpuPool[] }>;
  /** Variants whose validatedRef a downstream Command consumes. */
  consumers?: string[];
}

/**
 * Plans the suite alone. Each imageRef comes from a `command:local:Command` standing in for the scan/sign gate, so
 * a Job that really consumes its ref shows that Command among its dependencies.
 */
function plan(setup: Setup): Promise<Plan> {
  return runPlan({
    project: "workbench-images",
    stack: "test",
    config: {},
    secretKeys: [],
    program: () => {
      const targets: GpuValidationImage[] = setup.targets.map(({ variant, pools }) => {
        const gate = new command.local.Command(`gate-${variant.name}`, { create: `echo ${variant.name}` });
        return { variant, pools, imageRef: gate.id.apply(() => refOf(variant.name)) };
      });
      const suite = new GpuValidationSuite("gpu-validation", {
        validation: { ...validationConfig, mode: setup.mode ?? "gpu" },
        checksDir: CHECKS_DIR,
        targets,
      });
      for (const name of setup.consumers ?? []) {
        new command.local.Command(`consumer-${name}`, { create: pulumi.interpolate`echo ${suite.validatedRefs[name]!}` });
      }
      return { validatedRefs: suite.validatedRefs, validatedPools: suite.validatedPools, jobNames: suite.jobNames };
    },
  });
}

function named(plan: Plan, name: string): PlannedResource {
  const found = plan.resources.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}: ${plan.resources.map((r) => r.name).join(", ")}`);
  return found[0]!;
}

const jobsOf = (plan: Plan) => plan.resources.filter((r) => r.type === JOB);
const jobUrns = (plan: Plan, deps: readonly string[]) => {
  const jobs = new Set(jobsOf(plan).map((r) => r.urn));
  return deps.filter((d) => jobs.has(d)).sort();
};

interface JobInputs {
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    activeDeadlineSeconds: number;
    template: {
      spec: {
        nodeSelector?: Record<string, string>;
        tolerations?: unknown[];
        containers: Array<{ image: string; command: string[]; resources: Record<string, Record<string, string>> }>;
      };
    };
  };
}
const inputsOf = (r: PlannedResource) => r.inputs as unknown as JobInputs;

/** Three variants on h100 (2 lanes), two of them also on l4 (1 lane); given out of order on purpose. */
const THREE = {
  targets: [
    { variant: gpuVariant("gamma"), pools: [pool("h100", 2), pool("l4", 1)] },
    { variant: gpuVariant("alpha"), pools: [pool("h100", 2), pool("l4", 1)] },
    { variant: gpuVariant("beta"), pools: [pool("h100", 2)] },
  ],
  consumers: ["alpha"],
};

describe("GpuValidationSuite under mocks (gpu mode)", () => {
  it("registers exactly one Job per (variant × pool), inside one GpuValidation each, under the suite", async () => {
    const p = await plan(THREE);
    expect(jobsOf(p).map((r) => r.name).sort()).toEqual([
      "gpu-validation-alpha-h100-job",
      "gpu-validation-alpha-l4-job",
      "gpu-validation-beta-h100-job",
      "gpu-validation-gamma-h100-job",
      "gpu-validation-gamma-l4-job",
    ]);
    expect(
      jobsOf(p)
        .map((r) => `${inputsOf(r).metadata.labels["workbench-images/variant"]}×${inputsOf(r).metadata.labels["workbench-images/pool"]}`)
        .sort(),
    ).toEqual(["alpha×h100", "alpha×l4", "beta×h100", "gamma×h100", "gamma×l4"]);
    const suite = named(p, "gpu-validation");
    expect(suite.type).toBe("workbench:validation:GpuValidationSuite");
    for (const job of jobsOf(p)) {
      const parent = p.resources.find((r) => r.urn === job.parent)!;
      expect(parent.type).toBe("workbench:validation:GpuValidation");
      expect(parent.name).toBe(job.name.replace(/-job$/, ""));
      expect(parent.parent).toBe(suite.urn);
    }
  });

  it("chains each pool's Jobs into maxConcurrentJobs lanes, sorted by variant name", async () => {
    const p = await plan(THREE);
    const urn = (n: string) => named(p, `gpu-validation-${n}-job`).urn;
    const jobDeps = (n: string) => jobUrns(p, named(p, `gpu-validation-${n}-job`).dependencies);
    // h100, 2 lanes: alpha and beta start at once; gamma (third) waits for alpha (first).
    expect(jobDeps("alpha-h100")).toEqual([]);
    expect(jobDeps("beta-h100")).toEqual([]);
    expect(jobDeps("gamma-h100")).toEqual([urn("alpha-h100")]);
    // l4, 1 lane: gamma waits for alpha; nothing crosses pools.
    expect(jobDeps("alpha-l4")).toEqual([]);
    expect(jobDeps("gamma-l4")).toEqual([urn("alpha-l4")]);
  });

  it("runs the image by digest with GPU limits, the pool's selector and tolerations", async () => {
    const p = await plan(THREE);
    for (const job of jobsOf(p)) {
      const variant = inputsOf(job).metadata.labels["workbench-images/variant"]!;
      const poolName = inputsOf(job).metadata.labels["workbench-images/pool"]!;
      const pod = inputsOf(job).spec.template.spec;
      expect(pod.containers[0]!.image).toBe(refOf(variant));
      expect(pod.containers[0]!.image).toMatch(/@sha256:[0-9a-f]{64}$/);
      expect(pod.containers[0]!.resources["limits"]).toEqual({ "nvidia.com/gpu": "1" });
      // GPU Feature Discovery's product label beside the pool's own selector (issue #11).
      expect(pod.nodeSelector).toEqual({ "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "workbench/pool": poolName });
      expect(pod.tolerations).toEqual([{ effect: "NoSchedule", key: "nvidia.com/gpu", operator: "Exists" }]);
      expect(inputsOf(job).metadata.namespace).toBe("workbench-validation");
      expect(inputsOf(job).metadata.name).toMatch(new RegExp(`^wbv-${variant}-${poolName}-[0-9a-f]{10}$`));
    }
  });

  it("gives Pulumi a create timeout longer than the Job's activeDeadlineSeconds", async () => {
    const p = await plan(THREE);
    for (const job of jobsOf(p)) {
      // activeDeadlineSeconds 1410 = 120 s pod start + 9,000 MB / 25 MB/s + the check's 900 s + 30 s grace; +300 s.
      expect(job.options?.customTimeouts).toEqual({ create: "1710s", update: "1710s" });
      const seconds = Number(/^(\d+)s$/.exec(job.options!.customTimeouts!.create!)![1]);
      expect(seconds).toBeGreaterThan(inputsOf(job).spec.activeDeadlineSeconds);
      expect(inputsOf(job).spec.activeDeadlineSeconds).toBe(1410);
    }
  });

  it("makes each Job wait for its image's gate, the namespace and the check ConfigMap", async () => {
    const p = await plan(THREE);
    const namespace = named(p, "gpu-validation-namespace");
    const configMap = named(p, "gpu-validation-checks");
    for (const job of jobsOf(p)) {
      const variant = inputsOf(job).metadata.labels["workbench-images/variant"]!;
      const gate = named(p, `gate-${variant}`);
      expect(job.dependencies).toEqual(expect.arrayContaining([gate.urn, namespace.urn, configMap.urn]));
      // Through the inputs themselves, not only ordering: the spec carries the gate's output.
      expect(job.propertyDependencies["spec"]).toEqual(expect.arrayContaining([gate.urn]));
      // No other image's gate.
      const gates = new Set(p.resources.filter((r) => r.type === "command:local:Command").map((r) => r.urn));
      expect(job.dependencies.filter((d) => gates.has(d))).toEqual([gate.urn]);
    }
  });

  it("creates the namespace (Pod Security restricted) and one immutable, content-named ConfigMap of the checks", async () => {
    const p = await plan(THREE);
    expect(p.resources.filter((r) => r.type === "kubernetes:core/v1:Namespace")).toHaveLength(1);
    // One ConfigMap of checks; the others are the Jobs' empty report ConfigMaps (validation-report.test.ts).
    expect(p.resources.filter((r) => r.type === "kubernetes:core/v1:ConfigMap" && !r.name.endsWith("-report")).map((r) => r.name)).toEqual(["gpu-validation-checks"]);
    expect(named(p, "gpu-validation-namespace").inputs).toEqual({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        labels: {
          "app.kubernetes.io/name": "workbench-validation",
          "app.kubernetes.io/part-of": "workbench-images",
          "pod-security.kubernetes.io/enforce": "restricted",
        },
        name: "workbench-validation",
      },
    });
    const cm = named(p, "gpu-validation-checks");
    expect(cm.inputs).toEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      data: CHECKS.files,
      immutable: true,
      metadata: {
        labels: { "app.kubernetes.io/name": "workbench-validation", "app.kubernetes.io/part-of": "workbench-images" },
        name: checksConfigMapName(CHECKS.hash),
        namespace: "workbench-validation",
      },
    });
    for (const job of jobsOf(p)) {
      const volumes = (job.inputs as { spec: { template: { spec: { volumes: Array<{ name: string; configMap?: { name: string } }> } } } }).spec.template.spec.volumes;
      expect(volumes.find((v) => v.name === "checks")?.configMap?.name).toBe(checksConfigMapName(CHECKS.hash));
    }
  });

  it("makes a validatedRef consumer wait for every Job of that variant and no other", async () => {
    const p = await plan(THREE);
    const consumer = named(p, "consumer-alpha");
    expect(jobUrns(p, consumer.dependencies)).toEqual(
      [named(p, "gpu-validation-alpha-h100-job").urn, named(p, "gpu-validation-alpha-l4-job").urn].sort(),
    );
    expect(consumer.dependencies).toContain(named(p, "gate-alpha").urn);
  });

  it("outputs the same ref per variant, its pools and its Job names", async () => {
    const p = await plan(THREE);
    expect(p.outputs["validatedRefs"]).toEqual({ alpha: refOf("alpha"), beta: refOf("beta"), gamma: refOf("gamma") });
    expect(p.outputs["validatedPools"]).toEqual({ alpha: ["h100", "l4"], beta: ["h100"], gamma: ["h100", "l4"] });
    const jobNames = p.outputs["jobNames"] as Record<string, Record<string, string>>;
    expect(Object.keys(jobNames).sort()).toEqual(["alpha", "beta", "gamma"]);
    expect(jobNames["alpha"]).toEqual({
      h100: inputsOf(named(p, "gpu-validation-alpha-h100-job")).metadata.name,
      l4: inputsOf(named(p, "gpu-validation-alpha-l4-job")).metadata.name,
    });
  });

  it("gives a variant with no pool no Job and no validatedRef: nothing validated it", async () => {
    const p = await plan({ targets: [{ variant: gpuVariant("alpha"), pools: [pool("h100", 1)] }, { variant: gpuVariant("lonely"), pools: [] }] });
    expect(jobsOf(p).map((r) => r.name)).toEqual(["gpu-validation-alpha-h100-job"]);
    expect(p.outputs["validatedRefs"]).toEqual({ alpha: refOf("alpha") });
    expect(p.outputs["validatedPools"]).toEqual({ alpha: ["h100"], lonely: [] });
  });
});

describe("GpuValidationSuite under mocks (cpu mode)", () => {
  it("runs one cpu Job per GPU variant, no GPU, chained one at a time", async () => {
    const p = await plan({
      mode: "cpu",
      targets: [
        { variant: gpuVariant("beta"), pools: [pool("h100", 4), pool("l4", 4)] },
        { variant: gpuVariant("alpha"), pools: [] },
      ],
    });
    expect(jobsOf(p).map((r) => r.name).sort()).toEqual(["gpu-validation-alpha-cpu-job", "gpu-validation-beta-cpu-job"]);
    for (const job of jobsOf(p)) {
      const pod = inputsOf(job).spec.template.spec;
      expect(inputsOf(job).metadata.labels["workbench-images/pool"]).toBe("cpu");
      expect(pod.containers[0]!.command.slice(5, 7)).toEqual(["--mode", "cpu"]);
      expect(pod.containers[0]!.resources).toEqual({ requests: { cpu: "1", memory: "2Gi" } });
      expect(Object.keys(pod)).not.toContain("nodeSelector");
      expect(Object.keys(pod)).not.toContain("tolerations");
    }
    expect(jobUrns(p, named(p, "gpu-validation-alpha-cpu-job").dependencies)).toEqual([]);
    expect(jobUrns(p, named(p, "gpu-validation-beta-cpu-job").dependencies)).toEqual([named(p, "gpu-validation-alpha-cpu-job").urn]);
    expect(p.outputs["validatedPools"]).toEqual({ alpha: ["cpu"], beta: ["cpu"] });
    expect(p.outputs["validatedRefs"]).toEqual({ alpha: refOf("alpha"), beta: refOf("beta") });
  });
});

describe("GpuValidationSuite bad input", () => {
  it("names every bad target, the value and the fix in one error", async () => {
    const cpuVariant = gpuVariant("app-cpu", { gpu: false });
    delete (cpuVariant as { cuda?: string }).cuda;
    await expect(
      plan({
        targets: [
          { variant: gpuVariant("alpha"), pools: [pool("h100", 1), pool("h100", 1)] },
          { variant: gpuVariant("alpha"), pools: [pool("h100", 2)] },
          { variant: cpuVariant, pools: [] },
        ],
      }),
    ).rejects.toThrow(
      [
        "GpuValidationSuite gpu-validation:",
        '  - targets[0] (variant "alpha").pools[1] repeats pool "h100". List each pool once.',
        '  - targets[1] (variant "alpha") repeats targets[0]. Give each variant once, with all its pools.',
        '  - targets[1] (variant "alpha").pools[0] gives pool "h100" maxConcurrentJobs 2, but another target gives 1. Pass the same pool object (config gpuPools) everywhere.',
        '  - targets[2] (variant "app-cpu") is not a GPU variant with a cuda version (gpu: false, cuda: null). Validate only GPU variants; CPU images skip this gate.',
      ].join("\n"),
    );
  });
});
