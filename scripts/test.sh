#!/usr/bin/env bash
# One command: set up and run the whole test suite (ruff, mypy, pytest).
# TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test runs it on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
.venv/bin/ruff check app tests scripts migrations
.venv/bin/ruff format --check app tests scripts migrations
.venv/bin/mypy app
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
