/**
 * vitest globalSetup: makes the state dir the real-container tests share and, at teardown, stops whatever engine a
 * test file started there (see test/support/engine.ts). It starts nothing itself, so a unit-only run such as
 * `npx vitest run test/config.test.ts` never pays for dockerd.
 */
import type { TestProject } from "vitest/node";
import { makeStateDir, signalEngineSync, stopEngine } from "./support/engine";

/** Kept back from teardownTimeout for vitest's own closing after this teardown. */
const TEARDOWN_RESERVE_MS = 2_000;

export default function setup(project: TestProject): () => Promise<void> {
  const stateDir = makeStateDir();
  project.provide("workbenchEngineStateDir", stateDir);
  // An interrupted run may skip teardown; at least the daemons get SIGTERM (exit handlers cannot wait).
  const onExit = (): void => signalEngineSync(stateDir);
  process.once("exit", onExit);
  return async () => {
    // vitest calls process.exit() teardownTimeout (10 s by default) after it starts closing, whether this teardown
    // has finished or not: stop within that, and keep the exit handler until done so a cut-short stop still
    // SIGTERMs the daemons.
    const teardownMs = project.globalConfig.teardownTimeout;
    await stopEngine(stateDir, Math.max(1_000, teardownMs - TEARDOWN_RESERVE_MS));
    process.removeListener("exit", onExit);
  };
}
