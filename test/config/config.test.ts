import { describe, expect, it } from "vitest";
import { parseStackConfig } from "../../config";
import { ConfigError } from "../../lib/problems";
import { ROOT } from "../support/harness";

const CATALOG = "test/fixtures/mini/images/catalog.yaml";
const DEV: Record<string, unknown> = {
  catalogPath: CATALOG,
  registry: { kind: "ecr", region: "eu-west-1", accountId: "111122223333", repositoryPrefix: "wb" },
  cluster: { context: "arn:aws:eks:eu-west-1:111122223333:cluster/ml-dev" },
  signing: { mode: "cosign-kms", keyAlias: "alias/wb-dev", signerRoleArns: ["arn:aws:iam::111122223333:role/deployer"] },
  gpuPools: [{ name: "h100", product: "NVIDIA-H100-80GB-HBM3", driverVersion: "570.133.20", gpusPerNode: 8 }],
};

function parse(stack: string, values: Record<string, unknown>, secretKeys: string[] = []) {
  const raw = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  return parseStackConfig({ project: "workbench-images", stack, projectRoot: ROOT, values: raw, secretKeys: new Set(secretKeys) });
}

function problems(stack: string, values: Record<string, unknown>, secretKeys: string[] = []): string {
  try {
    parse(stack, values, secretKeys);
  } catch (e) {
    expect(ConfigError.is(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("parseStackConfig", () => {
  it("parses a valid dev stack with defaults filled in", () => {
    const cfg = parse("dev", DEV);
    expect(cfg.environment).toBe("dev");
    expect(cfg.mode).toBe("build");
    expect(cfg.registry).toEqual({
      kind: "ecr",
      region: "eu-west-1",
      accountId: "111122223333",
      repositoryPrefix: "wb",
      lifecycle: { keepTagged: 30, untaggedExpireDays: 1 },
      forceDelete: false,
      pullAccountIds: [],
    });
    expect(cfg.validation).toEqual({
      namespace: "workbench-validation",
      mode: "gpu",
      matmulFraction: 0.7,
      bandwidthFraction: 0.8,
      deadlineSeconds: 900,
      pullMBps: 25,
      podStartSeconds: 120,
      backoffLimit: 0,
      shmSize: "8Gi",
    });
    expect(cfg.variants.map((v) => v.name)).toEqual(["app-cpu", "app-gpu"]);
    expect(Object.fromEntries(Object.entries(cfg.poolsByVariant).map(([k, v]) => [k, v.map((p) => p.name)]))).toEqual({ "app-gpu": ["h100"] });
    expect(cfg.gpuPools[0]!.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
  });

  it("lists every schema problem at once with key path, value and fix; a typo gets a did-you-mean", () => {
    expect(
      problems("dev", {
        ...DEV,
        registy: {},
        registry: { kind: "ecr", region: "eu-west-1", accountId: "1111", repositoryPrefix: "wb", regoin: "x" },
        signing: { mode: "cosign" },
        gpuPools: [{ name: "h100", product: "NVIDIA-H100-80GB-HBM3", driverVersion: "570.133.20", gpusPerNode: "8" }],
      }),
    ).toBe(
      [
        'Invalid configuration for stack "dev" (5 problems):',
        '  - workbench-images:registy: is not a setting of this program. Did you mean "registry"? Remove it or correct the spelling. (got {})',
        '  - workbench-images:registry.accountId: must be the 12-digit AWS account id, in quotes. (got "1111")',
        '  - workbench-images:registry.regoin: unknown key "regoin". Did you mean "region"? Remove it or correct the spelling. (got "x")',
        '  - workbench-images:gpuPools[0].gpusPerNode: must be a number. Write it without quotes. (got "8")',
        '  - workbench-images:signing.mode: needs mode: "cosign-kms" or mode: "none". (got "cosign")',
      ].join("\n"),
    );
  });

  it("refuses what an environment forbids: prod that builds, dev without signing or scanning, local on a remote cluster", () => {
    // No hub and no Kyverno of its own here, so only the mode is wrong (chart-image pins are tested below).
    expect(problems("prod", { ...DEV, mode: "build", admission: { installKyverno: false }, jupyterhub: { enabled: false } })).toBe(
      [
        'Invalid configuration for stack "prod" (1 problem):',
        '  - workbench-images:mode: is "build" on a prod stack. Prod never builds: it promotes digests that dev validated. Set mode: promote. (got "build")',
      ].join("\n"),
    );
    expect(problems("dev", { ...DEV, signing: { mode: "none" }, scan: { scanner: "none" } })).toBe(
      [
        'Invalid configuration for stack "dev" (2 problems):',
        '  - workbench-images:signing.mode: is "none" on the dev stack. Only the local stack may skip signing: set mode: cosign-kms with keyAlias and signerRoleArns. (got "none")',
        '  - workbench-images:scan.scanner: is "none" on the dev stack. Only the local stack may skip the scan gate: set scanner: trivy. (got "none")',
      ].join("\n"),
    );
    expect(
      problems("local", {
        catalogPath: CATALOG,
        registry: { kind: "local" },
        cluster: { context: "arn:aws:eks:eu-west-1:111122223333:cluster/ml-dev" },
        scan: { scanner: "none" },
      }),
    ).toBe(
      [
        'Invalid configuration for stack "local" (1 problem):',
        '  - workbench-images:cluster.context: must name a local cluster (kind-*, k3d-*, minikube, docker-desktop, rancher-desktop, orbstack, colima) on the local stack. Point it at your kind or k3d cluster, e.g. "kind-workbench". (got "arn:aws:eks:eu-west-1:111122223333:cluster/ml-dev")',
      ].join("\n"),
    );
  });

  it("refuses a chart image by tag on prod, warns on dev, and counts only images the stack's releases run (issue #11)", () => {
    const prod = { ...DEV, mode: "promote", admission: { installKyverno: true } };
    const lines = problems("prod", prod).split("\n");
    // Kyverno is installed (signing on); no hub (nothing promoted). kyverno's helm-test image is never run.
    expect(lines[0]).toBe('Invalid configuration for stack "prod" (6 problems):');
    expect(lines.slice(1).map((l) => /charts\.(\w+)\.images\["([^"]+)"\]/.exec(l)?.slice(1).join(" "))).toEqual([
      "kyverno admissionController.initContainer.image",
      "kyverno admissionController.container.image",
      "kyverno backgroundController.image",
      "kyverno cleanupController.image",
      "kyverno reportsController.image",
      "kyverno crds.migration.image",
    ]);
    expect(lines[2]).toBe(
      '  - images/chart-images.yaml: charts.kyverno.images["admissionController.container.image"]: has no digest, so the kyverno chart would run reg.kyverno.io/kyverno/kyverno:v1.15.2 by tag on this stack. Pin it: run `npm run pin-chart-images` where the registry is reachable, or append the digest that `skopeo inspect --raw docker://reg.kyverno.io/kyverno/kyverno:v1.15.2 | sha256sum` prints, as @sha256:<64 hex>. (got "reg.kyverno.io/kyverno/kyverno:v1.15.2")',
    );
    // A promoted published image brings the hub: its three images that run by tag join them.
    const promoted = { ...prod, admission: { installKyverno: false }, promotion: { images: { "app-cpu": { digest: `sha256:${"3".repeat(64)}`, source: `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-cpu@sha256:${"3".repeat(64)}` } } } };
    expect(problems("prod", promoted).split("\n").slice(1).map((l) => /images\["([^"]+)"\]/.exec(l)?.[1])).toEqual(["hub.image", "proxy.chp.image", "singleuser.networkTools.image"]);
    // Pinned through the stack's own values they pass; a block there by tag is refused with its value path.
    const pinned = { hub: { image: { name: "quay.io/jupyterhub/k8s-hub", tag: `4.4.0@sha256:${"1".repeat(64)}` } }, proxy: { chp: { image: { name: "quay.io/jupyterhub/configurable-http-proxy", tag: "5.2.0" } } }, singleuser: { cloudMetadata: { blockWithIptables: false } } };
    expect(problems("prod", { ...promoted, jupyterhub: { values: pinned } })).toBe(
      [
        'Invalid configuration for stack "prod" (1 problem):',
        '  - workbench-images:jupyterhub.values.proxy.chp.image: names an image by tag; every image that reaches Kubernetes must be pinned by digest. Set tag to "<tag>@sha256:<64 hex>" (skopeo inspect --raw docker://<image> | sha256sum), or remove the block to use images/chart-images.yaml\'s pin. (got "quay.io/jupyterhub/configurable-http-proxy:5.2.0")',
      ].join("\n"),
    );
    // dev: the same images are warnings, and the stack still plans.
    const dev = parse("dev", DEV);
    expect(dev.warnings.filter((w) => w.path.startsWith("images/chart-images.yaml")).map((w) => /images\["([^"]+)"\]/.exec(w.path)?.[1])).toEqual([
      "hub.image",
      "proxy.chp.image",
      "singleuser.networkTools.image",
      "admissionController.initContainer.image",
      "admissionController.container.image",
      "backgroundController.image",
      "cleanupController.image",
      "reportsController.image",
      "crds.migration.image",
    ]);
  });

  it("refuses a secret stored in plain text and never echoes its value", () => {
    const message = problems("dev", { ...DEV, kubeconfig: "apiVersion: v1\nclusters: [secret-stuff]" });
    expect(message).toBe(
      [
        'Invalid configuration for stack "dev" (1 problem):',
        "  - workbench-images:kubeconfig: holds a secret but is stored in plain text. Set it with `pulumi config set --secret workbench-images:kubeconfig …` (and remove the plain value).",
      ].join("\n"),
    );
    expect(problems("dev", { ...DEV, kubeconfig: { a: 1 } }, ["kubeconfig"])).toBe(
      ['Invalid configuration for stack "dev" (1 problem):', "  - workbench-images:kubeconfig: must be a string. (got [secret])"].join("\n"),
    );
  });

  it("checks the CUDA driver floor of every GPU variant on every pool unless the variant excludes the pool", () => {
    const pools = [...(DEV["gpuPools"] as object[]), { name: "a10g", product: "NVIDIA-A10G", driverVersion: "550.163.01" }];
    const message = problems("dev", { ...DEV, gpuPools: pools });
    expect(message.split("\n")).toHaveLength(2);
    expect(message).toContain("workbench-images:gpuPools[1].driverVersion: ");
    expect(message).toContain("app-gpu");
    expect(message).toContain("a10g");
    expect(message).toContain("12.8");
    expect(message).toContain("570.26");
    expect(message).toContain('(got "550.163.01")');
    const cfg = parse("dev", { ...DEV, gpuPools: pools, variants: { "app-gpu": { excludePools: ["a10g"] } } });
    expect(cfg.poolsByVariant["app-gpu"]!.map((p) => p.name)).toEqual(["h100"]);
  });

  it("derives user names and repositories, and refuses colliding logins, system ids and unknown bases", () => {
    const ok = parse("dev", {
      ...DEV,
      users: [{ login: "h.baker@hertie-school.lan", uid: 1722830498, gid: 1722830498, project: "thesis", baseVariant: "app-cpu" }],
    });
    expect(ok.users).toEqual([
      {
        login: "h.baker@hertie-school.lan",
        hubUsername: "h.baker@hertie-school.lan",
        uid: 1722830498,
        gid: 1722830498,
        project: "thesis",
        baseVariant: "app-cpu",
        sudo: false,
        username: "h-baker-at-hertie-school-lan",
        repositoryName: "wb-1722830498/thesis",
        id: "user-h-baker-at-hertie-school-lan-thesis",
      },
    ]);
    expect(
      problems("dev", {
        ...DEV,
        users: [
          { login: "h.baker@hertie-school.lan", uid: 999, gid: 1000, project: "thesis", baseVariant: "app-cpx" },
          { login: "H.Baker@Hertie-School.lan", uid: 2000, gid: 2000, project: "thesis", baseVariant: "app-cpu" },
        ],
      }),
    ).toBe(
      [
        'Invalid configuration for stack "dev" (4 problems):',
        "  - workbench-images:users[0].uid: is below 1000, the range of system accounts. Use the user's own UID (≥ 1000). (got 999)",
        '  - workbench-images:users[0].baseVariant: names no catalog variant. Did you mean "app-cpu"? (got "app-cpx")',
        '  - workbench-images:users[1].login: sanitizes to "h-baker-at-hertie-school-lan", the same username as users[0].login. Two users cannot share a Linux username: change one login. (got "H.Baker@Hertie-School.lan")',
        // JupyterHub lowercases usernames, so both logins are the same hub user.
        "  - workbench-images:users[1].hubUsername: is also users[0]'s hub username for project thesis: one hub user cannot own two people's images. Fix one of them. (got \"h.baker@hertie-school.lan\")",
      ].join("\n"),
    );
  });

  it("names the owner by hub username, checked against the hub's authenticator (GitHub logins)", () => {
    const github = { values: { hub: { config: { JupyterHub: { authenticator_class: "github" } } } } };
    const user = { login: "h.baker@hertie-school.lan", uid: 1722830498, gid: 1722830498, project: "thesis", baseVariant: "app-cpu" };
    expect(problems("dev", { ...DEV, jupyterhub: github, users: [user, { ...user, login: "j.doe", uid: 4000, gid: 4000, hubUsername: "-jdoe" }] })).toBe(
      [
        'Invalid configuration for stack "dev" (2 problems):',
        '  - workbench-images:users[0].login: is not a GitHub login (letters, digits and single hyphens, at most 39 characters), and the hub signs users in with GitHub (hub.config.JupyterHub.authenticator_class). Set users[].hubUsername to the owner\'s GitHub login. (got "h.baker@hertie-school.lan")',
        '  - workbench-images:users[1].hubUsername: is not a GitHub login (letters, digits and single hyphens, at most 39 characters), and the hub signs users in with GitHub (hub.config.JupyterHub.authenticator_class). Set users[].hubUsername to the owner\'s GitHub login. (got "-jdoe")',
      ].join("\n"),
    );
    // JupyterHub lowercases usernames (Authenticator.normalize_username), so the owner is stored lowercased.
    const cfg = parse("dev", { ...DEV, jupyterhub: github, users: [{ ...user, hubUsername: "HBaker-Hertie" }] });
    expect(cfg.users.map((u) => [u.login, u.hubUsername])).toEqual([["h.baker@hertie-school.lan", "hbaker-hertie"]]);
    const other = { ...user, login: "other", uid: 4000, gid: 4000 };
    expect(problems("dev", { ...DEV, users: [{ ...user, project: "a", hubUsername: "h baker" }, { ...user, hubUsername: "hbaker" }, { ...other, hubUsername: "HBaker" }] })).toBe(
      [
        'Invalid configuration for stack "dev" (2 problems):',
        "  - workbench-images:users[0].hubUsername: contains '/', whitespace or a control character, which no JupyterHub username has. Set users[].hubUsername to the owner's username on the hub. (got \"h baker\")",
        "  - workbench-images:users[2].hubUsername: is also users[1]'s hub username for project thesis: one hub user cannot own two people's images. Fix one of them. (got \"hbaker\")",
      ].join("\n"),
    );
  });

  it("refuses a per-user image over a GPU base with no pool to be validated on, and warns about such a variant", () => {
    const user = { login: "jdoe", uid: 4000, gid: 4000, project: "thesis", baseVariant: "app-gpu" };
    expect(problems("dev", { ...DEV, users: [user], variants: { "app-gpu": { excludePools: ["h100"] } } })).toBe(
      [
        'Invalid configuration for stack "dev" (1 problem):',
        '  - workbench-images:users[0].baseVariant: is a GPU variant with no pool on this stack to be validated on, and a per-user image builds only on a validated base. Add a compatible pool, or choose another base. (got "app-gpu")',
      ].join("\n"),
    );
    const cfg = parse("dev", { ...DEV, variants: { "app-gpu": { excludePools: ["h100"] } } });
    expect(cfg.warnings.filter((w) => w.path.includes("variants."))).toEqual([
      {
        path: "workbench-images:variants.app-gpu",
        message: "is a GPU variant with no compatible, non-excluded pool on this stack: it is built, scanned and signed but never validated, offered or promotable. Add a pool, or set variants.app-gpu.enabled: false.",
      },
    ]);
  });

  it("validates the stack's own JupyterHub values against the chart schema before anything is registered", () => {
    const message = problems("dev", { ...DEV, jupyterhub: { values: { hubb: {}, singleuser: { cpu: { limit: "lots" } } } } });
    expect(message.split("\n")[0]).toBe('Invalid configuration for stack "dev" (2 problems):');
    expect(message).toContain("workbench-images:jupyterhub.values.");
    expect(message).toContain("hubb");
    expect(message).toContain("lots");
  });
});
