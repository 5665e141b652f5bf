"""Start llama-cpp-python's own OpenAI-compatible server on loopback (``python -m llama_cpp.server``).

For sites that serve one GGUF to several analysts from one box, and for the tests and benchmarks of the server
backend. Needs the ``llama-cpp-python[server]`` extra (fastapi, uvicorn, sse-starlette…).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from scelmo_desktop.core._infra.errors import ScelmoError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_llama_server(
    model_path: str,
    port: int,
    *,
    alias: str = "default",
    threads: int = 1,
    chat_format: str | None = "gemma",
    host: str = "127.0.0.1",
    startup_timeout: float = 90.0,
) -> subprocess.Popen:
    """The server process, once it accepts connections; its OpenAI base URL is ``http://host:port/v1``."""
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--host",
        host,
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--model_alias",
        alias,
    ]
    if chat_format:
        command += ["--chat_format", chat_format]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                raise ScelmoError(
                    f"llama_cpp.server exited at start (code {server.returncode}); is the "
                    "llama-cpp-python[server] extra installed?"
                ) from None
            time.sleep(0.3)
    server.kill()
    raise ScelmoError(f"llama_cpp.server did not accept connections within {startup_timeout:.0f} s.")
