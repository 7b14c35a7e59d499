"""What the fake OpenPhone and the fake QuickBooks share: a threaded HTTP server on a loopback port
that the sandbox, the tests and the benchmarks start, wait for and stop."""
import socket
import threading
import time
from http.server import ThreadingHTTPServer

import httpx


class FakeServer:
    """Base of the fakes: listen() in __init__, then start() / stop()."""

    thread_name = "fake-server"

    def listen(self, host, port, handler):
        self.stopping = threading.Event()  # handlers that wait (latency, hangs) wake up on stop()
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def start(self):
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True, name=self.thread_name).start()
        return self

    def serve_until_interrupted(self):
        """In the foreground (`crm fake-openphone`, `crm fake-quickbooks`) until Ctrl-C."""
        try:
            self.server.serve_forever(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.server.server_close()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def port_free(port, host="127.0.0.1"):
    """Whether nothing listens on this loopback port (a second sandbox must not answer for ours)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_until_up(url, timeout=20.0):
    """Whether the fake at `url` answers within `timeout` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/_fake/stats", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False
