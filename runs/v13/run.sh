#!/usr/bin/env bash
# detector v13 candidate (runs/rule-detector-v13.md): v7 + 3 epochs on 6,000 ordinary + 1,500 far scenes
set -euo pipefail
cd /work/main
: > data/v13/train.txt
for s in 67 73 80 95; do ls -d $PWD/data/detect$s/images/train/*.jpg | sort >> data/v13/train.txt; done
wc -l data/v13/train.txt
printf 'path: %s\ntrain: %s\nval: %s\nnames:\n  0: plate\n' "$PWD/data" "$PWD/data/v13/train.txt" "$PWD/data/detect95/images/val" > data/v13/data.yaml
date -u +"train start %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --data data/v13/data.yaml \
  --init models/detector.pt --imgsz 416 --epochs 3 --batch 16 --threads 2 --seed 13 --scale 0.7 \
  --close-mosaic 1 --lr0 0.0003 --warmup-epochs 0.3 --out runs/detector-v13 --no-export
date -u +"train end %H:%M:%S"
