import { DockerfileParser } from "dockerfile-ast";

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
  const dockerfile = DockerfileParser.parse(content);
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
