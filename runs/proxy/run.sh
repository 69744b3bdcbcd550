#!/usr/bin/env bash
# runs/rule-proxy-video.md: the proxy set, then 14 readers x 5 sets (niced: training has the CPU).
set -euo pipefail
cd /work/main
T=".venv/bin/thaiplate"
nice -n 19 $T synth ocr --n 3000 --seed 2090 --workers 1 --config thaiplate/configs/synth-ocr-proxy-video.yaml --out data/ocr_proxy90
for v in 4 5 6 7 8 9 11 12 13 15 18 24 25 26; do
  for s in ocr_proxy90 ocr_val2 scene_crops76 ocr_lta75 real; do
    D=data/$s; [[ $s == real ]] && D=../shared/datasets/thai-plate-crops-real
    [[ -f runs/proxy/$s-m$v.json ]] || nice -n 19 $T eval ocr --data $D --models runs/proxy/m$v --out runs/proxy/$s-m$v.json > /dev/null 2>&1
  done
  echo "m$v done $(date -u +%T)"
done
echo "proxy done $(date)"
