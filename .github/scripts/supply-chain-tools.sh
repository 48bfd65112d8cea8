#!/usr/bin/env bash
# The supply-chain tools of `pulumi up`, pinned in .github/tool-versions.env (docs/ci.md, "Supply-chain tools").
#
# usage: supply-chain-tools.sh pins     check the pins file; write cosign=<version> and trivy=<version> to
#                                       $GITHUB_OUTPUT for the installer actions' inputs
#        supply-chain-tools.sh verify   the cosign and trivy found on PATH must report exactly the pinned versions,
#                                       and skopeo must be there
# env:   TOOL_VERSIONS_FILE   the pins file (default: tool-versions.env in the folder above this script's, which is
#                             .github/tool-versions.env when run as `bash .github/scripts/supply-chain-tools.sh`)
#
# The file is parsed, never sourced: it may hold only comments, blank lines and the two KEY=vX.Y.Z lines.
set -euo pipefail

mode=${1:-}
if [[ $mode != pins && $mode != verify ]]; then
  echo "usage: $0 pins|verify (got '${mode}')" >&2
  exit 64
fi

here=$(dirname "${BASH_SOURCE[0]}")
file=${TOOL_VERSIONS_FILE:-$(dirname "${here}")/tool-versions.env}
if [[ ! -f $file ]]; then
  echo "::error::The pins file ${file} does not exist."
  exit 1
fi

declare -A pin=()
problems=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
  lineno=$((lineno + 1))
  [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
  if [[ $line =~ ^(COSIGN_VERSION|TRIVY_VERSION)=(.*)$ ]]; then
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    if [[ -n ${pin[$key]:-} ]]; then
      problems+=("line ${lineno}: ${key} is set twice")
    elif [[ ! $value =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
      problems+=("line ${lineno}: ${key} must be a release tag such as v1.2.3, got '${value}'")
    else
      pin[$key]=$value
    fi
  else
    problems+=("line ${lineno}: expected COSIGN_VERSION=vX.Y.Z or TRIVY_VERSION=vX.Y.Z, got '${line}'")
  fi
done <"$file"
for key in COSIGN_VERSION TRIVY_VERSION; do
  [[ -n ${pin[$key]:-} ]] || problems+=("${key} is missing")
done
if ((${#problems[@]})); then
  for p in "${problems[@]}"; do echo "::error::${file}: ${p}"; done
  exit 1
fi
cosign_pin=${pin[COSIGN_VERSION]}
trivy_pin=${pin[TRIVY_VERSION]}

if [[ $mode == pins ]]; then
  if [[ -n ${GITHUB_OUTPUT:-} ]]; then
    printf 'cosign=%s\ntrivy=%s\n' "$cosign_pin" "$trivy_pin" >>"$GITHUB_OUTPUT"
  fi
  echo "Pinned: cosign ${cosign_pin}, trivy ${trivy_pin} (${file})."
  exit 0
fi

# verify: `cosign version` prints "GitVersion:    v2.5.3"; `trivy --version` prints "Version: 0.72.0". Each output
# is read whole before it is parsed, so neither a failing command nor an early-closed pipe can stop the script silently.
first_value() { # $1: label, $2: text; prints what follows "<label>" on the first line that starts with it
  local value
  value=$(sed -n "s/^$1[[:space:]]*//p" <<<"$2")
  printf '%s' "${value%%$'\n'*}"
}
failed=0
if ! command -v cosign >/dev/null; then
  echo "::error::cosign is not on PATH; the cosign-installer step should have put ${cosign_pin} there."
  failed=1
else
  out=$(cosign version 2>&1) || true
  got=$(first_value GitVersion: "$out")
  if [[ $got != "$cosign_pin" ]]; then
    echo "::error::cosign on PATH ($(command -v cosign)) is '${got}', but ${file} pins ${cosign_pin}."
    failed=1
  fi
fi
if ! command -v trivy >/dev/null; then
  echo "::error::trivy is not on PATH; the setup-trivy step should have put ${trivy_pin} there."
  failed=1
else
  out=$(trivy --version 2>&1) || true
  got=$(first_value Version: "$out")
  if [[ $got != "${trivy_pin#v}" ]]; then
    echo "::error::trivy on PATH ($(command -v trivy)) is '${got}', but ${file} pins ${trivy_pin}."
    failed=1
  fi
fi
# skopeo: the size gates read each image's manifests from the registry with it (components/validation/image-size.ts).
# GitHub's Ubuntu runner images ship it; any version reads a manifest.
if ! command -v skopeo >/dev/null; then
  echo "::error::skopeo is not on PATH; the size gates need it (apt-get install skopeo)."
  failed=1
fi
if ((failed)); then
  exit 1
fi
echo "cosign ${cosign_pin} and trivy ${trivy_pin} are on PATH, as pinned, and skopeo."
