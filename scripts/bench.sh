#!/usr/bin/env bash
# Regenerates every published benchmark figure on the code in this tree:
# bench/STORE_RESULTS.md (the store vs otter, ristretto and an LRU),
# bench/PROPAGATION_RESULTS.md (Delete -> peer miss vs a bare PUBLISH, and
# group-commit throughput), bench/REPLAY_RESULTS.md (the replay log's cost)
# and bench/CLUSTER_RESULTS.md. Each report interleaves the implementations
# it compares round by round and prints medians with the spread; the load
# average is printed before each (the figures are ratios measured side by
# side, because this kind of machine is noisy). About 30 minutes on 2 cores.
#
#   bash scripts/bench.sh                 # all four
#   bash scripts/bench.sh store replay    # some of them
set -euo pipefail
cd "$(dirname "$0")/../bench"
unset GOWORK # the repository's go.work: the modules as they are in this tree
reports=("$@")
[ ${#reports[@]} -gt 0 ] || reports=(store propagation replay cluster)
for r in "${reports[@]}"; do
	echo "=== $r report; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	case $r in
	store) go test -run TestStoreReport -v -timeout 60m -args -report ;;
	propagation) go test -run TestPropagationReport -v -timeout 10m -args -report ;;
	replay) go test -run TestReplayReport -v -timeout 20m -args -report ;;
	cluster) go test -run TestClusterReport -v -timeout 20m -args -cluster ;;
	*) echo "bench.sh: unknown report $r (store, propagation, replay, cluster)" >&2; exit 2 ;;
	esac
done
echo "=== done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
