#!/usr/bin/env bash
# Runs the Python tests against the INSTALLED luigi_node package.
# Usage: Tests/python/run.sh VENV_PYTHON [extra pytest args...]
#
# Two pytest runs:
#   1. every module but test_client.py;
#   2. test_client.py (luigi_node.Client against a live cluster), under
#      "$LUIGI_CLUSTER_RUNNER" exec -- ... when LUIGI_CLUSTER_RUNNER names
#      luigi-cluster-demo (make test-python sets it): it starts 3 luigi-node
#      processes and puts LUIGI_ENDPOINTS, LUIGI_CLUSTER_ID and
#      LUIGI_CLUSTER_SECRET in the environment. Without a runner the module
#      runs as is: against the cluster the environment already names, or, with
#      none, it fails (LUIGI_CLIENT_TESTS_OPTIONAL=1 makes it skip instead).
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

"$py" -m pytest -q -p no:cacheprovider "$here" --ignore="$here/test_client.py" "$@"
rc=$?

client=("$py" -m pytest -q -p no:cacheprovider "$here/test_client.py" "$@")
if [ -n "${LUIGI_CLUSTER_RUNNER:-}" ]; then
    if [ ! -x "$LUIGI_CLUSTER_RUNNER" ]; then
        echo "Tests/python/run.sh: LUIGI_CLUSTER_RUNNER=$LUIGI_CLUSTER_RUNNER is not an executable (make node builds it)" >&2
        client_rc=2
    else
        echo "Tests/python/run.sh: test_client.py against a 3-node cluster ($LUIGI_CLUSTER_RUNNER exec)"
        "$LUIGI_CLUSTER_RUNNER" exec -- "${client[@]}"
        client_rc=$?
    fi
else
    echo "Tests/python/run.sh: LUIGI_CLUSTER_RUNNER is not set; test_client.py runs against" \
        "LUIGI_ENDPOINTS=${LUIGI_ENDPOINTS:-<unset>}" >&2
    "${client[@]}"
    client_rc=$?
fi
# pytest's exit 5 (no tests collected) is a failure; with extra arguments
# (say -k) only when neither run collected anything.
if [ $# -gt 0 ] && [ "$rc" -eq 5 ] && [ "$client_rc" -ne 5 ]; then
    rc=0
elif [ $# -gt 0 ] && [ "$client_rc" -eq 5 ] && [ "$rc" -ne 5 ]; then
    client_rc=0
fi
if [ "$rc" -eq 5 ] || [ "$client_rc" -eq 5 ]; then
    echo "Tests/python/run.sh: pytest collected no tests; that is a failure" >&2
fi
if [ "$rc" -ne 0 ]; then
    exit "$rc"
fi
exit "$client_rc"
