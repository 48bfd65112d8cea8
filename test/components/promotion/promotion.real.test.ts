/**
 * Issue 7, promotion: the idempotent copy script (components/promotion/copy.ts) run by a real shell with the real skopeo
 * between two real registries: a real-artifact suite (vitest project `real`). Everything else about promotion is in
 * promotion.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyImageScript, promotedTag } from "../../../components/promotion/copy";
import {
  BUILD_TIMEOUT_MS,
  budgetMs,
  DOCKER_QUICK_TIMEOUT_MS,
  docker,
  ENGINE_STOP_BUDGET_MS,
  type EngineInfo,
  ensureEngine,
  ensureEngineMs,
  PUSH_TIMEOUT_MS,
  releaseEngine,
  SKIP_ENV,
  SKOPEO_TIMEOUT_MS,
  skipContainerTests,
} from "../../support/engine";
import { REGISTRY_HTTP_TIMEOUT_MS } from "../../support/registry-api";
import { mustSucceed, runCommand } from "../../support/proc";
import { getManifest, putManifest } from "../../support/registry-api";

// ---------------------------------------------------------------------------------------------------------------
// The idempotent copy script between two real registries (test/support/engine.ts; WORKBENCH_SKIP_CONTAINER_TESTS=1
// skips on purpose).

describe.skipIf(skipContainerTests)(`copyImageScript between two real registries (${SKIP_ENV}=1 skips)`, () => {
  const NAME = "workbench/promo-script";
  let engine: EngineInfo;
  let work: string;
  let digest: string;
  const tags: string[] = [];

  beforeAll(async () => {
    engine = await ensureEngine({ baseImage: false });
    work = fs.mkdtempSync(path.join(os.tmpdir(), "wb-promo-script-"));
    fs.writeFileSync(path.join(work, "Dockerfile"), "FROM scratch\nCOPY payload /payload\n");
    fs.writeFileSync(path.join(work, "payload"), "promotion script test\n");
    const tag = `${engine.registryA}/${NAME}:src`;
    mustSucceed(await docker(engine, ["build", "--network=none", "-t", tag, work], { timeoutMs: BUILD_TIMEOUT_MS }), "docker build");
    tags.push(tag);
    mustSucceed(await docker(engine, ["push", tag], { timeoutMs: PUSH_TIMEOUT_MS }), "docker push");
    digest = (await getManifest(engine.registryA, NAME, "src")).digest;
    // No hook timeout shorter than the work it waits for (issue #10): engine start, build, push, one manifest read.
  }, budgetMs(ensureEngineMs({ baseImage: false }), BUILD_TIMEOUT_MS, PUSH_TIMEOUT_MS, REGISTRY_HTTP_TIMEOUT_MS));

  afterAll(async () => {
    if (engine && tags.length > 0) await docker(engine, ["image", "rm", "--force", ...tags], { timeoutMs: DOCKER_QUICK_TIMEOUT_MS });
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await releaseEngine();
  }, budgetMs(DOCKER_QUICK_TIMEOUT_MS, ENGINE_STOP_BUDGET_MS));

  const script = () =>
    copyImageScript({
      source: `${engine.registryA}/${NAME}@${digest}`,
      destination: `${engine.registryB}/${NAME}`,
      tag: promotedTag(digest),
      srcTlsVerify: false,
      destTlsVerify: false,
      srcCredsEnv: "WORKBENCH_SRC_CREDS",
      destCredsEnv: "WORKBENCH_DEST_CREDS",
    });
  // The test registries ask for no login; skopeo sends credentials only when challenged, so these prove the
  // expansion works end to end, not the login.
  const env = { ...process.env, WORKBENCH_SRC_CREDS: "u:p w'd", WORKBENCH_DEST_CREDS: "u:p w'd" };

  it("copies once, then finds the tag holding the digest and copies nothing", async () => {
    const first = mustSucceed(await runCommand("sh", ["-c", script()], { env, timeoutMs: SKOPEO_TIMEOUT_MS }), "first run");
    expect(first.stdout).toContain("Copying");
    expect(first.stdout.trimEnd().split("\n").pop()).toBe(`${engine.registryB}/${NAME}@${digest}`);
    expect((await getManifest(engine.registryB, NAME, promotedTag(digest))).digest).toBe(digest);

    const second = mustSucceed(await runCommand("sh", ["-c", script()], { env, timeoutMs: SKOPEO_TIMEOUT_MS }), "second run");
    expect(second.stdout).toBe(
      `${engine.registryB}/${NAME}:${promotedTag(digest)} already holds ${digest}\n${engine.registryB}/${NAME}@${digest}\n`,
    );
  }, budgetMs(SKOPEO_TIMEOUT_MS, SKOPEO_TIMEOUT_MS, REGISTRY_HTTP_TIMEOUT_MS));

  it("copies again when the tag was moved to other bytes", async () => {
    const moved = await getManifest(engine.registryB, NAME, promotedTag(digest));
    const other = Buffer.from(JSON.stringify(JSON.parse(moved.body.toString("utf8")), null, 2));
    const otherDigest = await putManifest(engine.registryB, NAME, promotedTag(digest), moved.mediaType, other);
    expect(otherDigest).not.toBe(digest);
    const r = mustSucceed(await runCommand("sh", ["-c", script()], { env, timeoutMs: SKOPEO_TIMEOUT_MS }), "re-copy");
    expect(r.stdout).not.toContain("already holds");
    expect((await getManifest(engine.registryB, NAME, promotedTag(digest))).digest).toBe(digest);
  }, budgetMs(SKOPEO_TIMEOUT_MS, 3 * REGISTRY_HTTP_TIMEOUT_MS));
});
