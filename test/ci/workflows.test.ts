/**
 * The GitHub Actions workflows (issues 7 and 12, docs/ci.md): parsed with `yaml` and held to the rules that keep them
 * safe (who can see which secret, pinned actions and tools, previews that build nothing), docs/ci.md's tables held to
 * the workflows, plus the three shell scripts and the comment-posting script run for real against fakes. No network,
 * no GitHub.
 */
import { stackSchema } from "../../config/schema";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../lib/paths";

const ROOT = PROJECT_ROOT;
const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const SCRIPTS = path.join(ROOT, ".github", "scripts");
const TOOL_VERSIONS = path.join(ROOT, ".github", "tool-versions.env");
const MARKER = "<!-- workbench-images-plan -->";
const doc = (name: string): string => fs.readFileSync(path.join(ROOT, "docs", name), "utf8");

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  "runs-on"?: string;
  if?: string;
  uses?: string;
  needs?: string | string[];
  permissions?: unknown;
  environment?: string | { name: string };
  concurrency?: unknown;
  container?: unknown;
  strategy?: { matrix?: Record<string, unknown> };
  env?: Record<string, string>;
  secrets?: unknown;
  steps?: Step[];
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  permissions?: unknown;
  concurrency?: unknown;
  jobs: Record<string, Job>;
}

const FILES = fs.readdirSync(WORKFLOWS).sort();
const text = (file: string): string => fs.readFileSync(path.join(WORKFLOWS, file), "utf8");
const wf = (file: string): Workflow => parse(text(file)) as Workflow;
const steps = (w: Workflow): Step[] => Object.values(w.jobs).flatMap((j) => j.steps ?? []);
const job = (w: Workflow, id: string): Job => {
  const j = w.jobs[id];
  if (!j) throw new Error(`no job ${id}; jobs are ${Object.keys(w.jobs).join(", ")}`);
  return j;
};
/** A step as one readable word: the action it uses (without the pin), else its name, else its command. */
const stepKey = (st: Step): string => st.uses?.split("@")[0] ?? st.name ?? st.run ?? "?";
const stepUsing = (j: Job, action: string): Step => {
  const found = (j.steps ?? []).filter((st) => st.uses?.split("@")[0] === action);
  if (found.length !== 1) throw new Error(`expected one ${action} step, found ${found.length}`);
  return found[0] as Step;
};
const stepNamed = (j: Job, name: string): Step => {
  const found = (j.steps ?? []).find((st) => st.name === name);
  if (!found) throw new Error(`no step named ${name}`);
  return found;
};
/** The `secrets.X` names a job's definition mentions, sorted and unique. */
const secretsNamed = (j: Job): string[] =>
  [...new Set([...JSON.stringify(j).matchAll(/\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] as string))].sort();
/** Every `secrets.X` / `vars.X` a workflow file names, anywhere in its text (comments included). */
const contextNames = (file: string, ctx: "secrets" | "vars"): string[] =>
  [...new Set([...text(file).matchAll(new RegExp(`\\b${ctx}\\.([A-Za-z_][A-Za-z0-9_]*)`, "g"))].map((m) => m[1] as string))].sort();
/** Rows of the first markdown table after `heading` in `markdown`, as arrays of trimmed cells (header and rule skipped). */
function tableAfter(markdown: string, heading: string): string[][] {
  const at = markdown.indexOf(heading);
  if (at < 0) throw new Error(`no heading ${heading}`);
  const lines = markdown.slice(at).split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.slice(1, -1).split(" | ").map((c) => c.trim()));
  }
  return rows;
}
/** `.github/tool-versions.env` as a map: comments and blank lines skipped, everything else `KEY=VALUE`. */
function toolPins(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(TOOL_VERSIONS, "utf8").split("\n")) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (!m) throw new Error(`tool-versions.env: not KEY=VALUE: ${line}`);
    out[m[1] as string] = m[2] as string;
  }
  return out;
}
/** Every action pin in the workflows: action → "sha # version". */
function actionPins(): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const f of FILES) {
    for (const m of text(f).matchAll(/^\s*(?:- )?uses: ([\w.-]+\/[\w.-]+)@([0-9a-f]{40}) # (v[\d.]+)$/gm)) {
      pins[m[1] as string] = `${m[2]} # ${m[3]}`;
    }
  }
  return pins;
}

const tmpRoots: string[] = [];
const tmpDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-workflows-"));
  tmpRoots.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of tmpRoots) fs.rmSync(dir, { recursive: true, force: true });
});

describe("the workflow files", () => {
  it("are exactly these, and Dependabot keeps their pins current", () => {
    expect(parse(fs.readFileSync(path.join(ROOT, ".github", "dependabot.yml"), "utf8"))).toEqual({
      version: 2,
      updates: [
        {
          "package-ecosystem": "github-actions",
          directory: "/",
          schedule: { interval: "weekly" },
          groups: { actions: { patterns: ["*"] } },
        },
      ],
    });
    expect(FILES).toEqual([
      "deploy-dev.yml",
      "deploy-prod.yml",
      "plan-comment.yml",
      "plan.yml",
      "preview.yml",
      "promote.yml",
      "tests.yml",
    ]);
  });

  it("each sets least-privilege top-level permissions, and only these jobs widen them", () => {
    const perms = Object.fromEntries(FILES.map((f) => [f, wf(f).permissions]));
    expect(perms).toEqual({
      "deploy-dev.yml": { contents: "read" },
      "deploy-prod.yml": { contents: "read" },
      "plan-comment.yml": { actions: "read", "pull-requests": "write" },
      "plan.yml": { contents: "read" },
      "preview.yml": { contents: "read" },
      "promote.yml": { contents: "read" },
      "tests.yml": { contents: "read" },
    });
    const jobPerms = Object.fromEntries(
      FILES.flatMap((f) =>
        Object.entries(wf(f).jobs)
          .filter(([, j]) => j.permissions !== undefined)
          .map(([id, j]) => [`${f}#${id}`, j.permissions]),
      ),
    );
    expect(jobPerms).toEqual({
      "deploy-dev.yml#deploy": { contents: "read", "id-token": "write" },
      "deploy-prod.yml#tests": { contents: "read" },
      "deploy-prod.yml#deploy": { contents: "read", "id-token": "write" },
      "preview.yml#preview": { contents: "read", "id-token": "write", "pull-requests": "write" },
      "promote.yml#promote": { contents: "write", "pull-requests": "write", "id-token": "write" },
    });
  });

  it("pin every action to a full commit SHA with its version beside it, one pin per action", () => {
    const pins = new Map<string, Set<string>>();
    let parsedUses = 0;
    let lineUses = 0;
    for (const f of FILES) {
      const w = wf(f);
      parsedUses += steps(w).filter((s) => s.uses !== undefined).length;
      parsedUses += Object.values(w.jobs).filter((j) => j.uses !== undefined).length;
      for (const line of text(f).split("\n")) {
        if (!/^\s*(- )?uses:/.test(line)) continue;
        lineUses += 1;
        // A reusable workflow of this repository is read at the caller's own commit: nothing to pin.
        if (/^\s*(- )?uses: \.\/\.github\/workflows\/[\w-]+\.yml$/.test(line)) continue;
        const m = /^\s*(?:- )?uses: ([\w.-]+\/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$/.exec(line);
        expect(m, `${f}: ${line.trim()}`).not.toBeNull();
        const [, action, sha, version] = m as RegExpExecArray;
        pins.set(action as string, (pins.get(action as string) ?? new Set()).add(`${sha} # ${version}`));
      }
    }
    // Every `uses` the parser sees sits on a line of its own that the pattern above checked.
    expect(lineUses).toBe(parsedUses);
    // One pin per action across all files (Dependabot moves them together; see .github/dependabot.yml).
    expect([...pins].filter(([, s]) => s.size !== 1)).toEqual([]);
    expect([...pins.keys()].sort()).toEqual([
      "actions/checkout",
      "actions/download-artifact",
      "actions/github-script",
      "actions/setup-node",
      "actions/upload-artifact",
      "aquasecurity/setup-trivy",
      "aws-actions/configure-aws-credentials",
      "docker/setup-buildx-action",
      "docker/setup-qemu-action",
      "pulumi/actions",
      "sigstore/cosign-installer",
    ]);
  });

  it("pin the supply-chain installers to the release commits looked up for issue 12", () => {
    // From the actions' own repositories: the commit each release tag points at. setup-trivy v0.3.1 is also the commit
    // Aqua's trivy-action pins; its tags were moved by the attackers of 2026-03-19, so only a commit pin is safe.
    const pins = actionPins();
    expect({
      cosign: pins["sigstore/cosign-installer"],
      trivy: pins["aquasecurity/setup-trivy"],
      qemu: pins["docker/setup-qemu-action"],
      buildx: pins["docker/setup-buildx-action"],
    }).toEqual({
      cosign: "6f9f17788090df1f26f669e9d70d6ae9567deba6 # v4.1.2",
      trivy: "81e514348e19b6112ce2a7e3ecbafe19c1e1f567 # v0.3.1",
      qemu: "96fe6ef7f33517b61c61be40b68a1882f3264fb8 # v4.2.0",
      buildx: "37fe631027851001ddb9b187196cc803df7f5f0e # v4.3.0",
    });
  });

  it("are listed in docs/ci.md's pin table exactly as the workflows pin them", () => {
    const rows = tableAfter(doc("ci.md"), "## Pinned actions");
    const documented = Object.fromEntries(
      rows.map(([action, version, commit]) => [
        (action as string).replace(/`/g, ""),
        `${(commit as string).replace(/`/g, "")} # ${version}`,
      ]),
    );
    expect(documented).toEqual(actionPins());
    expect(rows.length).toBe(Object.keys(documented).length);
  });

  it("never put an expression inside a shell script (values reach scripts through env)", () => {
    const offenders = FILES.flatMap((f) =>
      steps(wf(f))
        .filter((s) => s.run !== undefined && s.run.includes("${{"))
        .map((s) => `${f}: ${s.name ?? s.run}`),
    );
    expect(offenders).toEqual([]);
  });

  it("never use pull_request_target", () => {
    expect(FILES.filter((f) => "pull_request_target" in wf(f).on)).toEqual([]);
  });

  it("give every job a timeout", () => {
    const missing = FILES.flatMap((f) =>
      Object.entries(wf(f).jobs)
        .filter(([, j]) => j.uses === undefined && !("timeout-minutes" in j))
        .map(([id]) => `${f}#${id}`),
    );
    expect(missing).toEqual([]);
  });

  it("run Pulumi with the policy pack, on the stacks each workflow owns", () => {
    const pulumiSteps = FILES.flatMap((f) =>
      steps(wf(f))
        .filter((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command !== undefined)
        .map((s) => ({ file: f, command: s.with?.command, stack: s.with?.["stack-name"], policy: s.with?.policyPacks })),
    );
    expect(pulumiSteps).toEqual([
      { file: "deploy-dev.yml", command: "up", stack: "dev", policy: "policy" },
      { file: "deploy-prod.yml", command: "up", stack: "prod", policy: "policy" },
      { file: "preview.yml", command: "preview", stack: "dev", policy: "policy" },
    ]);
  });
});

describe("tests.yml", () => {
  const w = wf("tests.yml");

  it("runs on PRs, pushes to main, and when deploy-prod calls it", () => {
    expect(w.on).toEqual({ pull_request: null, push: { branches: ["main"] }, workflow_call: null });
  });

  it("runs .ci/run as root in a privileged Debian bookworm container on Node 20", () => {
    const test = job(w, "test");
    expect(test.container).toEqual({ image: "debian:bookworm", options: "--privileged" });
    expect(test.steps?.find((s) => s.uses?.startsWith("actions/setup-node@"))?.with?.["node-version"]).toBe(20);
    expect(test.steps?.at(-1)?.run).toBe("bash .ci/run");
  });
});

describe("plan.yml (untrusted half)", () => {
  const w = wf("plan.yml");

  it("is named `plan`, the name plan-comment.yml listens for", () => {
    expect(w.name).toBe("plan");
    expect(wf("plan-comment.yml").on).toEqual({ workflow_run: { workflows: [w.name], types: ["completed"] } });
  });

  it("runs on pull_request only, reads contents only and never names a secret", () => {
    expect(Object.keys(w.on)).toEqual(["pull_request"]);
    expect(w.permissions).toEqual({ contents: "read" });
    expect(Object.values(w.jobs).map((j) => j.permissions)).toEqual([undefined]);
    expect(text("plan.yml")).not.toContain("secrets.");
  });

  it("plans both sides with the PR's script and hands over comment.md and pr-number", () => {
    const plan = job(w, "plan");
    expect(plan.steps?.find((s) => s.name === "Plan every stack on both sides and diff")?.run).toBe(
      'bash head/.github/scripts/offline-plan.sh base head "$RUNNER_TEMP/plan"',
    );
    const upload = plan.steps?.find((s) => s.with?.name === "plan-comment");
    expect(upload?.with).toEqual({
      name: "plan-comment",
      path: "${{ runner.temp }}/plan-comment/",
      "if-no-files-found": "error",
      "retention-days": 5,
    });
    expect(plan.env).toEqual({
      HEAD_SHA: "${{ github.event.pull_request.head.sha }}",
      PR_NUMBER: "${{ github.event.pull_request.number }}",
      STACKS: "local dev prod",
    });
  });
});

describe("plan-comment.yml (trusted half)", () => {
  const w = wf("plan-comment.yml");

  it("triggers on workflow_run only and never checks out or runs code", () => {
    expect(Object.keys(w.on)).toEqual(["workflow_run"]);
    const all = steps(w);
    expect(all.filter((s) => s.run !== undefined)).toEqual([]);
    expect(all.map((s) => s.uses?.split("@")[0])).toEqual(["actions/download-artifact", "actions/github-script"]);
    expect(text("plan-comment.yml")).not.toContain("actions/checkout");
  });

  it("downloads the artifact of the plan run that triggered it, and posts only what it downloaded", () => {
    expect(steps(w)[1]?.if).toBe("steps.download.outcome == 'success'");
    expect(steps(w)[0]?.with).toEqual({
      name: "plan-comment",
      path: "${{ runner.temp }}/plan-comment",
      "run-id": "${{ github.event.workflow_run.id }}",
      "github-token": "${{ github.token }}",
    });
  });
});

describe("who can see which secret", () => {
  const seen = (): Record<string, { environment: string | null; secrets: string[] }> =>
    Object.fromEntries(
      FILES.flatMap((f) =>
        Object.entries(wf(f).jobs).map(([id, j]) => [
          `${f}#${id}`,
          { environment: typeof j.environment === "object" ? j.environment.name : (j.environment ?? null), secrets: secretsNamed(j) },
        ]),
      ),
    );
  const DEPLOY = ["PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"];

  it("deploy secrets only in jobs bound to `dev` or `production`, preview secrets only in `preview`, none elsewhere", () => {
    // `dev` and `production` admit `main` only (docs/ci.md): a branch cannot run a job that reaches their secrets.
    expect(seen()).toEqual({
      "deploy-dev.yml#current": { environment: null, secrets: [] },
      "deploy-dev.yml#deploy": { environment: "dev", secrets: DEPLOY },
      "deploy-prod.yml#tests": { environment: null, secrets: [] },
      "deploy-prod.yml#deploy": { environment: "production", secrets: DEPLOY },
      "plan-comment.yml#comment": { environment: null, secrets: [] },
      "plan.yml#plan": { environment: null, secrets: [] },
      "preview.yml#preview": {
        environment: "preview",
        secrets: ["PULUMI_PREVIEW_ACCESS_TOKEN", "PULUMI_PREVIEW_CONFIG_PASSPHRASE"],
      },
      "promote.yml#promote": { environment: "dev", secrets: ["PROMOTE_TOKEN", ...DEPLOY] },
      "tests.yml#test": { environment: null, secrets: [] },
    });
  });

  it("docs/ci.md's table says exactly that", () => {
    const rows = tableAfter(doc("ci.md"), "### Who can see which secret");
    const documented = Object.fromEntries(
      rows.map(([jobCell, envCell, secretsCell]) => [
        (jobCell as string).replace(/`/g, ""),
        {
          environment: envCell === "none" ? null : (envCell as string).replace(/`/g, ""),
          secrets: [...(secretsCell as string).matchAll(/`([A-Z_]+)`/g)].map((m) => m[1] as string).sort(),
        },
      ]),
    );
    expect(rows.length).toBe(Object.keys(documented).length);
    expect(documented).toEqual(seen());
  });

  it("no job passes secrets on to a called workflow", () => {
    const passing = FILES.flatMap((f) =>
      Object.entries(wf(f).jobs)
        .filter(([, j]) => j.secrets !== undefined)
        .map(([id]) => `${f}#${id}`),
    );
    expect(passing).toEqual([]);
    expect(text("deploy-prod.yml")).not.toContain("secrets: inherit");
  });

  it("the preview names only its own secrets and variables: never a deploy secret or the deploy role", () => {
    expect(contextNames("preview.yml", "secrets")).toEqual(["PULUMI_PREVIEW_ACCESS_TOKEN", "PULUMI_PREVIEW_CONFIG_PASSPHRASE"]);
    expect(contextNames("preview.yml", "vars")).toEqual(["AWS_PREVIEW_ROLE_ARN", "AWS_REGION", "PULUMI_BACKEND_URL"]);
    expect(text("preview.yml")).not.toContain("AWS_DEPLOY_ROLE_ARN");
  });
});

describe("preview.yml", () => {
  const w = wf("preview.yml");
  const preview = job(w, "preview");
  const CONFIGURED = "steps.config.outputs.configured == 'true'";

  it("is one job on PRs from branches of this repository (not forks, not Dependabot), in the `preview` environment", () => {
    expect(w.on).toEqual({ pull_request: { types: ["opened", "synchronize", "reopened"] } });
    expect(Object.keys(w.jobs)).toEqual(["preview"]);
    expect(preview.if).toBe(
      "github.event.pull_request.head.repo.full_name == github.repository && github.actor != 'dependabot[bot]'",
    );
    expect(preview.environment).toBe("preview");
    expect(preview.permissions).toEqual({ contents: "read", "id-token": "write", "pull-requests": "write" });
    expect(preview.strategy).toBeUndefined();
    expect(preview.env).toBeUndefined();
  });

  it("checks its own configuration first and runs nothing else unless that passed", () => {
    expect(preview.steps?.map(stepKey)).toEqual([
      "actions/checkout",
      "Check the preview configuration",
      "actions/setup-node",
      "Install dependencies (no install scripts)",
      "aws-actions/configure-aws-credentials",
      "pulumi/actions",
    ]);
    const check = stepNamed(preview, "Check the preview configuration");
    expect(check.id).toBe("config");
    expect(check.run).toBe("bash .github/scripts/check-deploy-config.sh preview");
    expect(check.env).toEqual({
      PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}",
      PULUMI_BACKEND_URL: "${{ vars.PULUMI_BACKEND_URL }}",
      AWS_ROLE_ARN: "${{ vars.AWS_PREVIEW_ROLE_ARN }}",
      AWS_REGION: "${{ vars.AWS_REGION }}",
    });
    expect(preview.steps?.map((st) => st.if ?? null)).toEqual([null, null, CONFIGURED, CONFIGURED, CONFIGURED, CONFIGURED]);
  });

  it("assumes the read-only preview role, with no fallback to the deploy role", () => {
    expect(stepUsing(preview, "aws-actions/configure-aws-credentials").with).toEqual({
      "role-to-assume": "${{ vars.AWS_PREVIEW_ROLE_ARN }}",
      "aws-region": "${{ vars.AWS_REGION }}",
    });
  });

  it("installs the branch's dependencies without install scripts and without a dependency cache", () => {
    expect(stepNamed(preview, "Install dependencies (no install scripts)").run).toBe(
      "npm ci --ignore-scripts --no-audit --no-fund\n" +
        "if [[ -f policy/package-lock.json ]]; then npm ci --ignore-scripts --no-audit --no-fund --prefix policy; fi\n",
    );
    expect(stepUsing(preview, "actions/setup-node").with).toEqual({ "node-version": 20, "package-manager-cache": false });
  });

  it("previews dev only, and passes nothing that would build images or write the build cache", () => {
    const pulumi = stepUsing(preview, "pulumi/actions");
    // No `config-map`, `refresh`, `target` or extra arguments; no environment beyond the preview's own two secrets.
    expect(pulumi.with).toEqual({
      command: "preview",
      "stack-name": "dev",
      "cloud-url": "${{ vars.PULUMI_BACKEND_URL }}",
      diff: true,
      policyPacks: "policy",
      "comment-on-pr": true,
      "comment-on-summary": true,
    });
    expect(pulumi.env).toEqual({
      PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}",
      PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_PREVIEW_CONFIG_PASSPHRASE }}",
    });
    // Nothing to build with either: no QEMU, no buildx builder, no registry login.
    expect(preview.steps?.filter((st) => st.uses?.startsWith("docker/"))).toEqual([]);
  });
});

describe("workflows that run a PR's code", () => {
  it("install its dependencies without install scripts", () => {
    const npmCi = ["plan.yml", "preview.yml"].flatMap((f) =>
      steps(wf(f)).flatMap((st) => (st.run ?? "").match(/npm ci[^\n;]*/g) ?? []),
    );
    expect(npmCi).toEqual([
      "npm ci --ignore-scripts --no-audit --no-fund",
      "npm ci --ignore-scripts --no-audit --no-fund",
      "npm ci --ignore-scripts --no-audit --no-fund",
      "npm ci --ignore-scripts --no-audit --no-fund --prefix policy",
    ]);
  });

  it("plan prod only offline: plan.yml's mock-runtime plan covers it, preview.yml never names it", () => {
    expect(job(wf("plan.yml"), "plan").env?.STACKS).toBe("local dev prod");
    const previewed = steps(wf("preview.yml"))
      .filter((st) => st.uses?.startsWith("pulumi/actions@"))
      .map((st) => st.with?.["stack-name"]);
    expect(previewed).toEqual(["dev"]);
  });
});

describe("deploy workflows", () => {
  const dev = job(wf("deploy-dev.yml"), "deploy");
  const prod = job(wf("deploy-prod.yml"), "deploy");
  const INSTALL_TOOLS = [
    "Read the pinned tool versions",
    "sigstore/cosign-installer",
    "aquasecurity/setup-trivy",
    "Check the installed tool versions",
  ];

  it("deploy-dev waits for a successful tests run of a push to main, one deploy at a time", () => {
    const w = wf("deploy-dev.yml");
    expect(w.on).toEqual({ workflow_run: { workflows: ["tests"], types: ["completed"], branches: ["main"] } });
    expect(wf("tests.yml").name).toBe("tests");
    expect(w.concurrency).toEqual({ group: "deploy-dev", "cancel-in-progress": false });
    expect(dev.needs).toBe("current");
    expect(dev.steps?.[0]?.with?.ref).toBe("${{ github.event.workflow_run.head_sha }}");
  });

  it("deploy-prod runs when Pulumi.prod.yaml lands on main, after the tests, behind `production`", () => {
    const w = wf("deploy-prod.yml");
    expect(w.on).toEqual({ push: { branches: ["main"], paths: ["Pulumi.prod.yaml"] } });
    expect(w.concurrency).toEqual({ group: "deploy-prod", "cancel-in-progress": false });
    expect(job(w, "tests").uses).toBe("./.github/workflows/tests.yml");
    expect(prod.needs).toBe("tests");
    expect(prod.environment).toBe("production");
  });

  it("deploy-dev installs the pinned tools, then QEMU and a buildx builder, all before credentials and `pulumi up`", () => {
    expect(dev["runs-on"]).toBe("ubuntu-24.04"); // amd64: arm64 is the platform that needs emulation
    expect(dev.steps?.map(stepKey)).toEqual([
      "actions/checkout",
      "Check the configuration",
      ...INSTALL_TOOLS,
      "docker/setup-qemu-action",
      "docker/setup-buildx-action",
      "actions/setup-node",
      "Install dependencies",
      "aws-actions/configure-aws-credentials",
      "pulumi/actions",
    ]);
  });

  it("deploy-prod installs the same tools; it builds nothing, so it sets up no QEMU and no builder", () => {
    expect(prod.steps?.map(stepKey)).toEqual([
      "actions/checkout",
      "Check the configuration",
      ...INSTALL_TOOLS,
      "actions/setup-node",
      "Install dependencies",
      "aws-actions/configure-aws-credentials",
      "pulumi/actions",
    ]);
  });

  it("both install trivy and cosign with the same steps, the versions read from .github/tool-versions.env", () => {
    const install = (j: Job): Step[] => (j.steps ?? []).slice(2, 2 + INSTALL_TOOLS.length);
    expect(install(prod)).toEqual(install(dev));
    expect(install(dev)).toEqual([
      { name: "Read the pinned tool versions", id: "tools", run: "bash .github/scripts/supply-chain-tools.sh pins" },
      {
        uses: "sigstore/cosign-installer@6f9f17788090df1f26f669e9d70d6ae9567deba6",
        with: { "cosign-release": "${{ steps.tools.outputs.cosign }}" },
      },
      {
        uses: "aquasecurity/setup-trivy@81e514348e19b6112ce2a7e3ecbafe19c1e1f567",
        with: { version: "${{ steps.tools.outputs.trivy }}", cache: false },
      },
      { name: "Check the installed tool versions", run: "bash .github/scripts/supply-chain-tools.sh verify" },
    ]);
  });

  it("QEMU emulates exactly the non-native platforms the catalog builds, from a binfmt image pinned by digest", () => {
    const catalog = parse(fs.readFileSync(path.join(ROOT, "images", "catalog.yaml"), "utf8")) as {
      variants: { platforms?: string[] }[];
    };
    // A variant without `platforms` builds linux/amd64 only (the catalog schema's default).
    const foreign = [...new Set(catalog.variants.flatMap((v) => v.platforms ?? ["linux/amd64"]))]
      .filter((p) => p !== "linux/amd64")
      .map((p) => p.replace(/^linux\//, ""))
      .sort();
    expect(foreign).toEqual(["arm64"]);
    expect(stepUsing(dev, "docker/setup-qemu-action").with).toEqual({
      image: "docker.io/tonistiigi/binfmt:qemu-v10.2.3@sha256:400a4873b838d1b89194d982c45e5fb3cda4593fbfd7e08a02e76b03b21166f0",
      platforms: foreign.join(","),
      "cache-image": false,
    });
  });

  it("buildx makes a docker-container builder the current one, with BuildKit pinned by digest and no cache", () => {
    expect(stepUsing(dev, "docker/setup-buildx-action").with).toEqual({
      name: "workbench-images",
      driver: "docker-container",
      "driver-opts": "image=moby/buildkit:v0.33.1@sha256:cec9f139f45e93c5c69c60f8b07cfad9f43f4ef6b6a6cd917527fea5ff2e3dea",
      use: true,
      "cache-binary": false,
    });
  });

  it("docs/ci.md lists the two images pinned by digest exactly as the dev job uses them", () => {
    const rows = tableAfter(doc("ci.md"), "Two container images run in the dev deploy job");
    const refs = rows.map(([image, tag, digest]) => `${image}:${tag}@${digest}`.replace(/`/g, ""));
    expect(refs).toEqual([
      stepUsing(dev, "docker/setup-qemu-action").with?.image,
      (stepUsing(dev, "docker/setup-buildx-action").with?.["driver-opts"] as string).replace(/^image=/, ""),
    ]);
  });

  it("each live job checks its configuration against the environment whose secrets it uses", () => {
    expect({
      dev: stepNamed(dev, "Check the configuration").run,
      prod: stepNamed(prod, "Check the configuration").run,
      promote: stepNamed(job(wf("promote.yml"), "promote"), "Check the configuration").run,
    }).toEqual({
      dev: "bash .github/scripts/check-deploy-config.sh require dev",
      prod: "bash .github/scripts/check-deploy-config.sh require production",
      promote: "bash .github/scripts/check-deploy-config.sh require dev",
    });
  });
});

describe("supply-chain tool versions", () => {
  it("are pinned once, in .github/tool-versions.env", () => {
    expect(toolPins()).toEqual({ COSIGN_VERSION: "v2.5.3", TRIVY_VERSION: "v0.72.0" });
    // The installers take the pins step's outputs (above); no workflow writes a tool version of its own.
    const literal = FILES.filter((f) => /^\s*(cosign-release|version): ['"]?v?\d/m.test(text(f)));
    expect(literal).toEqual([]);
  });

  it("are the versions docs/ci.md and docs/supply-chain.md name", () => {
    const pins = toolPins();
    const expected = [
      ["Trivy", `\`${pins.TRIVY_VERSION}\``],
      ["cosign", `\`${pins.COSIGN_VERSION}\``],
    ];
    expect(tableAfter(doc("ci.md"), "## Supply-chain tools in the deploy jobs")).toEqual(expected);
    expect(tableAfter(doc("supply-chain.md"), "### Tool versions")).toEqual(expected);
  });

  it("are the cosign version every sign command requires by default (signing.cosignVersion)", () => {
    const parsed = stackSchema.shape.signing.parse({ mode: "cosign-kms", keyAlias: "alias/x", signerRoleArns: ["arn:aws:iam::111122223333:role/r"] });
    expect(parsed).toMatchObject({ cosignVersion: toolPins().COSIGN_VERSION });
  });
});

/** A stand-in for npm that checks the CLI contract of `npm run plan` / `plan:diff` and answers from marker files. */
const FAKE_NPM = `#!/usr/bin/env bash
set -u
[[ $1 == run && $2 == --silent && $4 == -- ]] || { echo "fake npm: unexpected args: $*" >&2; exit 90; }
script=$3; shift 4
side=$(basename "$PWD")
case $script in
  plan)
    [[ $# -eq 6 && $1 == --stack && $3 == --format && $4 == json && $5 == --out ]] || { echo "fake plan: bad args: $*" >&2; exit 91; }
    if [[ -f .plan-exit-$2 ]]; then cat ".plan-stderr-$2" >&2; exit "$(cat ".plan-exit-$2")"; fi
    printf '%s:%s' "$side" "$2" >"$6" ;;
  plan:diff)
    [[ $# -eq 2 ]] || { echo "fake diff: bad args: $*" >&2; exit 92; }
    stack=$(cut -d: -f2 "$2")
    if [[ -f .diff-exit-$stack ]]; then echo "diff blew up" >&2; exit "$(cat ".diff-exit-$stack")"; fi
    [[ -f .diff-empty-$stack ]] && exit 0
    printf '**Changed** \`%s\` → \`%s\`\\n' "$(cat "$1")" "$(cat "$2")" ;;
  *) echo "fake npm: unknown script $script" >&2; exit 93 ;;
esac
`;

function runOfflinePlan(setup: (base: string, head: string) => void, stacks: string) {
  const dir = tmpDir();
  const base = path.join(dir, "base");
  const head = path.join(dir, "head");
  const bin = path.join(dir, "bin");
  for (const d of [base, head, bin]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(bin, "npm"), FAKE_NPM, { mode: 0o755 });
  setup(base, head);
  const res = spawnSync("bash", [path.join(SCRIPTS, "offline-plan.sh"), base, head, path.join(dir, "out")], {
    encoding: "utf8",
    env: {
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      STACKS: stacks,
      BASE_SHA: "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      MERGE_SHA: "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
      HEAD_SHA: "3333333ccccccccccccccccccccccccccccccccc",
      RUN_URL: "https://github.example/o/r/actions/runs/9",
    },
  });
  const comment = fs.readFileSync(path.join(dir, "out", "comment.md"), "utf8");
  return { status: res.status, stderr: res.stderr, comment };
}

const touch = (dir: string, name: string, content = ""): void => fs.writeFileSync(path.join(dir, name), content);

describe("offline-plan.sh", () => {
  const header =
    `${MARKER}\n## Offline plan\n\n` +
    "Base `1111111` → merge `2222222` (PR head `3333333`). Planned under Pulumi's mock runtime with no cloud " +
    "credentials: this is what the program declares, not what a live `pulumi preview` would change. " +
    "[Workflow run](https://github.example/o/r/actions/runs/9).\n";

  it("writes one section per stack and fails when the PR's plan or diff fails", () => {
    const { status, comment, stderr } = runOfflinePlan((base, head) => {
      for (const s of ["local", "qa", "dev", "prod", "perf", "old"]) touch(base, `Pulumi.${s}.yaml`);
      for (const s of ["local", "qa", "dev", "prod", "perf", "new"]) touch(head, `Pulumi.${s}.yaml`);
      touch(head, ".plan-exit-dev", "2");
      touch(head, ".plan-stderr-dev", "\u001b[31mworkbench:gpuPools[0].name: got \"<GPU>\" & ```; use a DNS label\u001b[0m\n");
      touch(base, ".plan-exit-prod", "1");
      touch(base, ".plan-stderr-prod", "Cannot find module './config'\n");
      touch(head, ".diff-empty-qa");
      touch(head, ".diff-exit-perf", "3");
    }, "local qa dev prod perf new old none");
    expect(stderr).toBe("");
    expect(status).toBe(1);
    expect(comment).toBe(
      header +
        "\n### Stack `local`\n\n**Changed** `base:local` → `head:local`\n" +
        "\n### Stack `qa`\n\nNo changes.\n" +
        "\n### Stack `dev`\n\n:x: **The stack configuration is invalid** (`npm run plan` exited 2):\n\n" +
        "<pre>\nworkbench:gpuPools[0].name: got \"&lt;GPU&gt;\" &amp; ```; use a DNS label\n</pre>\n" +
        "\n### Stack `prod`\n\n:warning: The base commit does not plan (exit 1), so there is nothing to compare with. " +
        "This PR plans cleanly.\n\n<pre>\nCannot find module './config'\n</pre>\n" +
        "\n### Stack `perf`\n\n:x: **`npm run plan:diff` failed** (exit 3):\n\n<pre>\ndiff blew up\n</pre>\n" +
        "\n### Stack `new`\n\nNew stack in this PR: there is no base plan to compare with. It plans cleanly.\n" +
        "\n### Stack `old`\n\nThis PR deletes `Pulumi.old.yaml`: the stack is no longer planned.\n" +
        "\n### Stack `none`\n\nNo `Pulumi.none.yaml` on either side: skipped.\n",
    );
  });

  it("exits 0 when every PR plan and diff succeeds", () => {
    const { status, comment } = runOfflinePlan((base, head) => {
      for (const dir of [base, head]) for (const s of ["local", "dev", "prod"]) touch(dir, `Pulumi.${s}.yaml`);
    }, "local dev prod");
    expect(status).toBe(0);
    expect(comment).toBe(
      header +
        "\n### Stack `local`\n\n**Changed** `base:local` → `head:local`\n" +
        "\n### Stack `dev`\n\n**Changed** `base:dev` → `head:dev`\n" +
        "\n### Stack `prod`\n\n**Changed** `base:prod` → `head:prod`\n",
    );
  });
});

describe("check-deploy-config.sh", () => {
  const run = (args: string[], env: Record<string, string>) => {
    const out = path.join(tmpDir(), "github-output");
    const res = spawnSync("bash", [path.join(SCRIPTS, "check-deploy-config.sh"), ...args], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", GITHUB_OUTPUT: out, ...env },
    });
    return { status: res.status, stdout: res.stdout, output: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "" };
  };
  const all = { PULUMI_ACCESS_TOKEN: "pul-x", AWS_ROLE_ARN: "arn:aws:iam::1:role/r", AWS_REGION: "us-east-1" };

  it("require: fails on the one missing item, naming the environment to set it on", () => {
    expect(run(["require", "production"], { ...all, AWS_REGION: "" })).toEqual({
      status: 1,
      stdout:
        "::error::Not configured: variable AWS_REGION. Set it on the `production` environment (Settings → Environments); " +
        "see docs/ci.md.\n",
      output: "configured=false\n",
    });
  });

  it("require: names the deploy role and the Pulumi backend when they are missing", () => {
    expect(run(["require", "dev"], { AWS_REGION: "us-east-1" })).toEqual({
      status: 1,
      stdout:
        "::error::Not configured: secret PULUMI_ACCESS_TOKEN (Pulumi Cloud) or variable PULUMI_BACKEND_URL " +
        "(self-managed backend). Set it on the `dev` environment (Settings → Environments); see docs/ci.md.\n" +
        "::error::Not configured: variable AWS_DEPLOY_ROLE_ARN (the IAM role assumed through GitHub OIDC). " +
        "Set it on the `dev` environment (Settings → Environments); see docs/ci.md.\n",
      output: "configured=false\n",
    });
  });

  it("accepts a self-managed backend URL instead of a Pulumi Cloud token", () => {
    const { PULUMI_ACCESS_TOKEN: _unused, ...rest } = all;
    expect(run(["require", "dev"], { ...rest, PULUMI_BACKEND_URL: "s3://state/workbench" })).toEqual({
      status: 0,
      stdout: "",
      output: "configured=true\n",
    });
  });

  it("preview: a repository with nothing set up for previews gets a notice and configured=false, not a failure", () => {
    expect(run(["preview"], {})).toEqual({
      status: 0,
      stdout:
        "::notice::Live preview skipped: nothing is configured for it (secret PULUMI_PREVIEW_ACCESS_TOKEN or variable " +
        "PULUMI_BACKEND_URL, variable AWS_PREVIEW_ROLE_ARN, variable AWS_REGION, on the `preview` environment). " +
        "The offline plan (plan.yml) still runs; see docs/ci.md.\n",
      output: "configured=false\n",
    });
  });

  it("preview: without the read-only role, exactly one error naming AWS_PREVIEW_ROLE_ARN, and the job fails", () => {
    // What a repository set up for deploys but not for previews gives preview.yml: its region and backend, no role.
    expect(run(["preview"], { PULUMI_BACKEND_URL: "s3://state/workbench", AWS_REGION: "us-east-1" })).toEqual({
      status: 1,
      stdout:
        "::error::Not configured: variable AWS_PREVIEW_ROLE_ARN (a read-only IAM role for previews; the deploy role is " +
        "never used for unmerged code). Set it on the `preview` environment (Settings → Environments); see docs/ci.md.\n",
      output: "configured=false\n",
    });
  });

  it("preview: configured when the preview's own token, role and region are set", () => {
    expect(run(["preview"], all)).toEqual({ status: 0, stdout: "", output: "configured=true\n" });
  });

  it("rejects an unknown mode (the old `gate` included) and `require` without a valid environment", () => {
    expect([run(["gate"], all), run(["require"], all), run(["require", "Prod Env"], all)].map((r) => [r.status, r.output])).toEqual([
      [64, ""],
      [64, ""],
      [64, ""],
    ]);
  });
});

describe("supply-chain-tools.sh", () => {
  const which = (cmd: string): string => {
    const res = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
    if (res.status !== 0) throw new Error(`${cmd} is not on PATH`);
    return res.stdout.trim();
  };
  const BASH = which("bash");
  const pins = toolPins();

  /** Runs the script with a PATH that holds only the tools it needs and the given fakes (no real cosign or trivy). */
  const run = (mode: string, opts: { file?: string; fakes?: Record<string, string> } = {}) => {
    const dir = tmpDir();
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    for (const tool of ["sed", "dirname"]) fs.symlinkSync(which(tool), path.join(bin, tool));
    for (const [name, body] of Object.entries(opts.fakes ?? {})) {
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    const out = path.join(dir, "github-output");
    const res = spawnSync(BASH, [path.join(SCRIPTS, "supply-chain-tools.sh"), mode], {
      encoding: "utf8",
      env: { PATH: bin, GITHUB_OUTPUT: out, ...(opts.file !== undefined ? { TOOL_VERSIONS_FILE: opts.file } : {}) },
    });
    return {
      status: res.status,
      stdout: res.stdout,
      stderr: res.stderr,
      output: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "",
      bin,
    };
  };
  // What the real tools print: cosign's release-utils banner and table, trivy's version block.
  const COSIGN_253 = "printf 'cosign: A tool for Container Signing\\n\\nGitVersion:    v2.5.3\\nGitCommit:     0000000\\n'";
  const TRIVY_0720 = "printf 'Version: 0.72.0\\nVulnerability DB:\\n  Version: 2\\n'";

  it("pins: hands the pinned versions to the installers' inputs", () => {
    expect(run("pins")).toMatchObject({
      status: 0,
      stdout: `Pinned: cosign ${pins.COSIGN_VERSION}, trivy ${pins.TRIVY_VERSION} (${TOOL_VERSIONS}).\n`,
      output: `cosign=${pins.COSIGN_VERSION}\ntrivy=${pins.TRIVY_VERSION}\n`,
    });
  });

  it("pins: refuses a file with anything but the two KEY=vX.Y.Z lines, naming each problem and writing no output", () => {
    const file = path.join(tmpDir(), "pins.env");
    fs.writeFileSync(file, "# ok\nCOSIGN_VERSION=2.5.3\nTRIVY_VERSION=v0.72.0\nTRIVY_VERSION=v0.72.1\nexport FOO=1\n");
    expect(run("pins", { file })).toMatchObject({
      status: 1,
      stdout:
        `::error::${file}: line 2: COSIGN_VERSION must be a release tag such as v1.2.3, got '2.5.3'\n` +
        `::error::${file}: line 4: TRIVY_VERSION is set twice\n` +
        `::error::${file}: line 5: expected COSIGN_VERSION=vX.Y.Z or TRIVY_VERSION=vX.Y.Z, got 'export FOO=1'\n` +
        `::error::${file}: COSIGN_VERSION is missing\n`,
      output: "",
    });
  });

  it("verify: passes when cosign and trivy on PATH are exactly the pinned versions", () => {
    expect(run("verify", { fakes: { cosign: COSIGN_253, trivy: TRIVY_0720, skopeo: "exit 0" } })).toMatchObject({
      status: 0,
      stdout: "cosign v2.5.3 and trivy v0.72.0 are on PATH, as pinned, and skopeo.\n",
    });
  });

  it("verify: fails on another version, and on a tool that prints nothing or fails", () => {
    const r = run("verify", {
      fakes: { cosign: "printf 'GitVersion:    v3.0.6\\n'", trivy: "exit 3", skopeo: "exit 0" },
    });
    expect(r).toMatchObject({
      status: 1,
      stdout:
        `::error::cosign on PATH (${r.bin}/cosign) is 'v3.0.6', but ${TOOL_VERSIONS} pins v2.5.3.\n` +
        `::error::trivy on PATH (${r.bin}/trivy) is '', but ${TOOL_VERSIONS} pins v0.72.0.\n`,
    });
  });

  it("verify: fails when a tool is not on PATH at all", () => {
    expect(run("verify", { fakes: { cosign: COSIGN_253 } })).toMatchObject({
      status: 1,
      stdout:
        "::error::trivy is not on PATH; the setup-trivy step should have put v0.72.0 there.\n" +
        "::error::skopeo is not on PATH; the size gates need it (apt-get install skopeo).\n",
    });
  });

  it("rejects an unknown mode", () => {
    expect(run("install").status).toBe(64);
  });
});

describe(".github/scripts", () => {
  const scripts = fs.readdirSync(SCRIPTS).sort();

  it("are these three", () => {
    expect(scripts).toEqual(["check-deploy-config.sh", "offline-plan.sh", "supply-chain-tools.sh"]);
  });

  for (const script of scripts) {
    it(`${script} passes ShellCheck with no findings`, () => {
      // --norc keeps a developer's ~/.shellcheckrc from relaxing the check; .ci/run installs shellcheck.
      const res = spawnSync("shellcheck", ["--norc", "-x", "--format=gcc", path.join(SCRIPTS, script)], { encoding: "utf8" });
      if (res.error) throw new Error(`could not run shellcheck (.ci/run installs it): ${res.error.message}`);
      expect({ status: res.status, output: `${res.stdout}${res.stderr}` }).toEqual({ status: 0, output: "" });
    });
  }
});

/** The github-script body of plan-comment.yml, run with stand-ins for its `github`, `context` and `core`. */
describe("plan-comment.yml's script", () => {
  const script = job(wf("plan-comment.yml"), "comment").steps?.[1]?.with?.script as string;
  type Fn = (...args: unknown[]) => Promise<unknown>;
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => Fn;
  const body = `${MARKER}\n## Offline plan\n\nNo changes.\n`;
  const HEAD = "c".repeat(40);

  interface Comment {
    id: number;
    user: { login: string };
    body: string;
  }

  interface PostOptions {
    comments?: Comment[];
    prHead?: string;
    prepare?: (artifactDir: string) => void;
  }

  async function post(files: Record<string, string>, opts: PostOptions = {}) {
    const dir = tmpDir();
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
    opts.prepare?.(dir);
    const calls: unknown[] = [];
    const log: string[] = [];
    const listComments = (): never => {
      throw new Error("listComments is only called through paginate");
    };
    const github = {
      rest: {
        pulls: {
          get: async (p: unknown) => {
            calls.push(["pulls.get", p]);
            return { data: { head: { sha: opts.prHead ?? HEAD }, state: "open" } };
          },
        },
        issues: {
          listComments,
          updateComment: async (p: unknown) => void calls.push(["updateComment", p]),
          createComment: async (p: unknown) => {
            calls.push(["createComment", p]);
            return { data: { html_url: "https://github.example/c/1" } };
          },
        },
      },
      paginate: async (fn: unknown, p: unknown) => {
        expect(fn).toBe(listComments);
        calls.push(["paginate listComments", p]);
        return opts.comments ?? [];
      },
    };
    const context = {
      repo: { owner: "o", repo: "r" },
      payload: { workflow_run: { head_sha: HEAD, html_url: "https://github.example/o/r/actions/runs/9" } },
    };
    const core = {
      setFailed: (m: string) => log.push(`failed: ${m}`),
      notice: (m: string) => log.push(`notice: ${m}`),
      info: () => undefined,
    };
    const before = process.env.ARTIFACT_DIR;
    process.env.ARTIFACT_DIR = dir;
    try {
      await new AsyncFunction("github", "context", "core", "require", script)(
        github,
        context,
        core,
        createRequire(path.join(ROOT, "package.json")),
      );
    } finally {
      if (before === undefined) delete process.env.ARTIFACT_DIR;
      else process.env.ARTIFACT_DIR = before;
    }
    return { calls, log };
  }

  it("creates the comment when the PR has none of ours", async () => {
    const foreign = { id: 5, user: { login: "someone" }, body: `${MARKER}\npasted by a person` };
    expect(await post({ "pr-number": "42\n", "comment.md": body }, { comments: [foreign] })).toEqual({
      calls: [
        ["pulls.get", { owner: "o", repo: "r", pull_number: 42 }],
        ["paginate listComments", { owner: "o", repo: "r", issue_number: 42, per_page: 100 }],
        ["createComment", { owner: "o", repo: "r", issue_number: 42, body }],
      ],
      log: [],
    });
  });

  it("updates our earlier comment in place", async () => {
    const ours = { id: 7, user: { login: "github-actions[bot]" }, body: `${MARKER}\nold plan` };
    const { calls } = await post({ "pr-number": "42", "comment.md": body }, { comments: [ours] });
    expect(calls.at(-1)).toEqual(["updateComment", { owner: "o", repo: "r", comment_id: 7, body }]);
  });

  it("refuses a PR number that is not a plain integer, before any API call", async () => {
    expect(await post({ "pr-number": "42; echo", "comment.md": body })).toEqual({
      calls: [],
      log: ['failed: pr-number must be a positive integer, got "42; echo"'],
    });
  });

  it("refuses a body without the marker on its first line", async () => {
    expect(await post({ "pr-number": "42", "comment.md": `hello\n${MARKER}\n` })).toEqual({
      calls: [],
      log: [`failed: comment.md must start with the line ${MARKER}; refusing to post it`],
    });
  });

  it("does not comment when the PR's head is not the commit the plan ran on", async () => {
    const other = "d".repeat(40);
    expect(await post({ "pr-number": "42", "comment.md": body }, { prHead: other })).toEqual({
      calls: [["pulls.get", { owner: "o", repo: "r", pull_number: 42 }]],
      log: [`notice: PR #42 is at ${other} but this plan ran on ${HEAD} (stale run, or not this PR's): not commenting.`],
    });
  });

  it("cuts an oversized body to GitHub's limit with a note", async () => {
    const big = `${MARKER}\n${"x".repeat(70_000)}`;
    const { calls } = await post({ "pr-number": "42", "comment.md": big });
    const posted = (calls.at(-1) as [string, { body: string }])[1].body;
    const note = "\n\n_Cut to fit a GitHub comment: the whole plan is in the summary of the [plan run](https://github.example/o/r/actions/runs/9)._\n";
    expect(posted.length).toBe(65_000);
    expect(posted).toBe(big.slice(0, 65_000 - note.length) + note);
  });

  it("refuses an artifact whose pr-number is missing or not a regular file", async () => {
    await expect(post({ "comment.md": body })).rejects.toThrow(
      'the plan-comment artifact has no pr-number; plan.yml writes it in "Hand the comment to plan-comment.yml"',
    );
    const link = (dir: string): void => fs.symlinkSync("/etc/hostname", path.join(dir, "pr-number"));
    await expect(post({ "comment.md": body }, { prepare: link })).rejects.toThrow(
      "pr-number in the artifact is not a regular file",
    );
  });
});
