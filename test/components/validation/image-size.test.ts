/**
 * The size gate's command (components/validation/image-size.ts), run for real: the exact `node -e SCRIPT` text the
 * SizeGate's Command runs, against a stand-in `skopeo` on PATH that serves recorded manifests (exact stdout, stderr
 * and exit status). Against a real docker-registry on 127.0.0.1 with the real skopeo: image-size.real.test.ts.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SIZE_PASSWORD_ENV, SIZE_USERNAME_ENV, sizeCheckScript } from "../../../components/validation/image-size";

const REPO = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/wb/jupyter-ml-cpu";
const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

function manifest(configSize: number, layerSizes: number[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(`config${configSize}`), size: configSize },
    layers: layerSizes.map((size, i) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(`layer${i}-${size}`), size })),
  });
}

// amd64: 2,000 + 1,200,000,000 + 300,000,000 = 1,500,002,000 bytes; arm64: 1,000 + 2,600,000,000 = 2,600,001,000.
const AMD64 = manifest(2_000, [1_200_000_000, 300_000_000]);
const ARM64 = manifest(1_000, [2_600_000_000]);
// BuildKit's provenance attestation manifest: not pulled by nodes, must not be counted.
const ATTESTATION = manifest(500, [9_999_999_999]);
const INDEX = JSON.stringify({
  schemaVersion: 2,
  mediaType: INDEX_TYPE,
  manifests: [
    { mediaType: MANIFEST_TYPE, digest: sha(AMD64), size: AMD64.length, platform: { architecture: "amd64", os: "linux" } },
    { mediaType: MANIFEST_TYPE, digest: sha(ARM64), size: ARM64.length, platform: { architecture: "arm64", os: "linux", variant: "v8" } },
    {
      mediaType: MANIFEST_TYPE,
      digest: sha(ATTESTATION),
      size: ATTESTATION.length,
      platform: { architecture: "unknown", os: "unknown" },
      annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": sha(AMD64) },
    },
  ],
});
const SINGLE = manifest(3_000, [400_000_000, 99_000_000]); // 499,003,000 bytes
const SINGLE_CONFIG = JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [] } });

/** The stand-in: answers `skopeo inspect --raw [--config] [--tls-verify=false] [--authfile F] docker://REF`. */
const STANDIN = `#!/usr/bin/env node
const fs = require("fs");
const args = process.argv.slice(2);
const served = JSON.parse(fs.readFileSync(process.env.STANDIN_MANIFESTS, "utf8"));
const at = args.indexOf("--authfile");
fs.appendFileSync(process.env.STANDIN_LOG, JSON.stringify({ args, auth: at >= 0 ? JSON.parse(fs.readFileSync(args[at + 1], "utf8")) : null }) + "\\n");
const ref = args[args.length - 1].replace(/^docker:\\/\\//, "");
const key = args.includes("--config") ? ref + " config" : ref;
if (!(key in served)) { process.stderr.write("time=x level=fatal msg=\\"Error parsing image name \\\\\\"docker://" + ref + "\\\\\\": manifest unknown\\"\\n"); process.exit(1); }
process.stdout.write(served[key]);
`;

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "size-gate-"));
  fs.mkdirSync(path.join(work, "bin"));
  fs.writeFileSync(path.join(work, "bin", "skopeo"), STANDIN, { mode: 0o755 });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  calls: Array<{ args: string[]; auth: unknown }>;
}

/** Runs the script exactly as the Command does (`node -e SCRIPT`), the stand-in first on PATH. */
function runStandIn(script: string, served: Record<string, string>, env: Record<string, string> = {}): Run {
  const manifests = path.join(work, "served.json");
  const log = path.join(work, "calls.log");
  fs.writeFileSync(manifests, JSON.stringify(served));
  fs.writeFileSync(log, "");
  const r = spawnSync("node", ["-e", script], {
    encoding: "utf8",
    env: { PATH: `${path.join(work, "bin")}:${process.env["PATH"]}`, STANDIN_MANIFESTS: manifests, STANDIN_LOG: log, TMPDIR: work, ...env },
    timeout: 60_000,
  });
  const calls = fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Run["calls"][number]);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, calls };
}

const indexRef = `${REPO}@${sha(INDEX)}`;
const multiArch = { [indexRef]: INDEX, [`${REPO}@${sha(AMD64)}`]: AMD64, [`${REPO}@${sha(ARM64)}`]: ARM64 };

describe("size check against recorded manifests (stand-in skopeo)", () => {
  it("measures every platform of an index, skips the attestation manifest and passes under budget", () => {
    const r = runStandIn(sizeCheckScript({ id: "jupyter-ml-cpu", ref: indexRef, budgetMB: 3000 }), multiArch);
    expect(r).toMatchObject({
      code: 0,
      stdout:
        "jupyter-ml-cpu linux/amd64: 1500.0 MB (compressed config + 2 layers), budget 3000 MB\n" +
        "jupyter-ml-cpu linux/arm64/v8: 2600.0 MB (compressed config + 1 layers), budget 3000 MB\n",
      stderr: "",
    });
    // The index, then each platform manifest; never the attestation manifest.
    expect(r.calls.map((c) => c.args)).toEqual([
      ["inspect", "--raw", `docker://${indexRef}`],
      ["inspect", "--raw", `docker://${REPO}@${sha(AMD64)}`],
      ["inspect", "--raw", `docker://${REPO}@${sha(ARM64)}`],
    ]);
  });

  it("fails a platform over budget with its measured MB and the budget; the other platform is still listed", () => {
    const r = runStandIn(sizeCheckScript({ id: "jupyter-ml-cpu", ref: indexRef, budgetMB: 2000 }), multiArch);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      "jupyter-ml-cpu linux/amd64: 1500.0 MB (compressed config + 2 layers), budget 2000 MB\n" +
        "jupyter-ml-cpu linux/arm64/v8: 2600.0 MB (compressed config + 1 layers), budget 2000 MB\n",
    );
    expect(r.stderr).toBe(
      `jupyter-ml-cpu is over its size budget on linux/arm64/v8: a node pulls 2600.0 MB (compressed config + 1 layers of manifest ${sha(ARM64)}), ` +
        "sizeBudgetMB is 2000. Make the image smaller, or raise sizeBudgetMB for jupyter-ml-cpu in images/catalog.yaml.\n",
    );
  });

  it("counts the budget in bytes: exactly the budget passes, one byte more fails", () => {
    const exact = manifest(0, [500_000_000]);
    const oneMore = manifest(1, [500_000_000]);
    for (const [m, code] of [[exact, 0], [oneMore, 1]] as const) {
      const ref = `${REPO}@${sha(m)}`;
      const r = runStandIn(sizeCheckScript({ id: "x", ref, budgetMB: 500 }), { [ref]: m, [`${ref} config`]: SINGLE_CONFIG });
      expect(r.code).toBe(code);
    }
  });

  it("labels a single manifest with its config's platform, over loopback without TLS", () => {
    const ref = `127.0.0.1:5001/wb/ml-stack-base@${sha(SINGLE)}`;
    const r = runStandIn(sizeCheckScript({ id: "ml-stack-base", ref, budgetMB: 500, tlsVerify: false }), { [ref]: SINGLE, [`${ref} config`]: SINGLE_CONFIG });
    expect(r).toMatchObject({ code: 0, stdout: "ml-stack-base linux/amd64: 499.0 MB (compressed config + 2 layers), budget 500 MB\n", stderr: "" });
    expect(r.calls.map((c) => c.args)).toEqual([
      ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`],
      ["inspect", "--raw", "--config", "--tls-verify=false", `docker://${ref}`],
    ]);
  });

  it("hands credentials to skopeo only through a private auth file, never argv, and removes it", () => {
    const script = sizeCheckScript({ id: "jupyter-ml-cpu", ref: indexRef, budgetMB: 3000, credentials: true });
    expect(script).not.toContain("s3cr3t");
    const r = runStandIn(script, multiArch, { [SIZE_USERNAME_ENV]: "AWS", [SIZE_PASSWORD_ENV]: "s3cr3t-token" });
    expect(r.code).toBe(0);
    for (const call of r.calls) {
      expect(call.args.join(" ")).not.toContain("s3cr3t");
      expect(call.args.slice(2, 3)).toEqual(["--authfile"]);
      expect(call.auth).toEqual({ auths: { "111122223333.dkr.ecr.eu-west-1.amazonaws.com": { auth: Buffer.from("AWS:s3cr3t-token").toString("base64") } } });
    }
    expect(fs.readdirSync(work).filter((f) => f.startsWith("workbench-size-"))).toEqual([]);
  });

  it("says which variables are missing when credentials are expected but absent (exit 2)", () => {
    const r = runStandIn(sizeCheckScript({ id: "x", ref: indexRef, budgetMB: 3000, credentials: true }), multiArch);
    expect(r).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `x: size check: ${SIZE_USERNAME_ENV} and ${SIZE_PASSWORD_ENV} must hold the registry credentials.\n`,
    });
    expect(r.calls).toEqual([]);
  });

  it("fails with skopeo's own message when the digest is not in the registry (exit 2)", () => {
    const r = runStandIn(sizeCheckScript({ id: "x", ref: indexRef, budgetMB: 3000 }), {});
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `x: size check: skopeo inspect ${indexRef} failed: time=x level=fatal msg="Error parsing image name \\"docker://${indexRef}\\": manifest unknown"\n`,
    );
  });

  it("refuses an index with no platform manifest and a manifest without sizes (exit 2)", () => {
    const empty = JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [] });
    const r1 = runStandIn(sizeCheckScript({ id: "x", ref: `${REPO}@${sha(empty)}`, budgetMB: 1 }), { [`${REPO}@${sha(empty)}`]: empty });
    expect(r1).toMatchObject({ code: 2, stderr: `x: size check: the index ${REPO}@${sha(empty)} lists no platform manifest.\n` });
    const v1 = JSON.stringify({ schemaVersion: 1, fsLayers: [] });
    const r2 = runStandIn(sizeCheckScript({ id: "x", ref: `${REPO}@${sha(v1)}`, budgetMB: 1 }), { [`${REPO}@${sha(v1)}`]: v1 });
    expect(r2).toMatchObject({
      code: 2,
      stderr: `x: size check: ${REPO}@${sha(v1)} is not an image manifest with config and layers (mediaType undefined).\n`,
    });
  });

  it("refuses a tag or a budget that is not a positive whole number, naming the fix", () => {
    expect(() => sizeCheckScript({ id: "x", ref: `${REPO}:latest`, budgetMB: 1 })).toThrow(
      `size check of "x": "${REPO}:latest" is not repository@sha256:<64 hex>. The size gate measures the pushed digest: pass the image's gated imageRef.`,
    );
    expect(() => sizeCheckScript({ id: "x", ref: indexRef, budgetMB: 0 })).toThrow(
      'size check of "x": sizeBudgetMB must be a whole number of MB above 0, got 0. Fix it in images/catalog.yaml.',
    );
  });
});
