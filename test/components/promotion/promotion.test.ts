/**
 * Issue 7, promotion: the copy command (argv and the idempotent script, run by a real shell against a fake skopeo; against
 * two real registries in promotion.real.test.ts), reading the source stack's outputs and refusing what may not be promoted, writing
 * prod's stack file with every comment kept, and the PromotedImage / LocalRegistry components under the mock runtime.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { LocalRegistry } from "../../../components/registry/local-registry";
import { PromotedImage } from "../../../components/promotion/promoted-image";
import { type LocalRegistryConfig, type ParsedStackOutputs as StackOutputs, parseStackConfig, parseStackOutputs, type RegistryConfig } from "../../../config";
import type { Plan } from "../../../scripts/lib/plan-runtime";
import { runPlan } from "../../../scripts/lib/plan-runtime";
import { copyImageCommand, copyImageScript, promotedTag } from "../../../components/promotion/copy";
import { isLoopbackRepository } from "../../../lib/registry";
import {
  applyPromotions,
  currentPromotions,
  type Promotion,
  promotionChanges,
  selectPromotions,
  stackFileStyle,
} from "../../../scripts/lib/promote";
import { readStackConfig } from "../../../scripts/lib/stack-files";
import { byName, byType, ROOT } from "../../support/harness";
import { shellJoin, shellQuote } from "../../../lib/shell";

const FIXTURES = path.join(ROOT, "test/fixtures/promotion");
const PROD = fs.readFileSync(path.join(FIXTURES, "Pulumi.prod.yaml"), "utf8");
const PROD_EXPECTED = fs.readFileSync(path.join(FIXTURES, "Pulumi.prod.expected.yaml"), "utf8");

const hex = (c: string) => c.repeat(64);
const D1 = `sha256:${hex("1")}`;
const D3 = `sha256:${hex("3")}`;
const D4 = `sha256:${hex("4")}`;
const DEV = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
const PROD_ECR = "444455556666.dkr.ecr.eu-west-1.amazonaws.com";
const SRC = `${DEV}/wb/app-cpu@${D3}`;
const USER_ID = "user-h-baker-at-hertie-school-lan-thesis";
const SOURCE = "dev-outputs.json";
const DEV_OUTPUTS = {
  environment: "dev",
  validatedImages: {
    "app-cpu": { imageRef: SRC, digest: D3, validatedPools: [], scanned: true, signed: true },
    [USER_ID]: { imageRef: `${DEV}/wb-1722830498/thesis@${D4}`, digest: D4, validatedPools: ["h100", "l4"], scanned: true, signed: true },
  },
};

describe("copyImageCommand", () => {
  it("is skopeo copy --all --preserve-digests from the pinned source to destination:tag", () => {
    expect(
      copyImageCommand({ source: `127.0.0.1:5000/prefix/name@${D3}`, destination: "127.0.0.1:5001/prefix/name", tag: "promoted-333333333333" }),
    ).toEqual({
      command: [
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        `docker://127.0.0.1:5000/prefix/name@${D3}`,
        "docker://127.0.0.1:5001/prefix/name:promoted-333333333333",
      ],
    });
  });

  it("turns TLS verification off only where asked", () => {
    expect(copyImageCommand({ source: SRC, destination: `${PROD_ECR}/wb/app-cpu`, tag: "t", srcTlsVerify: false, destTlsVerify: true }).command).toEqual([
      "skopeo",
      "copy",
      "--all",
      "--preserve-digests",
      "--src-tls-verify=false",
      `docker://${SRC}`,
      `docker://${PROD_ECR}/wb/app-cpu:t`,
    ]);
    expect(copyImageCommand({ source: SRC, destination: "localhost:5001/wb/x", tag: "t", destTlsVerify: false }).command).toContain("--dest-tls-verify=false");
  });

  it("passes credentials only as variable references expanded by sh, never their values", () => {
    const { command: argv, env } = copyImageCommand({
      source: SRC,
      destination: `${PROD_ECR}/wb/app-cpu`,
      tag: "promoted-333333333333",
      srcCredsEnv: "WORKBENCH_SRC_CREDS",
      destCredsEnv: "WORKBENCH_DEST_CREDS",
    });
    expect(env).toBeUndefined();
    expect(argv).toEqual([
      "sh",
      "-c",
      'exec skopeo copy --src-creds "$WORKBENCH_SRC_CREDS" --dest-creds "$WORKBENCH_DEST_CREDS" "$@"',
      "skopeo-copy",
      "--all",
      "--preserve-digests",
      `docker://${SRC}`,
      `docker://${PROD_ECR}/wb/app-cpu:promoted-333333333333`,
    ]);
  });

  it("drops a tag beside the digest (skopeo refuses references with both)", () => {
    expect(copyImageCommand({ source: `${DEV}/wb/app-cpu:build-abc@${D3}`, destination: `${PROD_ECR}/wb/app-cpu`, tag: "t" }).command[4]).toBe(
      `docker://${SRC}`,
    );
  });

  it("refuses a source without digest, a destination with tag, a bad tag and a bad variable name", () => {
    expect(() => copyImageCommand({ source: `${DEV}/wb/app-cpu:latest`, destination: `${PROD_ECR}/wb/app-cpu`, tag: "t" })).toThrow(
      `copyImageCommand: source "${DEV}/wb/app-cpu:latest" is not pinned by digest. Promotion copies exactly the digest that was validated: pass repository@sha256:<64 hex>.`,
    );
    expect(() => copyImageCommand({ source: SRC, destination: `${PROD_ECR}/wb/app-cpu:v1`, tag: "t" })).toThrow(
      `copyImageCommand: destination "${PROD_ECR}/wb/app-cpu:v1" must be a repository (host[:port]/path) without tag or digest; the tag is passed separately.`,
    );
    expect(() => copyImageCommand({ source: SRC, destination: `${PROD_ECR}/wb/app-cpu`, tag: "-bad" })).toThrow(
      `copyImageCommand: tag "-bad" is not a valid tag (letters, digits, '_', '.', '-'; at most 128).`,
    );
    expect(() => copyImageCommand({ source: SRC, destination: `${PROD_ECR}/wb/app-cpu`, tag: "t", srcCredsEnv: "A;rm -rf /" })).toThrow(
      `copyImageCommand: srcCredsEnv "A;rm -rf /" is not an environment variable name (A-Z, 0-9, _).`,
    );
  });
});

describe("shellQuote and shellJoin", () => {
  it("quotes only what the shell would change", () => {
    expect(shellQuote("docker://a/b@sha256:00")).toBe("docker://a/b@sha256:00");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    expect(shellJoin(["skopeo", "copy", "x y"])).toBe("skopeo copy 'x y'");
  });

  it("round-trips every argument through a real sh unchanged", () => {
    const args = ["plain", "", "two words", "it's", '"dq"', "$HOME", "`id`", "a\\b", "*", "new\nline", "--flag=va lue"];
    const out = execFileSync("sh", ["-c", `printf '%s\\0' ${shellJoin(args)}`], { encoding: "utf8" });
    expect(out.split("\0").slice(0, -1)).toEqual(args);
  });
});

describe("promotedTag and isLoopbackRepository", () => {
  it("tags promoted-<first 12 hex>", () => {
    expect(promotedTag(`sha256:0123456789abcdef${hex("0").slice(16)}`)).toBe("promoted-0123456789ab");
    expect(() => promotedTag("sha256:abc")).toThrow('promotedTag: "sha256:abc" is not a digest "sha256:" followed by 64 lowercase hex characters.');
  });

  it("treats only loopback registries as plain http", () => {
    expect([`127.0.0.1:5001/wb/x`, "localhost:5000/x", "localhost/x", `${PROD_ECR}/wb/x`, "127.example.com/x", "localhost.evil.io/x"].map(isLoopbackRepository)).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});

/** A fake skopeo on PATH: logs its argv, answers `inspect` from FAKE_TAGGED / FAKE_PINNED (exit 1 when unset). */
function fakeSkopeo(dir: string): { bin: string; log: string; calls(): string[][] } {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { recursive: true });
  const log = path.join(dir, "calls.log");
  fs.writeFileSync(
    path.join(bin, "skopeo"),
    [
      "#!/bin/sh",
      `{ printf '%s\\0' "$@"; printf '\\036'; } >> "$FAKE_LOG"`,
      'if [ "$1" = inspect ]; then',
      '  for a in "$@"; do last=$a; done',
      '  case "$last" in',
      '    *@sha256:*) if [ -n "${FAKE_PINNED:-}" ]; then printf \'%s\\n\' "$FAKE_PINNED"; exit 0; fi ;;',
      '    *) if [ -n "${FAKE_TAGGED:-}" ]; then printf \'%s\\n\' "$FAKE_TAGGED"; exit 0; fi ;;',
      "  esac",
      '  echo "manifest unknown" >&2; exit 1',
      "fi",
      'if [ -n "${FAKE_COPY_FAIL:-}" ]; then echo "copy failed" >&2; exit 1; fi',
      "echo 'Copying blob fake'",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  return {
    bin,
    log,
    calls: () =>
      fs.existsSync(log)
        ? fs
            .readFileSync(log, "utf8")
            .split("\x1e")
            .slice(0, -1)
            .map((c) => c.split("\0").slice(0, -1))
        : [],
  };
}

describe("the copy, run by a real shell against a fake skopeo", () => {
  let dir: string;
  let fake: ReturnType<typeof fakeSkopeo>;
  // Characters a shell would act on: the value must reach skopeo as one untouched argument.
  const SECRET = `AWS:p@ss w'rd"$HOME\`id\``;
  const opts = {
    source: SRC,
    destination: `${PROD_ECR}/wb/app-cpu`,
    tag: "promoted-333333333333",
    srcCredsEnv: "WORKBENCH_SRC_CREDS",
    destCredsEnv: "WORKBENCH_DEST_CREDS",
  };
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-fake-skopeo-"));
    fake = fakeSkopeo(dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function run(argv: string[], extra: Record<string, string> = {}) {
    fs.rmSync(fake.log, { force: true });
    const [file, ...args] = argv;
    return spawnSync(file!, args, {
      encoding: "utf8",
      env: { PATH: `${fake.bin}:/usr/bin:/bin`, FAKE_LOG: fake.log, WORKBENCH_SRC_CREDS: SECRET, WORKBENCH_DEST_CREDS: `${SECRET}-dest`, ...extra },
    });
  }

  it("copyImageCommand's sh wrapper hands skopeo the credential values as single arguments", () => {
    const r = run(copyImageCommand(opts).command);
    expect(r.status).toBe(0);
    expect(fake.calls()).toEqual([
      [
        "copy",
        "--src-creds",
        SECRET,
        "--dest-creds",
        `${SECRET}-dest`,
        "--all",
        "--preserve-digests",
        `docker://${SRC}`,
        `docker://${PROD_ECR}/wb/app-cpu:promoted-333333333333`,
      ],
    ]);
  });

  it("the script text has no secret and copies when the destination lacks the tag", () => {
    const script = copyImageScript(opts);
    expect(script).toBe(
      [
        "set -eu",
        `tagged=$(skopeo inspect --raw --creds "$WORKBENCH_DEST_CREDS" docker://${PROD_ECR}/wb/app-cpu:promoted-333333333333 2>/dev/null) || tagged=`,
        `pinned=$(skopeo inspect --raw --creds "$WORKBENCH_DEST_CREDS" docker://${PROD_ECR}/wb/app-cpu@${D3} 2>/dev/null) || pinned=`,
        'if [ -n "$tagged" ] && [ "$tagged" = "$pinned" ]; then',
        `  echo '${PROD_ECR}/wb/app-cpu:promoted-333333333333 already holds ${D3}'`,
        "else",
        `  skopeo copy --src-creds "$WORKBENCH_SRC_CREDS" --dest-creds "$WORKBENCH_DEST_CREDS" --all --preserve-digests docker://${SRC} docker://${PROD_ECR}/wb/app-cpu:promoted-333333333333`,
        "fi",
        `echo ${PROD_ECR}/wb/app-cpu@${D3}`,
      ].join("\n"),
    );
    const r = run(["sh", "-c", script]);
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: `Copying blob fake\n${PROD_ECR}/wb/app-cpu@${D3}\n` });
    const calls = fake.calls();
    expect(calls.map((c) => c[0])).toEqual(["inspect", "inspect", "copy"]);
    expect(calls[0]).toEqual(["inspect", "--raw", "--creds", `${SECRET}-dest`, `docker://${PROD_ECR}/wb/app-cpu:promoted-333333333333`]);
    expect(calls[2]).toEqual([
      "copy",
      "--src-creds",
      SECRET,
      "--dest-creds",
      `${SECRET}-dest`,
      "--all",
      "--preserve-digests",
      `docker://${SRC}`,
      `docker://${PROD_ECR}/wb/app-cpu:promoted-333333333333`,
    ]);
  });

  it("does not copy again when the tag already holds the digest (ECR refuses to re-push an immutable tag)", () => {
    const r = run(["sh", "-c", copyImageScript(opts)], { FAKE_TAGGED: '{"manifest":1}', FAKE_PINNED: '{"manifest":1}' });
    expect({ status: r.status, stdout: r.stdout }).toEqual({
      status: 0,
      stdout: `${PROD_ECR}/wb/app-cpu:promoted-333333333333 already holds ${D3}\n${PROD_ECR}/wb/app-cpu@${D3}\n`,
    });
    expect(fake.calls().map((c) => c[0])).toEqual(["inspect", "inspect"]);
  });

  it("copies when the tag holds other bytes than the digest", () => {
    const r = run(["sh", "-c", copyImageScript(opts)], { FAKE_TAGGED: '{"manifest":2}', FAKE_PINNED: '{"manifest":1}' });
    expect(r.status).toBe(0);
    expect(fake.calls().map((c) => c[0])).toEqual(["inspect", "inspect", "copy"]);
  });

  it("fails, printing no reference, when the copy fails", () => {
    const r = run(["sh", "-c", copyImageScript(opts)], { FAKE_COPY_FAIL: "1" });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: "", stderr: "copy failed\n" });
  });
});

// ---------------------------------------------------------------------------------------------------------------

function outputs(validatedImages: unknown, extra: Record<string, unknown> = {}): StackOutputs {
  return parseStackOutputs({ ...extra, validatedImages }, SOURCE, "dev");
}

const good = (digest: string, repo = "wb/app-cpu", pools: string[] = []) => ({
  imageRef: `${DEV}/${repo}@${digest}`,
  digest,
  validatedPools: pools,
  scanned: true,
  signed: true,
});

describe("parseStackOutputs", () => {
  it("reads the saved dev outputs", () => {
    const o = parseStackOutputs(DEV_OUTPUTS, SOURCE, "dev");
    expect(o).toEqual({
      source: SOURCE,
      stack: "dev",
      images: {
        "app-cpu": good(D3),
        [USER_ID]: good(D4, "wb-1722830498/thesis", ["h100", "l4"]),
      },
      problems: [],
      entryProblems: {},
    });
  });

  it("reports a document that is not outputs, a missing validatedImages and a secret one", () => {
    expect(parseStackOutputs([1], SOURCE).problems).toEqual([
      { path: SOURCE, message: "is not a JSON object of stack outputs. Pass what `pulumi stack output --json --stack <from>` prints.", received: "[1]" },
    ]);
    expect(parseStackOutputs({ images: {}, environment: "dev" }, SOURCE, "dev").problems).toEqual([
      {
        path: `${SOURCE}: validatedImages`,
        message:
          "is missing: dev exports no validated images. Run `pulumi up` on it first; it exports validatedImages once its images are scanned, signed and validated. Outputs found: environment, images.",
      },
    ]);
    expect(outputs("[secret]").problems).toEqual([
      {
        path: `${SOURCE}: validatedImages`,
        message:
          'expected a mapping of image name to { imageRef, digest, validatedPools, scanned, signed }. If it reads "[secret]", the output is a secret: export it in plain text.',
        received: '"[secret]"',
      },
    ]);
  });

  it("reports each malformed field of an entry and leaves the entry out", () => {
    const o = outputs({ a: { imageRef: 7, digest: D3, validatedPools: ["x", 1], scanned: "yes" }, b: "[secret]", c: good(D3) });
    expect(Object.keys(o.images)).toEqual(["c"]);
    expect(o.entryProblems).toEqual({
      a: [
        { path: `${SOURCE}: validatedImages.a.imageRef`, message: "expected a string (repository@sha256:…).", received: "7" },
        { path: `${SOURCE}: validatedImages.a.validatedPools`, message: "expected a list of pool names.", received: '["x",1]' },
        { path: `${SOURCE}: validatedImages.a.scanned`, message: "expected true or false.", received: '"yes"' },
        { path: `${SOURCE}: validatedImages.a.signed`, message: "is missing: expected true or false." },
      ],
      b: [{ path: `${SOURCE}: validatedImages.b`, message: "expected a mapping { imageRef, digest, validatedPools, scanned, signed }.", received: '"[secret]"' }],
    });
  });
});

describe("selectPromotions", () => {
  it("promotes every validated image when no variant is named, with the source pinned by digest only", () => {
    expect(selectPromotions(parseStackOutputs(DEV_OUTPUTS, SOURCE, "dev"))).toEqual({
      promotions: [
        { variant: "app-cpu", digest: D3, source: SRC, validatedPools: [] },
        { variant: USER_ID, digest: D4, source: `${DEV}/wb-1722830498/thesis@${D4}`, validatedPools: ["h100", "l4"] },
      ],
      problems: [],
    });
  });

  it("promotes only the named variants, once each", () => {
    const r = selectPromotions(parseStackOutputs(DEV_OUTPUTS, SOURCE, "dev"), ["app-cpu", "app-cpu"]);
    expect(r).toEqual({ promotions: [{ variant: "app-cpu", digest: D3, source: SRC, validatedPools: [] }], problems: [] });
  });

  it("refuses a variant dev did not validate, naming it and what dev did validate", () => {
    const r = selectPromotions(parseStackOutputs(DEV_OUTPUTS, SOURCE, "dev"), ["app-cpu", "app-gpu"]);
    expect(r.problems).toEqual([
      {
        path: `${SOURCE}: validatedImages.app-gpu`,
        message: `is missing: dev did not validate "app-gpu", so it cannot be promoted (dev validated: app-cpu, ${USER_ID}). Validate it on dev first (scan, signing and GPU validation must pass), or leave it out of --variants.`,
      },
    ]);
  });

  it("refuses unsigned, unscanned, malformed and inconsistent entries, every one in one list", () => {
    const o = outputs({
      unsigned: { ...good(D3), signed: false },
      unscanned: { ...good(D3), scanned: false },
      baddigest: { ...good(D3), digest: "sha256:ABC" },
      mismatch: { ...good(D3), digest: D1 },
      unpinned: { ...good(D3), imageRef: `${DEV}/wb/app-cpu:latest` },
      fine: good(D4),
    });
    const r = selectPromotions(o);
    expect(r.promotions).toEqual([{ variant: "fine", digest: D4, source: `${DEV}/wb/app-cpu@${D4}`, validatedPools: [] }]);
    expect(r.problems).toEqual([
      {
        path: `${SOURCE}: validatedImages.baddigest.digest`,
        message: 'is not a digest "sha256:" followed by 64 lowercase hex characters.',
        received: '"sha256:ABC"',
      },
      {
        path: `${SOURCE}: validatedImages.mismatch.imageRef`,
        message: `is pinned to ${D3} but digest is ${D1}: the outputs disagree about what was validated. Re-run \`pulumi up\` on dev and promote again.`,
      },
      {
        path: `${SOURCE}: validatedImages.unpinned.imageRef`,
        message: "is not an image reference pinned by digest (repository@sha256:…).",
        received: JSON.stringify(`${DEV}/wb/app-cpu:latest`),
      },
      {
        path: `${SOURCE}: validatedImages.unscanned.scanned`,
        message: "is false: the image did not pass the scan gate. Only scanned images can be promoted.",
        received: "false",
      },
      {
        path: `${SOURCE}: validatedImages.unsigned.signed`,
        message: "is false: the image is not signed. Only signed images can be promoted; sign it on dev (signing.mode: cosign-kms).",
        received: "false",
      },
    ]);
  });

  it("refuses an empty variant name, an empty validatedImages, and carries shape problems of requested entries", () => {
    expect(selectPromotions(outputs({ a: good(D3) }), ["a", ""]).problems).toEqual([
      { path: "--variants[1]", message: "is empty. List variant names separated by commas, e.g. --variants a,b." },
    ]);
    expect(selectPromotions(outputs({})).problems).toEqual([
      { path: `${SOURCE}: validatedImages`, message: "is empty: dev has validated nothing yet, so there is nothing to promote." },
    ]);
    const shaped = outputs({ a: { ...good(D3), signed: "true" }, b: good(D4) });
    expect(selectPromotions(shaped, ["b"]).problems).toEqual([]);
    expect(selectPromotions(shaped, ["a"]).problems).toEqual([
      { path: `${SOURCE}: validatedImages.a.signed`, message: "expected true or false.", received: '"true"' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

const FIXTURE_PROMOTIONS: Promotion[] = [
  { variant: "app-cpu", digest: D3, source: SRC, validatedPools: [] },
  { variant: USER_ID, digest: D4, source: `${DEV}/wb-1722830498/thesis@${D4}`, validatedPools: ["h100", "l4"] },
];

/** Every comment line and trailing comment of a YAML text, in order. */
function comments(text: string): string[] {
  return text.split("\n").flatMap((l) => (l.includes("#") ? [l.slice(l.indexOf("#")).trim()] : []));
}

describe("applyPromotions", () => {
  it("writes the exact expected file: app-cpu replaced, app-gpu kept, the user image appended, comments and order kept", () => {
    const out = applyPromotions(PROD, FIXTURE_PROMOTIONS, "dev");
    expect(out).toBe(PROD_EXPECTED);
    expect(comments(out)).toEqual(comments(PROD));
    expect(comments(PROD)).toHaveLength(9);
  });

  it("leaves an untouched fixture byte-identical when re-emitted, and is idempotent", () => {
    expect(stackFileStyle(PROD)).toEqual({
      options: { indent: 2, indentSeq: true, flowCollectionPadding: false, lineWidth: 0, minContentWidth: 0 },
      exact: true,
      changedLines: 0,
    });
    expect(applyPromotions(PROD_EXPECTED, FIXTURE_PROMOTIONS, "dev")).toBe(PROD_EXPECTED);
  });

  it("produces a stack file config/ accepts, with exactly the promotion it holds", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-promo-cfg-"));
    try {
      const file = path.join(dir, "Pulumi.prod.yaml");
      fs.writeFileSync(file, applyPromotions(PROD, FIXTURE_PROMOTIONS, "dev"));
      const { project, config, secretKeys } = readStackConfig(ROOT, file);
      const short = (k: string) => k.slice(project.length + 1);
      const parsed = parseStackConfig({
        project,
        stack: "prod",
        projectRoot: ROOT,
        values: Object.fromEntries(Object.entries(config).map(([k, v]) => [short(k), v])),
        secretKeys: new Set(secretKeys.map(short)),
      });
      expect({ mode: parsed.mode, promotion: parsed.promotion }).toEqual({
        mode: "promote",
        promotion: {
          from: "dev",
          images: {
            "app-cpu": { digest: D3, source: SRC, validatedPools: [] },
            "app-gpu": { digest: `sha256:${hex("2")}`, source: `${DEV}/wb/app-gpu@sha256:${hex("2")}`, validatedPools: ["h100"] },
            [USER_ID]: { digest: D4, source: `${DEV}/wb-1722830498/thesis@${D4}`, validatedPools: ["h100", "l4"] },
          },
        },
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("creates the promotion block in a stack file that has none, and opens a hand-written empty flow map", () => {
    const text = "# prod\nconfig:\n  workbench-images:environment: prod # always\n";
    expect(applyPromotions(text, FIXTURE_PROMOTIONS.slice(0, 1), "dev")).toBe(
      [
        "# prod",
        "config:",
        "  workbench-images:environment: prod # always",
        "  workbench-images:promotion:",
        "    from: dev",
        "    images:",
        "      app-cpu:",
        `        digest: ${D3}`,
        `        source: ${SRC}`,
        "        validatedPools: []",
        "",
      ].join("\n"),
    );
    const flow = "config:\n  workbench-images:promotion:\n    from: staging\n    images: {}\n";
    expect(applyPromotions(flow, FIXTURE_PROMOTIONS.slice(0, 1), "dev")).toBe(
      `config:\n  workbench-images:promotion:\n    from: dev\n    images:\n      app-cpu:\n        digest: ${D3}\n        source: ${SRC}\n        validatedPools: []\n`,
    );
  });

  it("keeps a file in 4-space style in 4-space style", () => {
    // As Go's yaml.v3 writes by default.
    const text = `config:\n    workbench-images:gpuPools:\n        - name: h100\n    workbench-images:promotion:\n        images: {}\n`;
    const style = stackFileStyle(text);
    expect(style.exact).toBe(true);
    const out = applyPromotions(text, FIXTURE_PROMOTIONS.slice(0, 1), "dev");
    expect(out.split("\n").slice(0, 3)).toEqual(text.split("\n").slice(0, 3));
    expect(parseDocument(out).toJS()).toEqual({
      config: {
        "workbench-images:gpuPools": [{ name: "h100" }],
        "workbench-images:promotion": { images: { "app-cpu": { digest: D3, source: SRC, validatedPools: [] } }, from: "dev" },
      },
    });
  });

  it("says how many lines a non-canonical file would re-format, and still keeps its comments", () => {
    const text = "config:\n  workbench-images:environment: prod   # aligned comment\n";
    expect(stackFileStyle(text)).toMatchObject({ exact: false, changedLines: 1 });
    expect(comments(applyPromotions(text, FIXTURE_PROMOTIONS, "dev"))).toEqual(["# aligned comment"]);
  });

  it("throws on a file that is not a stack file, and reads current digests and changes", () => {
    expect(() => applyPromotions("config: [\n", FIXTURE_PROMOTIONS, "dev")).toThrow(/^the stack file is not valid YAML: .* Fix the syntax; nothing was written\.$/);
    expect(() => applyPromotions("config:\n  workbench-images:promotion: dev\n", FIXTURE_PROMOTIONS, "dev")).toThrow(
      'the stack file\'s config["workbench-images:promotion"] is not a mapping { from, images }. Fix the file; nothing was written.',
    );
    expect(currentPromotions(PROD)).toEqual({ "app-cpu": D1, "app-gpu": `sha256:${hex("2")}` });
    expect(promotionChanges(PROD, FIXTURE_PROMOTIONS)).toEqual([
      { variant: "app-cpu", from: D1, to: D3 },
      { variant: USER_ID, to: D4 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

const PROD_REGISTRY: RegistryConfig = {
  kind: "ecr",
  region: "eu-west-1",
  accountId: "444455556666",
  repositoryPrefix: "wb",
  lifecycle: { keepTagged: 30, untaggedExpireDays: 1 },
  forceDelete: false,
  pullAccountIds: [],
};

/**
 * A component that throws has registered itself already; its pending RPCs must drain under this run's mock monitor,
 * or they reach the next test's monitor as "unknown resource".
 */
async function expectRefused(run: Promise<Plan>, message: string): Promise<void> {
  await expect(run).rejects.toThrow(message);
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
}

async function planPromoted(protect: boolean, promoted = { digest: D3, source: SRC, validatedPools: [] as string[] }): Promise<Plan> {
  return runPlan({
    project: "workbench-images",
    stack: "prod",
    config: {},
    secretKeys: [],
    program: async () => {
      const provider = new aws.Provider("aws", { region: "eu-west-1", allowedAccountIds: ["444455556666"] });
      const img = new PromotedImage(
        "app-cpu",
        {
          name: "app-cpu",
          promoted,
          repositoryName: "wb/app-cpu",
          registry: PROD_REGISTRY,
          credentials: { address: PROD_ECR, username: "AWS", password: pulumi.secret("prod-token") },
          sourceCredentials: { address: DEV, username: "AWS", password: pulumi.secret("dev-token") },
          protect,
        },
        { providers: [provider] },
      );
      // A consumer, as ScanGate will be: it must depend on the copy through imageRef alone.
      new command.local.Command("consumer", { create: pulumi.interpolate`echo ${img.imageRef}` });
      return { imageRef: img.imageRef, digest: img.digest, tag: img.tag, repositoryUrl: img.repositoryUrl };
    },
  });
}

describe("PromotedImage under the mock runtime", () => {
  it("copies by digest with one command and builds nothing", async () => {
    const plan = await planPromoted(true);
    expect(byType(plan, "docker-build:index:Image")).toEqual([]);
    const copies = byType(plan, "command:local:Command").filter((r) => r.name !== "consumer");
    expect(copies.map((r) => r.name)).toEqual(["app-cpu-copy"]);
    const copy = copies[0]!;
    expect(copy.inputs).toEqual({
      create: copyImageScript({
        source: SRC,
        destination: `${PROD_ECR}/wb/app-cpu`,
        tag: "promoted-333333333333",
        srcCredsEnv: "WORKBENCH_SRC_CREDS",
        destCredsEnv: "WORKBENCH_DEST_CREDS",
      }),
      environment: { WORKBENCH_DEST_CREDS: "[secret]", WORKBENCH_SRC_CREDS: "[secret]" },
      triggers: [D3],
    });
    expect(copy.inputs["create"]).toContain("--preserve-digests");
    expect(JSON.stringify(plan.resources)).not.toMatch(/prod-token|dev-token/);
    const repo = byName(plan, "app-cpu-repository-ecr");
    expect(copy.dependencies).toContain(repo.urn);
    expect(copy.propertyDependencies["create"]).toEqual([repo.urn]);
    expect(plan.outputs).toEqual({
      digest: D3,
      imageRef: `${PROD_ECR}/wb/app-cpu@${D3}`,
      repositoryUrl: `${PROD_ECR}/wb/app-cpu`,
      tag: "promoted-333333333333",
    });
    expect(byName(plan, "consumer").propertyDependencies["create"]).toEqual([repo.urn, copy.urn].sort());
  });

  it("protects the repository when protect is true; retains it on removal either way (forceDelete false)", async () => {
    expect(byName(await planPromoted(true), "app-cpu-repository-ecr").options).toEqual({
      protect: true,
      retainOnDelete: true,
      provider: "urn:pulumi:prod::workbench-images::pulumi:providers:aws::aws",
    });
    expect(byName(await planPromoted(false), "app-cpu-repository-ecr").options).toEqual({
      retainOnDelete: true,
      provider: "urn:pulumi:prod::workbench-images::pulumi:providers:aws::aws",
    });
  });

  it("refuses a hand-edited entry whose source names another digest", async () => {
    await expectRefused(
      planPromoted(true, { digest: D1, source: SRC, validatedPools: [] }),
      `promotion.images.app-cpu.source is pinned to ${D3} but digest is ${D1}. The stack file was edited by hand: re-run \`npm run promote\`.`,
    );
  });
});

const LOCAL: LocalRegistryConfig = {
  kind: "local",
  host: "127.0.0.1",
  port: 5001,
  repositoryPrefix: "workbench",
  run: true,
  image: "docker.io/library/registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373",
  dockerHost: "unix:///var/run/docker.sock",
  platforms: ["linux/amd64"],
  clusterNetwork: "kind",
};

async function planLocal(registry: LocalRegistryConfig): Promise<Plan> {
  return runPlan({
    project: "workbench-images",
    stack: "local",
    config: {},
    secretKeys: [],
    program: async () => {
      return { address: new LocalRegistry("local-registry", { registry }).address };
    },
  });
}

describe("LocalRegistry under the mock runtime", () => {
  it("runs the pinned registry image on 127.0.0.1 only, with its storage on a named volume", async () => {
    const plan = await planLocal(LOCAL);
    expect(plan.outputs).toEqual({ address: "127.0.0.1:5001" });
    const image = byName(plan, "local-registry-image");
    expect(image.type).toBe("docker:index/remoteImage:RemoteImage");
    expect(image.inputs).toEqual({ keepLocally: true, name: LOCAL.image });
    const volume = byName(plan, "local-registry-storage");
    expect(volume.inputs).toEqual({ labels: [{ label: "workbench-images/role", value: "local-registry-storage" }], name: "local-registry-storage" });
    const container = byName(plan, "local-registry-container");
    expect(container.inputs["ports"]).toEqual([{ external: 5001, internal: 5000, ip: "127.0.0.1", protocol: "tcp" }]);
    expect(container.inputs["restart"]).toBe("unless-stopped");
    expect(container.inputs["envs"]).toEqual(["REGISTRY_STORAGE_DELETE_ENABLED=true"]);
    expect(container.inputs["volumes"]).toEqual([{ containerPath: "/var/lib/registry", volumeName: "local-registry-storage" }]);
    expect(container.inputs["name"]).toBe("local-registry");
    expect(container.inputs["networksAdvanced"]).toEqual([{ aliases: ["local-registry"], name: "kind" }]);
    expect(container.inputs["wait"]).toBe(true);
    expect(container.dependencies).toEqual([image.urn, volume.urn].sort());
    expect(container.propertyDependencies["volumes"]).toEqual([volume.urn]);
  });

  it("publishes on the configured port and refuses a registry the program is not to run", async () => {
    const plan = await planLocal({ ...LOCAL, host: "localhost", port: 5123 });
    expect(plan.outputs).toEqual({ address: "localhost:5123" });
    expect(byName(plan, "local-registry-container").inputs["ports"]).toEqual([{ external: 5123, internal: 5000, ip: "127.0.0.1", protocol: "tcp" }]);
    await expectRefused(
      planLocal({ ...LOCAL, run: false }),
      "registry.run is false: a registry is already expected at 127.0.0.1:5001. Do not create LocalRegistry then, or set registry.run: true to let the program run one.",
    );
  });
});
