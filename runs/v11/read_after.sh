#!/usr/bin/env bash
# Read AFTER the decision on runs/rule-detector-v11.md: the real street frames (evaluation only), reported, never used to choose.
# v7's and v10-p2's are runs/p2/street-*.json (same models, same frames).
set -euo pipefail
cd /work/main
R=runs/v11; S=../shared/datasets/thai-street-frames
for m in m11 ${EXTRA:-}; do
  .venv/bin/thaiplate eval detector --images $S/images --models $R/$m > $R/street-$m.json
  .venv/bin/thaiplate eval e2e --data $S --models $R/$m --out $R/street-e2e-$m.json > $R/street-e2e-$m.txt 2>&1
done
