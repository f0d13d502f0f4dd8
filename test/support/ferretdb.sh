#!/usr/bin/env bash
# Builds FerretDB (a MongoDB-wire-compatible server, Apache-2.0) for the tests, once: the binary is cached
# in ~/.cache/audit-logs/ and found there by test/helpers/root-hooks.ts. Prints its path.
#
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds a binary that panics at start
# ("Invalid build/version/version.txt file content"): a build from the module cache lacks the version file
# its release process writes. So the module is fetched the same way (the Go module proxy), copied, given
# that file, and built as is.
set -euo pipefail
version=v1.24.2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/audit-logs/ferretdb-$version"
bin="$cache/ferretdb"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "ferretdb.sh: go is not installed" >&2; exit 1; }
mod=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[ -d "$mod" ] || { echo "ferretdb.sh: go mod download of FerretDB $version failed" >&2; exit 1; }
src=$(mktemp -d)
trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
cp -r "$mod/." "$src/"
chmod -R u+w "$src"
echo "$version" > "$src/build/version/version.txt"
mkdir -p "$cache"
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" ./cmd/ferretdb) >&2
mv "$bin.tmp" "$bin"
"$bin" --version >/dev/null
echo "$bin"
