#!/usr/bin/env bash
# release-check.sh: proves that a user outside this repository can install
# the modules as the go.mod files name them. It
#   1. reads which versions of this repository's modules the nested go.mod
#      files require (each must be a release version such as v0.1.0, never a
#      pseudo-version: a consumer's build ignores `replace`);
#   2. builds a file-based module proxy (GOPROXY=file://...) holding each of
#      those modules at that version, zipped from the working tree with the
#      layout `go mod download` expects (<path>@<version>/..., without the
#      files of nested modules);
#   3. in temporary modules with no replace and an empty module cache, as a
#      user would: `go get`s the Redis driver and builds the seed's usage
#      program, taken unchanged from the seed document (../shared/seed/...
#      next to the clone; without it, the same block in the driver's
#      README); builds a program that uses metrics/prometheus and
#      metrics/otel; and `go install`s cmd/invacache@<version>;
#   4. checks that every go.mod has no replace and that `go mod tidy`
#      would change nothing but the lines of this repository's own
#      (unpublished) modules.
# Modules no go.mod requires (metrics/otel, cmd/invacache) are served at the
# version the others require of the root module.
# Other dependencies come from the local module cache, then the normal
# GOPROXY; checksum-database lookups are skipped for this repository's
# modules only (GONOSUMDB), which are not published yet.
# See RELEASING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
prefix=github.com/halilbulentorhon/invacache-go
seed_doc=${SEED_DOC:-../shared/seed/000_c12965d002000a63.txt}
fallback_doc=invalidation/drivers/redis/README.md

fail() { echo "release-check: $*" >&2; exit 1; }

tmp=$(mktemp -d)
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

export GOWORK=off GOTOOLCHAIN=local
real_cache=$(go env GOMODCACHE)
upstream=$(go env GOPROXY)

# Modules of this repository: path -> directory.
declare -A dir_of
mapfile -t gomods < <(find . -name go.mod -not -path './.git/*' | sed 's|^\./||' | sort)
for gomod in "${gomods[@]}"; do
	path=$(awk '$1 == "module" { print $2; exit }' "$gomod")
	dir_of[$path]=$(dirname "$gomod")
done

# Versions of them that the go.mod files require: path -> version.
declare -A ver_of
for gomod in "${gomods[@]}"; do
	while read -r path ver; do
		[ -n "${dir_of[$path]:-}" ] || fail "$gomod requires $path, which is not a module of this repository"
		[[ $ver =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
			fail "$gomod requires $path $ver: require a release version (e.g. v0.1.0) and keep the replace for development"
		if [ -n "${ver_of[$path]:-}" ] && [ "${ver_of[$path]}" != "$ver" ]; then
			fail "$gomod requires $path $ver, another go.mod ${ver_of[$path]}: require one version"
		fi
		ver_of[$path]=$ver
	done < <(sed -e 's|//.*||' -e 's/^require[[:space:]]*//' "$gomod" | grep -v '=>' |
		awk -v p="$prefix" '($1 == p || index($1, p "/") == 1) && $2 ~ /^v/ { print $1, $2 }')
done
driver=$prefix/invalidation/drivers/redis
[ -n "${ver_of[$prefix]:-}" ] || fail "no go.mod requires $prefix"
[ -n "${ver_of[$driver]:-}" ] || fail "no go.mod requires $driver (example/go.mod should)"
for gomod in "${gomods[@]}"; do
	grep -q '^[[:space:]]*replace\b' "$gomod" && fail "$gomod has a replace directive: a user's go install refuses it; go.work serves development"
done
for path in "${!dir_of[@]}"; do
	[ -n "${ver_of[$path]:-}" ] || ver_of[$path]=${ver_of[$prefix]}
done

# escape applies the module proxy's case encoding (Upper -> !upper).
escape() { sed 's/[A-Z]/!\L&/g' <<<"$1"; }

# files_of lists the files of the module in $1 relative to it: tracked and
# untracked-but-not-ignored files of the working tree, without the files of
# modules nested in it.
files_of() {
	local dir=$1 nested=() f n skip
	for n in "${dir_of[@]}"; do
		if [ "$n" != "$dir" ] && { [ "$dir" = . ] || [[ $n == "$dir"/* ]]; }; then
			nested+=("$n/")
		fi
	done
	git ls-files -co --exclude-standard -- "$dir" | while read -r f; do
		skip=
		for n in "${nested[@]}"; do
			[[ $f == "$n"* ]] && { skip=1; break; }
		done
		[ -n "$skip" ] || [ ! -f "$f" ] || { [ "$dir" = . ] && echo "$f" || echo "${f#"$dir"/}"; }
	done
}

proxy=$tmp/proxy
for path in "${!ver_of[@]}"; do
	ver=${ver_of[$path]} dir=${dir_of[$path]}
	at=$proxy/$(escape "$path")/@v
	stage=$tmp/stage/$(escape "$path")
	mkdir -p "$at" "$stage/$path@$ver"
	n=0
	while read -r f; do
		mkdir -p "$(dirname "$stage/$path@$ver/$f")"
		cp "$dir/$f" "$stage/$path@$ver/$f"
		n=$((n + 1))
	done < <(files_of "$dir")
	[ -f "$stage/$path@$ver/go.mod" ] || fail "$path: no go.mod in the module's files"
	(cd "$stage" && zip -qrXD "$at/$ver.zip" "$path@$ver")
	cp "$dir/go.mod" "$at/$ver.mod"
	printf '{"Version":"%s","Time":"2026-01-01T00:00:00Z"}\n' "$ver" >"$at/$ver.info"
	echo "$ver" >"$at/list"
	echo "release-check: proxy serves $path $ver ($n files from ./$dir)"
done

# The seed's usage program, unchanged: the first go block after "## Usage".
doc=$seed_doc
[ -f "$doc" ] || doc=$fallback_doc
consumer=$tmp/consumer
mkdir -p "$consumer"
awk '/^## Usage/ { u = 1; next } u && /^```go/ { g = 1; next } g && /^```/ { exit } g { print }' "$doc" >"$consumer/main.go"
grep -q '^package main' "$consumer/main.go" || fail "no usage program found in $doc"
echo "release-check: usage program from $doc ($(wc -l <"$consumer/main.go") lines)"

# Checksums of the other dependencies, as this repository pins them.
cat $(printf '%s\n' "${gomods[@]}" | sed 's/go.mod$/go.sum/') 2>/dev/null | sort -u >"$tmp/go.sum"
cp "$tmp/go.sum" "$consumer/go.sum"

export GOMODCACHE=$tmp/modcache GOFLAGS=-mod=mod GONOSUMDB=$prefix GOPRIVATE= GONOPROXY=
export GOPROXY="file://$proxy,file://$real_cache/cache/download,$upstream"

# go mod tidy would change nothing but this repository's own lines (their
# checksums exist only once the versions are tagged).
for gomod in "${gomods[@]}"; do
	d=$(dirname "$gomod")
	# Lines added or removed, not merely moved, other than this repository's.
	diff=$(cd "$d" && GOFLAGS= go mod tidy -diff 2>&1 | grep '^[-+][^-+]' | grep -v "^[-+][[:space:]]*$prefix[/ ]" |
		awk '{ l = substr($0, 2); n[l] += (substr($0, 1, 1) == "+") ? 1 : -1 } END { for (l in n) if (n[l] != 0) print (n[l] > 0 ? "+" : "-") l }' || true)
	if [ -n "$diff" ] && [ -n "${RELEASE_CHECK_FIX_SUMS:-}" ] && ! grep -qv '^+[^ ]* [^ ]* h1:' <<<"$diff"; then
		# Only go.sum lines missing: add them (RELEASE_CHECK_FIX_SUMS=1).
		{ cat "$d/go.sum"; sed 's/^+//' <<<"$diff"; } | sort -u >"$tmp/sum" && cp "$tmp/sum" "$d/go.sum"
		echo "release-check: $d/go.sum: added $(wc -l <<<"$diff") lines"
		diff=
	fi
	[ -z "$diff" ] || fail "$d: go mod tidy would change go.mod/go.sum (RELEASE_CHECK_FIX_SUMS=1 adds missing go.sum lines):
$diff"
done
echo "release-check: go.mod/go.sum of every module tidy (but for this repository's unpublished versions)"

cd "$consumer"
go mod init example.com/releasecheck >/dev/null 2>&1
grep -q '^replace' go.mod && fail "the consumer module must have no replace"
go get "$driver@${ver_of[$driver]}" || fail "go get $driver@${ver_of[$driver]} failed"
go build -o /dev/null . || fail "the seed's usage program does not build against the released modules"
got=$(go list -m -f '{{.Version}}' "$prefix")
[ "$got" = "${ver_of[$prefix]}" ] || fail "the consumer built with $prefix $got, want ${ver_of[$prefix]}"
echo "release-check: OK: a module outside the repository installs $driver ${ver_of[$driver]} (with $prefix $got) and builds the seed's program"

# A program exporting a cache's statistics to Prometheus and OpenTelemetry.
metrics=$tmp/metrics
mkdir -p "$metrics" && cp "$tmp/go.sum" "$metrics/go.sum"
cat >"$metrics/main.go" <<'GO'
package main

import (
	"context"
	"log"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	invaotel "github.com/halilbulentorhon/invacache-go/metrics/otel"
	invaprom "github.com/halilbulentorhon/invacache-go/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func main() {
	users, err := invacache.NewCache[string](config.InvaCacheConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close()
	col, err := invaprom.NewCollector(invaprom.Cache{Name: "users", Stats: users.Stats})
	if err != nil {
		log.Fatal(err)
	}
	prometheus.NewRegistry().MustRegister(col)
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	reg, err := invaotel.Register(mp, invaotel.Cache{Name: "users", Stats: users.Stats})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()
}
GO
cd "$metrics"
go mod init example.com/releasecheckmetrics >/dev/null 2>&1
for m in metrics/prometheus metrics/otel; do
	go get "$prefix/$m@${ver_of[$prefix/$m]}" || fail "go get $prefix/$m@${ver_of[$prefix/$m]} failed"
done
go mod tidy >/dev/null 2>&1 || fail "go mod tidy failed in the metrics program's module"
go build -o /dev/null . || fail "a program using metrics/prometheus and metrics/otel does not build against the released modules"
echo "release-check: OK: a program using metrics/prometheus and metrics/otel builds"

# The CLI, installed as its README says.
cli=$prefix/cmd/invacache
cd "$tmp"
GOBIN=$tmp/bin GOFLAGS= go install "$cli@${ver_of[$cli]}" || fail "go install $cli@${ver_of[$cli]} failed"
"$tmp/bin/invacache" help >/dev/null 2>&1 || "$tmp/bin/invacache" --help >/dev/null 2>&1 ||
	fail "the installed invacache does not run"
echo "release-check: OK: go install $cli@${ver_of[$cli]}"
