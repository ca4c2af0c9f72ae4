#!/usr/bin/env bash
# The classification adaptation view as a person sees it, with the real binary in tmux: a
# short FOMAML run (5-way 1-shot, Conv 4×16, 3 tracked tasks) on the real Omniglot background
# set, launched with `r`, then `A` once it finished; captured at 120×40, then at 80×24 after
# `tmux resize-window` (where long alphabet names are abbreviated, characters kept). Usage:
#   scripts/capture-class-fit.sh /path/to/omniglot [target/release/metalab] [OUT_DIR]
# (docs/captures/adaptation-classification-omniglot-*.txt were made with it.)
set -euo pipefail
data=$(realpath "${1:?usage: $0 OMNIGLOT_DIR [METALAB_BINARY] [OUT_DIR]}")
bin=$(realpath "${2:-target/release/metalab}")
out=$(realpath -m "${3:-docs/captures}")
work=$(mktemp -d)
mkdir -p "$out" "$work/project/experiments"
cat > "$work/project/experiments/omniglot-class-fit.ron" <<'RON'
Experiment(
    name: "omniglot-class-fit",
    seed: 1,
    family: Omniglot(root: "data/omniglot", ways: 5, shots: 1, queries: 5, image_size: 28,
        rotations: false, protocol: AlphabetSplit(train: 0.7, validation: 0.1)),
    model: Conv(blocks: 4, channels: 16, batch_norm: true),
    arms: [Arm(name: "fomaml", algorithm: Fomaml)],
    train: Train(iterations: 40, meta_batch: 4, meta_lr: 0.003, inner_steps: 1, inner_lr: 0.4),
    eval: Eval(every: 20, tasks: 20, periodic_tasks: 10, inner_steps: 5, inner_lr: 0.4, tracked_tasks: 3),
)
RON
sock=metalab-classfit-$$
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
tmux -L "$sock" new-session -d -s w -x 120 -y 40 "$bin --project $work/project --data $data"
cap() { tmux -L "$sock" capture-pane -p -t w > "$out/$1.txt"; }
sleep 3
tmux -L "$sock" send-keys -t w r
# Wait for the run to finish: its folder's run.json says so.
for _ in $(seq 600); do
    if grep -qs '"Finished"' "$work"/project/runs/*/run.json; then break; fi
    sleep 1
done
sleep 1
tmux -L "$sock" send-keys -t w A; sleep 1
cap adaptation-classification-omniglot-120x40
tmux -L "$sock" resize-window -t w -x 80 -y 24; sleep 1
cap adaptation-classification-omniglot-80x24
tmux -L "$sock" send-keys -t w q; sleep 0.3; tmux -L "$sock" send-keys -t w y
echo "captures in $out"
