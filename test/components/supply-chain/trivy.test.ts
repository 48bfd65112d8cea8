import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { ignoreFileHash, trivySbomCommand, trivyScanCommand, validateIgnoreFile } from "../../../components/supply-chain/trivy";
import { PROJECT_ROOT } from "../../../lib/paths";

const ROOT = PROJECT_ROOT;
const REF = `111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-cpu@sha256:${"ab".repeat(32)}`;
const FILE = ".trivyignore.yaml";
const TODAY = new Date("2026-03-01T15:30:00Z");

describe("the Trivy scan command", () => {
  it("fails (exit 1) on CRITICAL/HIGH findings of the registry's copy of the digest, fixed or not (issue #12)", () => {
    const command = trivyScanCommand({ ref: REF, ignoreFile: FILE });
    expect(command).toBe(
      "trivy image --image-src remote --scanners vuln,secret --severity CRITICAL,HIGH " +
        `--ignorefile .trivyignore.yaml --exit-code 1 --no-progress --timeout 30m --format table ${REF}`,
    );
    expect(command).not.toContain("--ignore-unfixed");
    expect(trivyScanCommand({ ref: REF, ignoreFile: FILE, ignoreUnfixed: false })).toBe(command);
  });

  it("lets findings without a fixed version pass only when ignoreUnfixed is true (scan.ignoreUnfixed)", () => {
    expect(trivyScanCommand({ ref: REF, ignoreFile: FILE, ignoreUnfixed: true })).toBe(
      "trivy image --image-src remote --scanners vuln,secret --severity CRITICAL,HIGH --ignore-unfixed " +
        `--ignorefile .trivyignore.yaml --exit-code 1 --no-progress --timeout 30m --format table ${REF}`,
    );
  });

  it("orders severities most severe first and quotes an odd ignore-file path", () => {
    expect(
      trivyScanCommand({ ref: REF, ignoreFile: "security/trivy ignore.yaml", severities: ["MEDIUM", "CRITICAL", "HIGH"], timeout: "1h" }),
    ).toBe(
      "trivy image --image-src remote --scanners vuln,secret --severity CRITICAL,HIGH,MEDIUM " +
        `--ignorefile 'security/trivy ignore.yaml' --exit-code 1 --no-progress --timeout 1h --format table ${REF}`,
    );
  });

  it("scans the local stack's loopback registry the same way (go-containerregistry talks HTTP to 127.0.0.1)", () => {
    const local = `127.0.0.1:5001/wb/app-cpu@sha256:${"cd".repeat(32)}`;
    expect(trivyScanCommand({ ref: local, ignoreFile: FILE })).toBe(
      "trivy image --image-src remote --scanners vuln,secret --severity CRITICAL,HIGH " +
        `--ignorefile .trivyignore.yaml --exit-code 1 --no-progress --timeout 30m --format table ${local}`,
    );
  });

  it("refuses a reference by tag, no severity, an ignore file Trivy would not read as YAML and a malformed timeout", () => {
    const tagRef = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-cpu:latest";
    expect(() => trivyScanCommand({ ref: tagRef, ignoreFile: FILE })).toThrow(
      `args.ref must be an image reference pinned by digest (repository@sha256:<64 hex>), got "${tagRef}": the scan gate scans a digest, ` +
        "never a tag, because a tag can later point at other content. Pass the image's imageRef (or the ScanGate's scannedRef).",
    );
    expect(() => trivyScanCommand({ ref: REF, ignoreFile: FILE, severities: [] })).toThrow(
      'args.severities is empty: name at least one severity that fails the gate, e.g. ["CRITICAL", "HIGH"].',
    );
    expect(() => trivyScanCommand({ ref: REF, ignoreFile: ".trivyignore" })).toThrow(
      'args.ignoreFile must be a .yaml or .yml file (Trivy reads the YAML format only by that extension), got ".trivyignore".',
    );
    expect(() => trivyScanCommand({ ref: REF, ignoreFile: FILE, timeout: "30 minutes" })).toThrow(
      'args.timeout must be a duration such as "30m", got "30 minutes".',
    );
  });
});

describe("the Trivy SBOM command", () => {
  it("writes the CycloneDX SBOM of the registry's copy of the digest (no vulnerability scan, no database)", () => {
    expect(trivySbomCommand({ ref: REF, output: ".attestations/dev/app-cpu/sha256-ab.cdx.json" })).toBe(
      `trivy image --image-src remote --format cyclonedx --output .attestations/dev/app-cpu/sha256-ab.cdx.json --no-progress --timeout 30m ${REF}`,
    );
    expect(trivySbomCommand({ ref: REF, output: "out dir/sbom.json", timeout: "1h" })).toBe(
      `trivy image --image-src remote --format cyclonedx --output 'out dir/sbom.json' --no-progress --timeout 1h ${REF}`,
    );
  });

  it("refuses a reference by tag, an output that is not JSON and a malformed timeout", () => {
    const tagRef = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/app-cpu:latest";
    expect(() => trivySbomCommand({ ref: tagRef, output: "sbom.json" })).toThrow(
      `args.ref must be an image reference pinned by digest (repository@sha256:<64 hex>), got "${tagRef}": the SBOM describes a digest, never a tag`,
    );
    expect(() => trivySbomCommand({ ref: REF, output: "sbom.xml" })).toThrow('args.output must be a .json file (CycloneDX JSON), got "sbom.xml".');
    expect(() => trivySbomCommand({ ref: REF, output: "sbom.json", timeout: "1 hour" })).toThrow('args.timeout must be a duration such as "30m", got "1 hour".');
  });
});

describe("the committed ignore file", () => {
  const text = fs.readFileSync(path.join(ROOT, FILE), "utf8");

  it("ignores nothing and passes our rules", () => {
    expect(parse(text)).toEqual({ vulnerabilities: [] });
    expect(validateIgnoreFile(text, FILE, TODAY)).toEqual([]);
  });

  it("is hashed from its exact bytes (a scan trigger)", () => {
    expect(ignoreFileHash("vulnerabilities: []\n")).toBe("0944c6a1e87ece8c4cd87aa66493cd2991597e526caa656be1de2e38dae52513");
    expect(ignoreFileHash("vulnerabilities: []\n")).not.toBe(ignoreFileHash("vulnerabilities: [] \n"));
  });
});

describe("ignore-file rules", () => {
  it("accepts complete entries in every section, narrowed by paths and purls", () => {
    const text = `vulnerabilities:
  - id: CVE-2025-0001
    purls: ["pkg:pypi/example@1.2.3"]
    statement: The vulnerable CLI is never run.
    expired_at: 2026-03-02
misconfigurations:
secrets:
  - id: aws-access-key-id
    paths: ["/opt/conda/pkgs/**/tests/*"]
    statement: Test fixtures of a package, not a credential.
    expired_at: 2026-12-31
licenses: []
`;
    expect(validateIgnoreFile(text, FILE, TODAY)).toEqual([]);
  });

  it("names every missing field, typo, bad date and expired entry at its key path and line", () => {
    const text = `vulnerabilities:
  - id: CVE-2025-0001
    statement: Accepted until the base image moves to bookworm.
    expired_at: 2026-03-01
  - id: CVE-2025-0002
    expires_at: 2026-09-01
  - CVE-2025-0003
  - id:
    statement: "   "
    expired_at: 2026-02-30
secrets:
  - id: generic-api-key
    statement: Example key in documentation.
    expired_at: 2026-09-01
    purls: ["pkg:generic/x"]
vulnerabilites: []
`;
    expect(validateIgnoreFile(text, FILE, TODAY)).toEqual([
      {
        path: ".trivyignore.yaml: vulnerabilites (line 16)",
        message: 'unknown key "vulnerabilites". Did you mean "vulnerabilities"? Remove it or correct the spelling.',
        received: "[]",
      },
      {
        path: ".trivyignore.yaml: vulnerabilities[0].expired_at (line 4)",
        message:
          "expired on 2026-03-01: Trivy no longer ignores this finding, so the scan gate fails on it again. Re-assess it: upgrade or rebuild to fix it, or, if it still does not apply, write a new statement and a new expired_at.",
        received: '"2026-03-01"',
      },
      {
        path: ".trivyignore.yaml: vulnerabilities[1].expires_at (line 6)",
        message: 'unknown key "expires_at". Did you mean "expired_at"? Remove it or correct the spelling.',
        received: '"2026-09-01"',
      },
      {
        path: ".trivyignore.yaml: vulnerabilities[1].statement (line 5)",
        message:
          "is required: say why the finding does not affect these images, or why it is accepted until expired_at, so whoever re-assesses it knows what was decided.",
      },
      {
        path: ".trivyignore.yaml: vulnerabilities[1].expired_at (line 5)",
        message: "is required: every ignored finding expires so that it is re-assessed. Set a date such as 2026-06-30 (YYYY-MM-DD).",
      },
      { path: ".trivyignore.yaml: vulnerabilities[2] (line 7)", message: "must be a mapping (key: value).", received: '"CVE-2025-0003"' },
      {
        path: ".trivyignore.yaml: vulnerabilities[3].id (line 8)",
        message: "is required: the finding's ID as Trivy prints it (CVE-…, GHSA-…, AVD-…, or the secret rule's ID).",
      },
      {
        path: ".trivyignore.yaml: vulnerabilities[3].statement (line 9)",
        message:
          "is required: say why the finding does not affect these images, or why it is accepted until expired_at, so whoever re-assesses it knows what was decided.",
      },
      {
        path: ".trivyignore.yaml: vulnerabilities[3].expired_at (line 10)",
        message: "must be a date written YYYY-MM-DD, such as 2026-06-30.",
        received: '"2026-02-30"',
      },
      {
        path: ".trivyignore.yaml: secrets[0].purls (line 15)",
        message: 'unknown key "purls". Known keys here: id, statement, expired_at, paths. Remove it or correct the spelling.',
        received: '["pkg:generic/x"]',
      },
    ]);
  });

  it("expires an entry from the first instant of its expired_at day (UTC), as Trivy does", () => {
    const entry = (date: string) => `vulnerabilities:\n  - id: CVE-1\n    statement: s\n    expired_at: ${date}\n`;
    expect(validateIgnoreFile(entry("2026-03-02"), FILE, new Date("2026-03-01T23:59:59Z"))).toEqual([]);
    expect(validateIgnoreFile(entry("2026-03-02"), FILE, new Date("2026-03-02T00:00:00Z")).map((p) => p.path)).toEqual([
      ".trivyignore.yaml: vulnerabilities[0].expired_at (line 4)",
    ]);
  });

  it("accepts an empty file, and says what to write when the file is not a mapping or not YAML", () => {
    expect(validateIgnoreFile("", FILE, TODAY)).toEqual([]);
    expect(validateIgnoreFile("- CVE-2025-0001\n", FILE, TODAY)).toEqual([
      {
        path: ".trivyignore.yaml",
        message:
          'must be a mapping of the sections vulnerabilities, misconfigurations, secrets, licenses, each a list of entries. A file that ignores nothing is "vulnerabilities: []".',
        received: '["CVE-2025-0001"]',
      },
    ]);
    expect(validateIgnoreFile("vulnerabilities: {id: CVE-1\n", FILE, TODAY)[0]!.message).toMatch(/^is not valid YAML: .+\. Fix the syntax at that line\.$/);
    expect(validateIgnoreFile("vulnerabilities: CVE-1\n", FILE, TODAY)).toEqual([
      { path: ".trivyignore.yaml: vulnerabilities (line 1)", message: 'must be a list. Write the section as a list of entries ("- id: …"), or [] when it has none.', received: '"CVE-1"' },
    ]);
  });
});
