#!/usr/bin/env bash
# The Omniglot figures of docs/results.md, from the shipped experiments, on held-out alphabets of
# images_background (AlphabetSplit): ProtoNets with augmentation (5-way and 20-way 1-shot, and
# Lake-style within-alphabet 20-way one-shot error), and second-order MAML 5-way 1-shot.
# Each training is about an hour on 2 cores: run it on quiet cores and quote the load.
#
#   scripts/omniglot-figures.sh DATA_DIR [RUNS_DIR=runs] [METALAB=target/release/metalab]
set -euo pipefail

data=$(realpath "$1")
runs=${2:-runs}
metalab=${3:-target/release/metalab}
here=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# The run folder a `metalab run` just made (its last line names it).
train() { # experiment file, extra args…
    local file=$1
    shift
    log "load: $(cut -d' ' -f1-3 /proc/loadavg); training $file $*"
    local start=$SECONDS
    "$metalab" run "$file" --data "$data" --runs "$runs" -q "$@" | tee >(cat >&2) | tail -1 | tr -d ' '
    log "trained in $(((SECONDS - start) / 60)) min"
}

evaluate() { # run folder, eval args…
    local run=$1
    shift
    log "eval $(basename "$run") $*"
    "$metalab" eval "$run" --data "$data" --runs "$runs" --tasks 600 "$@"
}

proto=$(train "$here/experiments/omniglot-protonet-60way-augment.ron")
evaluate "$proto" --ways 5 --shots 1 --queries 15
evaluate "$proto" --ways 20 --shots 1 --queries 5
evaluate "$proto" --ways 20 --shots 1 --queries 1 --within-alphabet

# The shipped MAML file uses the official split; without images_evaluation/ train a copy that
# holds out whole alphabets of images_background instead.
file="$here/experiments/omniglot-5way-1shot.ron"
if [ ! -d "$data/images_evaluation" ]; then
    tmp=$(mktemp --suffix .ron)
    sed 's/protocol: BackgroundEvaluation/protocol: AlphabetSplit(train: 0.7, validation: 0.1)/' \
        "$file" >"$tmp"
    file=$tmp
fi
maml=$(train "$file" --arm maml --iterations 2500)
evaluate "$maml" --ways 5 --shots 1 --queries 15
