#!/usr/bin/env bash
# The whole test suite: the real clients installed if missing
# (scripts/setup-clients.sh, idempotent); one build of every crate and test; the compose test
# (compose/test.sh: the images and both compose files on this machine's Docker
# engine; it skips, saying so, where no Docker engine answers); then all tests
# (unit, property, and integration tests that start the real binaries and drive
# them with real clients), in parallel where nextest is available. A failing
# compose test fails the run, after the other tests have run too.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-clients.sh
cargo build --workspace --all-targets --locked
compose_rc=0
./compose/test.sh || compose_rc=$?
# `bench` runs on its own: its librdkafka (built by rdkafka-sys) would
# otherwise be on the test processes' library path, and the real clients the
# integration tests start (kcat, Debian's confluent-kafka) would load it
# instead of Debian's librdkafka 2.0.2 they are meant to exercise.
tests_rc=0
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --exclude bench --no-fail-fast --failure-output final || tests_rc=$?
    cargo nextest run -p bench --no-fail-fast --failure-output final || tests_rc=$?
else
    cargo test --workspace --exclude bench --no-fail-fast || tests_rc=$?
    cargo test -p bench --no-fail-fast || tests_rc=$?
fi
if [ "$compose_rc" != 0 ]; then
    echo "compose test failed (exit $compose_rc): see its output above" >&2
    exit "$compose_rc"
fi
exit "$tests_rc"
