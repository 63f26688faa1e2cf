#!/usr/bin/env bash
# The whole test suite: one build of every crate and test, then all tests
# (unit, property, and integration tests that start the real binaries and drive
# them with real clients), in parallel where nextest is available.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast --failure-output final
else
    cargo test --workspace --no-fail-fast
fi
