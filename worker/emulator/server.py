"""The HTTP side: a threading server per port, and EmulatorServer to run it in a thread."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from worker.emulator.control import PREFIX, handle_control
from worker.emulator.faults import FaultConfig
from worker.emulator.state import Clock, EmulatorState, Request, Response, Sleep
from worker.emulator.store import Store
from worker.emulator.track import handle_track

# Bodies above this are refused unread (Customer.io's largest request is 500 KB).
MAX_BODY_BYTES = 16 * 1024 * 1024
_POLL_S = 0.05


class _HttpServer(ThreadingHTTPServer):
    """One listening socket; ``control_only`` serves nothing but the control API."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: EmulatorState, *, control_only: bool):
        self.state = state
        self.control_only = control_only
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-request (killed, timed out) is normal here: say so in
        one line instead of a traceback; anything else keeps the standard report."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            sys.stderr.write(f"emulator: client {client_address[0]} hung up: {exc}\n")
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, hands it to the track or control API, writes the JSON answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: requests are recorded, not logged."""

    def _dispatch(self) -> None:
        state = self.server.state
        path, _, query = self.path.partition("?")
        is_control = path.startswith(PREFIX) or path == PREFIX.rstrip("/")
        if not is_control and state.outage_mode() == "refuse":
            # The listener is closing; a kept-alive connection is dropped unanswered.
            with state.lock:
                state.counters.faults["outage_refused"] += 1
            self.close_connection = True
            return
        body = self._read_body()
        if body is None:
            self._send(Response(413, {"meta": {"error": "request body too large"}}))
            self.close_connection = True
            return
        request = Request(self.command, path, query, dict(self.headers.items()), body)
        if is_control:
            response = handle_control(state, request)
        elif self.server.control_only:
            response = Response(404, {"error": "this port serves only the control API"})
        else:
            response = handle_track(state, request)
        self._send(response)

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None when it is too large."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: Response) -> None:
        payload = response.raw
        if payload is None:
            payload = json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _Listener:
    """A server on one port, serving in a daemon thread until closed."""

    def __init__(self, host: str, port: int, state: EmulatorState, *, control_only: bool):
        self.httpd = _HttpServer((host, port), state, control_only=control_only)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            name=f"emulator-{self.port}",
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class EmulatorServer:
    """A Customer.io Track API emulator serving over HTTP from background threads.

    ``port=0`` picks a free port (see ``url``). ``control_port`` serves the control API on
    a second port too, so it stays reachable during a ``refuse`` outage. ``clock`` and
    ``sleep`` are injectable so tests never wait for time to pass.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        site_id: str = "dev-site",
        api_key: str = "dev-key",
        faults: FaultConfig | None = None,
        control_port: int | None = None,
        max_recorded: int = 100_000,
        max_recorded_bytes: int = 512 * 1024 * 1024,
        lean: bool = False,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.host = host
        self._port = port
        self._control_port = control_port
        self.state = EmulatorState(
            site_id=site_id,
            api_key=api_key,
            faults=faults,
            max_recorded=max_recorded,
            max_recorded_bytes=max_recorded_bytes,
            lean=lean,
            refuse_needs_duration=control_port is None,
            clock=clock,
            sleep=sleep,
        )
        self.state.on_faults_changed = self._wake
        self._main: _Listener | None = None
        self._control: _Listener | None = None
        self._changed = threading.Condition()
        self._listener_lock = threading.Lock()
        self._stopping = False
        self._started = False
        self._opened = threading.Event()
        self._supervisor: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r})"

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Bind the ports and serve from background threads; returns self."""
        self._main = _Listener(self.host, self._port, self.state, control_only=False)
        self._port = self._main.port
        if self._control_port is not None:
            self._control = _Listener(self.host, self._control_port, self.state, control_only=True)
            self._control_port = self._control.port
        self.state.base_url = self.url
        self._set_listening(True)
        self._started = True
        self._sync_listener()
        self._supervisor = threading.Thread(
            target=self._supervise, name="emulator-faults", daemon=True
        )
        self._supervisor.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every port."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        with self._listener_lock:
            for listener in (self._main, self._control):
                if listener is not None:
                    listener.close()
            self._main = self._control = None
            self._set_listening(False)

    def _wake(self) -> None:
        """Apply a fault change to the listener at once, and let the supervisor know."""
        self._sync_listener()
        with self._changed:
            self._changed.notify_all()

    def _set_listening(self, listening: bool) -> None:
        self.state.listening = listening
        if listening:
            self._opened.set()
        else:
            self._opened.clear()

    def _sync_listener(self) -> None:
        """Close the main port while a ``refuse`` outage lasts and reopen it after."""
        with self._listener_lock:
            if self._stopping or not self._started:
                return
            refusing = self.state.outage_mode() == "refuse"
            if refusing and self._main is not None:
                self._main.close()
                self._main = None
                self._set_listening(False)
            elif not refusing and self._main is None:
                try:
                    self._main = _Listener(self.host, self._port, self.state, control_only=False)
                except OSError as exc:
                    sys.stderr.write(
                        f"cio-relay emulator: cannot reopen port {self._port}: {exc}\n"
                    )
                    return
                self._set_listening(True)

    def _supervise(self) -> None:
        """Poll while the main port is closed, so a timed refuse window ends on time."""
        while True:
            with self._changed:
                if self._stopping:
                    return
                self._changed.wait(timeout=_POLL_S if self._main is None else None)
                if self._stopping:
                    return
            self._sync_listener()

    def wait_listening(self, timeout_s: float = 5.0) -> bool:
        """Block until the main port accepts connections again (after a refuse outage)."""
        return self._opened.wait(timeout_s)

    # -- what tests and tools use ------------------------------------------------------

    @property
    def port(self) -> int:
        """The main port (known after ``start``)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the Track API, e.g. ``http://127.0.0.1:8025``."""
        return f"http://{_url_host(self.host)}:{self._port}"

    @property
    def control_url(self) -> str:
        """Base URL where the control API is served (the control port when there is one)."""
        if self._control_port is None:
            return self.url
        return f"http://{_url_host(self.host)}:{self._control_port}"

    @property
    def store(self) -> Store:
        """The person and event store (hold ``state.lock`` while reading it from a thread)."""
        return self.state.store

    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return self.state.faults

    def set_faults(self, config: FaultConfig | None = None, /, **changes: Any) -> FaultConfig:
        """Replace the fault configuration, or change some settings by name."""
        if config is not None:
            return self.state.set_faults(config.merged(changes))
        return self.state.merge_faults(changes)

    def reset(self, *, faults: bool = False) -> None:
        """Forget people, events, recorded requests and counters (and faults if asked)."""
        self.state.reset(faults=faults)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
