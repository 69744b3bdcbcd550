#!/usr/bin/env bash
# Judge detector candidate v11 against v7 by runs/rule-detector-v11.md (fp32 ONNX, 320x544); v10-p2 alongside, reported only
set -euo pipefail
cd /work/main
R=runs/v11; P=runs/p2
rm -rf $R/m11; cp -r models $R/m11
date -u +"export %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --export-only --weights runs/detector-v11/weights/last.pt \
  --out runs/detector-v11 --models-dir $R/m11 --export-imgsz 320x544 > $R/export.log 2>&1
grep "^file:\|^version:" $R/m11/detector.yaml
date -u +"A,B %H:%M:%S"
.venv/bin/thaiplate eval detector --images data/detect93/images/val --models $P/m7 > $R/det93-m7.json &
.venv/bin/thaiplate eval detector --images data/detect93/images/val --models $R/m11 > $R/det93-m11.json
wait
date -u +"D %H:%M:%S"
.venv/bin/python -m thaiplate.bench.onnx_latency --runs 100 --shape 1,3,320,544 --out $R/latency.json \
  $P/m7/detector.onnx $R/m11/detector.onnx > $R/latency.txt
date -u +"C %H:%M:%S"
# v7's and v10-p2's e2e on data/detect83 are runs/p2/e2e83-{m7,mP}.json (same models, same data, deterministic)
.venv/bin/thaiplate eval e2e --data data/detect83 --subset images/val/ --models $R/m11 --out $R/e2e83-m11.json > $R/e2e83-m11.txt 2>&1 &
.venv/bin/thaiplate eval detector --images data/detect93/images/val --models $P/mP > $R/det93-mP.json
wait
date -u +"done %H:%M:%S"
