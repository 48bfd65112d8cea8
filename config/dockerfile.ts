import { type Dockerfile, DockerfileParser } from "dockerfile-ast";

const parsedCache = new Map<string, Dockerfile>();

/**
 * One parse per Dockerfile text for the whole run: the catalog checks, the run-as checks and the per-target content
 * hashes all read the same few Dockerfiles (a dev plan asked for 27 parses of 8 texts). Callers only read the result.
 */
export function parseDockerfile(content: string): Dockerfile {
  let dockerfile = parsedCache.get(content);
  if (dockerfile === undefined) {
    dockerfile = DockerfileParser.parse(content);
    parsedCache.set(content, dockerfile);
  }
  return dockerfile;
}

export interface DockerfileSummary {
  /** Stage names in order (`FROM x AS name`); unnamed stages are absent. */
  stages: string[];
  /** ARGs declared before the first FROM: the only ones a FROM line may use. */
  globalArgs: string[];
  /** The image operand of every FROM, verbatim (`${BASE_IMAGE}`, `base`, `python:3.12@sha256:…`). */
  fromImages: string[];
}

/** Reads a Dockerfile with a real parser (dockerfile-ast), never with regular expressions over lines. */
export function summarizeDockerfile(content: string): DockerfileSummary {
  const dockerfile = parseDockerfile(content);
  const froms = dockerfile.getFROMs();
  return {
    stages: froms.map((f) => f.getBuildStage()).filter((s): s is string => s !== null),
    globalArgs: dockerfile
      .getInitialARGs()
      .map((a) => a.getProperty()?.getName())
      .filter((n): n is string => n !== undefined),
    fromImages: froms.map((f) => f.getImage()).filter((s): s is string => s !== null),
  };
}

/** The user and working directory a target's image runs with, as its own Dockerfile sets them (undefined: inherited). */
export interface DockerfileRuntime {
  /** The last USER operand in the target's stage chain, verbatim (`10001:10001`, `1001`, `${USER_UID}`). */
  user?: string;
  /** The last WORKDIR in the chain, verbatim. */
  workdir?: string;
}

/**
 * USER and WORKDIR of `target` (the last stage when undefined), following `FROM <earlier stage>` back to the external
 * base: a stage inherits its parent stage's settings. Reads the instructions with dockerfile-ast.
 */
export function dockerfileRuntime(content: string, target?: string): DockerfileRuntime {
  const dockerfile = parseDockerfile(content);
  const froms = dockerfile.getFROMs();
  const stages = froms.map((f) => ({ name: f.getBuildStage(), image: f.getImage(), line: f.getRange().start.line, user: undefined as string | undefined, workdir: undefined as string | undefined }));
  for (const instruction of dockerfile.getInstructions()) {
    const line = instruction.getRange().start.line;
    const stage = [...stages].reverse().find((s) => s.line <= line);
    if (stage === undefined) continue;
    const keyword = instruction.getKeyword();
    const operand = instruction.getArgumentsContent() ?? undefined;
    if (keyword === "USER" && operand !== undefined) stage.user = operand.trim();
    if (keyword === "WORKDIR" && operand !== undefined) stage.workdir = operand.trim();
  }
  const result: DockerfileRuntime = {};
  let index = target === undefined ? stages.length - 1 : stages.findIndex((s) => s.name === target);
  const seen = new Set<number>();
  while (index >= 0 && !seen.has(index)) {
    seen.add(index);
    const stage = stages[index]!;
    if (result.user === undefined && stage.user !== undefined) result.user = stage.user;
    if (result.workdir === undefined && stage.workdir !== undefined) result.workdir = stage.workdir;
    index = stages.findIndex((s, i) => i < index && s.name !== null && s.name === stage.image);
  }
  return result;
}
