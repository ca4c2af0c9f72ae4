#!/usr/bin/env bash
# The freeze check a person would make, with the real binary in tmux at 120×40: open the
# workbench on a copy of experiments/ with an Omniglot folder, read the experiment files in a
# loop from another shell, launch omniglot-protonet and capture the screen as it loads and
# trains. Prints where the captures are. Usage:
#   scripts/capture-omniglot-launch.sh /path/to/omniglot [target/release/metalab]
# (docs/captures/omniglot-launch-while-reading.txt was made with it.)
set -euo pipefail
data=${1:?usage: $0 OMNIGLOT_DIR [METALAB_BINARY]}
bin=$(realpath "${2:-target/release/metalab}")
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
out=$work/captures
mkdir -p "$out" "$work/project"
cp -r "$here/experiments" "$work/project/"
sock=metalab-capture-$$
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; }
trap cleanup EXIT
tmux -L "$sock" new-session -d -s w -x 120 -y 40 "$bin --project $work/project --data $data"
# The other shell: read every experiment file, over and over, until told to stop.
( n=0; trap 'echo $n > $out/reads; exit' TERM
  while :; do cat "$work"/project/experiments/*.ron >/dev/null; n=$((n+1)); done ) &
reader=$!
cap() { tmux -L "$sock" capture-pane -p -t w > "$out/$1.txt"; }
sleep 3; cap 1-list
# omniglot-protonet is the 11th file in name order.
for _ in $(seq 10); do tmux -L "$sock" send-keys -t w Down; sleep 0.05; done
cap 2-selected
start=$(date +%s%N)
tmux -L "$sock" send-keys -t w r
for t in 500 1000 1500 2000 3000 5000 10000 15000 20000; do
    while (( ($(date +%s%N) - start) / 1000000 < t )); do sleep 0.02; done
    cap "3-monitor-${t}ms"
done
tmux -L "$sock" send-keys -t w '?'; sleep 0.3; cap 4-help
tmux -L "$sock" send-keys -t w Escape; sleep 0.2
pid=$(tmux -L "$sock" display-message -p -t w '#{pane_pid}')
echo "workbench cpu % over its life: $(ps -o %cpu= -p "$pid" || echo gone)" > "$out/cpu"
tmux -L "$sock" send-keys -t w q; sleep 0.3; tmux -L "$sock" send-keys -t w y; sleep 5
kill "$reader"; wait "$reader" 2>/dev/null || true
echo "reads of experiments/*.ron: $(cat "$out/reads") passes"
echo "captures in $out"
