#!/usr/bin/env bash
# Read AFTER the decision on runs/rule-detector-p2.md: the real street frames (evaluation only), reported, never used to choose
set -euo pipefail
cd /work/main
R=runs/p2; S=../shared/datasets/thai-street-frames
for m in m7 mP; do
  .venv/bin/thaiplate eval detector --images $S/images --models $R/$m > $R/street-$m.json
  .venv/bin/thaiplate eval e2e --data $S --models $R/$m --out $R/street-e2e-$m.json > $R/street-e2e-$m.txt 2>&1
done
