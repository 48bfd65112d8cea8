/**
 * scripts/lib/lean-sdk.ts (issue #16): the compiled CLIs load @pulumi/pulumi without the modules a plan under mocks
 * never uses, and each stand-in still loads the real module the moment something uses it. Run in a child process:
 * this test runner has loaded the SDK already, and lean-sdk does nothing then.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";
import { runCommand } from "../support/proc";

/** In a fresh Node: lean-sdk, then the SDK; which real modules did that load, and do the stand-ins work when used? */
const PROBE = `
const path = require("node:path");
require(${JSON.stringify(path.join(ROOT, "dist", "scripts", "lib", "lean-sdk.js"))});
const pulumi = require("@pulumi/pulumi");
// A stand-in sits in the module cache under the real file's name, its exports a Proxy; the real module is not one.
const standIn = (file) => require.cache[file] !== undefined && require("node:util").types.isProxy(require.cache[file].exports);
const loaded = (part) => Object.keys(require.cache).some((f) => f.split(path.sep).join("/").includes(part) && !standIn(f));
const probes = {
  grpc: "/@grpc/grpc-js/build/src/channel.js",
  otel: "/@opentelemetry/api/build/src/api/trace.js",
  semver: "/semver/functions/eq.js",
  resourceClient: "/@pulumi/pulumi/proto/resource_grpc_pb.js",
  typescript: "/typescript/lib/typescript.js",
};
const before = Object.fromEntries(Object.entries(probes).map(([k, p]) => [k, loaded(p)]));
const used = {
  grpcStatus: require("@grpc/grpc-js").status.UNAVAILABLE,
  semverEq: require("semver").eq("1.2.3", "1.2.3"),
  otelContext: typeof require("@opentelemetry/api").context.active,
  resourceClient: typeof require("@pulumi/pulumi/proto/resource_grpc_pb").ResourceMonitorClient,
  output: typeof pulumi.output,
};
const after = Object.fromEntries(Object.entries(probes).filter(([k]) => k !== "typescript").map(([k, p]) => [k, loaded(p)]));
process.stdout.write(JSON.stringify({ before, used, after }));
`;

describe("lean-sdk", () => {
  it("keeps gRPC, OpenTelemetry, semver, the gRPC clients and the TypeScript compiler out of a plan until used", async () => {
    const r = await runCommand(process.execPath, ["-e", PROBE], { cwd: ROOT, timeoutMs: 60_000 });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      before: { grpc: false, otel: false, semver: false, resourceClient: false, typescript: false },
      used: { grpcStatus: 14, semverEq: true, otelContext: "function", resourceClient: "function", output: "function" },
      after: { grpc: true, otel: true, semver: true, resourceClient: true },
    });
  });
});
