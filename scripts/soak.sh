#!/usr/bin/env bash
# Soak test: concurrent load on the axum_server example while the mock issuer rotates
# keys and has outages. Bounded by SOAK_SECS (default 300). Prints the report.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECS="${SOAK_SECS:-300}"
timeout $((SOAK_SECS + 600)) cargo test --release --all-features --test it -- --ignored --nocapture soak::
