#!/usr/bin/env bash
# Installs schemathesis, pinned with its dependencies (tests/api-contract/requirements.txt),
# into a virtualenv under ~/.cache/herald/ the first time (about 15 s), and prints the path
# of its `schemathesis` executable; later runs only print it. The API contract test
# (tests/tests/api_contract.rs) runs that executable when HERALD_SCHEMATHESIS names it:
#
#     export HERALD_SCHEMATHESIS=$(bash tests/api-contract/install.sh)
#     cargo test -p herald-tests --test api_contract
#
# The same approach as deploy/validate.sh: the venv's name carries a digest of the
# requirements, so changing a pin installs afresh; the install is time-boxed and fails
# loudly when PyPI cannot be reached. HERALD_SCHEMATHESIS_VENV overrides the location.
set -euo pipefail
cd "$(dirname "$0")/../.."

requirements=tests/api-contract/requirements.txt
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "tests/api-contract/install.sh: $python is missing (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
stamp=$(sha256sum "$requirements" | cut -c1-12)
venv=${HERALD_SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/herald/schemathesis-venv-$stamp}

pip_install() {
    # $1: the python whose pip installs; the rest: extra pip arguments.
    local py=$1
    shift
    if ! timeout 600 "$py" -m pip install --disable-pip-version-check --no-input \
        --timeout 30 --retries 2 --quiet "$@" -r "$requirements" >&2; then
        echo "tests/api-contract/install.sh: FAILED to install schemathesis from PyPI ($requirements)" >&2
        exit 1
    fi
}

if [ -f "$venv/.installed" ] && "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
    bin=$venv/bin
elif rm -rf "$venv" && "$python" -m venv "$venv" 2>/dev/null; then
    echo "tests/api-contract/install.sh: installing schemathesis into $venv" >&2
    pip_install "$venv/bin/python"
    touch "$venv/.installed"
    bin=$venv/bin
else
    # No venv module (Debian without python3-venv): install for this user instead.
    rm -rf "$venv"
    echo "tests/api-contract/install.sh: '$python -m venv' is unavailable; installing with pip --user" >&2
    PIP_BREAK_SYSTEM_PACKAGES=1 pip_install "$python" --user
    bin=$("$python" -m site --user-base)/bin
fi
"$bin/schemathesis" --version >&2
echo "$bin/schemathesis"
