#!/usr/bin/env bash
# Judge detector candidate v10-p2 against v7 by runs/rule-detector-p2.md (both fp32 ONNX, 320x544)
set -euo pipefail
cd /work/main
R=runs/p2
rm -rf $R/mP $R/m7; cp -r models $R/mP; cp -r models $R/m7
sed -i 's/^file: detector.int8.onnx/file: detector.onnx/' $R/m7/detector.yaml
date -u +"export %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --export-only --weights runs/detector-p2/weights/last.pt \
  --out runs/detector-p2 --models-dir $R/mP --export-imgsz 320x544 > $R/export.log 2>&1
grep -q "^file:" $R/mP/detector.yaml && grep "^file:" $R/mP/detector.yaml
date -u +"A,B %H:%M:%S"
.venv/bin/thaiplate eval detector --images data/detect92/images/val --models $R/m7 > $R/det92-m7.json &
.venv/bin/thaiplate eval detector --images data/detect92/images/val --models $R/mP > $R/det92-mP.json
wait
date -u +"D %H:%M:%S"
.venv/bin/python -m thaiplate.bench.onnx_latency --runs 100 --shape 1,3,320,544 --out $R/latency.json \
  $R/m7/detector.onnx $R/mP/detector.onnx > $R/latency.txt
date -u +"C %H:%M:%S"
.venv/bin/thaiplate eval e2e --data data/detect83 --subset images/val/ --models $R/m7 --out $R/e2e83-m7.json > $R/e2e83-m7.txt 2>&1 &
.venv/bin/thaiplate eval e2e --data data/detect83 --subset images/val/ --models $R/mP --out $R/e2e83-mP.json > $R/e2e83-mP.txt 2>&1
wait
date -u +"done %H:%M:%S"
