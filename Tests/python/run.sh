#!/usr/bin/env bash
# Runs the Python tests against the INSTALLED luigi_node package.
# Usage: Tests/python/run.sh VENV_PYTHON [extra pytest args...]
# Exits non-zero on any failure, including pytest's exit 5 (no tests ran).
set -uo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 VENV_PYTHON [pytest args...]" >&2
    exit 2
fi
py=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 2
"$py" -m pytest -q -p no:cacheprovider "$here" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "Tests/python/run.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$rc"
