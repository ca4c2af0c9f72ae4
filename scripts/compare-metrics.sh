#!/usr/bin/env bash
# Train the same small experiments with two metalab binaries and check that every arm's numbers
# are bit-identical: metrics.jsonl without its wall-clock field `t`, fits.json,
# the checkpoint (less its `seconds` and the checksum that covers it),
# and run.json without what names the process (id, times, pid, host, threads, source path).
# One more experiment is stopped part-way with SIGTERM by OLD, and both binaries resume copies
# of that stopped run, so checkpoint state (Adam moments, multi-task cursor) is compared too.
# Last, each binary runs `metalab eval` on OLD's runs (evals.jsonl without `t_unix`).
#
#   scripts/compare-metrics.sh OLD_BINARY NEW_BINARY [WORK_DIR]
#
# NEW also trains with one worker thread, since results must not depend on the thread count.
# Exit status 0 when everything matches; each difference is printed.
set -euo pipefail

old=$(realpath "$1")
new=$(realpath "$2")
work=${3:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
echo "work dir: $work"

train() { # binary, runs folder, threads, experiment
    "$1" run "$4" --runs "$2" --threads "$3" -q >/dev/null
}

# A checkpoint's tensors and metadata, less its wall-clock `seconds` and the checksum over it.
checkpoint() {
    python3 - "$1" <<'PY'
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
meta = header.get("__metadata__", {})
meta.pop("seconds", None)
# The checksum covers the metadata, `seconds` included, so it differs whenever the wall clock
# does; the tensors' own digest below and every other metadata value are still compared.
meta.pop("fnv1a64", None)
print(json.dumps(header, sort_keys=True))
print(hashlib.sha256(b[8 + n:]).hexdigest())
PY
}

# One normalized file per arm and artifact, named <experiment>.<arm>.<artifact>.
normalize() { # runs folder, output folder
    mkdir -p "$2"
    for d in "$1"/*/; do
        local key
        key=$(jq -r '.experiment + "." + .arm' "$d/run.json")
        jq -c 'del(.t)' "$d/metrics.jsonl" >"$2/$key.metrics"
        jq -S 'del(.id, .started_unix, .updated_unix, .seconds, .pid, .host, .threads,
                   .metalab_version, .source, .device_detail, .resumed_at)' \
            "$d/run.json" >"$2/$key.run"
        [ -f "$d/fits.json" ] && cp "$d/fits.json" "$2/$key.fits"
        checkpoint "$d/checkpoint.safetensors" >"$2/$key.checkpoint"
    done
}

for exp in sinusoid synthetic-conv; do
    train "$old" "$work/old" 2 "$here/compare/$exp.ron"
    train "$new" "$work/new" 2 "$here/compare/$exp.ron"
    train "$new" "$work/new-1thread" 1 "$here/compare/$exp.ron"
done

# Stop OLD part-way (the stop is checkpointed), then resume copies with both binaries.
"$old" run "$here/compare/resume.ron" --runs "$work/stopped" --threads 2 -q >/dev/null &
pid=$!
sleep "${STOP_AFTER:-1}"
kill -TERM "$pid"
wait "$pid" || true
if ! jq -e 'select(.status == "Stopped")' "$work"/stopped/*/run.json >/dev/null; then
    echo "no arm was stopped part-way: set STOP_AFTER below ${STOP_AFTER:-1} seconds" >&2
    exit 2
fi
for who in old new; do
    cp -r "$work/stopped" "$work/resumed-$who"
    bin=$old
    [ "$who" = new ] && bin=$new
    for d in "$work/resumed-$who"/*/; do
        # An arm that finished before the signal has nothing to resume.
        [ "$(jq -r .status "$d/run.json")" = Stopped ] || continue
        "$bin" resume "$(basename "$d")" --runs "$work/resumed-$who" --threads 2 -q >/dev/null
    done
done

# `metalab eval` of OLD's runs under other protocols, by each binary. A protocol an arm refuses
# (a 4-way eval of a 3-way Meta-SGD) is refused by both, leaving no record to compare.
for who in old new; do
    cp -r "$work/old" "$work/eval-$who"
    bin=$old
    [ "$who" = new ] && bin=$new
    for d in "$work/eval-$who"/*/; do
        id=$(basename "$d")
        "$bin" eval "$id" --runs "$work/eval-$who" --tasks 6 --queries 3 --split validation \
            --inner-steps 3 --threads 2 >/dev/null
        "$bin" eval "$id" --runs "$work/eval-$who" --tasks 6 --ways 4 --fresh-head \
            --threads 2 >/dev/null 2>&1 || true
    done
    mkdir -p "$work/cmp/eval-$who"
    for d in "$work/eval-$who"/*/; do
        key=$(jq -r '.experiment + "." + .arm' "$d/run.json")
        jq -c 'del(.t_unix)' "$d/evals.jsonl" >"$work/cmp/eval-$who/$key.evals"
    done
done

normalize "$work/old" "$work/cmp/old"
normalize "$work/new" "$work/cmp/new"
normalize "$work/new-1thread" "$work/cmp/new-1thread"
normalize "$work/resumed-old" "$work/cmp/resumed-old"
normalize "$work/resumed-new" "$work/cmp/resumed-new"

status=0
compare() { # reference folder, other folder
    local n=0
    for f in "$work/cmp/$1"/*; do
        n=$((n + 1))
        if ! cmp -s "$f" "$work/cmp/$2/$(basename "$f")"; then
            echo "DIFFERS: $2/$(basename "$f")"
            status=1
        fi
    done
    echo "$1 vs $2: $n files compared"
}
compare old new
compare old new-1thread
compare resumed-old resumed-new
compare eval-old eval-new
stopped=$(jq -r 'select(.status == "Stopped") | .arm + "@" + (.iteration | tostring)' "$work"/stopped/*/run.json | tr '\n' ' ')
echo "resumed from: $stopped"
exit $status
