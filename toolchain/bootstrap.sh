#!/usr/bin/env bash
# Installs everything the project needs, idempotently: a Python venv with pinned packages, the npm toolchain
# (solc-js, anvil, OpenZeppelin), and a `solc-v0.8.28` stand-in executable that ape-solidity and slither accept.
# A second run only checks stamps and returns in about a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  log "Python 3.11+ is required (found: $("$python_bin" --version 2>&1))"; exit 1
fi
command -v node >/dev/null || { log "node (>= 18) is required for solc-js and anvil"; exit 1; }
command -v npm >/dev/null || { log "npm is required"; exit 1; }

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# 0. PostgreSQL server binaries (initdb, pg_ctl): the relayer's PostgreSQL tests start a throw-away server of
#    their own on loopback (tests/postgres_server.py). Debian's package, installed only when they are missing.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing PostgreSQL (Debian package postgresql) for the relayer's PostgreSQL tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 postgresql >/dev/null
  else
    log "PostgreSQL binaries not found and cannot apt-get them: install 'postgresql' or set PB_SKIP_POSTGRES=1"
  fi
fi

# 1. Python packages, pinned.
py_hash="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$python_bin" -m venv .venv
fi
if ! stamp_ok .venv/.pb-stamp "$py_hash"; then
  log "installing pinned Python packages (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-deps -e .
  echo "$py_hash" > .venv/.pb-stamp
fi

# 2. npm toolchain, pinned by package-lock.json.
npm_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if ! stamp_ok node_modules/.pb-stamp "$npm_hash"; then
  log "installing npm toolchain (solc-js, anvil, OpenZeppelin)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_hash" > node_modules/.pb-stamp
fi

# 3. Executables where Ape and slither look for them.
mkdir -p .tools/solcx .tools/bin
solc_version="$(node -p "require('./node_modules/solc/package.json').version")"
cat > ".tools/solcx/solc-v${solc_version}" <<SH
#!/usr/bin/env bash
exec node "$root/toolchain/solc-standin.js" "\$@"
SH
chmod +x ".tools/solcx/solc-v${solc_version}"
ln -sf "../solcx/solc-v${solc_version}" .tools/bin/solc
ln -sf "$root/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" .tools/bin/anvil
chmod +x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
log "ready: python $(.venv/bin/python --version | cut -d' ' -f2), solc ${solc_version} (solc-js), $(.tools/bin/anvil --version | head -1)"
