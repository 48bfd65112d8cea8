/**
 * pin-bases against a real registry (Debian's docker-registry) with the real skopeo: a real-artifact suite (vitest
 * project `real`). The pinning rules and the CLI against a fake resolver: pin-bases.test.ts.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPinBases, skopeoResolver } from "../../scripts/lib/pin-bases";
import { isAlive, mustSucceed, removeTree, runCommand, spawnDaemon, stopPid } from "../support/proc";
import { getManifest, sha256Digest, waitForRegistry } from "../support/registry-api";
import { PROJECT_ROOT } from "../../lib/paths";

const REPO_ROOT = PROJECT_ROOT;

// ---------------------------------------------------------------------------------------------------------------
// Real skopeo against a real registry (Debian's docker-registry, distribution 2.8): the digest skopeoResolver
// computes must be the one the registry serves in Docker-Content-Digest, for a multi-arch index and a single
// manifest alike.

const SKOPEO = "/usr/bin/skopeo";
const REGISTRY = "/usr/bin/docker-registry";

function sha256Hex(bytes: Buffer | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Writes a blob into an OCI layout and returns its descriptor. */
function putBlob(layout: string, mediaType: string, bytes: Buffer): { mediaType: string; digest: string; size: number } {
  const hex = sha256Hex(bytes);
  fs.writeFileSync(path.join(layout, "blobs", "sha256", hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/**
 * A minimal OCI image layout by hand: one gzipped layer holding one file, an amd64 and an arm64 image sharing it,
 * an image index over both tagged "1.0" and the amd64 manifest alone tagged "single".
 */
async function makeLayout(work: string): Promise<{ layout: string; platformDigests: string[] }> {
  const layout = path.join(work, "layout");
  fs.mkdirSync(path.join(layout, "blobs", "sha256"), { recursive: true });
  const content = path.join(work, "content");
  fs.mkdirSync(content);
  fs.writeFileSync(path.join(content, "hello.txt"), "pin-bases test layer\n");
  const tarFile = path.join(work, "layer.tar");
  mustSucceed(await runCommand("tar", ["--numeric-owner", "--mtime=@0", "-C", content, "-cf", tarFile, "hello.txt"]), "tar");
  const tarBytes = fs.readFileSync(tarFile);
  mustSucceed(await runCommand("gzip", ["-n", "-9", tarFile]), "gzip");
  const layer = putBlob(layout, "application/vnd.oci.image.layer.v1.tar+gzip", fs.readFileSync(`${tarFile}.gz`));
  const manifests = ["amd64", "arm64"].map((arch) => {
    const config = putBlob(
      layout,
      "application/vnd.oci.image.config.v1+json",
      Buffer.from(JSON.stringify({ architecture: arch, os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [`sha256:${sha256Hex(tarBytes)}`] } })),
    );
    const manifest = { schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [layer] };
    return { ...putBlob(layout, manifest.mediaType, Buffer.from(JSON.stringify(manifest))), platform: { architecture: arch, os: "linux" } };
  });
  const index = { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests };
  const indexDesc = putBlob(layout, index.mediaType, Buffer.from(JSON.stringify(index)));
  const refName = (name: string) => ({ "org.opencontainers.image.ref.name": name });
  const amd64 = manifests[0];
  if (amd64 === undefined) throw new Error("no amd64 manifest");
  fs.writeFileSync(
    path.join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { ...indexDesc, annotations: refName("1.0") },
        { mediaType: amd64.mediaType, digest: amd64.digest, size: amd64.size, annotations: refName("single") },
      ],
    }),
  );
  fs.writeFileSync(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  return { layout, platformDigests: manifests.map((m) => m.digest) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

describe("skopeoResolver against a local registry (real skopeo, real docker-registry)", () => {
  let work = "";
  let pid: number | undefined;
  let registry = "";
  let env: NodeJS.ProcessEnv = {};
  let platformDigests: string[] = [];

  beforeAll(async () => {
    const missing = [SKOPEO, REGISTRY].filter((bin) => !fs.existsSync(bin));
    if (missing.length > 0) {
      throw new Error(`${missing.join(" and ")} missing: .ci/run installs them (Debian packages skopeo and docker-registry).`);
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), "pin-bases-reg-"));
    // No credentials of the developer's, no machine-wide signature policy: this test depends on neither.
    fs.writeFileSync(path.join(work, "auth.json"), '{"auths":{}}');
    fs.writeFileSync(path.join(work, "policy.json"), '{"default":[{"type":"insecureAcceptAnything"}]}');
    env = { ...process.env, REGISTRY_AUTH_FILE: path.join(work, "auth.json") };
    const port = await freePort();
    registry = `127.0.0.1:${port}`;
    const config = path.join(work, "registry.yml");
    // Our own config: Debian's default turns on htpasswd auth. http only, on loopback.
    fs.writeFileSync(
      config,
      [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${path.join(work, "storage")}`,
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        `  addr: ${registry}`,
        "  secret: pin-bases-test",
        "",
      ].join("\n"),
    );
    const logFile = path.join(work, "registry.log");
    // A minimal environment: distribution reads every REGISTRY_* variable as a config override, and
    // REGISTRY_AUTH_FILE (skopeo's, above) would land in its auth section.
    const started = spawnDaemon(REGISTRY, ["serve", config], logFile, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" });
    pid = started;
    await waitForRegistry(registry, 10_000, () => isAlive(started)).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
    });
    const built = await makeLayout(work);
    platformDigests = built.platformDigests;
    for (const [tag, all] of [["1.0", true], ["single", false]] as const) {
      mustSucceed(
        await runCommand(
          SKOPEO,
          ["--policy", path.join(work, "policy.json"), "copy", ...(all ? ["--all"] : []), "--dest-tls-verify=false",
            `oci:${built.layout}:${tag}`, `docker://${registry}/test/base:${tag}`],
          { env, timeoutMs: 30_000 },
        ),
        `skopeo copy ${tag}`,
      );
    }
  });

  afterAll(async () => {
    if (pid !== undefined) await stopPid(pid, work, 5_000);
    if (work !== "") await removeTree(work);
  });

  it("returns the index digest the registry serves for a multi-arch tag, not a platform's", async () => {
    const digest = await skopeoResolver(SKOPEO, { tlsVerify: false, env })(`${registry}/test/base:1.0`);
    const served = await getManifest(registry, "test/base", "1.0");
    expect(served.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(served.bodyDigest).toBe(served.digest);
    expect(digest).toBe(served.digest);
    const listed = (JSON.parse(served.body.toString("utf8")) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
    expect(listed).toHaveLength(2);
    expect(listed).not.toContain(digest);
    // skopeo copied the layout's blobs unchanged (gzip layer, no recompression), so platforms keep their digests.
    expect(listed).toEqual(platformDigests);
  });

  it("returns the manifest digest for a single-platform tag", async () => {
    const digest = await skopeoResolver(SKOPEO, { tlsVerify: false, env })(`${registry}/test/base:single`);
    const served = await getManifest(registry, "test/base", "single");
    expect(served.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(digest).toBe(served.digest);
    expect(digest).toBe(platformDigests[0]);
    expect(sha256Digest(served.body)).toBe(digest);
  });

  it("rejects an unknown tag with skopeo's reason, and TLS verification is on by default", async () => {
    await expect(skopeoResolver(SKOPEO, { tlsVerify: false, env })(`${registry}/test/base:nope`)).rejects.toThrow(/manifest unknown/);
    // The registry speaks plain http: with verification on, skopeo must refuse rather than silently downgrade.
    await expect(skopeoResolver(SKOPEO, { env, timeoutMs: 20_000 })(`${registry}/test/base:1.0`)).rejects.toThrow(/http: server gave HTTP response to HTTPS client/);
    await expect(skopeoResolver(path.join(work, "no-such-skopeo"))(`${registry}/test/base:1.0`)).rejects.toThrow(
      `${path.join(work, "no-such-skopeo")} was not found. Install skopeo`,
    );
  });

  it("npm run pin-bases pins a catalog against it end to end", async () => {
    const catalog = path.join(work, "catalog.yaml");
    const text = `# local bases\nvariants:\n  - name: x\n    base:\n      ref: ${registry}/test/base:1.0 # multi-arch\n    extraBases:\n      ONE: "${registry}/test/base:single"\n`;
    fs.writeFileSync(catalog, text);
    // In process, wired as scripts/pin-bases.ts wires it: a tsx child costs seconds of startup on a loaded machine.
    let stdout = "";
    let stderr = "";
    const code = await runPinBases(["--catalog", catalog, "--no-tls-verify"], {
      cwd: REPO_ROOT,
      defaultCatalog: "images/catalog.yaml",
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      makeResolver: ({ tlsVerify }) => skopeoResolver(SKOPEO, { tlsVerify, env }),
    });
    const r = { code, stdout, stderr };
    const index = (await getManifest(registry, "test/base", "1.0")).digest;
    const single = (await getManifest(registry, "test/base", "single")).digest;
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout.split("\n")).toEqual([
      `variants[0].base.ref: ${registry}/test/base:1.0 → ${registry}/test/base:1.0@${index}`,
      `variants[0].extraBases.ONE: ${registry}/test/base:single → ${registry}/test/base:single@${single}`,
      `pinned 2 base references in ${catalog}`, // outside the project: shown absolute
      "",
    ]);
    expect(fs.readFileSync(catalog, "utf8")).toBe(
      `# local bases\nvariants:\n  - name: x\n    base:\n      ref: ${registry}/test/base:1.0@${index} # multi-arch\n    extraBases:\n      ONE: "${registry}/test/base:single@${single}"\n`,
    );
  });
});
