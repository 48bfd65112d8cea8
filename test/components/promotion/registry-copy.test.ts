/**
 * Issue 7: promotion copies an image between registries by digest, and the digest must arrive unchanged, or every
 * signature, attestation and pinned reference made against the source breaks. This runs the exact argv that
 * components/promotion/copy.ts generates (skopeo copy --all --preserve-digests) between two real registries and reads the result
 * back over the registry API. Engine: test/support/engine.ts (fails, never skips, unless
 * WORKBENCH_SKIP_CONTAINER_TESTS=1). Hooks and tests pass vitest timeouts added up from their steps' own limits
 * (budgetMs there), so a slow build or copy fails with its own message, never a vitest timeout.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CopyImageOptions, copyImageCommand, promotedTag } from "../../../components/promotion/copy";
import {
  BUILD_TIMEOUT_MS,
  budgetMs,
  DOCKER_QUICK_TIMEOUT_MS,
  docker,
  ENGINE_STOP_BUDGET_MS,
  type EngineInfo,
  ensureEngine,
  ensureEngineMs,
  logTiming,
  PUSH_TIMEOUT_MS,
  pushedDigest,
  releaseEngine,
  SKIP_ENV,
  SKOPEO,
  SKOPEO_TIMEOUT_MS,
  skipContainerTests,
} from "../../support/engine";
import { mustSucceed, runCommand } from "../../support/proc";
import {
  getManifest,
  manifestStatus,
  putManifest,
  REGISTRY_HTTP_TIMEOUT_MS,
  sha256Digest,
} from "../../support/registry-api";

if (skipContainerTests) {
  process.stderr.write(`registry-copy.test.ts: SKIPPED because ${SKIP_ENV}=1\n`);
}

const NAME = "workbench/promo-tiny";
const LIST_TYPE = "application/vnd.docker.distribution.manifest.list.v2+json";
const ARCHES = ["amd64", "arm64"] as const;

interface Pushed {
  digest: string;
  size: number;
  mediaType: string;
}

describe.skipIf(skipContainerTests)(`promotion copy between two real registries (${SKIP_ENV}=1 skips)`, () => {
  let engine: EngineInfo;
  let work: string;
  const tags: string[] = [];
  const children = new Map<string, Pushed>();
  let indexDigest: string;

  // Engine start (no base image), then per platform a build, a push and a manifest GET, then one manifest PUT.
  beforeAll(async () => {
    engine = await ensureEngine({ baseImage: false });
    work = fs.mkdtempSync(path.join(os.tmpdir(), "wb-promo-"));
    // FROM scratch + COPY runs nothing, so BuildKit builds an arm64 image on an amd64 host without emulation.
    fs.writeFileSync(path.join(work, "Dockerfile"), "FROM scratch\nARG TARGETARCH\nCOPY payload-${TARGETARCH} /payload\n");
    for (const arch of ARCHES) {
      fs.writeFileSync(path.join(work, `payload-${arch}`), `workbench promotion test payload for ${arch}\n`);
      const tag = `${engine.registryA}/${NAME}:${arch}`;
      const t0 = Date.now();
      mustSucceed(
        await docker(engine, ["build", "--network=none", "--platform", `linux/${arch}`, "-t", tag, work], {
          timeoutMs: BUILD_TIMEOUT_MS,
        }),
        `docker build linux/${arch}`,
      );
      tags.push(tag);
      const t1 = Date.now();
      const push = mustSucceed(
        await docker(engine, ["push", tag], { timeoutMs: PUSH_TIMEOUT_MS }),
        `docker push ${tag}`,
      );
      logTiming(`registry-copy.test.ts: linux/${arch} built in ${t1 - t0} ms and pushed`, t1);
      const manifest = await getManifest(engine.registryA, NAME, arch);
      expect(manifest.digest).toBe(pushedDigest(push.stdout));
      children.set(arch, { digest: manifest.digest, size: manifest.body.length, mediaType: manifest.mediaType });
    }
    // A multi-platform list like the one buildx pushes for `platforms: [linux/amd64, linux/arm64]`. Indented on
    // purpose: a copy that re-serializes the JSON instead of moving the bytes would change its digest.
    const list = {
      schemaVersion: 2,
      mediaType: LIST_TYPE,
      manifests: ARCHES.map((arch) => {
        const c = children.get(arch);
        if (!c) throw new Error(`no pushed manifest for ${arch}`);
        return { mediaType: c.mediaType, digest: c.digest, size: c.size, platform: { architecture: arch, os: "linux" } };
      }),
    };
    indexDigest = await putManifest(engine.registryA, NAME, "multi", LIST_TYPE, Buffer.from(JSON.stringify(list, null, 3)));
  }, budgetMs(
    ensureEngineMs({ baseImage: false }),
    ...ARCHES.flatMap(() => [BUILD_TIMEOUT_MS, PUSH_TIMEOUT_MS, REGISTRY_HTTP_TIMEOUT_MS]),
    REGISTRY_HTTP_TIMEOUT_MS,
  ));

  afterAll(async () => {
    if (engine && tags.length > 0) await docker(engine, ["image", "rm", "--force", ...tags]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await releaseEngine();
  }, budgetMs(DOCKER_QUICK_TIMEOUT_MS, ENGINE_STOP_BUDGET_MS));

  /** The options prod uses, pointed at the two test registries (plain http on 127.0.0.1, so no TLS verify). */
  function options(digest: string, repository = NAME, extra: Partial<CopyImageOptions> = {}): CopyImageOptions {
    return {
      source: `${engine.registryA}/${NAME}@${digest}`,
      destination: `${engine.registryB}/${repository}`,
      tag: promotedTag(digest),
      srcTlsVerify: false,
      destTlsVerify: false,
      ...extra,
    };
  }

  async function runArgv(command: string[], env: Record<string, string> = {}) {
    const [file, ...args] = command;
    if (file === undefined) throw new Error("copyImageCommand returned an empty command");
    return mustSucceed(
      await runCommand(file, args, { env: { ...process.env, ...env }, timeoutMs: SKOPEO_TIMEOUT_MS }),
      command.join(" "),
    );
  }

  async function promote(digest: string): Promise<string> {
    const { command, env } = copyImageCommand(options(digest));
    await runArgv(command, env);
    return promotedTag(digest);
  }

  it("copies a single-platform image and B stores the source digest exactly", async () => {
    const source = children.get("amd64");
    if (!source) throw new Error("beforeAll pushed no amd64 image");
    const tag = await promote(source.digest);
    const copied = await getManifest(engine.registryB, NAME, tag);
    expect(copied.digest).toBe(source.digest);
    expect(copied.bodyDigest).toBe(source.digest);
  }, budgetMs(SKOPEO_TIMEOUT_MS, REGISTRY_HTTP_TIMEOUT_MS));

  it("copies a multi-platform list with every platform and B stores the list digest exactly", async () => {
    const source = await getManifest(engine.registryA, NAME, "multi");
    expect(source.digest).toBe(indexDigest);
    const tag = await promote(indexDigest);

    const copied = await getManifest(engine.registryB, NAME, tag);
    expect(copied.mediaType).toBe(LIST_TYPE);
    expect(copied.digest).toBe(indexDigest);
    expect(copied.body.equals(source.body)).toBe(true);
    for (const arch of ARCHES) {
      expect({ arch, status: await manifestStatus(engine.registryB, NAME, children.get(arch)?.digest ?? "") }).toEqual({
        arch,
        status: 200,
      });
    }
  }, budgetMs(
    REGISTRY_HTTP_TIMEOUT_MS,
    SKOPEO_TIMEOUT_MS,
    REGISTRY_HTTP_TIMEOUT_MS,
    ...ARCHES.map(() => REGISTRY_HTTP_TIMEOUT_MS),
  ));

  it("skopeo inspect reads the promoted list back from B by digest", async () => {
    await promote(indexDigest); // idempotent: the same tag again
    const ref = `docker://${engine.registryB}/${NAME}@${indexDigest}`;
    const raw = mustSucceed(
      await runCommand(SKOPEO, ["inspect", "--raw", "--tls-verify=false", ref], { timeoutMs: SKOPEO_TIMEOUT_MS }),
      `skopeo inspect --raw ${ref}`,
    );
    // skopeo prints the stored bytes plus one newline; those bytes must hash to the digest we promoted.
    expect(sha256Digest(raw.stdout.replace(/\n$/, ""))).toBe(indexDigest);
    expect(JSON.parse(raw.stdout)).toMatchObject({ mediaType: LIST_TYPE, schemaVersion: 2 });
    const inspected = mustSucceed(
      await runCommand(
        SKOPEO,
        ["inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch", "amd64", ref],
        { timeoutMs: SKOPEO_TIMEOUT_MS },
      ),
      `skopeo inspect ${ref}`,
    );
    const info = JSON.parse(inspected.stdout) as { Digest: string; Architecture: string; Os: string };
    expect({ Digest: info.Digest, Architecture: info.Architecture, Os: info.Os }).toEqual({
      Digest: indexDigest,
      Architecture: "amd64",
      Os: "linux",
    });
  }, budgetMs(SKOPEO_TIMEOUT_MS, SKOPEO_TIMEOUT_MS, SKOPEO_TIMEOUT_MS));

  it("keeps credentials out of argv and still copies when they come from the environment", async () => {
    const source = children.get("arm64");
    if (!source) throw new Error("beforeAll pushed no arm64 image");
    const repo = "workbench/promo-creds";
    // The test registries have no auth: skopeo only sends credentials when challenged, so any value works here;
    // what is tested is that the `sh -c` wrapper hands them to skopeo and the copy still lands byte for byte.
    const { command, env } = copyImageCommand(
      options(source.digest, repo, { srcCredsEnv: "WB_TEST_SRC_CREDS", destCredsEnv: "WB_TEST_DEST_CREDS" }),
    );
    expect(command.join(" ")).not.toContain("s3cret");
    await runArgv(command, { ...env, WB_TEST_SRC_CREDS: "promoter:s3cret", WB_TEST_DEST_CREDS: "promoter:s3cret" });
    const copied = await getManifest(engine.registryB, repo, promotedTag(source.digest));
    expect(copied.digest).toBe(source.digest);
  }, budgetMs(SKOPEO_TIMEOUT_MS, REGISTRY_HTTP_TIMEOUT_MS));
});
