#!/usr/bin/env bash
# Adopt v24 (runs/rule-v24-consistency.md passed): provenance + metrics in runs/v24/m, then copy into models/.
set -euo pipefail
cd /work/main
T=.venv/bin/thaiplate
M=runs/v24/m
.venv/bin/python - <<'PY'
import yaml
p = "runs/v24/m/recognizer.yaml"
d = yaml.safe_load(open(p))
old = yaml.safe_load(open("models/recognizer.yaml"))
d["status"] = ("trained: v18 + 5 x 20k samples of v18's data with the consistency term (each crop also read shifted "
               "1-4 rows, weight 3 x symmetric KL): 3 epochs at lr 3e-4 (v23), then 2 at lr 2e-4 from v23's last checkpoint")
tr = d["training"]
tr["data_command"] = old["training"]["data_command"]
tr["config"] = "thaiplate/configs/train_recognizer_consistency.yaml (train_recognizer.yaml + consistency: {weight: 3, shift_px: 4})"
tr["warm_start"] = ("v23 = recognizer v18 (models/recognizer.pt at the time) + 3 x 20k with the consistency term: "
                    "thaiplate train recognizer --config thaiplate/configs/train_recognizer_consistency.yaml --data data/ocr_train18 "
                    "--val-data data/ocr_val --out runs/v23/run --init models/recognizer.pt --lr 3e-4 --epochs 3 --threads 2 (61 min)")
tr["command"] = ("thaiplate train recognizer --config thaiplate/configs/train_recognizer_consistency.yaml --data data/ocr_train18 "
                 "--val-data data/ocr_val --out runs/v24/run --init runs/v23/run/last.pt --lr 2e-4 --epochs 2 --threads 2")
tr["wall_minutes"] = 55
tr["adoption"] = ("runs/rule-v24-consistency.md (written before its run and judge sets): crop-stability on 907 fresh scene "
                  "plates unstable 8.71 % vs 10.92 % (bar <= -1.0 pt), exact per cut +0.46 pt; pooled renderer + scene crops "
                  "-0.05 pt (59 vs 61; bar >= -0.3); ocr_val 0.903 / ocr_val2 0.915 (floors 0.895 / 0.915); e2e on data/detect51 "
                  "0.6006 vs 0.5920 (bar >= -0.5 pt)")
d["decoding"]["min_text_confidence_chosen_on"] = (
    "kept at 0.15, the gate v24 was judged at by its rule (runs/rule-v24-consistency.md). The sweep on "
    "data/detect36/images/val/ (2000 images, 2578 plates) with detector 7-int8 gives exact 0.625 ungated, 0.6227 at 0.1, "
    "0.6213 at 0.15 (-0.59 % of right readings: the <= 0.5 % procedure would pick 0.1), 0.6199 at 0.2; precision 0.952 "
    "at 0.1, 0.966 at 0.15 (runs/v24/gate36.json)")
yaml.safe_dump(d, open(p, "w"), allow_unicode=True, sort_keys=False)
PY
$T eval ocr --data data/ocr_val --models $M --record synthetic_val > /dev/null
$T eval ocr --data data/ocr_val2 --models $M --record synthetic_val2 --plot-difficulty docs/recognizer-by-resolution.png > /dev/null
$T eval ocr --data data/scene_crops36 --models $M --record synthetic_scene_crops36 > /dev/null
$T eval ocr --data data/ocr_lta38 --models $M --record synthetic_lta38 > /dev/null
$T eval ocr --data ../shared/real-smoke --models $M --record real-smoke --failures docs/real-smoke-failures.png > runs/v24/real-smoke-rec.txt
$T eval ocr --data ../shared/datasets/thai-plate-crops-real --models $M --record thai-plate-crops-real --failures docs/crops-real-failures.png > runs/v24/crops-real-rec.txt
cp runs/v24/run/curves.png docs/recognizer-curves.png
cp $M/recognizer.* models/
echo "adopt24: done $(date)"
