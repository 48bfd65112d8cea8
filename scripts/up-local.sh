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

# Everything missing is reported at once, one line each, before anything is created (issue #13).
problems=()
# The extra arguments go to `pulumi up --stack local`: one that picks another stack or directory would deploy
# something other than the local stack, so it is refused here.
for arg in "$@"; do
  case "$arg" in
    -s | --stack | -s=* | --stack=* | -s?*)
      problems+=("up:local: $(printf '%q' "$arg"): up:local always deploys the local stack; leave the stack flag out (use \`pulumi up --stack <name>\` for another stack).") ;;
    -C | --cwd | -C=* | --cwd=* | -C?*)
      problems+=("up:local: $(printf '%q' "$arg"): up:local runs in the project root; leave --cwd out.") ;;
  esac
done
need() {
  command -v "$1" >/dev/null 2>&1 || problems+=("up:local: $1: is not on PATH; install it ($2), then run npm run up:local again.")
}
need pulumi "https://www.pulumi.com/docs/install/"
need docker "https://docs.docker.com/engine/install/; the local registry and the builds run there"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/"
if command -v docker >/dev/null 2>&1; then
  # The daemon must answer, not just the client exist: the registry container and every build need it.
  # Bounded where coreutils' timeout exists (a daemon socket that accepts and never answers would hang here).
  with_timeout=()
  if command -v timeout >/dev/null 2>&1; then with_timeout=(timeout 30); fi
  if ! daemon_err=$(${with_timeout[@]+"${with_timeout[@]}"} docker info --format '{{.ServerVersion}}' 2>&1 >/dev/null); then
    daemon_err=$(printf '%s' "$daemon_err" | tr -d '\000-\010\013-\037\177' | tr '\n\t' '  ' | cut -c1-200)
    problems+=("up:local: docker: the Docker daemon does not answer (docker info: ${daemon_err:-no output}); start Docker (or set DOCKER_HOST to a running daemon), then run npm run up:local again.")
  fi
fi
if ((${#problems[@]} > 0)); then
  printf '%s\n' "${problems[@]}" >&2
  exit 2
fi

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
# The local stack's state lives in the project (.pulumi/); the backend is set for these commands only, so the
# user's own `pulumi login` (their dev/prod backend) is left as it was.
export PULUMI_BACKEND_URL="file://$PWD/.pulumi"
pulumi stack select local --create
exec pulumi up --stack local "$@"
