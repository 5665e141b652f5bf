"""Many answers decoded together in one llama.cpp context: the weights are read once per step for many genes.

llama.cpp decodes a batch that mixes tokens of several sequences (each with its own ``seq_id`` and KV cells),
so B prompts cost little more per step than one on a CPU, where a single stream leaves the matrix units idle.
This module drives that through llama-cpp-python's low-level API with *continuous batching*: B slots, each slot
holds one prompt; when an answer ends its slot is cleared and refilled with the next prompt at once.

Fidelity to the single-stream path (``Llama.create_chat_completion``), so batched answers are the same answers:
* prompt tokens and stop strings come from the model's own chat handler (:func:`chat_request`), not a re-typed
  template;
* each slot has its own sampler built by the same ``Llama._init_sampler`` (penalties over the answer so far,
  then greedy or top-k/typical/top-p/min-p/temperature/dist with the request seed);
* an answer ends on an end-of-generation token, on the first stop string (the text is cut there) or at
  ``max_tokens``, exactly as ``_create_completion`` decides, including its hold-back of split UTF-8 characters.
Only floating-point effects of batched matrix products can change a token.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import check_cancel
from scelmo_desktop.core.protocols import Generation, GenerationParams

# Defaults of create_chat_completion that GenerationParams does not carry; the same values keep the same chain.
CHAT_MIN_P = 0.05
CHAT_TYPICAL_P = 1.0
CONTEXT_GRANULE = 256  # per-sequence context is rounded up to this many tokens


class _Captured(Exception):
    def __init__(self, prompt_tokens: list[int], stop: list[str]):
        super().__init__("captured")
        self.prompt_tokens, self.stop = prompt_tokens, stop


class _RecordingLlama:
    """Stands in for ``Llama`` in a chat handler call and stops it at ``create_completion``, keeping its input."""

    def __init__(self, llm):
        self._llm = llm

    def __getattr__(self, name):
        return getattr(self._llm, name)

    def create_completion(self, prompt, stop=None, **_):
        stops = [] if stop is None else [stop] if isinstance(stop, str) else list(stop)
        raise _Captured(list(prompt), stops)


def chat_request(llm, prompt: str, params: GenerationParams) -> tuple[list[int], list[str]]:
    """The prompt tokens and stop strings that ``create_chat_completion`` would decode for this user message."""
    from llama_cpp import llama_chat_format

    handler = (
        llm.chat_handler
        or llm._chat_handlers.get(llm.chat_format)
        or llama_chat_format.get_chat_completion_handler(llm.chat_format)
    )
    try:
        handler(
            llama=_RecordingLlama(llm),
            messages=[{"role": "user", "content": prompt}],
            stop=list(params.stop),
            temperature=params.temperature,
            max_tokens=params.max_tokens,
        )
    except _Captured as captured:
        return captured.prompt_tokens, captured.stop
    raise ScelmoError(
        f"The chat format '{llm.chat_format}' did not produce a completion request; batched "
        "generation cannot be used with it (use batch size 1)."
    )


@dataclass
class _Slot:
    index: int
    seq_id: int
    prompt_tokens: list[int]
    stops: list[bytes]
    sampler: object  # llama.cpp sampler chain; None for greedy decoding (done in NumPy, see _greedy)
    started: float
    pending: list[int] = field(default_factory=list)
    position: int = 0
    logit_row: int = -1
    completion: list[int] = field(default_factory=list)
    text: bytes = b""
    held_bytes: int = 0  # bytes still missing from a split UTF-8 character (stop checks wait for it)


def _held_bytes(text: bytes, held: int) -> int:
    """``_create_completion``'s multi-byte rule: after an incomplete UTF-8 lead byte, skip the checks."""
    for k, char in enumerate(text[-3:]):
        k = 3 - k
        for num, pattern in ((2, 192), (3, 224), (4, 240)):
            if num > k and pattern & char == pattern:
                held = num - k
    return held


class BatchedGenerator:
    """Continuous batching over ``n_parallel`` sequences of one loaded ``Llama`` (its weights are shared)."""

    def __init__(self, llm, *, n_parallel: int):
        if n_parallel < 1:
            raise ScelmoError(f"The batch size must be at least 1 (got {n_parallel}).")
        self._llm = llm
        self.n_parallel = n_parallel

    def _context(self, per_sequence_ctx: int):
        import llama_cpp

        # The single-stream context's own settings (attention kernel, KV types, RoPE…) so the numbers match;
        # only the size and the number of sequences change.
        params = llama_cpp.llama_context_params.from_buffer_copy(self._llm.context_params)
        params.n_ctx = per_sequence_ctx * self.n_parallel
        params.n_batch = params.n_ctx  # a step may hold several whole prompts
        params.n_seq_max = self.n_parallel
        # One KV buffer for all sequences (masked per sequence). With a buffer per sequence llama.cpp must split
        # a batch into equal per-sequence slices, so a new gene's prompt joining running genes was decoded a
        # token at a time, which made batching slower than a single stream (benchmarks/bench_llm_batch.py).
        params.kv_unified = True
        context = llama_cpp.llama_init_from_model(self._llm._model.model, params)
        if not context:
            raise ScelmoError(
                f"llama.cpp could not create a context for {self.n_parallel} parallel sequences of "
                f"{per_sequence_ctx} tokens (out of memory?); lower the batch size."
            )
        return context

    def _sampler(self, params: GenerationParams):
        self._llm.set_seed(params.seed)
        return self._llm._init_sampler(
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=CHAT_MIN_P,
            typical_p=CHAT_TYPICAL_P,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
        )

    def generate(self, prompts: list[str], params: GenerationParams, cancel=None) -> Iterator[tuple[int, Generation]]:
        """Yield ``(index into prompts, Generation)`` as each answer ends (not in prompt order)."""
        import llama_cpp

        requests = [chat_request(self._llm, prompt, params) for prompt in prompts]
        if not requests:
            return
        longest = max(len(tokens) for tokens, _ in requests)
        per_sequence = -(-(longest + params.max_tokens + 1) // CONTEXT_GRANULE) * CONTEXT_GRANULE
        context = self._context(per_sequence)
        memory = llama_cpp.llama_get_memory(context)
        vocab = self._llm._model.vocab
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        greedy = params.temperature == 0.0  # the default: a vectorised exact copy of penalties + greedy
        batch = llama_cpp.llama_batch_init(per_sequence * self.n_parallel, 0, 1)
        piece = (ctypes.c_char * 64)()
        waiting = deque(enumerate(requests))
        free_ids = list(range(self.n_parallel - 1, -1, -1))
        active: list[_Slot] = []
        try:
            while waiting or active:
                check_cancel(cancel)
                while waiting and free_ids:
                    index, (tokens, stops) = waiting.popleft()
                    seq_id = free_ids.pop()
                    llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)
                    active.append(
                        _Slot(
                            index,
                            seq_id,
                            tokens,
                            [s.encode("utf-8") for s in stops],
                            None if greedy else self._sampler(params),
                            time.perf_counter(),
                            pending=list(tokens),
                        )
                    )
                self._fill(batch, active)
                status = llama_cpp.llama_decode(context, batch)
                if status != 0:
                    raise ScelmoError(
                        f"llama.cpp failed to decode a batch of {len(active)} sequences (status "
                        f"{status}); lower the batch size."
                    )
                finished = []
                for slot in active:
                    slot.position += len(slot.pending)
                    if greedy:
                        token = self._greedy(context, slot, n_vocab, params.repeat_penalty)
                    else:
                        token = llama_cpp.llama_sampler_sample(slot.sampler.sampler, context, slot.logit_row)
                    if self._step(slot, token, vocab, piece, params.max_tokens):
                        finished.append(slot)
                    else:
                        slot.pending = [token]
                for slot in finished:
                    active.remove(slot)
                    free_ids.append(slot.seq_id)
                    text = slot.text.decode("utf-8", errors="ignore").strip()
                    yield (
                        slot.index,
                        Generation(
                            text=text, n_tokens=len(slot.completion), seconds=time.perf_counter() - slot.started
                        ),
                    )
        finally:
            llama_cpp.llama_batch_free(batch)
            llama_cpp.llama_free(context)

    def _greedy(self, context, slot: _Slot, n_vocab: int, penalty: float) -> int:
        """llama.cpp's penalties-then-greedy chain for one sequence, on its logits row with NumPy.

        Same arithmetic in float32 (a logit of a token among the last ``last_n_tokens_size`` answer tokens is
        divided by the penalty when positive, multiplied when not; then the first maximum wins), but without
        copying all 262k candidates into a llama_token_data array per sequence and step (a visible share of a
        batched step, larger with several threads, as sampling itself is not threaded; the step's speed is
        measured by benchmarks/bench_llm_batch.py).
        """
        import llama_cpp

        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(context, slot.logit_row), shape=(n_vocab,))
        recent = slot.completion[-self._llm.last_n_tokens_size :] if self._llm.last_n_tokens_size else []
        if recent and penalty != 1.0:
            seen = np.unique(np.asarray(recent, dtype=np.int64))
            values = row[seen]
            factor = np.float32(penalty)
            row[seen] = np.where(values <= 0, values * factor, values / factor)
        return int(np.argmax(row))

    @staticmethod
    def _fill(batch, active: list[_Slot]) -> None:
        n = 0
        for slot in active:
            last = len(slot.pending) - 1
            for offset, token in enumerate(slot.pending):
                batch.token[n] = token
                batch.pos[n] = slot.position + offset
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq_id
                batch.logits[n] = offset == last
                n += 1
            slot.logit_row = n - 1
        batch.n_tokens = n

    @staticmethod
    def _step(slot: _Slot, token: int, vocab, piece, max_tokens: int) -> bool:
        """Take one sampled token; True when the answer is complete (same rules as ``_create_completion``)."""
        import llama_cpp

        if llama_cpp.llama_vocab_is_eog(vocab, token):
            return True
        slot.completion.append(token)
        size = llama_cpp.llama_token_to_piece(vocab, llama_cpp.llama_token(token), piece, len(piece), 0, False)
        slot.text += bytes(piece[:size])
        slot.held_bytes = _held_bytes(slot.text, slot.held_bytes)
        if slot.held_bytes > 0:
            slot.held_bytes -= 1
            return False
        hits = [stop for stop in slot.stops if stop in slot.text]
        if hits:
            slot.text = slot.text[: slot.text.index(hits[0])]
            return True
        return len(slot.completion) >= max_tokens
