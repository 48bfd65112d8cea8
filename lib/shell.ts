/**
 * POSIX shell quoting, the one definition (issue #10): every command text this program hands to a shell (cosign,
 * trivy, skopeo through @pulumi/command) quotes its words here. Words made only of characters no shell treats
 * specially stay bare, so command texts (and their diffs in a plan) stay readable.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
