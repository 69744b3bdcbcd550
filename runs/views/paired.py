import sys, os
from pathlib import Path
from thaiplate.recognize import OnnxRecognizer
from thaiplate.preprocess import batch_tensor
from thaiplate.eval.ocr import load_rows
from thaiplate.eval.textmetrics import compact
import time
rows = load_rows(Path(sys.argv[1]))[: int(sys.argv[3]) if len(sys.argv) > 3 else None]
one = OnnxRecognizer.from_dir("models", views=["orig"])
many = OnnxRecognizer.from_dir("models", views=sys.argv[2].split(","))
a=b=0; lost=won=0; ta=tb=0
for i in range(0, len(rows), 32):
    ch = rows[i:i+32]; x = batch_tensor([r.crop for r in ch])
    t0=time.perf_counter(); ra = one.read(x); t1=time.perf_counter(); rb = many.read(x); t2=time.perf_counter()
    ta+=t1-t0; tb+=t2-t1
    for r, p, q in zip(ch, ra, rb):
        oa = compact(p.text)==compact(r.text); ob = compact(q.text)==compact(r.text)
        a+=oa; b+=ob; lost += oa and not ob; won += ob and not oa
n=len(rows); print(f"{sys.argv[1]} n={n} one={a/n:.4f} views={b/n:.4f} won={won} lost={lost} ms/crop one={1000*ta/n:.1f} views={1000*tb/n:.1f}")
