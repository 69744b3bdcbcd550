#!/usr/bin/env bash
# Does the synthetic detector judge rank detector versions as the real frames do? (read-after analysis, chooses nothing)
set -euo pipefail
cd /work/main
S=../shared/datasets/thai-street-frames/images
for v in v1 v3 v4; do
  .venv/bin/thaiplate eval detector --images data/detect92/images/val --models runs/p2/hist/$v > runs/p2/hist/det92-$v.json &
  .venv/bin/thaiplate eval detector --images $S --models runs/p2/hist/$v > runs/p2/hist/street-$v.json
  wait
done
