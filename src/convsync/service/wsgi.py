"""waitress serving a WSGI application from a thread, with a graceful stop: what the
webhook endpoint and the health endpoint (``/healthz``, ``/metrics``, the status page)
share."""

from __future__ import annotations

import socket
import threading
from typing import Any

from convsync.core.errors import UserError


class WsgiThread:
    """``app`` served by waitress (a socket loop and a pool of ``threads``) on
    ``host:port`` from a thread of its own. When the address cannot be bound, the
    message says it could not ``purpose`` and names the settings of the address
    (``where``)."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        threads: int,
        purpose: str,
        where: str,
        name: str,
        **options: Any,
    ) -> None:
        import waitress

        try:
            # bound here, not by waitress, which leaks its other sockets when a bind fails
            listener = socket.create_server((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot {purpose} on {host}:{port}: {exc.strerror or exc} ({where})"
            ) from None
        self.server = waitress.create_server(
            app,
            sockets=[listener],
            threads=threads,
            clear_untrusted_proxy_headers=True,
            ident="convsync",
            **options,
        )
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    def start(self) -> None:
        self.thread.start()

    def _serve(self) -> None:
        """waitress's socket loop, a step at a time so that a stop is noticed, and the
        sockets closed in this thread (closing them under a running loop breaks it)."""
        from waitress import wasyncore

        socket_map = self.server._map
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.2, map=socket_map, use_poll=True, count=1)
        for channel in list(socket_map.values()):
            channel.close()

    def stop(self, timeout: float) -> None:
        """Stop taking connections, let the requests in hand finish and their answers go
        out, then close what is left."""
        self.server.accepting = False
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        self._stopping.set()
        self.thread.join(timeout=5)
