import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Starts nothing itself; stops the dockerd and registries a real-container test file started (test/support/engine.ts).
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 120_000,
    // No hook may time out before the work it waits for (issue #10): the real-container suite's beforeAll makes the
    // base rootfs (debootstrap, its own limit 600 s; 129 s and more on a loaded 2-core machine) and tars it (300 s).
    hookTimeout: 960_000,
  },
});
