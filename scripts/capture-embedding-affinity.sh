#!/usr/bin/env bash
# The task views (issue 21) as a person sees them, with the real binary in tmux: a short
# sinusoid-cavia run (its cavia5 arm) and a mixed-affinity run (its fomaml arm) trained by
# `metalab run`, then the workbench at 120×40 and 80×24: `2` Runs, `T` on the CAVIA run (the
# task-embedding scatter, coloured by amplitude, then `p`: by the phase's sine), Esc, ↓ to
# the mixed run, `H` (the affinity heatmap, gradient cosine, then `m`: lookahead). Then
# `metalab export` of both runs (the PNGs of the scatter and the heatmaps). Usage:
#   scripts/capture-embedding-affinity.sh [target/release/metalab] [OUT_DIR]
# (docs/captures/tmux_embedding_*, tmux_affinity_* and the export-*.png were made with it.)
set -euo pipefail
bin=$(realpath "${1:-target/release/metalab}")
out=$(realpath -m "${2:-docs/captures}")
root=$(realpath "$(dirname "$0")/..")
work=$(mktemp -d)
mkdir -p "$out" "$work/project/experiments"
cp "$root/experiments/sinusoid-cavia.ron" "$root/experiments/mixed-affinity.ron" \
    "$work/project/experiments/"
cd "$work/project"
"$bin" run experiments/mixed-affinity.ron --arm fomaml -q >/dev/null
"$bin" run experiments/sinusoid-cavia.ron --arm cavia5 --iterations 2000 -q >/dev/null
sock=metalab-tasks-$$
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
tmux -L "$sock" new-session -d -s w -x 120 -y 40 "$bin --project $work/project"
cap() {
    tmux -L "$sock" capture-pane -p -t w > "$out/$1.txt"
    tmux -L "$sock" capture-pane -p -e -t w > "$out/$1.ansi"
}
key() { tmux -L "$sock" send-keys -t w "$@"; sleep 0.7; }
size() { tmux -L "$sock" resize-window -t w -x "$1" -y "$2"; sleep 0.7; }
sleep 2
key 2
key T
cap tmux_embedding_amplitude_120x40
size 80 24
cap tmux_embedding_amplitude_80x24
key p
cap tmux_embedding_sin_phase_80x24
size 120 40
cap tmux_embedding_sin_phase_120x40
key Escape
key Down
key H
cap tmux_affinity_cosine_120x40
size 80 24
cap tmux_affinity_cosine_80x24
key m
cap tmux_affinity_lookahead_80x24
size 120 40
cap tmux_affinity_lookahead_120x40
key q
key q
runs=$(ls runs)
# shellcheck disable=SC2086
"$bin" export $runs --out "$work/exports" >/dev/null
for f in "$work"/exports/*-embedding.png; do cp "$f" "$out/export-embedding-cavia5.png"; done
for f in "$work"/exports/*-affinity.png; do cp "$f" "$out/export-affinity-fomaml.png"; done
for f in "$work"/exports/*-embedding.csv; do cp "$f" "$out/export-embedding-cavia5.csv"; done
echo "captures in $out"
