# Sourced by the Makefile and scripts: puts the project's toolchain first on PATH.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SOLCX_BINARY_PATH="$root/.tools/solcx"
export PATH="$root/.tools/bin:$root/.venv/bin:$PATH"
export APE_DISABLE_TELEMETRY=1
