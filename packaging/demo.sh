#!/usr/bin/env bash
# Command 1 of the README: set everything up (idempotent) and run the appliance with the embedded
# demo practice, in dev mode (trusts the dev model-bundle key), on loopback.
#   SIP:  sip:frontdesk@127.0.0.1:5080      Web: http://127.0.0.1:8080/
# Override with FRONTDESK_SIP_LISTEN / FRONTDESK_HTTP_LISTEN / FRONTDESK_DEMO_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/setup.sh
export FRONTDESK_CACHE="${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
DATA="${FRONTDESK_DEMO_DIR:-$PWD/demo-data}"
exec "$TARGET/debug/frontdesk" serve --dev \
  --data-dir "$DATA" \
  --practice tests/fixtures/callers/practice.toml \
  --bundle "$FRONTDESK_CACHE/bundles/dev" \
  --sip-listen "${FRONTDESK_SIP_LISTEN:-127.0.0.1:5080}" \
  --http-listen "${FRONTDESK_HTTP_LISTEN:-127.0.0.1:8080}" \
  "$@"
