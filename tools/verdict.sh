# Sourced by the shell suites (check-guards.sh, check-make-run.sh): counts
# their checks and prints one line each; the suite closes with
# 'NAME: $passed passed, $failed failed'.
passed=0; failed=0
verdict() { # ok?, what, detail
  if [ "$1" -eq 0 ]; then echo "ok   $2"; passed=$((passed + 1)); else echo "FAIL $2: $3"; failed=$((failed + 1)); fi
}
