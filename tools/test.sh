#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the whole suite.
# Extra arguments go to pytest (e.g. tools/test.sh tests/unit -k filters).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup.sh"
cd "$root"
if [ "${CI:-}" = "true" ]; then
    export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
fi
exec "$root/.venv/bin/python" -m pytest "$@"
