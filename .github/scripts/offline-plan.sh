#!/usr/bin/env bash
# Backticks in the printf formats below are markdown, not command substitution.
# shellcheck disable=SC2016
# Offline plan for one pull request: `npm run plan` for every stack on the base commit and on the PR's merge
# commit, then `npm run plan:diff` between the two, assembled into ONE markdown comment.
#
# It runs inside plan.yml, which has no secrets and a read-only token, so it may run the PR's own code (a fork's
# included). It never posts anything: plan-comment.yml does that from the artifact (docs/ci.md, "Fork-safe plan
# comments").
#
# usage: offline-plan.sh <base-dir> <head-dir> <out-dir>
# env:   STACKS   stacks to plan, space-separated (default: "local dev prod")
#        BASE_SHA, MERGE_SHA, HEAD_SHA, RUN_URL   shown in the header when set
# out:   <out-dir>/comment.md, always written. Exit 1 when a plan or diff of the PR failed, so the check goes red;
#        a failed base plan only adds a note (the base is what main already has).
set -uo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 <base-dir> <head-dir> <out-dir>" >&2
  exit 64
fi
base_dir=$(cd "$1" && pwd) || { echo "base dir '$1' does not exist" >&2; exit 64; }
head_dir=$(cd "$2" && pwd) || { echo "head dir '$2' does not exist" >&2; exit 64; }
mkdir -p "$3" || { echo "cannot create out dir '$3'" >&2; exit 64; }
out_dir=$(cd "$3" && pwd)
work="$out_dir/work"
mkdir -p "$work"

# plan-comment.yml finds the comment to update by this marker, so it is the body's first line.
readonly MARKER='<!-- workbench-images-plan -->'
# Error output goes into the comment; a config error list is short, a stack trace is not.
readonly LOG_LINES=60
read -r -a stacks <<<"${STACKS:-local dev prod}"

# The plan tools print for people; colour codes would show up as garbage in a comment.
export NO_COLOR=1 FORCE_COLOR=0

# Escaped <pre> instead of a ``` fence: PR output could contain ``` and close a fence early.
pre_block() {
  printf '<pre>\n'
  tail -n "$LOG_LINES" "$1" | sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'
  printf '</pre>\n'
}

short() { printf '%s' "${1:0:7}"; }

# run_plan <dir> <stack> <plan-file> <log-file>; prints the exit status.
run_plan() {
  (cd "$1" && npm run --silent plan -- --stack "$2" --format json --out "$3") >"$4" 2>&1
  echo $?
}

failed=0
body="$work/body.md"
: >"$body"
for stack in "${stacks[@]}"; do
  {
    printf '\n### Stack `%s`\n\n' "$stack"
    if [[ ! -f "$head_dir/Pulumi.$stack.yaml" ]]; then
      if [[ -f "$base_dir/Pulumi.$stack.yaml" ]]; then
        printf 'This PR deletes `Pulumi.%s.yaml`: the stack is no longer planned.\n' "$stack"
      else
        printf 'No `Pulumi.%s.yaml` on either side: skipped.\n' "$stack"
      fi
      continue
    fi

    head_plan="$work/plan-$stack.head.json"
    head_rc=$(run_plan "$head_dir" "$stack" "$head_plan" "$work/plan-$stack.head.log")
    if [[ $head_rc -ne 0 ]]; then
      failed=1
      if [[ $head_rc -eq 2 ]]; then
        printf ':x: **The stack configuration is invalid** (`npm run plan` exited 2):\n\n'
      else
        printf ':x: **`npm run plan` failed** (exit %s):\n\n' "$head_rc"
      fi
      pre_block "$work/plan-$stack.head.log"
      continue
    fi

    if [[ ! -f "$base_dir/Pulumi.$stack.yaml" ]]; then
      printf 'New stack in this PR: there is no base plan to compare with. It plans cleanly.\n'
      continue
    fi
    base_plan="$work/plan-$stack.base.json"
    base_rc=$(run_plan "$base_dir" "$stack" "$base_plan" "$work/plan-$stack.base.log")
    if [[ $base_rc -ne 0 ]]; then
      printf ':warning: The base commit does not plan (exit %s), so there is nothing to compare with. This PR plans cleanly.\n\n' "$base_rc"
      pre_block "$work/plan-$stack.base.log"
      continue
    fi

    # The PR's own plan:diff reads both files: a PR that changes the plan format must keep reading the old one.
    (cd "$head_dir" && npm run --silent plan:diff -- "$base_plan" "$head_plan") >"$work/diff-$stack.md" 2>"$work/diff-$stack.log"
    diff_rc=$?
    if [[ $diff_rc -ne 0 ]]; then
      failed=1
      printf ':x: **`npm run plan:diff` failed** (exit %s):\n\n' "$diff_rc"
      pre_block "$work/diff-$stack.log"
    elif [[ -s "$work/diff-$stack.md" ]]; then
      cat "$work/diff-$stack.md"
    else
      printf 'No changes.\n'
    fi
  } >>"$body"
done

{
  printf '%s\n' "$MARKER"
  printf '## Offline plan\n\n'
  if [[ -n "${BASE_SHA:-}" && -n "${MERGE_SHA:-}" ]]; then
    printf 'Base `%s` → merge `%s`' "$(short "$BASE_SHA")" "$(short "$MERGE_SHA")"
    if [[ -n "${HEAD_SHA:-}" ]]; then printf ' (PR head `%s`)' "$(short "$HEAD_SHA")"; fi
    printf '. '
  fi
  printf 'Planned under Pulumi'"'"'s mock runtime with no cloud credentials: this is what the program declares, '
  printf 'not what a live `pulumi preview` would change.'
  if [[ -n "${RUN_URL:-}" ]]; then printf ' [Workflow run](%s).' "$RUN_URL"; fi
  printf '\n'
  cat "$body"
} >"$out_dir/comment.md"

exit "$failed"
