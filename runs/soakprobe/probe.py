"""Per-process anonymous memory under soak load (dev config unless THAIPLATE_ENV=prod)."""
import sys, tempfile, threading, time, json
from pathlib import Path
from thaiplate.bench import entrypoint, service, payloads, memory, soak, load
dur = float(sys.argv[1]); out = Path(sys.argv[2])
tmp = tempfile.mkdtemp(prefix="soakprobe-")
store = service.build_store(Path("models").resolve(), Path(tmp) / "store")
images = payloads.load("synthetic", n_scenes=5)
entry = entrypoint.start(store, "both", Path(tmp) / "run")
rows = []
try:
    targets = {m: load.Target(entry.server.inference_url, ep) for m, ep in entry.endpoints().items()}
    soak.drive(targets, images, 2, 3 * len(images), 300.0)
    stop = False
    th = threading.Thread(target=lambda: soak.drive(targets, images, 2, 10**9, dur), daemon=True); th.start()
    t0 = time.monotonic()
    while th.is_alive():
        snap = {}
        for pid in memory.process_tree(entry.pid):
            r = memory.read_rollup(pid)
            snap[f"{memory.role(pid)}:{pid}"] = round(r.get("Anonymous", 0) / 1024, 1)
        rows.append({"t": round(time.monotonic() - t0, 1), **snap})
        print(json.dumps(rows[-1]), flush=True)
        time.sleep(10)
finally:
    entry.stop()
out.write_text(json.dumps(rows))
