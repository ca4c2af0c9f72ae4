#!/usr/bin/env bash
# `metalab bench` for two binaries in one alternating run (OLD, NEW, OLD, NEW, …), so a shared
# machine's load falls on both alike. Prints each workload's median seconds per meta-iteration
# per binary (the median over rounds of bench's own medians) and the ratio NEW / OLD, with
# `uptime` before and after: quote the load with the figures.
#
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY [ROUNDS=3] [OUT_DIR]
set -euo pipefail

old=$(realpath "$1")
new=$(realpath "$2")
rounds=${3:-3}
out=${4:-$(mktemp -d)}
mkdir -p "$out"
echo "before: $(uptime)"
for r in $(seq 1 "$rounds"); do
    "$old" bench --json >"$out/old-$r.json"
    "$new" bench --json >"$out/new-$r.json"
done
echo "after:  $(uptime)"
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def medians(who):
    per = {}
    for r in range(1, rounds + 1):
        for w in json.load(open(f"{out}/{who}-{r}.json"))["workloads"]:
            per.setdefault(w["workload"], []).append(w["median_s"])
    return {k: statistics.median(v) for k, v in per.items()}
old, new = medians("old"), medians("new")
print(f"{'workload':24} {'old s':>10} {'new s':>10} {'new/old':>8}")
for k in old:
    print(f"{k:24} {old[k]:10.5f} {new[k]:10.5f} {new[k] / old[k]:8.3f}")
PY
