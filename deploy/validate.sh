#!/usr/bin/env bash
# Validates deploy/ offline: Kubernetes manifests against Kubernetes' schemas (strict), the
# KEDA ScaledObject and the Kustomization field by field, compose.yaml against the Compose
# specification, the Dockerfile with hadolint, and the cross-checks of deploy/validate.py.
#
# Installs the pinned tools (deploy/validate-requirements.txt) into a virtualenv under
# ~/.cache/herald/ the first time (about 10 s), then runs in about a second. The install is
# time-boxed, and fails loudly when PyPI cannot be reached: this step never passes unchecked.
#
#     bash deploy/validate.sh
#
# HERALD_VALIDATE_VENV overrides the virtualenv's location.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

requirements=deploy/validate-requirements.txt
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "deploy/validate.sh: $python is missing (Debian: apt-get install python3)" >&2; exit 1; }
stamp=$(sha256sum "$requirements" | cut -c1-12)
venv=${HERALD_VALIDATE_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/herald/validate-venv-$stamp}

pip_install() {
    # $1: the python whose pip installs; the rest: extra pip arguments.
    local py=$1
    shift
    if ! timeout 600 "$py" -m pip install --disable-pip-version-check --no-input \
        --timeout 30 --retries 2 --quiet "$@" -r "$requirements"; then
        echo "deploy/validate.sh: FAILED to install the validation tools from PyPI ($requirements)" >&2
        exit 1
    fi
}

if [ -f "$venv/.installed" ] && "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
    bin=$venv/bin
    py=$venv/bin/python
elif rm -rf "$venv" && "$python" -m venv "$venv" 2>/dev/null; then
    echo "deploy/validate.sh: installing the validation tools into $venv"
    pip_install "$venv/bin/python"
    touch "$venv/.installed"
    bin=$venv/bin
    py=$venv/bin/python
else
    # No venv module (Debian without python3-venv): install for this user instead.
    rm -rf "$venv"
    echo "deploy/validate.sh: '$python -m venv' is unavailable; installing with pip --user"
    PIP_BREAK_SYSTEM_PACKAGES=1 pip_install "$python" --user
    bin=$("$python" -m site --user-base)/bin
    py=$python
fi

# kubectl, when this machine has it, also renders the kustomization (no cluster needed).
"$py" deploy/validate.py --hadolint "$bin/hadolint" --check-jsonschema "$bin/check-jsonschema" \
    --kubectl "$(command -v kubectl || true)"
echo "deploy/validate.sh: done in $((SECONDS - started)) s"
