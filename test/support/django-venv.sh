#!/usr/bin/env bash
# Makes the Python virtual environments the Django tests (test/e2e/django.test.ts) run the scaffolded app
# in, once: one with Django 4.2 LTS and one with Django 5.2 LTS, each with gunicorn, from PyPI, cached in
# ~/.cache/audit-logs/ (XDG_CACHE_HOME) where the test finds them. A venv that already imports both at
# the right version is left as it is; a half-made one is made again. Prints each venv's path.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/audit-logs"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "django-venv.sh: $python is not installed" >&2; exit 1; }
mkdir -p "$cache"
for series in 4.2 5.2; do
  venv="$cache/django-$series"
  check="import django, gunicorn, sys; sys.exit(0 if django.__version__.startswith('$series.') else 1)"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then echo "$venv"; continue; fi
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "Django~=$series.0" gunicorn >&2 || { rm -rf "$venv"; exit 1; }
  "$venv/bin/python" -c "$check" || { echo "django-venv.sh: Django $series is not importable in $venv" >&2; exit 1; }
  echo "$venv"
done
