#!/usr/bin/env bash
# Judge detector candidate v12 against v7 by runs/rule-detector-v12.md (fp32 ONNX, 320x544).
# v7's numbers on the same sets: runs/v11/det94-m7.json, det93-m7.json, runs/p2/e2e83-m7.json (deterministic).
set -euo pipefail
cd /work/main
R=runs/v11; P=runs/p2
rm -rf $R/m12; cp -r models $R/m12
date -u +"export %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --export-only --weights runs/detector-v12/weights/last.pt \
  --out runs/detector-v12 --models-dir $R/m12 --export-imgsz 320x544 > $R/export12.log 2>&1
grep "^file:\|^version:" $R/m12/detector.yaml
date -u +"A,B %H:%M:%S"
.venv/bin/thaiplate eval detector --images data/detect94/images/val --models $R/m12 > $R/det94-m12.json &
.venv/bin/thaiplate eval detector --images data/detect93/images/val --models $R/m12 > $R/det93-m12.json
wait
date -u +"C,D %H:%M:%S"
.venv/bin/thaiplate eval e2e --data data/detect83 --subset images/val/ --models $R/m12 --out $R/e2e83-m12.json > $R/e2e83-m12.txt 2>&1 &
.venv/bin/python -m thaiplate.bench.onnx_latency --runs 100 --shape 1,3,320,544 --out $R/latency12.json \
  $P/m7/detector.onnx $R/m12/detector.onnx > $R/latency12.txt
wait
date -u +"done %H:%M:%S"
