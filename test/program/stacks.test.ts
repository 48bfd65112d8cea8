import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { RULES } from "../../policy/rules";
import { withPinnedHubImages } from "../support/chart-pins";
import { byName, byType, planConfig, ROOT, sharedPlans, transitiveDependencies } from "../support/harness";

const HEX = /@sha256:[0-9a-f]{64}$/;
// Each stack file is planned once for this file; the tests only read the plans (planConfig plans afresh).
const plans = sharedPlans();

describe("dev: image → scan → sign → admission → validation → hub → release tag", () => {
  it("scans then signs every image by digest, and only signed refs reach Kubernetes", async () => {
    const plan = await plans("dev", "Pulumi.dev.yaml");
    const images = byType(plan, "docker-build:index:Image").map((r) => r.name.replace(/-image$/, ""));
    expect(images).toHaveLength(13);
    for (const name of images) {
      const scan = byName(plan, `${name}-scan-trivy`);
      const sign = byName(plan, `${name}-sign-cosign`);
      expect(scan.dependencies).toContain(byName(plan, `${name}-image`).urn);
      expect(sign.dependencies).toContain(scan.urn);
      expect(String(sign.inputs["create"])).toMatch(/ \S+@sha256:[0-9a-f]{64}$/);
      // signing.cosignVersion (default v2.5.3, .github/tool-versions.env) is enforced by every sign and attest command.
      for (const step of ["sbom", "provenance"]) expect(String(byName(plan, `${name}-attest-${step}`).inputs["create"])).toContain("{ cosign version --json 2>/dev/null | grep -Eq '\"gitVersion\": *\"v2\\.5\\.3\"' || ");
      expect(String(sign.inputs["create"])).toMatch(/^\{ cosign version --json 2>\/dev\/null \| grep -Eq '"gitVersion": \*"v2\\\.5\\\.3"' \|\| /);
      expect((sign.inputs["environment"] as Record<string, string>)["REGISTRY_PASSWORD"]).toBe("[secret]");
    }
    const policy = byType(plan, "kubernetes:kyverno.io/v1:ClusterPolicy")[0]!;
    for (const job of byType(plan, "kubernetes:batch/v1:Job")) {
      const upstream = transitiveDependencies(plan, job.urn);
      const variant = String((job.inputs["metadata"] as { labels: Record<string, string> }).labels["workbench-images/variant"] ?? "");
      expect(upstream.has(policy.urn)).toBe(true);
      expect(upstream.has(byName(plan, `${variant}-sign-cosign`).urn)).toBe(true);
    }
  });

  it("lets prod's account pull (never push) and tags published digests release-* after the hub release", async () => {
    const plan = await plans("dev", "Pulumi.dev.yaml");
    const policies = byType(plan, "aws:ecr/repositoryPolicy:RepositoryPolicy");
    expect(policies).toHaveLength(13);
    expect(JSON.parse(String(policies[0]!.inputs["policy"]))).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "PullForPromotion",
          Effect: "Allow",
          Principal: { AWS: ["arn:aws:iam::444455556666:root"] },
          Action: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        },
      ],
    });
    const hubRelease = byName(plan, "jupyterhub-release");
    const tags = byType(plan, "command:local:Command").filter((c) => c.name.endsWith("-release-tag"));
    expect(tags.map((t) => t.name).sort()).toEqual(
      // Per-user images are published too (to their owner), so their digests are kept as well (issue #12).
      ["jupyter-agent-dev", "jupyter-fine-tuning", "jupyter-ml-cpu", "jupyter-ml-gpu", "ml-stack-jupyter", "universal", "user-h-baker-at-hertie-school-lan-thesis"]
        .map((v) => `${v}-release-tag`)
        .sort(),
    );
    for (const t of tags) {
      expect(transitiveDependencies(plan, t.urn).has(hubRelease.urn)).toBe(true);
      expect(String(t.inputs["create"])).toMatch(/:release-[0-9a-f]{12}/);
      expect(t.inputs["environment"]).toEqual({ RELEASE_REGISTRY_CREDS: "[secret]" });
    }
  });
});

describe("run-time gates (issue #14)", () => {
  it("runs each tier's notebooks after its gates, and every image's size check and smoke test before it is validated or published", async () => {
    const plan = await plans("dev", "Pulumi.dev.yaml");
    const jobs = byType(plan, "kubernetes:batch/v1:Job");
    const tiers = ["tier1", "tier2", "tier3"];
    expect(jobs.filter((j) => j.name.endsWith("-runtime-notebooks-job")).map((j) => j.name)).toEqual(tiers.map((t) => `notebook-validator-${t}-runtime-notebooks-job`));
    const validated = plan.outputs["validatedImages"] as Record<string, unknown>;
    for (const t of tiers) {
      const id = `notebook-validator-${t}`;
      const notebooks = byName(plan, `${id}-runtime-notebooks-job`);
      const upstream = transitiveDependencies(plan, notebooks.urn);
      for (const gate of [`${id}-scan-trivy`, `${id}-sign-cosign`, `${id}-runtime-size-skopeo`, `${id}-runtime-smoke-job`]) expect(upstream.has(byName(plan, gate).urn), gate).toBe(true);
      expect(Object.keys(validated)).toContain(id);
    }
    const hub = transitiveDependencies(plan, byName(plan, "jupyterhub-release").urn);
    const images = byType(plan, "docker-build:index:Image").map((r) => r.name.replace(/-image$/, ""));
    for (const id of images) {
      const size = byName(plan, `${id}-runtime-size-skopeo`);
      expect(String(size.inputs["create"])).toContain("skopeo");
      const gpu = byType(plan, "kubernetes:batch/v1:Job").some((j) => j.name.startsWith(`gpu-validation-${id}-`));
      // CPU images run their smoke test in a Job; GPU images inside their GPU check, which waits for the size check.
      if (!gpu) expect(transitiveDependencies(plan, byName(plan, `${id}-runtime-smoke-job`).urn).has(size.urn)).toBe(true);
      else expect(transitiveDependencies(plan, byName(plan, `gpu-validation-${id}-h100-job`).urn).has(size.urn)).toBe(true);
    }
    const catalog = plan.outputs["catalog"] as Array<{ name: string }>;
    for (const { name } of catalog) expect(hub.has(byName(plan, `${name}-runtime-size-skopeo`).urn), name).toBe(true);
    for (const name of ["jupyter-ml-cpu", "jupyter-agent-dev", "ml-stack-jupyter"]) expect(hub.has(byName(plan, `${name}-runtime-smoke-job`).urn), name).toBe(true);
  });
});

describe("chart sources", () => {
  it("installs the hub from an oci:// registry by chart reference, and from an https repository by name", async () => {
    const stack = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, Record<string, unknown>>;
    stack["workbench-images:jupyterhub"] = { ...stack["workbench-images:jupyterhub"], chartRepository: "oci://ghcr.io/org/charts/" };
    const oci = byName(await planConfig("dev", stack), "jupyterhub-release").inputs;
    // pulumi-kubernetes treats only an oci:// chart as OCI (helm_release.go resolveChartName); a repo URL gets index.yaml.
    expect([oci["chart"], oci["repositoryOpts"]]).toEqual(["oci://ghcr.io/org/charts/jupyterhub", undefined]);
    const https = byName(await plans("dev", "Pulumi.dev.yaml"), "jupyterhub-release").inputs;
    expect([https["chart"], https["repositoryOpts"]]).toEqual(["jupyterhub", { repo: "https://hub.jupyter.org/helm-chart/" }]);
  });
});

describe("the validation namespace has one owner", () => {
  it("is the first validation suite's even with no GPU image, so a stack's first GPU image never moves it", async () => {
    const stack = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, unknown>;
    stack["workbench-images:variants"] = Object.fromEntries(["universal", "ml-stack-ml", "jupyter-ml-gpu", "jupyter-fine-tuning"].map((v) => [v, { enabled: false }]));
    stack["workbench-images:users"] = [];
    const plan = await planConfig("dev", stack);
    const namespaces = byType(plan, "kubernetes:core/v1:Namespace").filter((n) => (n.inputs["metadata"] as { name: string }).name === "workbench-validation");
    expect(namespaces.map((n) => n.urn)).toEqual(["urn:pulumi:dev::workbench-images::workbench:validation:GpuValidationSuite$kubernetes:core/v1:Namespace::gpu-validation-namespace"]);
    const jobs = byType(plan, "kubernetes:batch/v1:Job");
    expect(jobs.filter((j) => j.name.startsWith("gpu-validation-"))).toEqual([]);
    for (const job of jobs) expect((job.inputs["metadata"] as { namespace: string }).namespace).toBe("workbench-validation");
    expect(jobs.length).toBe(11);
  });
});

describe("what a per-user image is built on (issue #11)", () => {
  it("builds the dev user's layer only on its base's digest after the base's scan, signature and every validation Job", async () => {
    const plan = await plans("dev", "Pulumi.dev.yaml");
    const user = "user-h-baker-at-hertie-school-lan-thesis";
    const upstream = transitiveDependencies(plan, byName(plan, `${user}-image`).urn);
    const baseJobs = byType(plan, "kubernetes:batch/v1:Job").filter((j) => j.name.startsWith("gpu-validation-jupyter-ml-gpu-"));
    expect(baseJobs.map((j) => j.name).sort()).toEqual(["gpu-validation-jupyter-ml-gpu-h100-job", "gpu-validation-jupyter-ml-gpu-l40s-job"]);
    for (const dependency of [...baseJobs, byName(plan, "jupyter-ml-gpu-sign-cosign"), byName(plan, "jupyter-ml-gpu-scan-trivy")]) {
      expect(upstream.has(dependency.urn)).toBe(true);
    }
    // Its own Jobs keep their names and run after the base's on each pool's lane.
    const own = byType(plan, "kubernetes:batch/v1:Job").filter((j) => j.name.startsWith(`gpu-validation-${user}-`));
    expect(own.map((j) => j.name).sort()).toEqual([`gpu-validation-${user}-h100-job`, `gpu-validation-${user}-l40s-job`]);
  });
});

describe("admission settings reach Kyverno and the policy (issue #11)", () => {
  it("annotates Kyverno's service account with the IAM role, accepts rotation keys, names the policy and sets the webhook timeout", async () => {
    const stack = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, unknown>;
    const oldKey = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEb2xkIGtleSBmb3IgYSByb3RhdGlvbiB0ZXN0IG9ubHkgMTIzNA==\n-----END PUBLIC KEY-----\n";
    stack["workbench-images:admission"] = {
      kyvernoServiceAccountRoleArn: "arn:aws:iam::111122223333:role/kyverno-ecr-read",
      additionalPublicKeysPem: [oldKey],
      policyName: "workbench-images-dev-signed",
      webhookTimeoutSeconds: 15,
    };
    const plan = await planConfig("dev", stack);
    const kyverno = byName(plan, "admission-kyverno").inputs["values"] as { admissionController: { rbac: { serviceAccount: { annotations: Record<string, string> } } } };
    expect(kyverno.admissionController.rbac.serviceAccount.annotations).toEqual({ "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/kyverno-ecr-read" });
    const policy = byType(plan, "kubernetes:kyverno.io/v1:ClusterPolicy")[0]!;
    expect((policy.inputs["metadata"] as { name: string }).name).toBe("workbench-images-dev-signed");
    const spec = policy.inputs["spec"] as { webhookConfiguration: { timeoutSeconds: number }; rules: Array<{ verifyImages: Array<{ attestors: unknown }> }> };
    expect(spec.webhookConfiguration.timeoutSeconds).toBe(15);
    expect(JSON.stringify(spec.rules[0]!.verifyImages[0]!.attestors)).toContain("b2xkIGtleSBmb3IgYSByb3RhdGlvbiB0ZXN0IG9ubHkgMTIzNA==");
  });
});

describe("a secret set with --secret --path inside jupyterhub (issue #13)", () => {
  it("keeps the whole Helm values a secret in the plan, never the value in clear", async () => {
    const stack = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, Record<string, unknown>>;
    const hub = stack["workbench-images:jupyterhub"] as { values: { hub: { config: Record<string, unknown> } } };
    hub.values.hub.config["GitHubOAuthenticator"] = { client_id: "abc", client_secret: { secure: "v1:AAAABBBBccccDDDD" } };
    const plan = await planConfig("dev", stack);
    expect(byName(plan, "jupyterhub-release").inputs["values"]).toBe("[secret]");
    expect(JSON.stringify(plan)).not.toContain("AAAABBBBccccDDDD");
  });
});

describe("removing a variant or a user from configuration (issue #11)", () => {
  it("leaves its ECR repository and images in AWS unless registry.forceDelete says otherwise", async () => {
    const dev = await plans("dev", "Pulumi.dev.yaml");
    const repositories = byType(dev, "aws:ecr/repository:Repository");
    expect(repositories).toHaveLength(13);
    for (const r of repositories) {
      expect(r.options?.retainOnDelete).toBe(true);
      expect(r.inputs["forceDelete"]).toBe(false);
    }
    const stack = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, Record<string, unknown>>;
    stack["workbench-images:registry"] = { ...stack["workbench-images:registry"], forceDelete: true };
    for (const r of byType(await planConfig("dev", stack), "aws:ecr/repository:Repository")) {
      expect(r.options?.retainOnDelete).toBeUndefined();
      expect(r.inputs["forceDelete"]).toBe(true);
    }
  });
});

describe("no hub that would serve the chart's sample image (issue #11)", () => {
  it("prod before its first promotion deploys no JupyterHub; with one, singleuser.image is that signed digest", async () => {
    const empty = await plans("prod", "Pulumi.prod.yaml");
    expect(empty.resources.filter((r) => r.name.startsWith("jupyterhub-"))).toEqual([]);
    const dev = await plans("dev", "Pulumi.dev.yaml");
    const values = byName(dev, "jupyterhub-release").inputs["values"] as { singleuser: { image: { name: string; tag: string } } };
    expect(values.singleuser.image.name).toBe("111122223333.dkr.ecr.us-east-1.amazonaws.com/workbench/jupyter-ml-cpu");
    expect(values.singleuser.image.tag).toMatch(/^build-[0-9a-f]{20}@sha256:[0-9a-f]{64}$/);
  });
});

describe("prod: promotes, never builds", () => {
  it("copies each promoted digest preserving it, re-signs with prod's key, and protects what must not be deleted", async () => {
    const stack = parse(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")).config as Record<string, unknown>;
    const digest = `sha256:${"ab".repeat(32)}`;
    stack["workbench-images:promotion"] = {
      from: "dev",
      images: {
        universal: { digest, source: `111122223333.dkr.ecr.us-east-1.amazonaws.com/workbench/universal@${digest}`, validatedPools: ["h100"] },
      },
    };
    const plan = await planConfig("prod", withPinnedHubImages(stack));
    expect(byType(plan, "docker-build:index:Image")).toEqual([]);
    const copy = byName(plan, "universal-copy");
    expect(String(copy.inputs["create"])).toContain("--all --preserve-digests");
    expect(String(copy.inputs["create"])).toContain(`docker://111122223333.dkr.ecr.us-east-1.amazonaws.com/workbench/universal@${digest}`);
    expect(String(copy.inputs["create"])).toContain("444455556666.dkr.ecr.us-east-1.amazonaws.com/workbench/universal:promoted-abababababab");
    expect(copy.inputs["triggers"]).toEqual([digest]);
    const sign = byName(plan, "universal-sign-cosign");
    expect(transitiveDependencies(plan, sign.urn).has(copy.urn)).toBe(true);
    expect(String(sign.inputs["create"])).toContain(`444455556666.dkr.ecr.us-east-1.amazonaws.com/workbench/universal@${digest}`);
    for (const name of ["universal-repository-ecr", "signing-key-key", "jupyterhub-namespace", "jupyterhub-release"]) {
      expect(byName(plan, name).options?.protect).toBe(true);
    }
    expect(byType(plan, "kubernetes:batch/v1:Job").map((j) => j.name)).toEqual(["gpu-validation-universal-h200-job"]);
    expect((plan.outputs["validatedImages"] as Record<string, { digest: string }>)["universal"]!.digest).toBe(digest);
  });
});

describe("local: no cloud", () => {
  it("runs its own registry on 127.0.0.1, validates in CPU mode and signs nothing", async () => {
    const plan = await plans("local", "Pulumi.local.yaml");
    expect(plan.resources.filter((r) => r.type.startsWith("aws:") || r.type === "pulumi:providers:aws")).toEqual([]);
    const container = byType(plan, "docker:index/container:Container")[0]!;
    expect(container.inputs["ports"]).toEqual([{ external: 5001, internal: 5000, ip: "127.0.0.1", protocol: "tcp" }]);
    expect(String(byType(plan, "docker:index/remoteImage:RemoteImage")[0]!.inputs["name"])).toMatch(HEX);
    for (const image of byType(plan, "docker-build:index:Image")) {
      expect(image.dependencies).toContain(container.urn);
      expect((image.inputs["tags"] as string[])[0]).toMatch(/^127\.0\.0\.1:5001\/workbench/);
    }
    const jobs = byType(plan, "kubernetes:batch/v1:Job").filter((j) => j.name.startsWith("gpu-validation-"));
    expect(jobs).toHaveLength(4);
    for (const job of jobs) {
      const c = (job.inputs["spec"] as { template: { spec: { containers: Array<{ command: string[]; image: string; resources?: unknown }> } } }).template.spec.containers[0]!;
      expect(c.command.slice(0, 7)).toEqual(["timeout", "--kill-after=30s", "900s", "python3", "/opt/workbench-checks/gpu_check.py", "--mode", "cpu"]);
      expect(c.image).toMatch(HEX);
      expect(JSON.stringify(c.resources ?? {})).not.toContain("nvidia.com/gpu");
    }
    // No scan, no signature, no attestation by cosign: only the size checks (skopeo against the local registry) and
    // the GPU reports written to files (no key to attest them with).
    const commands = byType(plan, "command:local:Command");
    expect(commands.filter((c) => !/-runtime-size-skopeo$|-reports-attest$/.test(c.name))).toEqual([]);
    for (const c of commands) expect(String(c.inputs["create"])).not.toMatch(/\b(cosign|trivy)\b/);
  });
});

describe("every stack passes the policy pack", () => {
  it.each(["local", "dev", "prod"])("%s: no rule reports a violation on any planned resource", async (stack) => {
    const plan = await plans(stack, `Pulumi.${stack}.yaml`);
    const violations = plan.resources.flatMap((r) => RULES.flatMap((rule) => rule.check(r.type, r.inputs).map((v) => `${rule.name} ${r.name}: ${v}`)));
    expect(violations).toEqual([]);
    // The rules do see what they check: the dev plan has ECR repositories, Jobs and Helm releases.
    if (stack === "dev") {
      expect(byType(plan, "aws:ecr/repository:Repository")).toHaveLength(13);
      // 10 GPU checks, 8 smoke tests (every CPU image), 3 notebook tiers.
      expect(byType(plan, "kubernetes:batch/v1:Job")).toHaveLength(21);
      expect(byType(plan, "kubernetes:helm.sh/v3:Release")).toHaveLength(2);
    }
  });
});

describe("pre-pulling (issue #6)", () => {
  it("pulls CPU images with the chart's puller and GPU images only on the pools they were validated on", async () => {
    const plan = await plans("dev", "Pulumi.dev.yaml");
    const values = byName(plan, "jupyterhub-release").inputs["values"] as { prePuller: { hook: unknown; continuous: unknown; extraImages: Record<string, { name: string; tag: string }> } };
    expect(values.prePuller.hook).toEqual({ enabled: false });
    expect(values.prePuller.continuous).toEqual({ enabled: true });
    expect(Object.keys(values.prePuller.extraImages).sort()).toEqual(["jupyter-agent-dev", "jupyter-ml-cpu", "ml-stack-jupyter"]);
    for (const [name, image] of Object.entries(values.prePuller.extraImages)) {
      expect(image.name).toBe(`111122223333.dkr.ecr.us-east-1.amazonaws.com/workbench/${name}`);
      expect(image.tag).toMatch(/^build-[0-9a-f]{20}@sha256:[0-9a-f]{64}$/);
    }
    const daemonSets = byType(plan, "kubernetes:apps/v1:DaemonSet");
    expect(daemonSets.map((d) => d.name)).toEqual(["jupyterhub-prepull-h100", "jupyterhub-prepull-l40s"]);
    for (const ds of daemonSets) {
      const spec = (ds.inputs["spec"] as { template: { spec: { nodeSelector: Record<string, string>; initContainers: Array<{ image: string }> } } }).template.spec;
      expect(spec.initContainers.map((c) => c.image.split("/").pop()!.split("@")[0]).sort()).toEqual(["jupyter-fine-tuning", "jupyter-ml-gpu", "universal"]);
      expect(spec.nodeSelector).toEqual({ "node.kubernetes.io/instance-type": ds.name.endsWith("h100") ? "p5.48xlarge" : "g6e.xlarge" });
    }
  });
});
