#!/usr/bin/env bash
# Create the virtual environment of the benchmark's peer systems (FLAML and friends).
# FLAML is a peer we measure against, not a dependency of mlsmith: keep it out of the
# project's own environment.
#
#   bash benchmarks/setup_peers.sh [VENV_DIR]      (default: benchmarks/.peers-venv)
#
# Environment: PYTHON (interpreter to build the venv from, default python3),
#              FLAML_SPEC (default 'flaml[automl]>=2.8,<2.9', the version in BENCHMARK.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/.peers-venv}"
python="${PYTHON:-python3}"
flaml_spec="${FLAML_SPEC:-flaml[automl]>=2.8,<2.9}"
packages=("$flaml_spec" scikit-learn pandas pyarrow)

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# Plain `torch` from PyPI is a multi-GB CUDA build. Nothing above should pull it, but if a
# future release does, install the CPU build first so that the resolver keeps it.
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
"${pip[@]}" install --quiet --dry-run --report "$report" "${packages[@]}" 2>/dev/null || true
if grep -q '"name": *"torch"' "$report" 2>/dev/null; then
    echo "the peers pull torch: installing torch==2.13.0 first"
    "${pip[@]}" install torch==2.13.0
fi

"${pip[@]}" install "${packages[@]}"

"$venv/bin/python" - <<'PY'
from importlib.metadata import version

for name in ("flaml", "scikit-learn", "lightgbm", "xgboost", "pandas", "pyarrow"):
    try:
        print(f"{name:14s} {version(name)}")
    except Exception:  # noqa: BLE001
        print(f"{name:14s} (not installed)")
import flaml.automl  # noqa: F401  (fails loudly if the automl extra is incomplete)
PY

# Keep the venv and the work folder out of git (append only, never rewrite).
repo="$(cd "$here/.." && pwd)"
ignore="$repo/.gitignore"
touch "$ignore"
for line in "benchmarks/.peers-venv/" "benchmarks/work/"; do
    grep -qxF "$line" "$ignore" || printf '%s\n' "$line" >>"$ignore"
done
echo "peers ready: $venv/bin/python"
