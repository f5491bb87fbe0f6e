#!/usr/bin/env bash
# Runs the tests of every module in this repository with the race detector.
# Integration tests start their own redis-server on free loopback ports, so
# redis-server is installed here when it is missing (Debian/Ubuntu).
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
	echo "test.sh: redis-server not found; installing it with apt-get" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null ||
		{ echo "test.sh: could not install redis-server; install it (apt-get install redis-server) and rerun" >&2; exit 1; }
fi

# Each module is tested on its own (no go.work), as a user of it would build it.
export GOWORK=off
failed=()
for mod in $(find . -name go.mod -not -path './.git/*' | sort); do
	dir=$(dirname "$mod")
	echo "=== module $dir"
	if ! (cd "$dir" && go test -race -count=1 -timeout 8m ./...); then
		failed+=("$dir")
	fi
done
echo "=== release check (scripts/release-check.sh)"
if ! bash scripts/release-check.sh; then
	failed+=("release-check")
fi
if [ ${#failed[@]} -gt 0 ]; then
	echo "test.sh: FAILED modules: ${failed[*]}" >&2
	exit 1
fi
echo "test.sh: all modules passed"
