/**
 * `npm run promote`'s behaviour, in-process (issue #16: scripts/promote.ts `main(argv, io)`, the function the CLI
 * runs, with its streams and environment injected). The source outputs are the generated
 * test/fixtures/promotion/dev-plan-outputs.json (what the mini dev stack exports, `npm run fixtures`), copied and
 * mutated in memory for each bad input; the source stack file is the mini dev stack's. Every refusal is asserted
 * whole: exit 2, every problem at once (one line each, key path, value received, fix), nothing on stdout, the target
 * byte-identical and no temporary file left. The CLI as a process is covered by promote-cli.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROMOTION_FIXTURE, PROMOTION_SOURCE_STACK } from "../../scripts/lib/promotion-fixture";
import { main } from "../../scripts/promote";
import { ROOT } from "../support/harness";

interface Entry {
  imageRef: string;
  digest: string;
  validatedPools: string[];
  scanned: boolean;
  signed: boolean;
}

const PROD = fs.readFileSync(path.join(ROOT, "test/fixtures/promotion/Pulumi.prod.yaml"), "utf8");
const DEV_STACK = fs.readFileSync(path.join(ROOT, PROMOTION_SOURCE_STACK), "utf8");
const PLAN_TEXT = fs.readFileSync(path.join(ROOT, PROMOTION_FIXTURE), "utf8");
const PLAN = JSON.parse(PLAN_TEXT) as { validatedImages: Record<string, Entry> };
const USER_ID = "user-h-baker-at-hertie-school-lan-thesis";
const DEV = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
const hex = (c: string) => c.repeat(64);
const D1 = `sha256:${hex("1")}`;
const D2 = `sha256:${hex("2")}`;
/** dev's validated entry for an id, as the program exports it. */
const entry = (id: string): Entry => structuredClone(PLAN.validatedImages[id]!);
const digest = (id: string) => entry(id).digest;
const ref = (id: string) => entry(id).imageRef;
/** How a problem shows a value it received (lib/problems renderReceived): JSON, cut to 80 characters. */
const got = (value: unknown) => {
  const json = JSON.stringify(value);
  return `(got ${json.length > 80 ? `${json.slice(0, 79)}…` : json})`;
};
const RETAKE = "Promote what `pulumi stack output --json --stack dev` prints, unedited.";

function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`expected exactly one ${JSON.stringify(from)}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** The fixture prod stack file after promoting everything dev's plan outputs validate: comments and order kept. */
const PROD_PROMOTED = replaceOnce(
  replaceOnce(
    replaceOnce(PROD, `digest: ${D1}\n        source: ${DEV}/wb/app-cpu@${D1}\n`, `digest: ${digest("app-cpu")}\n        source: ${ref("app-cpu")}\n`),
    `digest: ${D2}\n        source: ${DEV}/wb/app-gpu@${D2}\n`,
    `digest: ${digest("app-gpu")}\n        source: ${ref("app-gpu")}\n`,
  ),
  "        validatedPools: [h100]\n",
  [
    "        validatedPools: [h100]",
    `      ${USER_ID}:`,
    `        digest: ${digest(USER_ID)}`,
    `        source: ${ref(USER_ID)}`,
    "        validatedPools: []",
    "",
  ].join("\n"),
);

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/**
 * A directory holding the target (Pulumi.prod.yaml, the fixture), dev's stack file (Pulumi.dev.yaml, the mini dev
 * stack) and dev's outputs (outputs.json); main runs in it, so messages name these short relative paths.
 */
function workspace(target: { name?: string; text?: string } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-promote-main-"));
  dirs.push(dir);
  const name = target.name ?? "Pulumi.prod.yaml";
  const text = target.text ?? PROD;
  const stackFile = path.join(dir, name);
  fs.writeFileSync(stackFile, text);
  fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), DEV_STACK);
  fs.writeFileSync(path.join(dir, "outputs.json"), PLAN_TEXT);
  const files = [name, "Pulumi.dev.yaml", "outputs.json"];
  return {
    dir,
    stackFile,
    /** Rewrites outputs.json: dev's plan outputs with `mutate` applied to their validatedImages. */
    outputs(mutate: (validated: Record<string, unknown>) => void): void {
      const json = JSON.parse(PLAN_TEXT) as { validatedImages: Record<string, unknown> };
      mutate(json.validatedImages);
      fs.writeFileSync(path.join(dir, "outputs.json"), JSON.stringify(json, null, 2));
    },
    /** main with the flags every test shares, then `args`; stdout and stderr captured. */
    promote(args: string[] = [], env: NodeJS.ProcessEnv = process.env) {
      const base = ["--from", "dev", "--to", "prod", "--from-file", "outputs.json", "--stack-file", name, "--from-stack-file", "Pulumi.dev.yaml"];
      return run([...base, ...args], dir, env);
    },
    /** The target is byte-identical and nothing was added beside it (no temporary file). */
    expectUntouched(extra: string[] = []): void {
      expect(fs.readFileSync(stackFile, "utf8")).toBe(text);
      expect(fs.readdirSync(dir).sort()).toEqual([...files, ...extra].sort());
    },
  };
}

function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  let stdout = "";
  let stderr = "";
  const status = main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), cwd, env });
  return { status, stdout, stderr };
}

/** The whole refusal: exit 2, nothing on stdout, the header and one line per problem on stderr. */
function refused(lines: string[]) {
  return {
    status: 2,
    stdout: "",
    stderr: [`promote: refused, nothing written (${lines.length === 1 ? "1 problem" : `${lines.length} problems`}):`, ...lines.map((l) => `  - ${l}`), ""].join("\n"),
  };
}

describe("promote main(): dev's real outputs", () => {
  it("promotes every image dev's plan validated, comments and order kept, and a second run writes nothing", () => {
    const ws = workspace();
    expect(ws.promote()).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        "promote: promoted 3 image(s) from dev into Pulumi.prod.yaml:",
        `  app-cpu: ${D1} → ${digest("app-cpu")}`,
        `  app-gpu: ${D2} → ${digest("app-gpu")}`,
        `  ${USER_ID}: (new) → ${digest(USER_ID)}`,
        "promote: next, open a pull request with Pulumi.prod.yaml; after review and merge, `pulumi up --stack prod` copies these digests.",
        "",
      ].join("\n"),
    });
    expect(fs.readFileSync(ws.stackFile, "utf8")).toBe(PROD_PROMOTED);
    expect(fs.readdirSync(ws.dir).sort()).toEqual(["Pulumi.dev.yaml", "Pulumi.prod.yaml", "outputs.json"]);

    expect(ws.promote()).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        "promote: promoted 3 image(s) from dev into Pulumi.prod.yaml:",
        `  app-cpu: ${digest("app-cpu")} (unchanged)`,
        `  app-gpu: ${digest("app-gpu")} (unchanged)`,
        `  ${USER_ID}: ${digest(USER_ID)} (unchanged)`,
        "promote: the stack file already holds these digests; nothing to write.",
        "",
      ].join("\n"),
    });
    expect(fs.readFileSync(ws.stackFile, "utf8")).toBe(PROD_PROMOTED);
  });

  it("--dry-run shows what --variants would promote and writes nothing", () => {
    const ws = workspace();
    expect(ws.promote(["--variants", "app-gpu", "--dry-run"])).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        "promote: would promote 1 image(s) from dev into Pulumi.prod.yaml:",
        `  app-gpu: ${D2} → ${digest("app-gpu")}`,
        "promote: --dry-run, nothing written.",
        "",
      ].join("\n"),
    });
    ws.expectUntouched();
  });

  it("without --from-file reads `pulumi stack output --json --stack <from>`, never with secrets shown", () => {
    const ws = workspace();
    const bin = path.join(ws.dir, "bin");
    fs.mkdirSync(bin);
    // A stand-in for the Pulumi CLI: records its argv and prints dev's outputs.
    const argvFile = path.join(ws.dir, "argv.txt");
    fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\nprintf '%s\\n' "$@" > ${JSON.stringify(argvFile)}\ncat outputs.json\n`, { mode: 0o755 });
    const r = run(
      ["--from", "dev", "--to", "prod", "--stack-file", "Pulumi.prod.yaml", "--from-stack-file", "Pulumi.dev.yaml", "--variants", "app-cpu"],
      ws.dir,
      { ...process.env, PATH: `${bin}:/usr/bin:/bin` },
    );
    expect(r).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        "promote: promoted 1 image(s) from dev into Pulumi.prod.yaml:",
        `  app-cpu: ${D1} → ${digest("app-cpu")}`,
        "promote: next, open a pull request with Pulumi.prod.yaml; after review and merge, `pulumi up --stack prod` copies these digests.",
        "",
      ].join("\n"),
    });
    expect(fs.readFileSync(argvFile, "utf8")).toBe("stack\noutput\n--json\n--show-secrets=false\n--stack\ndev\n");
  });
});

describe("promote main(): what the source may promote", () => {
  it("refuses a digest from another registry, account, region, prefix or repository, one line each, all at once", () => {
    const ws = workspace();
    const d = digest("app-cpu");
    ws.outputs((v) => {
      v["app-cpu"] = { ...entry("app-cpu"), imageRef: `docker.io/attacker/evil@${d}` };
      v["app-gpu"] = { ...entry("app-gpu"), imageRef: `999988887777.dkr.ecr.us-east-1.amazonaws.com/wb/app-gpu@${digest("app-gpu")}` };
      v[USER_ID] = { ...entry(USER_ID), imageRef: `${DEV}/wb/app-cpu@${digest(USER_ID)}` };
    });
    const only = (id: string, repo: string) =>
      `Only digests in dev's own repositories (${DEV}/${repo}, from registry.* in Pulumi.dev.yaml) can be promoted. ${RETAKE}`;
    expect(ws.promote()).toEqual(
      refused([
        `outputs.json: validatedImages.app-cpu.imageRef: is not an image dev pushed: its registry is docker.io, not dev's registry ${DEV}. ${only("app-cpu", "wb/app-cpu")} ${got(`docker.io/attacker/evil@${d}`)}`,
        `outputs.json: validatedImages.app-gpu.imageRef: is not an image dev pushed: it is in account 999988887777, not dev's account 111122223333 (registry.accountId) and region us-east-1, not dev's region eu-west-1 (registry.region). ${only("app-gpu", "wb/app-gpu")} ${got(`999988887777.dkr.ecr.us-east-1.amazonaws.com/wb/app-gpu@${digest("app-gpu")}`)}`,
        `outputs.json: validatedImages.${USER_ID}.imageRef: is not an image dev pushed: its repository wb/app-cpu is not ${USER_ID}'s repository wb-1722830498/thesis. ${only(USER_ID, "wb-1722830498/thesis")} ${got(`${DEV}/wb/app-cpu@${digest(USER_ID)}`)}`,
      ]),
    );
    ws.expectUntouched();
  });

  it("refuses a digest outside dev's region or repository prefix; an id dev's file does not know must be under the prefix", () => {
    const ws = workspace();
    ws.outputs((v) => {
      v["app-cpu"] = { ...entry("app-cpu"), imageRef: `111122223333.dkr.ecr.us-east-1.amazonaws.com/wb/app-cpu@${digest("app-cpu")}` };
      v["app-gpu"] = { ...entry("app-gpu"), imageRef: `${DEV}/wbx/app-gpu@${digest("app-gpu")}` };
      v["app-tpu"] = { ...entry("app-cpu"), imageRef: `${DEV}/other/app-tpu@${digest("app-cpu")}` };
    });
    expect(ws.promote(["--variants", "app-cpu,app-gpu,app-tpu"])).toEqual(
      refused([
        `outputs.json: validatedImages.app-cpu.imageRef: is not an image dev pushed: it is in region us-east-1, not dev's region eu-west-1 (registry.region). Only digests in dev's own repositories (${DEV}/wb/app-cpu, from registry.* in Pulumi.dev.yaml) can be promoted. ${RETAKE} ${got(`111122223333.dkr.ecr.us-east-1.amazonaws.com/wb/app-cpu@${digest("app-cpu")}`)}`,
        `outputs.json: validatedImages.app-gpu.imageRef: is not an image dev pushed: its repository wbx/app-gpu is not under dev's repository prefix wb (registry.repositoryPrefix). Only digests in dev's own repositories (${DEV}/wb/app-gpu, from registry.* in Pulumi.dev.yaml) can be promoted. ${RETAKE} ${got(`${DEV}/wbx/app-gpu@${digest("app-gpu")}`)}`,
        `outputs.json: validatedImages.app-tpu.imageRef: is not an image dev pushed: its repository other/app-tpu is not under dev's repository prefix wb (registry.repositoryPrefix). Only digests in dev's own repositories (${DEV}/wb/… or ${DEV}/wb-<uid>/…, from registry.* in Pulumi.dev.yaml) can be promoted. ${RETAKE} ${got(`${DEV}/other/app-tpu@${digest("app-cpu")}`)}`,
      ]),
    );
    ws.expectUntouched();
  });

  it("refuses unsigned, unscanned, malformed and self-contradicting entries, and a variant dev did not validate, all at once", () => {
    const ws = workspace();
    ws.outputs((v) => {
      v["app-cpu"] = { ...entry("app-cpu"), signed: false, scanned: false };
      v["app-gpu"] = { ...entry("app-gpu"), digest: "sha256:5555" };
      v[USER_ID] = { ...entry(USER_ID), digest: D1 };
    });
    expect(ws.promote(["--variants", `app-cpu,app-gpu,${USER_ID},app-gpu2`])).toEqual(
      refused([
        "outputs.json: validatedImages.app-cpu.scanned: is false: the image did not pass the scan gate. Only scanned images can be promoted. (got false)",
        "outputs.json: validatedImages.app-cpu.signed: is false: the image is not signed. Only signed images can be promoted; sign it on dev (signing.mode: cosign-kms). (got false)",
        'outputs.json: validatedImages.app-gpu.digest: is not a digest "sha256:" followed by 64 lowercase hex characters. (got "sha256:5555")',
        `outputs.json: validatedImages.${USER_ID}.imageRef: is pinned to ${digest(USER_ID)} but digest is ${D1}: the outputs disagree about what was validated. Re-run \`pulumi up\` on dev and promote again.`,
        `outputs.json: validatedImages.app-gpu2: is missing: dev did not validate "app-gpu2", so it cannot be promoted (dev validated: app-cpu, app-gpu, ${USER_ID}). Validate it on dev first (scan, signing and GPU validation must pass), or leave it out of --variants.`,
      ]),
    );
    ws.expectUntouched();
  });

  it("refuses a GPU image without the pools it was validated on, a pool dev does not validate it on, and pools on a CPU image", () => {
    const ws = workspace();
    ws.outputs((v) => {
      v["app-gpu"] = { ...entry("app-gpu"), validatedPools: [] };
      v[USER_ID] = { ...entry(USER_ID), validatedPools: ["h100", "l4"] };
    });
    expect(ws.promote()).toEqual(
      refused([
        "outputs.json: validatedImages.app-gpu.validatedPools: is empty, but app-gpu is a GPU image (gpu: true in the catalog): dev validated it on no GPU pool, and a GPU image is promoted only with the pools it was validated on. Let its GPU validation pass on dev's pools (h100), then promote again. (got [])",
        `outputs.json: validatedImages.${USER_ID}.validatedPools[0]: names a pool, but ${USER_ID} is a CPU image: dev validates CPU images on no GPU pool, so its validatedPools is []. ${RETAKE} (got "h100")`,
        `outputs.json: validatedImages.${USER_ID}.validatedPools[1]: names a pool, but ${USER_ID} is a CPU image: dev validates CPU images on no GPU pool, so its validatedPools is []. ${RETAKE} (got "l4")`,
      ]),
    );
    ws.expectUntouched();

    ws.outputs((v) => {
      v["app-gpu"] = { ...entry("app-gpu"), validatedPools: ["h100", "cpu"] };
    });
    expect(ws.promote(["--variants", "app-gpu"])).toEqual(
      refused([
        `outputs.json: validatedImages.app-gpu.validatedPools[1]: is not a pool dev validates app-gpu on (h100; gpuPools in Pulumi.dev.yaml), so dev cannot have validated it there. ${RETAKE} (got "cpu")`,
      ]),
    );
    ws.expectUntouched();
  });

  it("escapes control characters in keys and values, so every problem stays on its own line", () => {
    const ws = workspace();
    const forged = "app-cpu\n  - forged: line";
    ws.outputs((v) => {
      v[forged] = entry("app-cpu");
      v["app-gpu"] = { ...entry("app-gpu"), imageRef: `\u001b[2J${DEV}/wb/app-gpu\u009b@${digest("app-gpu")}` };
    });
    expect(ws.promote(["--variants", `${forged},app-gpu`])).toEqual(
      refused([
        `outputs.json: validatedImages.app-gpu.imageRef: is not an image reference pinned by digest (repository@sha256:…). ${got(`\u001b[2J${DEV}/wb/app-gpu\u009b@${digest("app-gpu")}`).replace("\u009b", "\\u009b")}`,
        'Pulumi.prod.yaml: workbench-images:promotion.images.app-cpu\\u000a  - forged: line: names no catalog variant or user image. Re-run `npm run promote`. (got "app-cpu\\n  - forged: line")',
      ]),
    );
    ws.expectUntouched();
  });
});

describe("promote main(): where it may write", () => {
  it("refuses the local and dev stacks, which build: exit 2 whatever else is wrong, nothing written", () => {
    const local = workspace({ name: "Pulumi.local.yaml", text: fs.readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8") });
    expect(run(["--from", "dev", "--to", "local", "--from-file", "outputs.json", "--stack-file", "Pulumi.local.yaml", "--from-stack-file", "Pulumi.dev.yaml"], local.dir)).toEqual(
      refused([
        'Pulumi.local.yaml: workbench-images:mode: is not "promote": local builds its own images and never reads promotion.images. Promote only into a stack in promote mode, e.g. --to prod. (got "build")',
      ]),
    );
    local.expectUntouched();

    // dev is the usual source, so here the source is another stack with the mini dev stack's file.
    const dev = workspace({ name: "Pulumi.dev-target.yaml", text: fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8") });
    dev.outputs((v) => {
      v["app-cpu"] = { ...entry("app-cpu"), signed: false };
    });
    expect(run(["--from", "staging", "--to", "dev", "--from-file", "outputs.json", "--stack-file", "Pulumi.dev-target.yaml", "--from-stack-file", "Pulumi.dev.yaml"], dev.dir)).toEqual(
      refused([
        'Pulumi.dev-target.yaml: workbench-images:mode: is not "promote": dev builds its own images and never reads promotion.images. Promote only into a stack in promote mode, e.g. --to prod. (got "build")',
        "outputs.json: validatedImages.app-cpu.signed: is false: the image is not signed. Only signed images can be promoted; sign it on staging (signing.mode: cosign-kms). (got false)",
      ]),
    );
    dev.expectUntouched();
  });

  it("takes the mode from the environment when the file sets none: promote for prod, build for any other", () => {
    const unset = PROD.replace("  workbench-images:mode: promote\n", "");
    const prod = workspace({ text: unset });
    expect(prod.promote(["--variants", "app-cpu", "--dry-run"]).status).toBe(0);
    const qa = workspace({ name: "Pulumi.qa.yaml", text: unset.replace("environment: prod", "environment: dev") });
    expect(run(["--from", "dev", "--to", "qa", "--from-file", "outputs.json", "--stack-file", "Pulumi.qa.yaml", "--from-stack-file", "Pulumi.dev.yaml"], qa.dir)).toEqual(
      refused([
        'Pulumi.qa.yaml: workbench-images:mode: is not set, so qa (environment "dev") is in build mode: it builds its own images and never reads promotion.images. Promote only into a stack in promote mode, e.g. --to prod.',
      ]),
    );
    qa.expectUntouched();
  });

  it("refuses a per-user image whose user prod lacks, saying to add the user, together with every other problem", () => {
    const noUsers = replaceOnce(
      PROD,
      "  workbench-images:users:\n    - login: h.baker@hertie-school.lan\n      uid: 1722830498\n      gid: 1722830498\n      project: thesis\n      baseVariant: app-cpu\n",
      "",
    );
    const ws = workspace({ text: noUsers });
    ws.outputs((v) => {
      v["app-cpu"] = { ...entry("app-cpu"), imageRef: `docker.io/attacker/evil@${digest("app-cpu")}` };
      v["app-gpu"] = { ...entry("app-gpu"), validatedPools: [], signed: false };
      v["app-tpu"] = { ...entry("app-cpu"), imageRef: `${DEV}/wb/app-tpu@${digest("app-cpu")}` };
    });
    expect(ws.promote()).toEqual(
      refused([
        `outputs.json: validatedImages.app-cpu.imageRef: is not an image dev pushed: its registry is docker.io, not dev's registry ${DEV}. Only digests in dev's own repositories (${DEV}/wb/app-cpu, from registry.* in Pulumi.dev.yaml) can be promoted. ${RETAKE} ${got(`docker.io/attacker/evil@${digest("app-cpu")}`)}`,
        "outputs.json: validatedImages.app-gpu.signed: is false: the image is not signed. Only signed images can be promoted; sign it on dev (signing.mode: cosign-kms). (got false)",
        "outputs.json: validatedImages.app-gpu.validatedPools: is empty, but app-gpu is a GPU image (gpu: true in the catalog): dev validated it on no GPU pool, and a GPU image is promoted only with the pools it was validated on. Let its GPU validation pass on dev's pools (h100), then promote again. (got [])",
        'Pulumi.prod.yaml: workbench-images:promotion.images.app-tpu: names no catalog variant or user image. Did you mean "app-cpu"? Re-run `npm run promote`. (got "app-tpu")',
        `Pulumi.prod.yaml: workbench-images:promotion.images.${USER_ID}: is dev's image for user "h.baker@hertie-school.lan" (project thesis), and prod has no such user. Add the user to prod's users (Pulumi.prod.yaml users[]: { login: "h.baker@hertie-school.lan", uid: 1722830498, gid: 1722830498, project: thesis, baseVariant: app-cpu }), or leave the image out with --variants. (got "${USER_ID}")`,
      ]),
    );
    ws.expectUntouched();
  });
});

describe("promote main(): flags and unreadable input", () => {
  it("rejects bad flags with the usage line, before reading anything", () => {
    expect(run(["--from", "dev", "--to", "dev", "--variants", " "], ROOT)).toEqual({
      status: 2,
      stdout: "",
      stderr: [
        "promote: bad flags, nothing written (2 problems):",
        '  - --to: names the source stack. Promotion copies from one stack to another: --from dev --to prod. (got "dev")',
        "  - --variants: is empty. List variant names separated by commas, or leave the flag out to promote every validated image.",
        "usage: npm run promote -- --from <stack> --to <stack> [--variants a,b] [--from-file outputs.json] [--stack-file Pulumi.<to>.yaml] [--from-stack-file Pulumi.<from>.yaml] [--dry-run]",
        "",
      ].join("\n"),
    });
    expect(run(["--from", "dev", "--to", "prod", "--force"], ROOT)).toEqual({
      status: 2,
      stdout: "",
      stderr:
        "promote: bad flags, nothing written (1 problem):\n  - --force: is not an option of promote; the usage line lists them.\n" +
        "usage: npm run promote -- --from <stack> --to <stack> [--variants a,b] [--from-file outputs.json] [--stack-file Pulumi.<to>.yaml] [--from-stack-file Pulumi.<from>.yaml] [--dry-run]\n",
    });
  });

  it("reports a missing target, a missing source stack file and missing outputs together", () => {
    const ws = workspace();
    expect(run(["--from", "dev", "--to", "prod", "--from-file", "nope.json", "--stack-file", "Pulumi.nope.yaml", "--from-stack-file", "Pulumi.dev-nope.yaml"], ws.dir)).toEqual(
      refused([
        "Pulumi.nope.yaml: does not exist. Create the prod stack first (`pulumi stack init prod`) or pass --stack-file.",
        "Pulumi.dev-nope.yaml: does not exist. promote checks dev's outputs against dev's own stack file (registry, catalog, users, GPU pools): run it in the project root or pass --from-stack-file.",
        '--from-file: cannot be read (ENOENT). Pass the file `pulumi stack output --json --stack dev` wrote. (got "nope.json")',
      ]),
    );
    ws.expectUntouched();
  });

  it("without --from-file needs the Pulumi CLI, and says so", () => {
    const ws = workspace();
    const bin = path.join(ws.dir, "bin");
    fs.mkdirSync(bin);
    const r = run(["--from", "dev", "--to", "prod", "--stack-file", "Pulumi.prod.yaml", "--from-stack-file", "Pulumi.dev.yaml"], ws.dir, { ...process.env, PATH: bin });
    expect(r).toEqual(
      refused(["pulumi: was not found on PATH: install the Pulumi CLI or pass --from-file with a saved `pulumi stack output --json`."]),
    );
    ws.expectUntouched(["bin"]);
  });

  it("refuses when dev's own stack file is not a valid configuration: it says where dev pushes", () => {
    const ws = workspace();
    fs.writeFileSync(path.join(ws.dir, "Pulumi.dev.yaml"), DEV_STACK.replace('accountId: "111122223333"', "accountId: 111122223333"));
    expect(ws.promote()).toEqual(
      refused([
        "Pulumi.dev.yaml: workbench-images:registry.accountId: must be the 12-digit AWS account id, in quotes. (promote checks dev's outputs against this file: fix it, `npm run plan -- --stack dev` shows the same.) (got 111122223333)",
      ]),
    );
  });
});
