import { CHART_IMAGES_FILE, pinChartImagesFile } from "../lib/chart-images";
import { type DigestResolver, skopeoResolver, yamlFileProblem } from "./lib/pin-bases";
import { type CliIO, display, escapeControls, parseFlags, readInput, Refused, runCli, runAsScript } from "./lib/cli";
import { PROJECT_ROOT } from "../lib/paths";

/**
 * npm run pin-chart-images -- [--refresh] [--dry-run]: on a machine with registry access, pins every image the Helm
 * charts deploy (images/chart-images.yaml) to the digest its tag points at now, keeping the file's comments.
 * Exit 2 with every problem listed, one line each, when a flag is wrong, the file cannot be read or any tag cannot be
 * resolved; nothing is written then.
 */
const CLI = "pin-chart-images";
const HELP = "Usage: npm run pin-chart-images -- [--refresh] [--dry-run].";
const root = PROJECT_ROOT;

export interface PinChartImagesIO extends CliIO {
  /** @default skopeo on PATH */
  resolver?: DigestResolver;
  /** @default images/chart-images.yaml */
  file?: string;
}

/** The CLI as a function (issue #16). Exit 0: pinned, nothing to do or a dry run; 2: refused, nothing written. */
export function main(argv: readonly string[], io: PinChartImagesIO): Promise<number> {
  return runCli(CLI, io, async () => {
    const { values } = parseFlags(CLI, argv, { refresh: { type: "boolean" }, "dry-run": { type: "boolean" } }, { help: HELP });
    const file = io.file ?? CHART_IMAGES_FILE;
    const shown = display(file, io.cwd ?? root);
    const fix = "Restore it from the repository; docs/chart-images.md says what it holds.";
    const syntax = yamlFileProblem(readInput(file, shown, fix, CLI));
    if (syntax !== undefined) throw new Refused(CLI, [{ where: `${shown}${syntax.line}`, message: `${syntax.message} Nothing was written.` }]);
    const r = await pinChartImagesFile(io.resolver ?? skopeoResolver(), { refresh: values.refresh === true, dryRun: values["dry-run"] === true, file });
    if (r.problems.length > 0) {
      io.stderr(`${r.problems.map((p) => `${CLI}: ${escapeControls(p)}`).join("\n")}\n`);
      return 2;
    }
    for (const c of r.changes) io.stdout(`${escapeControls(c.path)}: ${escapeControls(c.from)} → ${escapeControls(c.to)}\n`);
    if (r.changes.length === 0) io.stdout("all chart images already pinned\n");
    else if (values["dry-run"] === true) io.stdout(`dry run: ${shown} not written\n`);
    return 0;
  });
}

if (typeof module !== "undefined" && require.main === module) runAsScript(CLI, main);
