"""Probes over real HTTP against `crm run` (gunicorn) for the data a person or a flood can take out
or push in: webhook floods, formula cells and audited exports, secrets at rest, a contact's data."""
import time
from pathlib import Path

import httpx

MB = 1024 * 1024


def gunicorn_pids(port):
    """The gunicorn master and workers serving this port (workers share the master's command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\x00", b" ").decode()
        except OSError:
            continue
        if "gunicorn" in command and f"127.0.0.1:{port} " in command:
            pids.append(int(entry.name))
    return pids


def memory_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing for {pid}")


def reset_peak(pid):
    """Make VmHWM (the peak resident memory) start again from the current resident size."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass  # older kernels: the peak then includes start-up, which only hides growth we measure below


def forged_headers():
    return {"webhook-id": "msg_probe", "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,Zm9yZ2VkLXNpZ25hdHVyZQ==", "Content-Type": "application/json"}


def thirty_mb_in_chunks():
    chunk = b"x" * MB
    for _ in range(30):
        yield chunk


def test_thirty_mb_webhook_floods_are_refused_and_no_worker_grows(live):
    base, port = live["url"], int(live["url"].rsplit(":", 1)[1])
    url = base + "/webhooks/openphone"
    assert httpx.post(url, content=b"{}").status_code == 401  # warm up every lazily loaded piece
    pids = gunicorn_pids(port)
    assert len(pids) >= 2, pids  # the master and its workers
    before = {pid: memory_kb(pid, "VmRSS") for pid in pids}
    for pid in pids:
        reset_peak(pid)
    body = b"{" + b" " * (30 * MB) + b"}"
    codes = []
    for _ in range(3):  # unsigned, with a Content-Length; sequential requests reach both workers
        codes.append(httpx.post(url, content=body, timeout=60).status_code)
    codes.append(httpx.post(url, content=body, headers=forged_headers(), timeout=60).status_code)
    codes.append(httpx.post(url, content=thirty_mb_in_chunks(), headers=forged_headers(), timeout=60).status_code)
    assert codes == [401, 401, 401, 413, 413]
    grown = {pid: memory_kb(pid, "VmHWM") - before[pid] for pid in pids}
    assert all(kb < 8 * 1024 for kb in grown.values()), f"peak resident memory grew (kB): {grown}"
    health = httpx.get(base + "/health").json()
    assert health["rejected_last_hour"]["webhook_rejected"] >= 6
