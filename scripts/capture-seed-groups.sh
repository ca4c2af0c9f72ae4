#!/usr/bin/env bash
# The Runs pane's seed groups as a person sees them, with the real binary in tmux: a tiny
# two-arm sinusoid experiment swept over seeds 1–3 by `metalab sweep`, then the workbench at
# 120×40 and 80×24: `2` Runs (each arm's three seeds one collapsed row), Enter on the first
# group (its seeds s1 s2 s3 under it). Usage:
#   scripts/capture-seed-groups.sh [target/release/metalab] [OUT_DIR]
# (docs/captures/tmux_seed_groups_*.txt were made with it.)
set -euo pipefail
bin=$(realpath "${1:-target/release/metalab}")
out=$(realpath -m "${2:-docs/captures}")
work=$(mktemp -d)
mkdir -p "$out" "$work/project/experiments"
cat > "$work/project/experiments/tiny-seeds.ron" <<'RON'
Experiment(
    name: "tiny-seeds",
    seed: 1,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [16]),
    arms: [
        Arm(name: "maml", algorithm: Fomaml),
        Arm(name: "reptile", algorithm: Reptile(epsilon: 0.5), inner_steps: 2),
    ],
    train: Train(iterations: 200, meta_batch: 4, log_every: 10),
    eval: Eval(every: 50, tasks: 50, periodic_tasks: 10, inner_steps: 2, tracked_tasks: 2),
)
RON
cat > "$work/project/experiments/tiny-seeds.sweep.ron" <<'RON'
Sweep(
    name: "tiny-seeds",
    experiment: "tiny-seeds.ron",
    sample: Grid,
    axes: [Axis(path: "seed", values: [1, 2, 3])],
)
RON
(cd "$work/project" && "$bin" sweep --threads 1 experiments/tiny-seeds.sweep.ron >/dev/null 2>&1)
sock=metalab-groups-$$
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
tmux -L "$sock" new-session -d -s w -x 120 -y 40 "$bin --project $work/project"
cap() { tmux -L "$sock" capture-pane -p -t w > "$out/$1.txt"; }
key() { tmux -L "$sock" send-keys -t w "$@"; sleep 0.5; }
sleep 2
key 2
cap tmux_seed_groups_collapsed_120x40
key Enter
cap tmux_seed_groups_expanded_120x40
tmux -L "$sock" resize-window -t w -x 80 -y 24; sleep 0.5
cap tmux_seed_groups_expanded_80x24
key Left
cap tmux_seed_groups_collapsed_80x24
key q
echo "captures in $out"
