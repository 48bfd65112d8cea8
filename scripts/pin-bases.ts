import * as path from "node:path";
import { runPinBases, skopeoResolver } from "./lib/pin-bases";
import { PROJECT_ROOT } from "../lib/paths";

/**
 * npm run pin-bases -- [--catalog <file>] [--refresh] [--dry-run] [--no-tls-verify]
 * Resolves each catalog base tag to its current manifest digest with skopeo and rewrites the catalog in place,
 * comments kept (issue #3). Needs registry access; run it on a workstation, not in the Pulumi program.
 * Exit 0: written, dry run, or nothing to do. Exit 2: bad flags or any problem (the catalog is left untouched).
 */
const root = PROJECT_ROOT;

runPinBases(process.argv.slice(2), {
  cwd: process.cwd(),
  defaultCatalog: path.join(root, "images", "catalog.yaml"),
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  makeResolver: ({ tlsVerify }) => skopeoResolver(process.env.SKOPEO ?? "skopeo", { tlsVerify }),
})
  .then((code) => {
    process.exitCode = code;
  })
  .catch((e: unknown) => {
    process.stderr.write(`pin-bases: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
