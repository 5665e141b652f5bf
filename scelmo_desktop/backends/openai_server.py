"""An OpenAI-compatible chat server on the site's own network (llama.cpp's server, vLLM, Ollama…).

Data must stay inside: the server's address is resolved and refused unless every address is loopback or private
(RFC 1918, unique-local, link-local), unless the user explicitly allows a public one. Requests run
``parallel`` at a time; each has a timeout and is retried with exponential backoff on connection errors,
timeouts, 429 and 5xx. Only the standard library talks HTTP, and nothing is sent but the prompt.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import check_cancel
from scelmo_desktop.core._infra.network import check_address
from scelmo_desktop.core._infra.provenance import sha256_text
from scelmo_desktop.core.protocols import Generation, GenerationParams
from scelmo_desktop.core.settings import DEFAULT_SERVER_PARALLEL, default

RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
HASH_FIELDS = ("sha256", "digest", "hash")  # where servers that report a model hash put it in /v1/models


class _Retryable(Exception):
    pass


def server_identity(base_url: str, model: str) -> str:
    """The store key's model identity for a server model: its URL and name (the weights are not visible here)."""
    return sha256_text(f"openai-server|{base_url.rstrip('/')}|{model}")


class OpenAIServerBackend:
    """Chat completions from a server; ``generate_many`` keeps ``parallel`` requests in flight."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        parallel: int = DEFAULT_SERVER_PARALLEL,
        timeout: float = default("timeout"),
        retries: int = default("retries"),
        backoff: float = 1.0,
        allow_remote: bool = False,
        api_key: str | None = None,
    ):
        if parallel < 1:
            raise ScelmoError(f"The number of concurrent requests must be at least 1 (got {parallel}).")
        check_address(base_url, allow_remote=allow_remote)
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.parallel = parallel
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.sha256 = server_identity(self.base_url, model)
        self._api_key = api_key
        self._reported_hash: str | None = None

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _request(self, path: str, payload: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:300]
            if exc.code in RETRYABLE_STATUS:
                raise _Retryable(f"HTTP {exc.code}: {detail}") from exc
            raise ScelmoError(
                f"The LLM server {self.base_url} refused the request (HTTP {exc.code}: {detail}). "
                f"Check the model name '{self.name}' (see {self.base_url}/models)."
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _Retryable(str(getattr(exc, "reason", exc))) from exc
        except json.JSONDecodeError as exc:
            raise _Retryable(f"not JSON: {exc}") from exc

    def _with_retries(self, path: str, payload: dict | None = None) -> dict:
        last = ""
        for attempt in range(self.retries + 1):
            try:
                return self._request(path, payload)
            except _Retryable as exc:
                last = str(exc)
                if attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
        raise ScelmoError(
            f"The LLM server {self.base_url} did not answer after {self.retries + 1} tries (last error: "
            f"{last}). Check that it is running; the answers already stored are kept, and a re-run "
            "asks only for the missing ones."
        )

    # -- generation ---------------------------------------------------------------------------------------------
    def _payload(self, prompt: str, params: GenerationParams) -> dict:
        # top_k and repeat_penalty are llama.cpp/vLLM extensions; OpenAI-style servers ignore unknown fields.
        return {
            "model": self.name,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "repeat_penalty": params.repeat_penalty,
            "max_tokens": params.max_tokens,
            "stop": list(params.stop),
            "seed": params.seed,
            "stream": False,
        }

    def generate(self, prompt: str, params: GenerationParams, cancel=None) -> Generation:
        started = time.perf_counter()
        check_cancel(cancel)
        answer = self._with_retries("/chat/completions", self._payload(prompt, params))
        try:
            text = (answer["choices"][0]["message"]["content"] or "").strip()
        except (KeyError, IndexError, TypeError) as exc:
            raise ScelmoError(
                f"The LLM server {self.base_url} sent an answer without choices[0].message.content; "
                "is it OpenAI-compatible?"
            ) from exc
        n_tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
        return Generation(text=text, n_tokens=n_tokens, seconds=time.perf_counter() - started)

    def generate_many(
        self, prompts: list[str], params: GenerationParams, cancel=None
    ) -> Iterator[tuple[int, Generation]]:
        """Yield ``(index, Generation)`` as answers arrive, ``parallel`` requests at a time. On cancel or error the
        requests not yet sent are dropped; answers already yielded are the caller's to keep."""
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="llm-server")
        futures = {}
        waiting = list(enumerate(prompts))[::-1]
        try:
            while waiting or futures:
                while waiting and len(futures) < self.parallel:
                    index, prompt = waiting.pop()
                    futures[pool.submit(self.generate, prompt, params)] = index
                done, _ = wait(futures, timeout=0.1, return_when=FIRST_COMPLETED)
                check_cancel(cancel)
                for future in done:
                    yield futures.pop(future), future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def reported_hash(self) -> str | None:
        """The model hash the server reports in ``/models``, if it reports one (llama.cpp's server does not)."""
        if self._reported_hash is None:
            try:
                models = self._request("/models").get("data", [])
            except (_Retryable, ScelmoError):
                return None
            entry = next((m for m in models if m.get("id") == self.name), {})
            self._reported_hash = next((str(entry[f]) for f in HASH_FIELDS if entry.get(f)), "")
        return self._reported_hash or None

    def info(self) -> dict:
        return {
            "backend": "openai-server",
            "name": self.name,
            "server_url": self.base_url,
            "sha256": self.sha256,
            "model_hash_reported": self.reported_hash(),
            "chat_format": "server",
            "parallel": self.parallel,
            "timeout_s": self.timeout,
            "retries": self.retries,
        }

    def close(self) -> None:
        pass
