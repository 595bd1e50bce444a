#!/bin/sh
# Creates the Python virtual environment the differential normalisation test needs
# (Google's libphonenumber port `phonenumbers` and `email-validator`, pinned in
# tests/requirements.txt). Idempotent: quick when the venv is already there and the pins have
# not changed. Needs python3 with the venv module and network access to PyPI the first time.
# Usage: tests/setup.sh            (from anywhere; the venv goes to <repo>/.venv-ci)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/tests/requirements.txt"
venv="$root/.venv-ci"
stamp="$venv/.requirements.sha256"
if [ ! -f "$req" ]; then
    echo "setup.sh: $req not found" >&2
    exit 1
fi
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "setup.sh: $venv ready"
