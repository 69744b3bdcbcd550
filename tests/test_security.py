"""Security (issue 9) on a REAL TorchServe with the production config and token auth on
(conftest.torchserve_prod): what SECURITY.md promises, checked against the running server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prod_client import DAG, PIPE, auth_headers, infer, small_jpeg, wait_for

from thaiplate.serving import server as ts

ROOT = Path(__file__).resolve().parents[1]
LISTEN = "0A"  # TCP state in /proc/net/tcp*
SECRET_NAMES = re.compile(r"(^|/)(key_file\.json|\.env(\..*)?|id_rsa.*|.*\.pem|.*\.p12|.*credentials.*\.json)$")


@dataclass(frozen=True)
class Listener:
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    @property
    def loopback_only(self) -> bool:
        addr = self.address
        mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
        return (mapped or addr).is_loopback


def _addr(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp{,6} address: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listeners(pid: int) -> list[Listener]:
    """The TCP sockets process ``pid`` listens on (its fds matched to /proc/net/tcp and tcp6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
            if m:
                inodes.add(m.group(1))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == LISTEN and f[9] in inodes:
                host, port = f[1].split(":")
                found.append(Listener(_addr(host), int(port, 16)))
    return found


def non_loopback_ip() -> str | None:
    """This machine's outward address (no packet is sent: a UDP connect only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(ip).is_loopback else ip


def reachable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


def management(server, method: str, path: str, key: str | None = "management") -> requests.Response:
    headers = auth_headers(server, key) if key else {}
    return requests.request(method, server.management_url + path, headers=headers, timeout=30)


def registered(server) -> set[str]:
    r = management(server, "GET", "/models")
    assert r.status_code == 200, r.text
    return {m["modelName"] for m in r.json()["models"]}


# ---------------------------------------------------------------------------- listeners


@pytest.mark.server
def test_only_the_inference_port_listens_beyond_loopback(torchserve_prod):
    pid = torchserve_prod.java_pid()
    assert pid, "no Java frontend pid"
    socks = {s.port: s for s in listeners(pid)}
    ports = torchserve_prod.ports
    assert {ports.inference, ports.management, ports.metrics} <= set(socks), socks
    assert not socks[ports.inference].loopback_only  # Cloud Run reaches $PORT from outside
    exposed = [s for s in socks.values() if s.port != ports.inference and not s.loopback_only]
    assert not exposed, f"listening beyond loopback: {exposed}"  # management, metrics, gRPC
    ip = non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback address on this machine to connect from")
    assert reachable(ip, ports.inference)
    assert not reachable(ip, ports.management) and not reachable(ip, ports.metrics)


# ------------------------------------------------------------------ model registration


REMOTE_URLS = [
    "http://example.com/x.mar",
    "https://example.com/x.mar",
    "file:///etc/passwd",
    "../../../../etc/passwd",
]


@pytest.mark.server
@pytest.mark.parametrize("url", REMOTE_URLS)
def test_registration_from_outside_the_model_store_is_refused(torchserve_prod, url):
    """ShellTorch (CVE-2023-43654): a management API that fetches archives from any URL is remote code
    execution. Models: the model API is off in production. Workflows (not gated by that flag in 0.12):
    ``allowed_urls`` admits only the local model store."""
    before = registered(torchserve_prod)
    for kind in ("models", "workflows"):
        r = management(torchserve_prod, "POST", f"/{kind}?url={requests.utils.quote(url, safe='')}")
        assert 400 <= r.status_code < 500, (kind, url, r.status_code, r.text)
    assert registered(torchserve_prod) == before


@pytest.mark.server
def test_management_api_is_not_served_on_the_public_port(torchserve_prod):
    for path in ("/models?url=http://example.com/x.mar", "/workflows?url=http://example.com/x.war"):
        r = requests.post(torchserve_prod.inference_url + path, headers=auth_headers(torchserve_prod), timeout=10)
        assert 400 <= r.status_code < 500, (path, r.status_code)


def test_production_config_pins_the_registration_defences(tmp_path):
    store = tmp_path / "store"
    props = dict(
        line.split("=", 1)
        for line in ts.render_config("prod", ts.Ports(1, 2, 3), store).splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["enable_model_api"] == "false" and props["install_py_dep_per_model"] == "false"
    assert props["allowed_urls"] == f"file://{store}/.*"
    assert props["management_address"].startswith("http://127.0.0.1:")
    assert props["metrics_address"].startswith("http://127.0.0.1:")
    assert int(props["max_request_size"]) <= 32 * 1024 * 1024  # bounded: the JVM heap is 96 MiB


# --------------------------------------------------------------------------- token auth


def _refused(r: requests.Response) -> bool:
    """TorchServe 0.12 answers a missing/wrong key with 400 InvalidKeyException (not 401)."""
    return r.status_code in (400, 401) and "InvalidKeyException" in r.text


@pytest.mark.server
def test_token_auth_refuses_requests_without_the_right_key(torchserve_prod):
    keys = ts.read_tokens(torchserve_prod.run_dir)
    assert keys.get("inference") and keys.get("management") and keys == torchserve_prod.token
    url, body = torchserve_prod.inference_url, small_jpeg()
    for path in (PIPE, DAG):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {keys['management']}"}):
            r = requests.post(url + path, data=body, headers={"Content-Type": "image/jpeg", **headers}, timeout=30)
            assert _refused(r), (path, headers, r.status_code, r.text[:200])
        assert infer(torchserve_prod, path, body).status_code == 200
    assert _refused(requests.get(url + "/ping", timeout=10))
    assert _refused(management(torchserve_prod, "GET", "/models", key=None))
    assert _refused(management(torchserve_prod, "GET", "/models", key="inference"))
    assert management(torchserve_prod, "GET", "/models").status_code == 200


@pytest.mark.server
def test_key_file_is_private(torchserve_prod):
    mode = (torchserve_prod.run_dir / "key_file.json").stat().st_mode & 0o777
    assert mode & 0o077 == 0, oct(mode)


# ------------------------------------------------------------------------- request size


@pytest.mark.server
def test_bodies_over_max_request_size_get_413_and_the_server_keeps_serving(torchserve_prod):
    config = (torchserve_prod.run_dir / "config.properties").read_text()
    limit = int(re.search(r"(?m)^max_request_size=(\d+)", config).group(1))
    for path in (PIPE, DAG):
        r = infer(torchserve_prod, path, b"\xff\xd8\xff" + bytes(limit + 1024))
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        assert infer(torchserve_prod, path, small_jpeg()).status_code == 200


# -------------------------------------------------------------------------------- secrets


@pytest.mark.server
def test_no_key_is_written_to_the_logs(torchserve_prod):
    keys = [k for k in ts.read_tokens(torchserve_prod.run_dir).values() if k]
    assert keys
    logs = [Path(torchserve_prod.log_file)] + [p for p in (torchserve_prod.run_dir / "logs").rglob("*") if p.is_file()]
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [k for k in keys if k in text]
        assert not leaked, f"{log} contains {len(leaked)} TorchServe key(s)"


def test_the_image_copies_no_secrets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    sources = [s for line in re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", dockerfile) for s in line.split()]
    assert sources
    shipped = []
    for src in sources:
        path = ROOT / src
        shipped += [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    secrets = [str(p.relative_to(ROOT)) for p in shipped if SECRET_NAMES.search(str(p.relative_to(ROOT)))]
    assert not secrets, f"the Dockerfile would copy {secrets}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in ("**/key_file.json", "**/.env", "**/.env.*"):
        assert pattern in ignored, f".dockerignore should exclude {pattern}"
    assert not re.search(r"(?mi)^(ENV|ARG)\s.*(KEY|TOKEN|SECRET|PASSWORD)", dockerfile)


@pytest.mark.server
def test_keys_rotate_without_a_restart(torchserve_prod):
    """``POST :management/token?type=inference`` with the API key issues a new inference key at once."""
    old = ts.read_tokens(torchserve_prod.run_dir)
    r = management(torchserve_prod, "POST", "/token?type=inference", key="API")
    assert r.status_code == 200, r.text
    new = wait_for(lambda: (k := ts.read_tokens(torchserve_prod.run_dir)).get("inference") != old["inference"] and k)
    assert new and new["management"] == old["management"], "key_file.json has no new inference key"
    torchserve_prod.token = new  # later tests use the new key
    body = small_jpeg()
    stale = requests.post(torchserve_prod.inference_url + PIPE, data=body,
                          headers={"Authorization": f"Bearer {old['inference']}"}, timeout=30)  # fmt: skip
    assert _refused(stale)
    assert infer(torchserve_prod, PIPE, body).status_code == 200
