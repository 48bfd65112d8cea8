/**
 * The GitHub Actions workflows (issue 7, docs/ci.md): parsed with `yaml` and held to the rules that keep them safe,
 * plus the two shell scripts and the comment-posting script run for real against fakes. No network, no GitHub.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";

const ROOT = path.resolve(__dirname, "..");
const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const SCRIPTS = path.join(ROOT, ".github", "scripts");
const MARKER = "<!-- workbench-images-plan -->";

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
  if?: string;
  uses?: string;
  needs?: string | string[];
  permissions?: unknown;
  environment?: string | { name: string };
  concurrency?: unknown;
  container?: unknown;
  strategy?: { matrix?: Record<string, unknown> };
  env?: Record<string, string>;
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
      "aws-actions/configure-aws-credentials",
      "pulumi/actions",
    ]);
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
      { file: "preview.yml", command: "preview", stack: "${{ matrix.stack }}", policy: "policy" },
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

describe("preview.yml", () => {
  const w = wf("preview.yml");

  it("skips forks, Dependabot and unconfigured repositories, previews dev and prod with a PR comment", () => {
    expect(job(w, "credentials").if).toBe(
      "github.event.pull_request.head.repo.full_name == github.repository && github.actor != 'dependabot[bot]'",
    );
    const preview = job(w, "preview");
    expect(preview.needs).toBe("credentials");
    expect(preview.if).toBe("needs.credentials.outputs.configured == 'true'");
    expect(preview.strategy?.matrix).toEqual({ stack: ["dev", "prod"] });
    expect(preview.steps?.find((s) => s.uses?.startsWith("pulumi/actions@"))?.with).toEqual({
      command: "preview",
      "stack-name": "${{ matrix.stack }}",
      "cloud-url": "${{ vars.PULUMI_BACKEND_URL }}",
      diff: true,
      policyPacks: "policy",
      "comment-on-pr": true,
      "comment-on-summary": true,
    });
  });
});

describe("deploy workflows", () => {
  it("deploy-dev waits for a successful tests run of a push to main, one deploy at a time", () => {
    const w = wf("deploy-dev.yml");
    expect(w.on).toEqual({ workflow_run: { workflows: ["tests"], types: ["completed"], branches: ["main"] } });
    expect(wf("tests.yml").name).toBe("tests");
    expect(w.concurrency).toEqual({ group: "deploy-dev", "cancel-in-progress": false });
    expect(job(w, "deploy").needs).toBe("current");
    expect(job(w, "deploy").steps?.[0]?.with?.ref).toBe("${{ github.event.workflow_run.head_sha }}");
  });

  it("deploy-prod runs when Pulumi.prod.yaml lands on main, after the tests, behind `production`", () => {
    const w = wf("deploy-prod.yml");
    expect(w.on).toEqual({ push: { branches: ["main"], paths: ["Pulumi.prod.yaml"] } });
    expect(w.concurrency).toEqual({ group: "deploy-prod", "cancel-in-progress": false });
    expect(job(w, "tests").uses).toBe("./.github/workflows/tests.yml");
    const deploy = job(w, "deploy");
    expect(deploy.needs).toBe("tests");
    expect(deploy.environment).toBe("production");
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
  const run = (mode: string, env: Record<string, string>) => {
    const out = path.join(tmpDir(), "github-output");
    const res = spawnSync("bash", [path.join(SCRIPTS, "check-deploy-config.sh"), mode], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", GITHUB_OUTPUT: out, ...env },
    });
    return { status: res.status, stdout: res.stdout, output: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "" };
  };
  const all = { PULUMI_ACCESS_TOKEN: "pul-x", AWS_ROLE_ARN: "arn:aws:iam::1:role/r", AWS_REGION: "us-east-1" };

  it("gate: names what is missing and reports configured=false without failing", () => {
    expect(run("gate", {})).toEqual({
      status: 0,
      stdout:
        "::notice::Skipped, not configured: secret PULUMI_ACCESS_TOKEN (Pulumi Cloud) or variable PULUMI_BACKEND_URL " +
        "(self-managed backend). See docs/ci.md.\n" +
        "::notice::Skipped, not configured: variable AWS_DEPLOY_ROLE_ARN (the IAM role assumed through GitHub OIDC; " +
        "previews use AWS_PREVIEW_ROLE_ARN when set). See docs/ci.md.\n" +
        "::notice::Skipped, not configured: variable AWS_REGION. See docs/ci.md.\n",
      output: "configured=false\n",
    });
  });

  it("require: fails on the one missing item", () => {
    expect(run("require", { ...all, AWS_REGION: "" })).toEqual({
      status: 1,
      stdout:
        "::error::Not configured: variable AWS_REGION. Set it under Settings → Secrets and variables → Actions; " +
        "see docs/ci.md.\n",
      output: "configured=false\n",
    });
  });

  it("accepts a self-managed backend URL instead of a Pulumi Cloud token", () => {
    const { PULUMI_ACCESS_TOKEN: _unused, ...rest } = all;
    expect(run("require", { ...rest, PULUMI_BACKEND_URL: "s3://state/workbench" })).toEqual({
      status: 0,
      stdout: "",
      output: "configured=true\n",
    });
  });

  it("rejects an unknown mode", () => {
    expect(run("maybe", all).status).toBe(64);
  });
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
