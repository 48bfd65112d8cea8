/**
 * Upstream oracle (issue #11, GUIDE §4.4): every Kubernetes object each shipped stack emits, checked against the
 * schemas of the other side from ../shared/upstream: Kubernetes 1.32's strict JSON schemas (unknown fields
 * rejected, as `kubectl apply --validate=strict` and server-side field validation do) and Kyverno 1.15.2's
 * ClusterPolicy CRD schema (structural: unknown fields are pruned by the API server, so refused here). The pods
 * KubeSpawner would create from our hub values (test/support/upstream.ts) are checked against the Pod schema too.
 */
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { beforeAll, describe, expect, it } from "vitest";
import type { Plan, PlannedResource } from "../../scripts/lib/plan-runtime";
import { planConfig, planStackFile } from "../support/harness";
import {
  describeErrors,
  hasUpstream,
  hubRelease,
  kyvernoClusterPolicyValidator,
  promotedProdConfig,
  skipReason,
  spawnPods,
  strictSchemaFile,
  strictValidator,
  upstreamDir,
} from "../support/upstream";

const UPSTREAM = hasUpstream();
if (!UPSTREAM) console.warn(`test/upstream/schemas.test.ts: ${skipReason()}`);

type K8sObject = { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string }; [key: string]: unknown };

/** Pulumi type tokens of objects that are not Kubernetes objects themselves (Helm releases, providers). */
function isObjectType(type: string): boolean {
  return type.startsWith("kubernetes:") && !type.startsWith("kubernetes:helm.sh/");
}

/** The object a resource sends to the API server: under mocks, its inputs are apiVersion/kind/metadata/spec|data. */
function objectOf(r: PlannedResource): K8sObject {
  // kubernetes:<group>/<version>:<Kind>; the core group's objects say apiVersion "v1".
  const m = /^kubernetes:([^:]+):([A-Za-z0-9]+)$/.exec(r.type);
  if (m === null) throw new Error(`${r.name}: unexpected Kubernetes type token ${r.type}`);
  const apiVersion = m[1]!.replace(/^core\//, "");
  const obj = structuredClone(r.inputs) as K8sObject;
  expect(obj.apiVersion, `${r.type} ${r.name}: apiVersion`).toBe(apiVersion);
  expect(obj.kind, `${r.type} ${r.name}: kind`).toBe(m[2]);
  return obj;
}

function label(o: K8sObject, r?: PlannedResource): string {
  const ns = o.metadata?.namespace !== undefined ? `${o.metadata.namespace}/` : "";
  return `${o.apiVersion} ${o.kind} ${ns}${o.metadata?.name ?? "(auto-named)"}${r !== undefined ? ` [${r.name}]` : ""}`;
}

/** Problems of one object against its upstream schema: "<kind/name>: <ajv errors>"; empty when valid. */
function validateObject(o: K8sObject, r?: PlannedResource): string[] {
  // ../shared/upstream has no strict PersistentVolumeClaim schema (its README lists the kinds it holds): the claim
  // is checked with kubernetes-models' OpenAPI validation instead, plus an explicit check for unknown top-level keys.
  if (o.apiVersion === "v1" && o.kind === "PersistentVolumeClaim") {
    const extra = Object.keys(o).filter((k) => !["apiVersion", "kind", "metadata", "spec"].includes(k));
    try {
      new PersistentVolumeClaim(o as ConstructorParameters<typeof PersistentVolumeClaim>[0]).validate();
    } catch (e) {
      return [`${label(o, r)}: ${(e as Error).message}`];
    }
    return extra.length > 0 ? [`${label(o, r)}: unknown fields ${extra.join(", ")}`] : [];
  }
  const validate = o.apiVersion === "kyverno.io/v1" && o.kind === "ClusterPolicy" ? kyvernoClusterPolicyValidator() : strictValidator(o.apiVersion, o.kind);
  return validate(o) ? [] : [`${label(o, r)}:\n${describeErrors(validate.errors)}`];
}

/** `hub`: the stack deploys JupyterHub, so KubeSpawner's pods are checked too (prod as shipped promotes nothing yet). */
const STACKS: { title: string; hub: boolean; plan: () => Promise<Plan> }[] = [
  { title: "local", hub: true, plan: () => planStackFile("local", "Pulumi.local.yaml") },
  { title: "dev", hub: true, plan: () => planStackFile("dev", "Pulumi.dev.yaml") },
  { title: "prod (as shipped)", hub: false, plan: () => planStackFile("prod", "Pulumi.prod.yaml") },
  { title: "prod (every published variant promoted)", hub: true, plan: () => planConfig("prod", promotedProdConfig()) },
];

describe.skipIf(!UPSTREAM)(`Kubernetes 1.32 strict and Kyverno 1.15.2 schemas from ${upstreamDir()}`, () => {
  for (const c of STACKS) {
    describe(c.title, () => {
      let plan: Plan;
      let objects: { o: K8sObject; r: PlannedResource }[];
      beforeAll(async () => {
        plan = await c.plan();
        objects = plan.resources.filter((r) => isObjectType(r.type)).map((r) => ({ o: objectOf(r), r }));
      });

      it("emits only objects the upstream schemas accept", () => {
        expect(objects.length).toBeGreaterThan(0);
        expect(objects.flatMap(({ o, r }) => validateObject(o, r))).toEqual([]);
      });

      it.runIf(c.hub)("emits each hub profile's pod, as KubeSpawner builds it, in a shape the Pod schema accepts", () => {
        const release = hubRelease(plan);
        expect(release, "the jupyterhub Release").toBeDefined();
        // The default profile for someone, then every profile and pool choice KubeSpawner offers them.
        const [listed] = spawnPods(release!.values, [{ username: "schema-check" }], { release: { name: release!.name, namespace: release!.namespace } });
        expect(listed!.error).toBeUndefined();
        const requests = (listed!.profiles ?? []).flatMap((p) => {
          const pools = Object.keys(p.profile_options?.["pool"]?.choices ?? {});
          return pools.length > 0 ? pools.map((pool) => ({ username: "schema-check", profile: p.slug, options: { pool } })) : [{ username: "schema-check", profile: p.slug }];
        });
        const pods = [listed!, ...(requests.length > 0 ? spawnPods(release!.values, requests, { release: { name: release!.name, namespace: release!.namespace } }) : [])];
        const problems = pods.flatMap((p, i) => {
          if (p.pod === undefined) return [`request ${i}: KubeSpawner refused: ${p.error}`];
          const pod = p.pod as unknown as K8sObject;
          return validateObject({ ...pod, metadata: { ...pod.metadata, namespace: release!.namespace } }).map((e) => `${i === 0 ? "default profile" : requests[i - 1]!.profile}: ${e}`);
        });
        expect(problems).toEqual([]);
      });
    });
  }

  describe("each schema family can fail: an unknown field is rejected", () => {
    it("Kubernetes strict schemas (Namespace, ConfigMap, Job)", async () => {
      const plan = await planStackFile("local", "Pulumi.local.yaml");
      const pick = (kind: string) => objectOf(plan.resources.find((r) => isObjectType(r.type) && r.type.endsWith(`:${kind}`))!);
      const ns = pick("Namespace");
      expect(validateObject(ns)).toEqual([]);
      ns.metadata = { ...ns.metadata, ...{ lables: { a: "b" } } };
      expect(validateObject(ns).join("\n")).toContain("/metadata must NOT have additional properties (lables)");

      const cm = pick("ConfigMap");
      expect(validateObject(cm)).toEqual([]);
      cm["date"] = {};
      expect(validateObject(cm).join("\n")).toContain("(root) must NOT have additional properties (date)");

      const job = pick("Job") as K8sObject & { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
      expect(validateObject(job)).toEqual([]);
      job.spec.template.spec.containers[0]!["imagePullPolice"] = "Always";
      expect(validateObject(job).join("\n")).toContain("/spec/template/spec/containers/0 must NOT have additional properties (imagePullPolice)");
      expect(strictSchemaFile("rbac.authorization.k8s.io/v1", "RoleBinding")).toMatch(/rolebinding-rbac-v1\.json$/);
    });

    it("Kyverno's ClusterPolicy CRD schema", async () => {
      const plan = await planStackFile("dev", "Pulumi.dev.yaml");
      const policy = objectOf(plan.resources.find((r) => r.type === "kubernetes:kyverno.io/v1:ClusterPolicy")!) as K8sObject & { spec: Record<string, unknown> & { rules: Record<string, unknown>[] } };
      expect(validateObject(policy)).toEqual([]);
      const typo = structuredClone(policy);
      typo.spec["validationFailureActon"] = "Enforce";
      expect(validateObject(typo).join("\n")).toContain("/spec must NOT have additional properties (validationFailureActon)");
      const deep = structuredClone(policy);
      deep.spec.rules[0]!["mach"] = {};
      expect(validateObject(deep).join("\n")).toContain("/spec/rules/0 must NOT have additional properties (mach)");
    });

    it("the Pod schema, on a pod KubeSpawner built", () => {
      const image = `registry.example/workbench/x@sha256:${"d".repeat(64)}`;
      const [r] = spawnPods({ singleuser: { profileList: [{ display_name: "X", slug: "x", kubespawner_override: { image } }] } }, [{ username: "alice" }]);
      const pod = r!.pod as unknown as K8sObject & { spec: { containers: Record<string, unknown>[] } };
      expect(validateObject(pod)).toEqual([]);
      pod.spec.containers[0]!["workdir"] = "/home/jovyan";
      expect(validateObject(pod).join("\n")).toContain("/spec/containers/0 must NOT have additional properties (workdir)");
    });
  });
});

describe.skipIf(UPSTREAM)("upstream schemas", () => {
  it.skip(`${skipReason()}`, () => {});
});
