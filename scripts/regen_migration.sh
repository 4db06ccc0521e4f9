#!/usr/bin/env bash
# Regenerate the single initial migration from the models.
# Only valid while no release has shipped; after that, add revisions with `flask db migrate`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d)
rm -f migrations/versions/*.py
CONTENTOPS_INSTANCE_PATH="$tmp" CONTENTOPS_DATABASE_URL="sqlite:///$tmp/regen.db" \
  "$PY" -m contentops db migrate -m "initial schema" --rev-id 0001 >/dev/null 2>&1
rm -rf "$tmp"
ls migrations/versions/
