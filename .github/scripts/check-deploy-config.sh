#!/usr/bin/env bash
# Says which of the secrets and variables a live Pulumi job needs are missing (docs/ci.md, "Secrets and
# variables"). Workflows pass them in through `env`, because `secrets` cannot be tested in an `if:`.
#
# usage: check-deploy-config.sh gate      missing → a notice and configured=false (the caller skips its work)
#        check-deploy-config.sh require   missing → one error per item and exit 1 (the caller must not go on)
# env:   PULUMI_ACCESS_TOKEN, PULUMI_BACKEND_URL, AWS_ROLE_ARN, AWS_REGION
# out:   configured=true|false appended to $GITHUB_OUTPUT when that is set
set -euo pipefail

mode=${1:-}
if [[ $mode != gate && $mode != require ]]; then
  echo "usage: $0 gate|require (got '${mode}')" >&2
  exit 64
fi

missing=()
# Either Pulumi Cloud (token) or a self-managed backend (URL such as s3://bucket/prefix).
if [[ -z ${PULUMI_ACCESS_TOKEN:-} && -z ${PULUMI_BACKEND_URL:-} ]]; then
  missing+=("secret PULUMI_ACCESS_TOKEN (Pulumi Cloud) or variable PULUMI_BACKEND_URL (self-managed backend)")
fi
[[ -n ${AWS_ROLE_ARN:-} ]] || missing+=("variable AWS_DEPLOY_ROLE_ARN (the IAM role assumed through GitHub OIDC; previews use AWS_PREVIEW_ROLE_ARN when set)")
[[ -n ${AWS_REGION:-} ]] || missing+=("variable AWS_REGION")

configured=true
if ((${#missing[@]})); then
  configured=false
  for item in "${missing[@]}"; do
    if [[ $mode == require ]]; then
      echo "::error::Not configured: ${item}. Set it under Settings → Secrets and variables → Actions; see docs/ci.md."
    else
      echo "::notice::Skipped, not configured: ${item}. See docs/ci.md."
    fi
  done
fi
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
  echo "configured=${configured}" >>"$GITHUB_OUTPUT"
fi
if [[ $mode == require && $configured == false ]]; then
  exit 1
fi
exit 0
