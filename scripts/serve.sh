#!/usr/bin/env bash
# One command: set up, migrate, seed a demo district and serve the API on SQLite.
#   ./scripts/serve.sh            → http://127.0.0.1:8000/docs
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh runtime
.venv/bin/alembic upgrade head
.venv/bin/python -m app.cli seed-demo
exec .venv/bin/uvicorn --factory app.main:create_app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
