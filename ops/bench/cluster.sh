#!/usr/bin/env bash
# Benchmarks shoal on this machine in one run: a one-node cluster and a
# three-node cluster (node processes on loopback, 2+1 erasure coding),
# each mounted, beside the baselines of "shoal bench --baselines
# --fuse-floor" (a local directory, go-fuse's loopback, and that loopback
# without FUSE passthrough). Extra arguments go to "shoal bench",
# e.g. --workloads seq,small --seq-bytes 268435456.
#
#   bash ops/bench/cluster.sh
#
# Run it from anywhere as root (it mounts); it cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/shoal-bench.XXXXXX)
pids=()
cleanup() {
	for m in "$tmp/m1" "$tmp/m3"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/shoal" ./cmd/shoal
shoal="$tmp/shoal"
port=${SHOAL_BENCH_PORT:-17500}
node() { # name, port offset, extra flags...
	local name=$1 p=$((port + $2)); shift 2
	"$shoal" --log-level warn node --id "$name" --data "$tmp/$name" \
		--listen "127.0.0.1:$p" --raft "127.0.0.1:$((p + 1))" "$@" 2>>"$tmp/$name.log" &
	pids+=($!)
}
node one 0
node a 10 --ec 2+1
for _ in $(seq 100); do [ -s "$tmp/a/cluster-secret" ] && break; sleep 0.1; done
node b 20 --ec 2+1 --join "127.0.0.1:$((port + 10))" --secret-file "$tmp/a/cluster-secret"
node c 30 --ec 2+1 --join "127.0.0.1:$((port + 10))" --secret-file "$tmp/a/cluster-secret"
for _ in $(seq 300); do
	"$shoal" status --node "127.0.0.1:$((port + 10))" 2>/dev/null | grep -q '3 up' && break
	sleep 0.2
done
mkdir -p "$tmp/m1" "$tmp/m3"
"$shoal" --log-level warn mount --node "127.0.0.1:$port" "$tmp/m1" 2>>"$tmp/m1.log" &
pids+=($!)
"$shoal" --log-level warn mount --node "127.0.0.1:$((port + 10)),127.0.0.1:$((port + 20)),127.0.0.1:$((port + 30))" "$tmp/m3" 2>>"$tmp/m3.log" &
pids+=($!)
for m in "$tmp/m1" "$tmp/m3"; do
	for _ in $(seq 300); do mountpoint -q "$m" && break; sleep 0.1; done
	mountpoint -q "$m" || { echo "mount $m failed:"; cat "$m.log"; exit 1; }
done
"$shoal" bench --baselines --fuse-floor --labels one-node,three-node "$@" "$tmp/m1" "$tmp/m3"
"$shoal" status --node "127.0.0.1:$((port + 10))"
