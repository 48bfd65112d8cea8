/**
 * Real containers (GUIDE §4.3): the universal entrypoint and the per-user layer built and run by a real dockerd,
 * and a push to a real registry whose stored digest is read back over the registry API. The engine is private and
 * started lazily (test/support/engine.ts). These tests fail, never skip, when the engine cannot start or the
 * Debian base cannot be fetched (one line naming the mirror and the fix), unless WORKBENCH_SKIP_CONTAINER_TESTS=1 is
 * set. Every hook and test that waits for the engine, a build, a run or a push passes vitest a timeout added up from
 * those steps' own limits (budgetMs, test/support/engine.ts), so the step's own limit fires first.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DockerfileParser, type Instruction, type JSONInstruction } from "dockerfile-ast";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/base-image";
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
  RUN_TIMEOUT_MS,
  SKIP_ENV,
  skipContainerTests,
} from "../support/engine";
import { mustSucceed } from "../support/proc";
import { getManifest, REGISTRY_HTTP_TIMEOUT_MS } from "../support/registry-api";

if (skipContainerTests) {
  process.stderr.write(`containers.test.ts: SKIPPED because ${SKIP_ENV}=1\n`);
}

const UNIVERSAL_DIR = path.join(REPO_ROOT, "images", "universal");
const PER_USER_DIR = path.join(REPO_ROOT, "images", "per-user");

// Seed 002's own example user (an LDAP login after sanitizing): long, with dashes, and a uid above 2^30, where a
// useradd without --no-log-init writes a sparse /var/log/lastlog of hundreds of GB into the layer.
const USER_NAME = "h-baker-at-hertie-school-lan";
const USER_ID = "1722830498";

/** The stand-in prints its own PID: `pid=1` proves the entrypoint exec'd it rather than running it as a child. */
const STANDIN = '#!/bin/sh\necho "workbench-standin start-notebook.sh pid=$$ args=$*"\n';
const STANDIN_OUT = "workbench-standin start-notebook.sh pid=1 args=";

let engine: EngineInfo;

/** The last instruction with this keyword: the one in force for the final stage. */
function lastInstruction(instructions: Instruction[], keyword: string): Instruction {
  const found = instructions.filter((i) => i.getKeyword() === keyword).at(-1);
  if (!found) throw new Error(`images/universal/Dockerfile has no ${keyword} instruction`);
  return found;
}

describe.skipIf(skipContainerTests)(`real containers on a private dockerd (${SKIP_ENV}=1 skips)`, () => {
  const tags: string[] = [];
  let work: string;

  // Engine start, then (first run ever) debootstrap + tar + docker import: see ensureEngineMs.
  beforeAll(async () => {
    engine = await ensureEngine();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "wb-containers-"));
  }, budgetMs(ensureEngineMs({ baseImage: true })));

  afterAll(async () => {
    // Each engine is thrown away whole at teardown; removing our tags still keeps a shared engine's disk small.
    if (engine && tags.length > 0) await docker(engine, ["image", "rm", "--force", ...tags]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await releaseEngine();
  }, budgetMs(DOCKER_QUICK_TIMEOUT_MS, ENGINE_STOP_BUDGET_MS));

  async function run(image: string, args: string[] = [], user?: string) {
    const flags = ["run", "--rm", "--network=none", ...(user ? ["--user", user] : []), image, ...args];
    return docker(engine, flags, { timeoutMs: RUN_TIMEOUT_MS });
  }

  it("uses a 127.0.0.0/8 registry without TLS (dockerd's default insecure range)", async () => {
    const res = mustSucceed(
      await docker(engine, ["info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}"]),
      "docker info",
    );
    expect(JSON.parse(res.stdout)).toContain("127.0.0.0/8");
  }, budgetMs(DOCKER_QUICK_TIMEOUT_MS));

  describe("universal entrypoint", () => {
    const image = "workbench-test/entrypoint:latest";
    let entrypoint: string[];
    let cmd: string[];

    beforeAll(async () => {
      const dockerfile = DockerfileParser.parse(fs.readFileSync(path.join(UNIVERSAL_DIR, "Dockerfile"), "utf8"));
      const instructions = dockerfile.getInstructions();
      const ep = lastInstruction(instructions, "ENTRYPOINT") as JSONInstruction;
      const cm = lastInstruction(instructions, "CMD") as JSONInstruction;
      entrypoint = ep.getJSONStrings().map((s) => s.getJSONValue());
      cmd = cm.getJSONStrings().map((s) => s.getJSONValue());
      const script = entrypoint[0];
      if (!script?.startsWith("/")) {
        throw new Error(`images/universal/Dockerfile ENTRYPOINT must be exec form with an absolute path, got ` +
          `${ep.getTextContent()}`);
      }
      const ctx = path.join(work, "entrypoint");
      fs.mkdirSync(ctx);
      fs.copyFileSync(path.join(UNIVERSAL_DIR, "entrypoint.sh"), path.join(ctx, "entrypoint.sh"));
      fs.writeFileSync(path.join(ctx, "start-notebook.sh"), STANDIN);
      // Modes are set here and kept by COPY, so the Dockerfile needs no BuildKit-only `COPY --chmod`.
      fs.chmodSync(path.join(ctx, "entrypoint.sh"), 0o755);
      fs.chmodSync(path.join(ctx, "start-notebook.sh"), 0o755);
      // ENTRYPOINT and CMD are copied as written in the real Dockerfile, so changing them there is tested here.
      fs.writeFileSync(
        path.join(ctx, "Dockerfile"),
        [
          `FROM ${engine.baseImage}`,
          `COPY entrypoint.sh ${script}`,
          "COPY start-notebook.sh /usr/local/bin/start-notebook.sh",
          ep.getTextContent(),
          cm.getTextContent(),
          "",
        ].join("\n"),
      );
      const t0 = Date.now();
      mustSucceed(
        await docker(engine, ["build", "--network=none", "-t", image, ctx], { timeoutMs: BUILD_TIMEOUT_MS }),
        "docker build of the entrypoint test image",
      );
      logTiming("containers.test.ts: entrypoint image built", t0);
      tags.push(image);
    }, budgetMs(BUILD_TIMEOUT_MS));

    it("keeps the contract ENTRYPOINT [entrypoint.sh] CMD [start-notebook.sh]", () => {
      expect(entrypoint).toEqual(["/usr/local/bin/entrypoint.sh"]);
      expect(cmd).toEqual(["start-notebook.sh"]);
    });

    it("with no arguments execs start-notebook.sh as PID 1", async () => {
      const res = mustSucceed(await run(image), "docker run (default CMD)");
      expect(res.stdout.trimEnd()).toBe(STANDIN_OUT);
    }, budgetMs(RUN_TIMEOUT_MS));

    it("with exactly the default CMD execs start-notebook.sh as PID 1", async () => {
      const res = mustSucceed(await run(image, ["start-notebook.sh"]), "docker run start-notebook.sh");
      expect(res.stdout.trimEnd()).toBe(STANDIN_OUT);
    }, budgetMs(RUN_TIMEOUT_MS));

    it("execs any other command as PID 1", async () => {
      const res = mustSucceed(await run(image, ["sh", "-c", "echo $$"]), "docker run sh -c 'echo $$'");
      expect(res.stdout).toBe("1\n");
    }, budgetMs(RUN_TIMEOUT_MS));

    it("passes the command's exit status through", async () => {
      const res = await run(image, ["sh", "-c", "exit 7"]);
      expect(res.code).toBe(7);
    }, budgetMs(RUN_TIMEOUT_MS));
  });

  describe("per-user layer (images/per-user/Dockerfile)", () => {
    const image = `workbench-test/per-user/${USER_NAME}:latest`;
    const home = `/home/${USER_NAME}`;

    beforeAll(async () => {
      const t0 = Date.now();
      const res = await docker(
        engine,
        [
          "build",
          "--network=none",
          "-f",
          path.join(PER_USER_DIR, "Dockerfile"),
          "--build-arg",
          `BASE_IMAGE=${engine.baseImage}`,
          "--build-arg",
          `USER_NAME=${USER_NAME}`,
          "--build-arg",
          `USER_UID=${USER_ID}`,
          "--build-arg",
          `USER_GID=${USER_ID}`,
          "--build-arg",
          "ENABLE_SUDO=false",
          "-t",
          image,
          PER_USER_DIR,
        ],
        { timeoutMs: BUILD_TIMEOUT_MS },
      );
      mustSucceed(res, "docker build images/per-user/Dockerfile");
      logTiming("containers.test.ts: per-user image built", t0);
      tags.push(image);
    }, budgetMs(BUILD_TIMEOUT_MS));

    it("runs as the user, whose only group is their own", async () => {
      const res = mustSucceed(await run(image, ["id"]), "docker run id");
      expect(res.stdout).toBe(
        `uid=${USER_ID}(${USER_NAME}) gid=${USER_ID}(${USER_NAME}) groups=${USER_ID}(${USER_NAME})\n`,
      );
    }, budgetMs(RUN_TIMEOUT_MS));

    it("gives the user their home directory", async () => {
      const res = mustSucceed(await run(image, ["stat", "-c", "%u:%g", home]), "docker run stat");
      expect(res.stdout).toBe(`${USER_ID}:${USER_ID}\n`);
      const env = mustSucceed(await run(image, ["sh", "-c", 'printf "%s\\n" "$HOME"']), "docker run echo HOME");
      expect(env.stdout).toBe(`${home}\n`);
    }, budgetMs(RUN_TIMEOUT_MS, RUN_TIMEOUT_MS));

    it("puts ~/.local/bin on PATH and keeps the base's PATH", async () => {
      const res = mustSucceed(await run(image, ["sh", "-c", 'printf "%s\\n" "$PATH"']), "docker run echo PATH");
      const entries = res.stdout.trimEnd().split(":");
      expect(entries).toContain(`${home}/.local/bin`);
      expect(entries).toContain("/usr/bin");
    }, budgetMs(RUN_TIMEOUT_MS));

    it("carries the user labels that ds01/aime tooling and our plan read", async () => {
      const res = mustSucceed(
        await docker(engine, ["image", "inspect", "--format", "{{json .Config.Labels}}", image]),
        "docker image inspect",
      );
      const labels = JSON.parse(res.stdout) as Record<string, string>;
      expect({
        "dev.workbench-images.user-setup": labels["dev.workbench-images.user-setup"],
        "dev.workbench-images.user.uid": labels["dev.workbench-images.user.uid"],
        "dev.workbench-images.user.gid": labels["dev.workbench-images.user.gid"],
        "dev.workbench-images.user.name": labels["dev.workbench-images.user.name"],
        "aime.mlc.DS01_HAS_USER_SETUP": labels["aime.mlc.DS01_HAS_USER_SETUP"],
        "aime.mlc.DS01_USER_ID": labels["aime.mlc.DS01_USER_ID"],
        "aime.mlc.DS01_GROUP_ID": labels["aime.mlc.DS01_GROUP_ID"],
        "aime.mlc.DS01_USERNAME": labels["aime.mlc.DS01_USERNAME"],
      }).toEqual({
        "dev.workbench-images.user-setup": "true",
        "dev.workbench-images.user.uid": USER_ID,
        "dev.workbench-images.user.gid": USER_ID,
        "dev.workbench-images.user.name": USER_NAME,
        "aime.mlc.DS01_HAS_USER_SETUP": "true",
        "aime.mlc.DS01_USER_ID": USER_ID,
        "aime.mlc.DS01_GROUP_ID": USER_ID,
        "aime.mlc.DS01_USERNAME": USER_NAME,
      });
    }, budgetMs(DOCKER_QUICK_TIMEOUT_MS));

    it("has no sudo when ENABLE_SUDO=false", async () => {
      // `command -v` exits 1 in bash and 127 in dash when nothing is found: compare output, not the status.
      const res = mustSucceed(
        await run(image, ["sh", "-c", "if command -v sudo; then echo has-sudo; else echo no-sudo; fi"]),
        "docker run command -v sudo",
      );
      expect(res.stdout).toBe("no-sudo\n");
      const rules = await run(image, ["sh", "-c", "ls /etc/sudoers.d 2>/dev/null | grep -v README || true"], "0");
      expect(rules.stdout).toBe("");
    }, budgetMs(RUN_TIMEOUT_MS, RUN_TIMEOUT_MS));

    it("pushes to a registry that stores exactly the digest docker reported", async () => {
      const name = `workbench/per-user/${USER_NAME}`;
      const remote = `${engine.registryA}/${name}:test`;
      mustSucceed(await docker(engine, ["tag", image, remote]), "docker tag");
      tags.push(remote);
      const push = mustSucceed(
        await docker(engine, ["push", remote], { timeoutMs: PUSH_TIMEOUT_MS }),
        `docker push ${remote}`,
      );
      const reported = pushedDigest(push.stdout);

      const manifest = await getManifest(engine.registryA, name, "test");
      expect(manifest.digest).toBe(reported);
      expect(manifest.bodyDigest).toBe(reported);

      const repoDigest = mustSucceed(
        await docker(engine, ["image", "inspect", "--format", "{{index .RepoDigests 0}}", remote]),
        "docker image inspect RepoDigests",
      );
      expect(repoDigest.stdout.trim()).toBe(`${engine.registryA}/${name}@${reported}`);
    }, budgetMs(DOCKER_QUICK_TIMEOUT_MS, PUSH_TIMEOUT_MS, REGISTRY_HTTP_TIMEOUT_MS, DOCKER_QUICK_TIMEOUT_MS));
  });
});
