"""Reliability on a REAL TorchServe: killed workers, a killed JVM, a 60 s soak, 8 concurrent clients.

The fault tests kill processes, so they get their own service (``scripts/serve`` with
``THAIPLATE_MODE=both``, module fixture ``served``), killed last by the JVM test. The soak and the
concurrency test only send requests, so they use the session's ``torchserve``. The long versions
(10-minute soak, every worker killed) are ``scripts/soak`` and ``scripts/fault-recovery``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from collections.abc import Iterator

import pytest
from conftest import STAGES, models_dir, server_processes

from thaiplate.bench import entrypoint, faults, load, payloads, readings, service, soak

pytestmark = pytest.mark.server
BOUND_S = 60.0  # a killed worker must answer correctly again within this (measured: 3-4 s)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[entrypoint.Entrypoint]:
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: TorchServe needs a JRE 17")
    if missing := [n for n in STAGES if not (models_dir() / f"{n}.yaml").exists()]:
        pytest.skip(f"no {', '.join(missing)} model in {models_dir()}")
    base = tmp_path_factory.mktemp("served")
    entry = entrypoint.start(service.build_store(models_dir(), base / "store"), "both", base / "run")
    yield entry
    entry.stop()
    assert not server_processes(entry.server.run_dir), "processes left behind by scripts/serve"


@pytest.fixture(scope="module")
def load_set(served: entrypoint.Entrypoint) -> tuple[list[payloads.Payload], dict[str, dict]]:
    images = payloads.load("synthetic", n_scenes=2)
    return images, faults.expected_readings(served.server, ["dag", "pipeline"], images)


@pytest.mark.parametrize("target", ["recognizer", "pipeline"])
def test_killed_worker_is_restarted_and_answers_correctly(served, load_set, target):
    images, expected = load_set
    mode = faults.TARGETS[target][0]
    k = faults.kill_worker(served.server, target, images, expected[mode], before_s=2.0, after_s=1.0, bound_s=BOUND_S)
    print(f"\n{target}: {k}")
    assert k.restarted and k.new_pid != k.old_pid, k
    assert k.recovery_s is not None and k.recovery_s <= BOUND_S, k
    assert k.failed_in_flight <= 2, k  # only the requests in flight (2 clients) can be lost
    good = load.Target(served.server.inference_url, entrypoint.endpoint(mode))
    assert readings.references(good, images[:1]) == {images[0].name: expected[mode][images[0].name]}


def test_killing_java_makes_the_entrypoint_exit_nonzero(served):
    """Runs last in this module: it ends the ``served`` service."""
    res = faults.kill_java(served)
    assert res.exit_code not in (None, 0), res
    assert not res.survivors, f"workers outlived the JVM: {res.survivors}"
    assert "TorchServe exited unexpectedly" in served.log.read_text(errors="replace")


def test_soak_60s_memory_flat_and_no_errors(torchserve, tmp_path):
    """60 s of load (2 clients per endpoint) on the session server after a warm-up with the same load,
    memory every 2 s.

    Growth is measured from 20 s to the end: the first seconds still grow arenas and heaps for image
    sizes and batch shapes not seen yet (a one-off rise, not a leak; the 10-minute ``scripts/soak``
    starts its window at 2 minutes for the same reason), and 20 s leaves 20 samples to average the
    ends over. Judged on the anonymous memory of the Python processes (supervisor, launcher, workers):
    PSS of the tree moves by tens of MB when other servers on this shared machine start or stop (they
    share our venv's library pages), and the session server's JVM runs the dev config, whose G1 heap
    grows lazily under load (the CI run of stop 28 failed at +6.25 % for the whole tree; a 180 s probe
    then showed the JVM +3.7 % and the Python side +0.5 %). Both are printed, not asserted; the
    container caps the JVM with -Xmx96m (config.prod.properties).
    """
    images = payloads.load("synthetic", n_scenes=5)
    endpoints = {m: entrypoint.endpoint(m) for m in ("dag", "pipeline")}
    res = soak.run(torchserve.inference_url, endpoints, torchserve.proc.pid, images,
                   duration_s=60.0, interval_s=2.0, window_from_s=20.0)  # fmt: skip
    soak.write(res, tmp_path)
    print("\n" + soak.summary(res))
    assert res.requests > 20 and res.errors == 0, res.error_samples
    assert res.python_anon_growth_pct < 5.0, soak.summary(res)
    assert (tmp_path / "soak.png").stat().st_size > 1000


def test_500_requests_from_8_clients_each_get_their_own_answer(torchserve):
    """8 clients, 4 on the DAG and 4 on the pipeline endpoint at once; every image has its own size
    and reference reading (taken alone first), so a crossed or corrupted answer is an error.

    Every error fails the test. DAG node timeouts used to (600/1500 ms: retries of jobs that are never
    cancelled snowballed on a starved CPU, 1 to 164 of 500 failed); archive/workflow.yaml explains the
    longer timeouts that fixed it. See docs/RELIABILITY.md.
    """
    sizes = [(320 + 8 * i, 240 + 4 * i) for i in range(20)]
    scenes = payloads.labelled(len(sizes), seed=11, sizes=sizes)
    images = [p for p, _ in scenes]
    targets = [load.Target(torchserve.inference_url, entrypoint.endpoint(m)) for m in ("dag", "pipeline")]
    expected = {t.endpoint: readings.references(t, images) for t in targets}
    assert expected[targets[0].endpoint] == expected[targets[1].endpoint]  # both modes read alike
    logs: dict[str, list[readings.Outcome]] = {t.endpoint: [] for t in targets}
    lock, pick = threading.Lock(), itertools.cycle(targets)

    def client() -> readings.CheckedClient:  # called once per client thread: 4 on each endpoint
        t = next(pick)
        return readings.CheckedClient(t, expected[t.endpoint], logs[t.endpoint], lock)

    run = load.run_level(client, images, 8, 500, 300.0)
    bad = {ep: [o for o in log if not o.ok] for ep, log in logs.items()}
    wrong = [o for b in bad.values() for o in b if (o.error or "").startswith("wrong reading")]
    truth = {p.name: texts for p, texts in scenes}
    right = sum(sorted(expected[targets[0].endpoint][n].texts) == sorted(truth[n]) for n in truth)
    print(f"\n{sum(map(len, logs.values()))} requests in {run.wall_s:.0f} s; errors "
          f"{ {ep: len(b) for ep, b in bad.items()} }, {len(wrong)} wrong answers; "
          f"{right}/{len(truth)} images read as painted")  # fmt: skip
    assert not wrong, [o.error for o in wrong[:3]]  # crossed or corrupted answers: never
    dag, pipe = (bad[t.endpoint] for t in targets)
    assert not pipe, f"{len(pipe)} pipeline errors, e.g. {pipe[0].error}"
    assert not dag, f"{len(dag)} DAG errors, e.g. {dag[0].error}"
    assert run.records and len(run.records) == 500


def test_soak_in_the_container_configuration(tmp_path):
    """``scripts/soak --container``: the prod config (JVM -Xmx96m, serial GC, token auth), DAG only, one CPU.
    Same verdict as the 60 s soak (0 errors, the Python processes' anonymous memory flat), and the whole tree
    inside the container's 512 MiB (measured: ~290-305 MB PSS at peak)."""
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: TorchServe needs a JRE 17")
    rc = soak.main(["--container", "--mode", "dag", "--duration", "30", "--interval", "3", "--window-from", "9",
                    "--scenes", "3", "--models-dir", str(models_dir()), "--out", str(tmp_path)])  # fmt: skip
    res = json.loads((tmp_path / "soak.json").read_text(encoding="utf-8"))
    assert rc == 0, res
    assert res["config"] == "container (prod)" and res["requests"] > 20 and res["errors"] == 0
    assert res["jvm_anon_mb"] and 0 < res["peak_mb"] < 512
