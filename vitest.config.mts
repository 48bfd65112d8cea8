import { defineConfig } from "vitest/config";

/**
 * Suites that run real artifacts (GUIDE §4.3, §4.4): containers on a private dockerd, real registries and skopeo, the
 * GPU check under real torch, notebooks under real nbclient/ipykernel, KubeSpawner and z2jh in real Python, the hub's
 * Python, the policy pack in the process the Pulumi CLI starts, pip and ShellCheck. `npm test` runs them after the
 * unit tests and reports them apart, with their own time (issue #16). Where one test of an otherwise fast file needs
 * a real artifact, it lives beside it in `<name>.real.test.ts`.
 */
const REAL = [
  "test/**/*.real.test.ts",
  "test/images/containers.test.ts",
  "test/images/gpu-check.test.ts",
  "test/images/gpu-check-cuda.test.ts",
  "test/images/gpu-check-report.test.ts",
  "test/images/notebooks.test.ts",
  "test/images/shellcheck.test.ts",
  "test/images/universal-lock.test.ts",
  "test/upstream/**/*.test.ts",
  "test/components/hub/hub-python.test.ts",
  "test/components/promotion/registry-copy.test.ts",
  "test/components/validation/notebook-runner.test.ts",
];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: REAL,
          // Compiles the CLIs to dist/ once (what `npm run <cli>` runs) for the end-to-end CLI tests.
          globalSetup: ["test/unit-setup.ts"],
          // One module graph per worker, not per file: @pulumi/pulumi and the providers are imported once per worker
          // instead of once per file (about a second each). Files that need fresh state make it themselves (runPlan
          // resets the mock runtime; harness.loadProgram imports index.ts once by design).
          isolate: false,
          // vitest's default on a 2-core machine is one worker; the second overlaps the child processes and waits
          // (CLI processes, curl retries, command deadlines) with the first's work.
          maxWorkers: 2,
          // Unit hooks plan or make temp dirs; none waits for more than a test may take.
          hookTimeout: 120_000,
          // A plain `vitest run` runs the unit tests first, then the real-artifact suites (projects with different
          // maxWorkers need groups of their own).
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "real",
          include: REAL,
          // Starts nothing itself; stops the dockerd and registries a real-container test file started (test/support/engine.ts).
          globalSetup: ["test/global-setup.ts"],
          // No hook may time out before the work it waits for (issue #10): the real-container suite's beforeAll makes the
          // base rootfs (debootstrap, its own limit 600 s; 129 s and more on a loaded 2-core machine) and tars it (300 s).
          hookTimeout: 960_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
