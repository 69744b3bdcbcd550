#!/usr/bin/env bash
# detector v10-p2 candidate: judge set first (made before the candidate exists), then training (runs/rule-detector-p2.md)
set -euo pipefail
cd /work/main
while ! grep -q '^rc=' runs/p2/gen91.log; do sleep 10; done
grep -q '^rc=0' runs/p2/gen91.log
.venv/bin/thaiplate synth detect --n 1000 --seed 2092 --val-fraction 1.0 --workers 2 --out data/detect92 > runs/p2/gen92.log 2>&1
date -u +"train start %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --data data/detect91/data.yaml --arch yolov8n-p2.yaml \
  --init models/detector.pt --imgsz 416 --epochs 30 --hours 1.3 --batch 16 --threads 2 --seed 10 --scale 0.7 \
  --close-mosaic 1 --lr0 0.001 --warmup-epochs 0.5 --out runs/detector-p2 --no-export
date -u +"train end %H:%M:%S"
