#!/usr/bin/env bash
# Two modelc binaries side by side on one spec: ROUNDS alternating `modelc bench` runs of each
# (old, new, old, new, ...), so both see the same machine, then the medians, their ratio and
# every rate. For measuring a change against the binary before it.
#
# Usage (from the project root): benches/ab.sh OLD NEW ROUNDS SPEC BATCH infer|train [THREADS]
#   e.g. cp target/release/modelc /tmp/modelc-old; (change, cargo build --release)
#        benches/ab.sh /tmp/modelc-old target/release/modelc 9 specs/seed_cnn.model 64 infer
# ITERATIONS=N sets `modelc bench --iterations` (default 20); runs of a few tenths of a
# second are steadier on a shared host than the default's tens of milliseconds.
set -euo pipefail
if [ $# -lt 6 ]; then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
old=$1 new=$2 rounds=$3 spec=$4 batch=$5 mode=$6 threads=${7:-2}
iterations=${ITERATIONS:-20}
rate() {
    "$1" bench "$spec" --batch "$batch" --mode "$mode" --threads "$threads" \
        --iterations "$iterations" --format json |
        python3 -c "import json, sys; print(json.load(sys.stdin)['samples_per_sec'])"
}
for _ in $(seq "$rounds"); do
    echo "old $(rate "$old")"
    echo "new $(rate "$new")"
done | python3 -c "
import statistics, sys
rates = {}
for line in sys.stdin:
    which, value = line.split()
    rates.setdefault(which, []).append(float(value))
old, new = statistics.median(rates['old']), statistics.median(rates['new'])
print(f'old {old:.0f} new {new:.0f} samples/s, new/old {new / old:.3f}')
print('old', [round(v) for v in rates['old']])
print('new', [round(v) for v in rates['new']])
"
