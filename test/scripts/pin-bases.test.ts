import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DigestResolver, pinCatalogText, runPinBases } from "../../scripts/lib/pin-bases";
import { PROJECT_ROOT } from "../../lib/paths";

// skopeoResolver against a real registry with the real skopeo: pin-bases.real.test.ts (vitest project `real`).
const REPO_ROOT = PROJECT_ROOT;
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;
const OLD = `sha256:${"a".repeat(64)}`;

/** A fake registry: a fixed tag → digest table that records every lookup. */
function fakeResolver(table: Record<string, string>): DigestResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolver = async (ref: string): Promise<string> => {
    calls.push(ref);
    const digest = table[ref];
    if (digest === undefined) throw new Error(`manifest unknown: ${ref}`);
    return digest;
  };
  return Object.assign(resolver, { calls });
}

// Comments everywhere, flow collections, a long line and quoted scalars: things yaml's own stringifier would
// re-flow, so a byte-for-byte comparison proves the splice touched only the refs.
const CATALOG = `# Base catalog.   Comment with odd   spacing, kept as is.
variants:
  # first
  - name: a
    platforms: [linux/amd64, linux/arm64]   # flow seq, not padded to [ a, b ]
    base:
      arg: BASE_IMAGE
      ref: docker.io/library/python:3.12-slim # tag only
    smoke:
      command: ["python", "-c", "import torch, transformers, accelerate, peft, datasets, huggingface_hub, trl, deepspeed"]

  - name: b
    base: { arg: CUDA_IMAGE, ref: "docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04@${OLD}" }
    extraBases:
      BASE_IMAGE: 'docker.io/library/python:3.12-slim'
      OTHER: quay.io/x/y@${OLD}  # digest only: nothing to resolve
  - name: c
    base:
      ref: quay.io/jupyter/minimal-notebook:2025-07-28
`;

const TABLE = {
  "docker.io/library/python:3.12-slim": D1,
  "docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04": D2,
  "quay.io/jupyter/minimal-notebook:2025-07-28": D3,
};

describe("pinCatalogText", () => {
  it("appends digests to tag-only refs and changes nothing else, byte for byte", async () => {
    const resolver = fakeResolver(TABLE);
    const result = await pinCatalogText(CATALOG, resolver, { refresh: false });
    expect(result.problems).toEqual([]);
    expect(result.text).toBe(`# Base catalog.   Comment with odd   spacing, kept as is.
variants:
  # first
  - name: a
    platforms: [linux/amd64, linux/arm64]   # flow seq, not padded to [ a, b ]
    base:
      arg: BASE_IMAGE
      ref: docker.io/library/python:3.12-slim@${D1} # tag only
    smoke:
      command: ["python", "-c", "import torch, transformers, accelerate, peft, datasets, huggingface_hub, trl, deepspeed"]

  - name: b
    base: { arg: CUDA_IMAGE, ref: "docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04@${OLD}" }
    extraBases:
      BASE_IMAGE: 'docker.io/library/python:3.12-slim@${D1}'
      OTHER: quay.io/x/y@${OLD}  # digest only: nothing to resolve
  - name: c
    base:
      ref: quay.io/jupyter/minimal-notebook:2025-07-28@${D3}
`);
    expect(result.changes).toEqual([
      { path: "variants[0].base.ref", from: "docker.io/library/python:3.12-slim", to: `docker.io/library/python:3.12-slim@${D1}` },
      { path: "variants[1].extraBases.BASE_IMAGE", from: "docker.io/library/python:3.12-slim", to: `docker.io/library/python:3.12-slim@${D1}` },
      { path: "variants[2].base.ref", from: "quay.io/jupyter/minimal-notebook:2025-07-28", to: `quay.io/jupyter/minimal-notebook:2025-07-28@${D3}` },
    ]);
    // Without --refresh the pinned cuda ref is never looked up; python (used twice) is looked up once.
    expect(resolver.calls).toEqual(["docker.io/library/python:3.12-slim", "quay.io/jupyter/minimal-notebook:2025-07-28"]);
  });

  it("with refresh moves a pin to the tag's current digest, keeping the double quotes", async () => {
    const resolver = fakeResolver(TABLE);
    const result = await pinCatalogText(CATALOG, resolver, { refresh: true });
    expect(result.problems).toEqual([]);
    expect(result.changes.map((c) => c.path)).toEqual([
      "variants[0].base.ref",
      "variants[1].base.ref",
      "variants[1].extraBases.BASE_IMAGE",
      "variants[2].base.ref",
    ]);
    expect(result.changes[1]).toEqual({
      path: "variants[1].base.ref",
      from: `docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04@${OLD}`,
      to: `docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04@${D2}`,
    });
    expect(result.text.split("\n")[12]).toBe(`    base: { arg: CUDA_IMAGE, ref: "docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04@${D2}" }`);
    // The digest-only ref has no tag to follow, even with refresh.
    expect(result.text.split("\n")[15]).toBe(`      OTHER: quay.io/x/y@${OLD}  # digest only: nothing to resolve`);
    expect(resolver.calls).toEqual([
      "docker.io/library/python:3.12-slim",
      "docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04",
      "quay.io/jupyter/minimal-notebook:2025-07-28",
    ]);
  });

  it("reports no change when a refreshed pin is already current, and leaves digest-only refs unresolved", async () => {
    const text = `variants:\n  - base:\n      ref: r.io/a:1@${D1}\n    extraBases:\n      X: r.io/b@${D2}\n`;
    const resolver = fakeResolver({ "r.io/a:1": D1 });
    const result = await pinCatalogText(text, resolver, { refresh: true });
    expect(result).toEqual({ text, changes: [], problems: [] });
    expect(resolver.calls).toEqual(["r.io/a:1"]);
    const noRefresh = fakeResolver({});
    expect(await pinCatalogText(text, noRefresh, { refresh: false })).toEqual({ text, changes: [], problems: [] });
    expect(noRefresh.calls).toEqual([]);
  });

  it("changes nothing when any tag fails to resolve, and names every path that uses it", async () => {
    const resolver = fakeResolver({ "docker.io/library/python:3.12-slim": D1 });
    const result = await pinCatalogText(CATALOG, resolver, { refresh: true });
    expect(result.text).toBe(CATALOG);
    expect(result.changes).toEqual([]);
    expect(result.problems).toEqual([
      "variants[1].base.ref (line 13): could not resolve docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04: manifest unknown: docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04. Check that the tag exists and that this machine can reach the registry (and is logged in, for a private one).",
      "variants[2].base.ref (line 19): could not resolve quay.io/jupyter/minimal-notebook:2025-07-28: manifest unknown: quay.io/jupyter/minimal-notebook:2025-07-28. Check that the tag exists and that this machine can reach the registry (and is logged in, for a private one).",
    ]);
  });

  it("groups every path of a failing tag into one problem", async () => {
    const result = await pinCatalogText(CATALOG, fakeResolver({}), { refresh: false });
    expect(result.problems[0]).toBe(
      "variants[0].base.ref (line 8), variants[1].extraBases.BASE_IMAGE (line 15): could not resolve docker.io/library/python:3.12-slim: manifest unknown: docker.io/library/python:3.12-slim. Check that the tag exists and that this machine can reach the registry (and is logged in, for a private one).",
    );
    expect(result.problems).toHaveLength(2);
  });

  it("rejects a resolver answer that is not a sha256 digest", async () => {
    const result = await pinCatalogText("variants:\n  - base: { ref: r.io/a:1 }\n", async () => "sha256:abc", { refresh: false });
    expect(result.problems).toEqual([
      'variants[0].base.ref (line 2): resolving r.io/a:1 gave "sha256:abc", not a sha256:<64 hex> digest. This is a resolver bug: report it.',
    ]);
    expect(result.changes).toEqual([]);
  });

  it("reports refs that cannot be pinned before asking any registry", async () => {
    const text = "variants:\n  - base: { ref: python }\n    extraBases: { X: 'Not A Ref', Y: 12 }\n  - base: { ref: r.io/a:1 }\n";
    const resolver = fakeResolver({ "r.io/a:1": D1 });
    const result = await pinCatalogText(text, resolver, { refresh: false });
    expect(result).toEqual({
      text,
      changes: [],
      problems: [
        'variants[0].extraBases.Y: must be a string image reference like "registry/repository:tag@sha256:<digest>".',
        'variants[0].base.ref (line 2): has neither a tag nor a digest (received "python"), so there is nothing to pin. Add the tag you mean, e.g. ":1.2.3".',
        'variants[0].extraBases.X (line 3): is not an image reference like "registry/repository:tag" (received "Not A Ref"). Fix the reference.',
      ],
    });
    expect(resolver.calls).toEqual([]);
  });

  it("pins an anchored ref once, where the anchor is, and its aliases follow", async () => {
    const text = "variants:\n  - base:\n      ref: &py r.io/py:3 # anchor\n  - base:\n      ref: *py\n    extraBases:\n      B: *py\n";
    const resolver = fakeResolver({ "r.io/py:3": D1 });
    const result = await pinCatalogText(text, resolver, { refresh: false });
    expect(result.problems).toEqual([]);
    expect(result.text).toBe(`variants:\n  - base:\n      ref: &py r.io/py:3@${D1} # anchor\n  - base:\n      ref: *py\n    extraBases:\n      B: *py\n`);
    expect(result.changes).toEqual([{ path: "variants[0].base.ref", from: "r.io/py:3", to: `r.io/py:3@${D1}` }]);
  });

  it("refuses a block scalar, invalid YAML and a catalog without variants", async () => {
    const block = await pinCatalogText("variants:\n  - base:\n      ref: >-\n        r.io/a:1\n", fakeResolver({ "r.io/a:1": D1 }), { refresh: false });
    expect(block.problems).toEqual([
      "variants[0].base.ref (line 3): is a block scalar (BLOCK_FOLDED); pin-bases only rewrites plain or quoted strings. Write the reference on one line.",
    ]);
    const broken = await pinCatalogText("variants: [\n", fakeResolver({}), { refresh: false });
    expect(broken.problems).toHaveLength(1);
    expect(broken.problems[0]).toMatch(/^line \d+: is not valid YAML: .+\. Fix the syntax there\.$/);
    expect((await pinCatalogText("name: x\n", fakeResolver({}), { refresh: false })).problems).toEqual([
      'variants: is missing or not a list. The catalog needs a top-level "variants:" list.',
    ]);
  });

  it("re-pins the real catalog touching only the digests of its 16 base refs", async () => {
    const text = fs.readFileSync(path.join(REPO_ROOT, "images", "catalog.yaml"), "utf8");
    const result = await pinCatalogText(text, async () => D1, { refresh: true });
    expect(result.problems).toEqual([]);
    // Expected by plain text substitution on ref lines only (comments hold shortened digests, which must not move).
    const expected = text.replace(/^(\s+(?:ref|[A-Z_]+):\s*\S+?)@sha256:[a-f0-9]{64}/gm, `$1@${D1}`);
    expect(expected).not.toBe(text);
    expect(result.text).toBe(expected);
    expect(result.changes.length).toBe((text.match(/@sha256:[a-f0-9]{64}/g) ?? []).length);
  });
});

describe("npm run pin-bases (in process, fake registry)", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pin-bases-cli-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = async (argv: string[], table: Record<string, string> = TABLE) => {
    let stdout = "";
    let stderr = "";
    const tls: boolean[] = [];
    const code = await runPinBases(argv, {
      cwd: dir,
      defaultCatalog: "catalog.yaml",
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      makeResolver: ({ tlsVerify }) => {
        tls.push(tlsVerify);
        return fakeResolver(table);
      },
    });
    return { code, stdout, stderr, tls };
  };

  it("writes the pinned catalog, prints each change, and then has nothing to do", async () => {
    fs.writeFileSync(path.join(dir, "catalog.yaml"), CATALOG, { mode: 0o640 });
    const first = await run([]);
    expect(first).toEqual({
      code: 0,
      stderr: "",
      tls: [true],
      stdout:
        `variants[0].base.ref: docker.io/library/python:3.12-slim → docker.io/library/python:3.12-slim@${D1}\n` +
        `variants[1].extraBases.BASE_IMAGE: docker.io/library/python:3.12-slim → docker.io/library/python:3.12-slim@${D1}\n` +
        `variants[2].base.ref: quay.io/jupyter/minimal-notebook:2025-07-28 → quay.io/jupyter/minimal-notebook:2025-07-28@${D3}\n` +
        "pinned 3 base references in catalog.yaml\n",
    });
    const written = fs.readFileSync(path.join(dir, "catalog.yaml"), "utf8");
    expect(written).toBe((await pinCatalogText(CATALOG, fakeResolver(TABLE), { refresh: false })).text);
    expect(fs.statSync(path.join(dir, "catalog.yaml")).mode & 0o777).toBe(0o640);
    expect(fs.readdirSync(dir)).toEqual(["catalog.yaml"]); // no temp file left behind
    expect(await run(["--catalog", "catalog.yaml"])).toEqual({ code: 0, stderr: "", tls: [true], stdout: "all bases already pinned in catalog.yaml\n" });
  });

  it("--dry-run prints the changes and writes nothing; --no-tls-verify reaches the resolver", async () => {
    fs.writeFileSync(path.join(dir, "dry.yaml"), CATALOG);
    const r = await run(["--catalog", "dry.yaml", "--dry-run", "--refresh", "--no-tls-verify"]);
    expect(r.code).toBe(0);
    expect(r.tls).toEqual([false]);
    expect(r.stdout.split("\n").slice(-2)).toEqual(["dry run: dry.yaml not written (4 base references would change)", ""]);
    expect(r.stdout).toContain(`variants[1].base.ref: docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04@${OLD} → docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04@${D2}\n`);
    expect(fs.readFileSync(path.join(dir, "dry.yaml"), "utf8")).toBe(CATALOG);
  });

  it("exits 2 with every problem in one message and leaves the file alone", async () => {
    fs.writeFileSync(path.join(dir, "bad.yaml"), CATALOG);
    const r = await run(["--catalog", "bad.yaml"], {});
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n").slice(0, 1)).toEqual(["pin-bases: bad.yaml was not changed; fix these and run it again:"]);
    expect(r.stderr.match(/^ {2}- /gm)).toHaveLength(2);
    expect(fs.readFileSync(path.join(dir, "bad.yaml"), "utf8")).toBe(CATALOG);
  });

  const HELP = "Run `npm run pin-bases -- --help` for the options.";
  const refused = (stderr: string) => ({ code: 2, stdout: "", tls: [], stderr });

  it("exits 2 with one line for each bad flag, argument or catalog file (missing, a directory)", async () => {
    expect(await run(["--refersh"])).toEqual(refused(`pin-bases: --refersh: is not an option of pin-bases. Did you mean "--refresh"? ${HELP}\n`));
    expect(await run(["images/catalog.yaml"])).toEqual(refused(`pin-bases: images/catalog.yaml: is not an argument pin-bases takes. ${HELP}\n`));
    expect(await run(["--catalog"])).toEqual(
      refused(`pin-bases: --catalog: needs a value after it. Write --catalog <value> (or --catalog=<value> for a value starting with "-"). ${HELP}\n`),
    );
    expect(await run(["--dry-run=yes"])).toEqual(refused('pin-bases: --dry-run: takes no value: write --dry-run alone. (got "yes")\n'));
    expect(await run(["--catalog", "nope.yaml"])).toEqual(refused("pin-bases: nope.yaml: does not exist. Pass the catalog with --catalog <file>.\n"));
    expect(await run(["--catalog", "."])).toEqual(refused(`pin-bases: ${dir}: is a directory, not a file. Pass the catalog with --catalog <file>.\n`));
  });

  it("exits 2 with one line on a catalog that is not YAML or whose aliases expand too far, before asking any registry", async () => {
    fs.writeFileSync(path.join(dir, "broken.yaml"), "variants:\n  - name: [unclosed\n");
    const broken = await run(["--catalog", "broken.yaml"]);
    expect({ ...broken, stderr: "" }).toEqual({ code: 2, stdout: "", tls: [], stderr: "" });
    expect(broken.stderr).toMatch(/^pin-bases: broken\.yaml \(line \d+\): is not valid YAML: [^\n]+\. Fix the syntax there\. Nothing was written\.\n$/);
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]", "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]", "variants: *c", ""];
    fs.writeFileSync(path.join(dir, "bomb.yaml"), bomb.join("\n"));
    expect(await run(["--catalog", "bomb.yaml"])).toEqual(
      refused(
        "pin-bases: bomb.yaml: cannot be expanded: Excessive alias count indicates a resource exhaustion attack. Write the repeated values out instead of nesting aliases. Nothing was written.\n",
      ),
    );
  });
});
