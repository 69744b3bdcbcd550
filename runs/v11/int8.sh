#!/usr/bin/env bash
# Detector v11 as INT8 by the standing check, runs/rule-detector-int8.md's bars with fp32 v11 side by side.
# That rule's sets (data/detect40, data/detect3) are not on this machine; its bars are applied to the sets here:
# 1 -> data/detect93 val (AP50, recall), 2 -> data/detect92 val (AP50), 3 -> e2e data/detect83 val, 4 -> latency.
set -euo pipefail
cd /work/main
R=runs/v11
rm -rf $R/m11q; cp -r $R/m11 $R/m11q
.venv/bin/thaiplate train quantize detector --models $R/m11q --n 64 --record > $R/quantize.log 2>&1
grep "^file:\|^version:" $R/m11q/detector.yaml
.venv/bin/thaiplate eval detector --images data/detect93/images/val --models $R/m11q > $R/det93-m11q.json &
.venv/bin/thaiplate eval detector --images data/detect92/images/val --models $R/m11q > $R/det92-m11q.json
wait
.venv/bin/thaiplate eval detector --images data/detect92/images/val --models $R/m11 > $R/det92-m11.json &
.venv/bin/thaiplate eval e2e --data data/detect83 --subset images/val/ --models $R/m11q --out $R/e2e83-m11q.json > $R/e2e83-m11q.txt 2>&1
wait
.venv/bin/python -m thaiplate.bench.onnx_latency --runs 100 --shape 1,3,320,544 --out $R/latency-int8.json \
  $R/m11/detector.onnx $R/m11q/detector.int8.onnx models/detector.int8.onnx > $R/latency-int8.txt
date -u +"done %H:%M:%S"
