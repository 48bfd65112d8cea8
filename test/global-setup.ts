/**
 * vitest globalSetup: makes the state dir the real-container tests share and, at teardown, stops whatever engine a
 * test file started there (see test/support/engine.ts). It starts nothing itself, so a unit-only run such as
 * `npx vitest run test/config.test.ts` never pays for dockerd.
 */
import type { TestProject } from "vitest/node";
import { makeStateDir, signalEngineSync, stopEngine } from "./support/engine";

export default function setup(project: TestProject): () => Promise<void> {
  const stateDir = makeStateDir();
  project.provide("workbenchEngineStateDir", stateDir);
  // An interrupted run may skip teardown; at least the daemons get SIGTERM (exit handlers cannot wait).
  const onExit = (): void => signalEngineSync(stateDir);
  process.once("exit", onExit);
  return async () => {
    process.removeListener("exit", onExit);
    await stopEngine(stateDir);
  };
}
