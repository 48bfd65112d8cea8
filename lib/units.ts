/**
 * KubeSpawner byte strings (`mem_limit`, `mem_guarantee`): an integer or decimal with an optional K, M, G or T suffix,
 * each a power of 1024 (kubespawner/traitlets ByteSpecification). Returns bytes, or undefined when malformed.
 */
export function parseByteString(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(value);
  if (!m) return undefined;
  const scale = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2] as "K" | "M" | "G" | "T"] ?? 1;
  return Math.round(Number(m[1]) * scale);
}
