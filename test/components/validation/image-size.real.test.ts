/**
 * The size gate's command (components/validation/image-size.ts), run for real against a real docker-registry on
 * 127.0.0.1 with the real skopeo: a real-artifact suite (vitest project `real`). Against a stand-in skopeo serving
 * recorded manifests: image-size.test.ts.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sizeCheckScript } from "../../../components/validation/image-size";
import { putManifest, waitForRegistry } from "../../support/registry-api";

const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

// ---------------------------------------------------------------------------------------------------------------
// The real thing: Debian's docker-registry (distribution 2.8) on 127.0.0.1 and the real skopeo.

const REGISTRY_BIN = "/usr/bin/docker-registry";
const SKOPEO_BIN = "/usr/bin/skopeo";
const haveReal = fs.existsSync(REGISTRY_BIN) && fs.existsSync(SKOPEO_BIN) && process.env["WORKBENCH_SKIP_CONTAINER_TESTS"] !== "1";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function pushBlob(registry: string, name: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const start = await fetch(`http://${registry}/v2/${name}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`blob upload start: ${start.status}`);
  const location = new URL(start.headers.get("location")!, `http://${registry}`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: bytes });
  if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`);
  return digest;
}

describe.skipIf(!haveReal)(`size check against a real registry (skipped without ${REGISTRY_BIN} and ${SKOPEO_BIN})`, () => {
  let pid: number | undefined;
  let registry = "";
  let dir = "";

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "size-registry-"));
    const port = await freePort();
    registry = `127.0.0.1:${port}`;
    fs.writeFileSync(
      path.join(dir, "config.yml"),
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${registry}\n`,
    );
    const child = spawn(REGISTRY_BIN, ["serve", path.join(dir, "config.yml")], { stdio: "ignore", detached: false });
    pid = child.pid;
    let exited = false;
    child.once("exit", () => (exited = true));
    await waitForRegistry(registry, 20_000, () => !exited);
  }, 30_000);

  afterAll(() => {
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("sums config and layers per platform of a pushed two-platform index, and fails the platform over budget", async () => {
    const name = "wb/sized";
    const mk = async (arch: string, layerBytes: number) => {
      const config = Buffer.from(JSON.stringify({ architecture: arch, os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [] } }));
      const layer = Buffer.alloc(layerBytes, arch === "amd64" ? 1 : 2);
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST_TYPE,
          config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: await pushBlob(registry, name, config), size: config.length },
          layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: await pushBlob(registry, name, layer), size: layer.length }],
        }),
      );
      const digest = await putManifest(registry, name, sha(body.toString()), MANIFEST_TYPE, body);
      return { digest, size: body.length, bytes: config.length + layer.length };
    };
    const amd = await mk("amd64", 1_200_000);
    const arm = await mk("arm64", 2_600_000);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX_TYPE,
        manifests: [
          { mediaType: MANIFEST_TYPE, digest: amd.digest, size: amd.size, platform: { architecture: "amd64", os: "linux" } },
          { mediaType: MANIFEST_TYPE, digest: arm.digest, size: arm.size, platform: { architecture: "arm64", os: "linux" } },
        ],
      }),
    );
    const digest = await putManifest(registry, name, "build-1", INDEX_TYPE, index);
    const ref = `${registry}/${name}@${digest}`;
    const mb = (b: number) => (b / 1e6).toFixed(1);
    const run = (budgetMB: number) =>
      spawnSync("node", ["-e", sizeCheckScript({ id: "sized", ref, budgetMB, tlsVerify: false })], { encoding: "utf8", timeout: 60_000 });
    const lines = (budget: number) =>
      `sized linux/amd64: ${mb(amd.bytes)} MB (compressed config + 1 layers), budget ${budget} MB\n` +
      `sized linux/arm64: ${mb(arm.bytes)} MB (compressed config + 1 layers), budget ${budget} MB\n`;
    const pass = run(3);
    expect({ code: pass.status, stdout: pass.stdout, stderr: pass.stderr }).toEqual({ code: 0, stdout: lines(3), stderr: "" });
    const over = run(2);
    expect({ code: over.status, stdout: over.stdout, stderr: over.stderr }).toEqual({
      code: 1,
      stdout: lines(2),
      stderr:
        `sized is over its size budget on linux/arm64: a node pulls ${mb(arm.bytes)} MB (compressed config + 1 layers of manifest ${arm.digest}), ` +
        "sizeBudgetMB is 2. Make the image smaller, or raise sizeBudgetMB for sized in images/catalog.yaml.\n",
    });
  }, 60_000);
});
