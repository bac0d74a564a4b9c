#!/usr/bin/env bash
# The template checks: sam validate --lint, cfn-lint, checkov (no failed
# check; skips carry their reason in the template). Closes with
# 'template: N passed, N failed'.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sam_bin=$(tools/venv.sh sam) || exit 1
checkov_bin=$(tools/venv.sh checkov) || exit 1
export SAM_CLI_TELEMETRY=0
passed=0; failed=0
check() {
  local name=$1; shift
  if out=$("$@" 2>&1); then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; echo "$out" | tail -40; failed=$((failed + 1))
  fi
}
check "sam validate --lint" "$sam_bin/sam" validate --lint --region us-east-1 -t template.yaml
check "cfn-lint" "$sam_bin/cfn-lint" template.yaml
checkov_run() {
  local out
  out=$("$checkov_bin/checkov" -f template.yaml --framework cloudformation --skip-download --compact --quiet 2>&1)
  local rc=$?
  echo "$out"
  # checkov exits 0 with no failed check; also insist that it read the template.
  [ $rc -eq 0 ] && echo "$out" | grep -q "Passed checks: [1-9]" && echo "$out" | grep -q "Failed checks: 0"
}
check "checkov" checkov_run
# The checker of the roles against the recorded AWS calls (tools/iam_roles.py,
# run by check-template-findings.py below) finds the faults it is for.
check "roles checker (tools/test_iam_roles.py)" "$sam_bin/python" tools/test_iam_roles.py
echo "template: $passed passed, $failed failed"
# The template transformed by SAM's translator, read against the services'
# behaviour (a stack that comes up and alerts): its own closing line.
"$sam_bin/python" tools/check-template-findings.py || failed=$((failed + 1))
[ $failed -eq 0 ]
