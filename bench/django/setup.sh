#!/bin/sh
# Sets up the sustained benchmark's Django app: a virtualenv in .venv with Django 4.2 and gunicorn
# (skipped when they are already installed), and bodies.json, written from ../bodies.mjs each time
# so the app answers the very bytes the Node upstream does.
# Start it (from this directory): .venv/bin/gunicorn -w 2 -k sync -b 127.0.0.1:PORT benchapp.wsgi
set -eu
cd "$(dirname "$0")"

if ! .venv/bin/python -c 'import django, gunicorn' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'Django>=4.2,<5' gunicorn
fi

node --input-type=module -e "
import {writeFileSync} from 'node:fs'
const {SMALL, ORDER_2K, ITEMS_4K} = await import('$PWD/../bodies.mjs')
writeFileSync('bodies.json.tmp', JSON.stringify({SMALL, ORDER_2K, ITEMS_4K}))
"
mv bodies.json.tmp bodies.json
