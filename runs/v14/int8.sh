#!/usr/bin/env bash
# A detector candidate (V=13: runs/v13/m13) as INT8 by the standing check, runs/rule-detector-int8.md's bars with the fp32 candidate side by side.
# That rule's sets (data/detect40, data/detect3) are not on this machine; its bars are applied to the sets here:
# 1 -> data/detect96 val (AP50, recall), 2 -> data/detect92 val (AP50), 3 -> e2e data/detect96 val (runs/rule-detector-v14.md), 4 -> latency.
set -euo pipefail
cd /work/main
V=${V:?set V, the candidate number}; R=runs/v$V; M=m$V
rm -rf $R/${M}q; cp -r $R/$M $R/${M}q
.venv/bin/thaiplate train quantize detector --models $R/${M}q --n 64 --record > $R/quantize.log 2>&1
grep "^file:\|^version:" $R/${M}q/detector.yaml
.venv/bin/thaiplate eval detector --images data/detect96/images/val --models $R/${M}q > $R/det96-${M}q.json &
.venv/bin/thaiplate eval detector --images data/detect92/images/val --models $R/${M}q > $R/det92-${M}q.json
wait
.venv/bin/thaiplate eval detector --images data/detect92/images/val --models $R/$M > $R/det92-$M.json &
.venv/bin/thaiplate eval e2e --data data/detect96 --subset images/val/ --models $R/${M}q --out $R/e2e96-${M}q.json > $R/e2e96-${M}q.txt 2>&1
wait
.venv/bin/python -m thaiplate.bench.onnx_latency --runs 100 --shape 1,3,320,544 --out $R/latency-int8-$M.json \
  $R/$M/detector.onnx $R/${M}q/detector.int8.onnx models/detector.int8.onnx > $R/latency-int8-$M.txt
date -u +"done %H:%M:%S"
