#!/usr/bin/env bash
# `npm run up:local`: the local stack end to end with no cloud account. State lives in a file backend under
# .pulumi/ (git-ignored); the local stack holds no secrets, so its passphrase may be empty unless you set one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v pulumi >/dev/null || { echo "up:local needs the Pulumi CLI: https://www.pulumi.com/docs/install/" >&2; exit 2; }
command -v docker >/dev/null || { echo "up:local needs Docker (the local registry and the builds run there)" >&2; exit 2; }
kubectl config get-contexts kind-workbench >/dev/null 2>&1 || {
  echo "up:local needs the kind cluster 'workbench': kind create cluster --name workbench" >&2
  exit 2
}
mkdir -p .pulumi
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
pulumi login "file://$PWD/.pulumi"
pulumi stack select local --create
exec pulumi up --stack local "$@"
