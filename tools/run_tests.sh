#!/usr/bin/env bash
# The test suite, from a fresh clone: install everything, then run pytest.
#
# Usage:
#   bash tools/run_tests.sh                 # whole suite
#   bash tools/run_tests.sh -k bad_input    # extra arguments go to pytest
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "${repo_root}/tools/install.sh" --with_slurm --with_label_studio
cd "${repo_root}"
exec "${VENV:-${repo_root}/.venv}/bin/python" -m pytest tests "$@"
