import { parseArgs } from "node:util";
import { pinChartImagesFile } from "../lib/chart-images";
import { skopeoResolver } from "./lib/pin-bases";

/**
 * npm run pin-chart-images -- [--refresh] [--dry-run]: on a machine with registry access, pins every image the Helm
 * charts deploy (images/chart-images.yaml) to the digest its tag points at now, keeping the file's comments.
 * Exit 2 with every problem listed when any tag cannot be resolved; nothing is written then.
 */
const USAGE = "usage: npm run pin-chart-images -- [--refresh] [--dry-run]";
let values: { refresh?: boolean; "dry-run"?: boolean };
try {
  ({ values } = parseArgs({ options: { refresh: { type: "boolean" }, "dry-run": { type: "boolean" } }, strict: true, allowPositionals: false }));
} catch (e) {
  process.stderr.write(`pin-chart-images: ${(e as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
pinChartImagesFile(skopeoResolver(), { refresh: values.refresh ?? false, dryRun: values["dry-run"] ?? false }).then(
  (r) => {
    for (const c of r.changes) process.stdout.write(`${c.path}: ${c.from} → ${c.to}\n`);
    if (r.problems.length > 0) {
      process.stderr.write(`${r.problems.join("\n")}\n`);
      process.exit(2);
    }
    if (r.changes.length === 0) process.stdout.write("all chart images already pinned\n");
  },
  (e: unknown) => {
    process.stderr.write(`pin-chart-images: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
