"""Soak the container's configuration: prod config (JVM -Xmx96m, serial GC), DAG only, one CPU (taskset 0)."""
import sys, tempfile, json
from pathlib import Path
from thaiplate.bench import service, payloads, soak, entrypoint
dur = float(sys.argv[1]); out = Path(sys.argv[2])
tmp = tempfile.mkdtemp(prefix="soakprod-")
store = service.build_store(Path("models").resolve(), Path(tmp) / "store")
images = payloads.load("synthetic", n_scenes=20)
with service.running(store, "dag", env="prod", cpus="0") as srv:
    res = soak.run(srv.url, {"dag": entrypoint.endpoint("dag")}, srv.root_pid, images, duration_s=dur,
                   interval_s=5.0, window_from_s=min(120.0, dur / 3), token=srv.token)
soak.write(res, out, {"mode": "dag", "env": "prod", "cpus": "0"})
print(soak.summary(res))
