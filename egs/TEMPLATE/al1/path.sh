# shellcheck shell=bash
# Environment of the recipe: the repository root and its virtual environment.
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
export MAIN_ROOT
venv=${VENV:-${MAIN_ROOT}/.venv}
if [ -f "${venv}/bin/activate" ]; then
    # shellcheck disable=SC1091
    . "${venv}/bin/activate"
fi
if ! python -c "import espnet_lp" 2>/dev/null; then
    echo "espnet_lp is not importable: run ${MAIN_ROOT}/tools/install.sh (or pip install -e ${MAIN_ROOT})" >&2
    exit 1
fi
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
# OMP_NUM_THREADS: left to the job launcher (CPU cores / jobs running at once) unless set.
