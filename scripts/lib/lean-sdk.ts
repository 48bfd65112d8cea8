/**
 * Loads less of @pulumi/pulumi for the CLIs that plan (issue #16: `npm run plan` start-up). The SDK's entry point
 * eagerly loads modules a plan under mocks never calls: closure serialization (`runtime.serializeFunction`,
 * `runtime.computeCodePaths`, which pull in the TypeScript compiler, 9 MB of JavaScript, and npm's arborist) and the
 * Automation API (`pulumi.automation`, its gRPC language server), and gRPC itself with its generated clients and
 * OpenTelemetry (the mock monitor answers in-process: no channel is opened, no span is traced). Each is put in Node's
 * module cache as a stand-in that loads the real module on first use, so nothing changes for code that does use them.
 *
 * Must be imported before anything imports @pulumi/pulumi (first import of the CLI); does nothing if the SDK is
 * already loaded (a test runner). Never imported by index.ts: `pulumi up` loads the SDK as it is.
 */
import Module = require("node:module");

// Resolved from the SDK's own folder: the stand-in must be the very file the SDK would load.
const sdkDir = (() => {
  try {
    return require.resolve("@pulumi/pulumi").replace(/[\\/]index\.js$/, "");
  } catch {
    return undefined;
  }
})();

function lazy(id: string, eager: readonly string[]): void {
  if (sdkDir === undefined) return;
  let file: string;
  try {
    file = require.resolve(id, { paths: [sdkDir] });
  } catch {
    return; // another SDK layout: load it as it is
  }
  if (require.cache[file] !== undefined) return;
  let real: Record<string, unknown> | undefined;
  const load = (): Record<string, unknown> => {
    if (real === undefined) {
      delete require.cache[file];
      real = require(file) as Record<string, unknown>;
    }
    return real;
  };
  // Functions the SDK copies out of the module while it loads: stand-ins that call the real one.
  const target: Record<string | symbol, unknown> = { __esModule: true };
  for (const name of eager) target[name] = (...args: unknown[]) => (load()[name] as (...a: unknown[]) => unknown)(...args);
  const stand = new Module(file);
  stand.filename = file;
  stand.loaded = true;
  stand.exports = new Proxy(target, {
    get: (t, key) => (key in t ? t[key] : load()[key as string]),
    has: (t, key) => key in t || key in load(),
  });
  require.cache[file] = stand;
}

lazy("@pulumi/pulumi/runtime/closure/serializeClosure", ["serializeFunctionAsync", "serializeFunction"]);
lazy("@pulumi/pulumi/runtime/closure/codePaths", ["computeCodePaths"]);
lazy("@pulumi/pulumi/automation", []);
// Loaded by the SDK's runtime at start-up for a real engine connection; ~50 ms of a dev plan's ~0.9 s.
lazy("@grpc/grpc-js", []);
lazy("@opentelemetry/api", []);
for (const client of ["engine", "resource", "callback", "provider"]) lazy(`@pulumi/pulumi/proto/${client}_grpc_pb`, []);
// The SDK compares versions only when one resource module registers twice; semver's entry loads all its 47 files.
lazy("semver", []);
