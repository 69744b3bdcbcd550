#!/usr/bin/env bash
# Judge a detector candidate against v7 by its runs/rule-detector-vN.md (fp32 ONNX, 320x544): V=13 runs/v13/judge.sh
# v7's numbers on the same sets: runs/v11/det94-m7.json, det93-m7.json, runs/p2/e2e83-m7.json (deterministic).
set -euo pipefail
cd /work/main
V=${V:?set V, the candidate number}; R=runs/v$V; M=$R/m$V; P=runs/p2
rm -rf $M; cp -r models $M
date -u +"export %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --export-only --weights runs/detector-v$V/weights/last.pt \
  --out runs/detector-v$V --models-dir $M --export-imgsz 320x544 > $R/export.log 2>&1
grep "^file:\|^version:" $M/detector.yaml
date -u +"A,B %H:%M:%S"
.venv/bin/thaiplate eval detector --images data/detect94/images/val --models $M > $R/det94.json &
.venv/bin/thaiplate eval detector --images data/detect93/images/val --models $M > $R/det93.json
wait
date -u +"C,D %H:%M:%S"
.venv/bin/thaiplate eval e2e --data data/detect83 --subset images/val/ --models $M --out $R/e2e83.json > $R/e2e83.txt 2>&1 &
.venv/bin/python -m thaiplate.bench.onnx_latency --runs 100 --shape 1,3,320,544 --out $R/latency.json \
  $P/m7/detector.onnx $M/detector.onnx > $R/latency.txt
wait
date -u +"done %H:%M:%S"
