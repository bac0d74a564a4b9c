#!/usr/bin/env bash
# `make fuzz` (not in CI): runs each cargo-fuzz target (libFuzzer, AddressSanitizer)
# for FUZZ_SECONDS (default 300) from its corpus in fuzz/corpus/, then
# minimizes the corpus (kept in the repository). A crash stops it, leaving the
# input in fuzz/artifacts/<target>/. Stable Rust: RUSTC_BOOTSTRAP=1 lets it pass
# the sanitizer flags cargo fuzz uses.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
seconds=${FUZZ_SECONDS:-300}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz 0.13.2 (crates.io)" >&2
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
for target in ${FUZZ_TARGETS:-authorization request_body configuration}; do
  echo "== $target: ${seconds}s" >&2
  mkdir -p "corpus/$target"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ *DONE|stat::|==[0-9]+==|SUMMARY|artifact)|Done [0-9]+ runs" || true
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "make fuzz: $target found a failure: fuzz/artifacts/$target/" >&2
    exit 1
  fi
  cargo fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1 || true
  echo "$target: corpus $(ls "corpus/$target" | wc -l) inputs" >&2
done
