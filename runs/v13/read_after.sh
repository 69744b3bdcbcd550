#!/usr/bin/env bash
# Read AFTER the decision on runs/rule-detector-vN.md: the real street frames (evaluation only), reported, never used
# to choose. Detector against v7 (paired per width bucket) and end to end through the pipeline.
set -euo pipefail
cd /work/main
V=${V:?set V, the candidate number}; R=runs/v$V; S=../shared/datasets/thai-street-frames
for m in m$V ${EXTRA:-}; do
  .venv/bin/thaiplate eval detector --images $S/images --models $R/$m --against runs/p2/m7 > $R/street-$m.json
  .venv/bin/thaiplate eval e2e --data $S --models $R/$m --out $R/street-e2e-$m.json > $R/street-e2e-$m.txt 2>&1
done
