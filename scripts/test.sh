#!/usr/bin/env bash
# Runs the tests of every module in this repository with the race detector.
# Integration tests start their own redis-server (and, for the relay, their own
# PostgreSQL) on free loopback ports, so both are installed here when missing
# (Debian/Ubuntu).
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
	echo "test.sh: redis-server not found; installing it with apt-get" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null ||
		{ echo "test.sh: could not install redis-server; install it (apt-get install redis-server) and rerun" >&2; exit 1; }
fi

# The PostgreSQL relay's tests (relay/postgres) start their own cluster with
# initdb and postgres from /usr/lib/postgresql/*/bin (or $PG_BIN, or PATH).
if [ -z "${PG_BIN:-}" ] && ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	echo "test.sh: PostgreSQL (initdb) not found; installing it with apt-get" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null ||
		{ echo "test.sh: could not install PostgreSQL; install it (apt-get install postgresql) and rerun" >&2; exit 1; }
fi

# Sharded Pub/Sub (SPUBLISH/SSUBSCRIBE) is tested and needs Redis 7 (Debian 12 and
# Ubuntu 24.04 ship it; Ubuntu 22.04 ships 6.0).
redis_version=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
if [ -n "$redis_version" ] && [ "${redis_version%%.*}" -lt 7 ]; then
	echo "test.sh: redis-server $redis_version is too old: the tests need redis-server 7 or later (https://redis.io/docs/latest/operate/oss_and_stack/install/install-redis/)" >&2
	exit 1
fi

# -race needs cgo and a C compiler.
if ! command -v "$(go env CC)" >/dev/null 2>&1; then
	echo "test.sh: no C compiler ($(go env CC)), which go test -race needs; installing gcc with apt-get" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc libc6-dev >/dev/null ||
		{ echo "test.sh: could not install gcc; install a C compiler (apt-get install gcc) and rerun" >&2; exit 1; }
fi
export CGO_ENABLED=1

# Every module is tested through the repository's go.work, which lists them
# all (the go.mod files carry no replace; scripts/release-check.sh proves
# that each installs as a user's build would fetch it).
unset GOWORK
root=$(pwd)
[ "$(go env GOWORK)" = "$root/go.work" ] || { echo "test.sh: go.work not in use (GOWORK=$(go env GOWORK))" >&2; exit 1; }
mapfile -t mods < <(find . -name go.mod -not -path './.git/*' -printf '%h\n' | sed "s|^\.|$root|" | sort)
mapfile -t used < <(go list -m -f '{{.Dir}}' | sort)
if [ "${mods[*]}" != "${used[*]}" ]; then
	echo "test.sh: go.work must use every module; go.mod directories: ${mods[*]#$root}; go.work uses: ${used[*]#$root}" >&2
	exit 1
fi
failed=()
for dir in "${mods[@]}"; do
	echo "=== module ${dir#$root/}"
	if ! (cd "$dir" && go test -race -count=1 -timeout 8m ./...); then
		failed+=("${dir#$root/}")
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
