#!/usr/bin/env bash
# `npm run up:local`: the local stack end to end with no cloud account.
#  1. a kind cluster `workbench` (created if missing) whose nodes pull 127.0.0.1:5001/... from the registry container
#     the program runs, through a containerd mirror to local-registry:5000 on the `kind` network (kind's
#     "local registry" recipe);
#  2. state in a file backend under .pulumi/ (git-ignored); the local stack holds no secrets, so its passphrase may
#     be empty unless you set one;
#  3. pulumi up --stack local (extra arguments are passed on, e.g. --yes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need() { command -v "$1" >/dev/null || { echo "up:local needs $1 ($2)" >&2; exit 2; }; }
need pulumi "https://www.pulumi.com/docs/install/"
need docker "the local registry and the builds run there"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/"

cluster=workbench
registry="127.0.0.1:5001"
if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --config - <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
  - |-
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
KIND
fi
for node in $(kind get nodes --name "$cluster"); do
  docker exec "$node" mkdir -p "/etc/containerd/certs.d/$registry"
  printf '[host."http://local-registry:5000"]\n' | docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/$registry/hosts.toml"
done

mkdir -p .pulumi
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
pulumi login "file://$PWD/.pulumi"
pulumi stack select local --create
exec pulumi up --stack local "$@"
