#!/usr/bin/env bash
# runs/rule-detector-far-judge.md: every detector on data/detect94 (far dashcam scenes), then P2 vs v11 per plate
set -euo pipefail
cd /work/main
R=runs/v11
run() { .venv/bin/thaiplate eval detector --images data/detect94/images/val --models "$2" > $R/det94-$1.json; }
run mP runs/p2/mP & run m11 $R/m11; wait
run m7 runs/p2/m7 & run v4 runs/p2/hist/v4; wait
run v3 runs/p2/hist/v3 & run v1 runs/p2/hist/v1; wait
.venv/bin/python $R/paired.py data/detect94 runs/p2/mP $R/m11 > $R/paired94-mP-m11.txt
date -u +"done %H:%M:%S"
