#!/usr/bin/env bash
# Says which of the secrets and variables a live Pulumi job needs are missing (docs/ci.md, "Secrets and
# variables"). Workflows pass them in through `env`, because `secrets` cannot be tested in an `if:`.
#
# usage: check-deploy-config.sh require <environment>
#            deploys and promote: anything missing → one error per item and exit 1 (the caller must not go on)
#        check-deploy-config.sh preview
#            the dev preview of preview.yml. Nothing configured at all → a notice and configured=false (live previews
#            are not set up in this repository; the caller skips its work). Anything else missing → one error per
#            item and exit 1: above all the read-only AWS_PREVIEW_ROLE_ARN, for which there is no fallback.
# env:   PULUMI_ACCESS_TOKEN, PULUMI_BACKEND_URL, AWS_ROLE_ARN, AWS_REGION (preview.yml fills PULUMI_ACCESS_TOKEN from
#        the PULUMI_PREVIEW_ACCESS_TOKEN secret and AWS_ROLE_ARN from the AWS_PREVIEW_ROLE_ARN variable)
# out:   configured=true|false appended to $GITHUB_OUTPUT when that is set
set -euo pipefail

mode=${1:-}
case $mode in
  require)
    environment=${2:-}
    if [[ ! $environment =~ ^[a-z][a-z0-9-]*$ ]]; then
      echo "usage: $0 require <environment> (got '${environment}')" >&2
      exit 64
    fi
    token_item="secret PULUMI_ACCESS_TOKEN (Pulumi Cloud) or variable PULUMI_BACKEND_URL (self-managed backend)"
    role_item="variable AWS_DEPLOY_ROLE_ARN (the IAM role assumed through GitHub OIDC)"
    ;;
  preview)
    environment=preview
    token_item="secret PULUMI_PREVIEW_ACCESS_TOKEN (a Pulumi Cloud token that can only read the dev stack) or variable PULUMI_BACKEND_URL (self-managed backend)"
    role_item="variable AWS_PREVIEW_ROLE_ARN (a read-only IAM role for previews; the deploy role is never used for unmerged code)"
    ;;
  *)
    echo "usage: $0 require <environment> | preview (got '${mode}')" >&2
    exit 64
    ;;
esac

missing=()
# Either Pulumi Cloud (token) or a self-managed backend (URL such as s3://bucket/prefix).
if [[ -z ${PULUMI_ACCESS_TOKEN:-} && -z ${PULUMI_BACKEND_URL:-} ]]; then
  missing+=("$token_item")
fi
[[ -n ${AWS_ROLE_ARN:-} ]] || missing+=("$role_item")
[[ -n ${AWS_REGION:-} ]] || missing+=("variable AWS_REGION")

configured=true
failed=false
if ((${#missing[@]})); then
  configured=false
  if [[ $mode == preview && ${#missing[@]} -eq 3 ]]; then
    echo "::notice::Live preview skipped: nothing is configured for it (secret PULUMI_PREVIEW_ACCESS_TOKEN or variable PULUMI_BACKEND_URL, variable AWS_PREVIEW_ROLE_ARN, variable AWS_REGION, on the \`preview\` environment). The offline plan (plan.yml) still runs; see docs/ci.md."
  else
    failed=true
    for item in "${missing[@]}"; do
      echo "::error::Not configured: ${item}. Set it on the \`${environment}\` environment (Settings → Environments); see docs/ci.md."
    done
  fi
fi
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
  echo "configured=${configured}" >>"$GITHUB_OUTPUT"
fi
if [[ $failed == true ]]; then
  exit 1
fi
exit 0
