#!/usr/bin/env bash
# Judge detector candidate v14 against v7 by runs/rule-detector-v14.md (fp32 ONNX, 320x544): A on data/detect94,
# B and C on the fresh data/detect96 (v7 side by side), D latency; then the old sets, reported only.
set -euo pipefail
cd /work/main
R=runs/v14; M=$R/m14; P=runs/p2
rm -rf $M; cp -r models $M
date -u +"export %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --export-only --weights runs/detector-v14/weights/last.pt \
  --out runs/detector-v14 --models-dir $M --export-imgsz 320x544 > $R/export.log 2>&1
grep "^file:\|^version:" $M/detector.yaml
date -u +"A,B %H:%M:%S"
.venv/bin/thaiplate eval detector --images data/detect94/images/val --models $M > $R/det94.json &
.venv/bin/thaiplate eval detector --images data/detect96/images/val --models $M --against $P/m7 > $R/det96.json
wait
date -u +"C %H:%M:%S"
.venv/bin/thaiplate eval e2e --data data/detect96 --subset images/val/ --models $M --out $R/e2e96.json > $R/e2e96.txt 2>&1 &
.venv/bin/thaiplate eval e2e --data data/detect96 --subset images/val/ --models $P/m7 --out $R/e2e96-m7.json > $R/e2e96-m7.txt 2>&1
wait
date -u +"D %H:%M:%S"
.venv/bin/python -m thaiplate.bench.onnx_latency --runs 100 --shape 1,3,320,544 --out $R/latency.json \
  $P/m7/detector.onnx $M/detector.onnx > $R/latency.txt
date -u +"decided; old sets, reported only %H:%M:%S"
.venv/bin/thaiplate eval detector --images data/detect93/images/val --models $M > $R/det93.json &
.venv/bin/thaiplate eval e2e --data data/detect83 --subset images/val/ --models $M --out $R/e2e83.json > $R/e2e83.txt 2>&1
wait
date -u +"done %H:%M:%S"
