#!/usr/bin/env bash
# Set up everything espnet-lp needs: a Python virtual environment with the pinned dependency set,
# the package itself (editable), test tools, and the Debian packages of the synthetic-data path.
#
# Usage:
#   tools/install.sh                     # venv in ./.venv
#   tools/install.sh --venv /opt/lp-env  # elsewhere (or VENV=/opt/lp-env tools/install.sh)
#   tools/install.sh --no_system         # never call apt-get; only report what is missing
#   tools/install.sh --with_slurm        # also Debian's slurm-wlm and munge (the tests start a
#                                        # private single-node Slurm; tools/run_tests.sh asks)
#   tools/install.sh --with_label_studio # also Label Studio in its own venv ($LABEL_STUDIO_VENV,
#                                        # default ~/.cache/espnet_lp/label_studio_venv: outside
#                                        # the checkout, reused by later clones) and Debian's
#                                        # chromium (screenshots); tools/run_tests.sh asks
#
# Idempotent: a second run with nothing to do finishes in a few seconds (a stamp file records what
# was installed; it is rewritten only after a successful install). A Label Studio install that
# fails is reported and skipped (its tests are skipped, saying why); nothing else is.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}

# pip warns once per package about find-links locations that some machines configure but do
# not have; keep real errors, drop that noise.
quiet_pip() { grep -v "is ignored: it is neither a file nor a directory" || true; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-${repo_root}/.venv}
python=${PYTHON:-python3}
no_system=false
with_slurm=false
with_label_studio=false
label_studio="label-studio==1.23.2"   # its pins clash with ESPnet's: a venv of its own
label_studio_venv=${LABEL_STUDIO_VENV:-${XDG_CACHE_HOME:-${HOME}/.cache}/espnet_lp/label_studio_venv}

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) venv=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --no_system) no_system=true; shift ;;
        --with_slurm) with_slurm=true; shift ;;
        --with_label_studio) with_label_studio=true; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "Unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

# The working dependency set (torch 2.13 conflicts with espnet's setuptools pin and torchaudio;
# espnet needs einops without declaring it).
python_deps=(
    "torch==2.11.0" "torchaudio==2.11.0" "espnet==202511" "espnet_model_zoo"
    "jiwer" "matplotlib" "pyyaml" "einops" "sentencepiece" "soundfile" "scipy" "snownlp" "wheel"
)
test_deps=("pytest" "pytest-timeout" "flake8")
apt_pkgs=(espeak-ng flac fortunes fortunes-min)
if ${with_slurm}; then
    apt_pkgs+=(slurm-wlm munge)
fi
if ${with_label_studio}; then
    apt_pkgs+=(chromium)
fi

# ---- Debian packages of the data path -------------------------------------------------------
missing=()
for pkg in "${apt_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("${pkg}")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! ${no_system} && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        log "Installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        log "Missing Debian packages: ${missing[*]}"
        log "Install them with: sudo apt-get install ${missing[*]}"
        log "(espeak-ng and fortunes are needed only to generate the synthetic demo corpus;" \
            "slurm-wlm and munge only for the Slurm tests, chromium only for the Label Studio" \
            "screenshot; those tests are skipped without them)"
    fi
fi

# ---- Python virtual environment --------------------------------------------------------------
if [ ! -x "${venv}/bin/python" ]; then
    log "Creating virtual environment ${venv}"
    "${python}" -m venv "${venv}"
fi
stamp="${venv}/.espnet_lp_install_stamp"
want=$(printf '%s\n' "${python_deps[@]}" "${test_deps[@]}" | cat - "${repo_root}/setup.cfg" | sha1sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ] \
        && "${venv}/bin/python" -c "import espnet_lp" 2>/dev/null; then
    log "Python environment ${venv} is up to date"
else
    log "Installing Python dependencies into ${venv} (first time: ~2 minutes, ~5 GB)"
    # pip >= 25 rejects a transitive dependency of espnet (ci_sdr declares a git URL extra).
    "${venv}/bin/pip" install -q "pip>=23,<25" 2>&1 | quiet_pip
    "${venv}/bin/pip" install -q "${python_deps[@]}" "${test_deps[@]}" 2>&1 | quiet_pip
    "${venv}/bin/pip" install -q --no-deps --no-build-isolation -e "${repo_root}" 2>&1 | quiet_pip
    echo "${want}" > "${stamp}"
fi
# ---- Label Studio, in a virtual environment of its own ---------------------------------------
if ${with_label_studio}; then
    ls_stamp="${label_studio_venv}/.espnet_lp_install_stamp"
    if [ -x "${label_studio_venv}/bin/label-studio" ] && [ -f "${ls_stamp}" ] \
            && [ "$(cat "${ls_stamp}")" = "${label_studio}" ]; then
        log "Label Studio (${label_studio}) is installed in ${label_studio_venv}"
    else
        log "Installing ${label_studio} into ${label_studio_venv} (first time: ~3 minutes, ~1 GB)"
        rm -rf "${label_studio_venv}"
        if { "${python}" -m venv "${label_studio_venv}" \
                && "${label_studio_venv}/bin/pip" install -q "pip>=23,<25" \
                && "${label_studio_venv}/bin/pip" install -q "${label_studio}"; } 2>&1 | quiet_pip; then
            echo "${label_studio}" > "${ls_stamp}"
        else
            log "Could not install ${label_studio} (see above): the Label Studio tests will be" \
                "skipped, saying so"
            rm -rf "${label_studio_venv}"
        fi
    fi
fi
log "Done. Activate with: source ${venv}/bin/activate"
