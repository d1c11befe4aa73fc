"""The LLM layer: one interface (`LLM.chat`) over the openai, local and scripted backends.

`build_llm(cfg, cache=..., prices=...)` makes an `LLM`; `LLM.bind(seed=..., recorder=...)` makes a
per-job view. Cache, retries, concurrency limits, structured output and usage recording are small
wrappers (cache.py, retry.py, structured.py, usage.py) around a backend (one file each).
"""

from trials.llm.base import (  # noqa: F401
    PURPOSES,
    Backend,
    CacheMiss,
    CallsStopped,
    Completion,
    LLMError,
    LLMTimeout,
    MalformedResponse,
    Message,
    PermanentLLMError,
    RateLimited,
    Reply,
    Request,
    RetriesExhausted,
    StructuredOutputError,
    TransientLLMError,
    Usage,
)
from trials.llm.cache import ResponseCache  # noqa: F401
from trials.llm.client import LLM, allow_calls, build_llm, stop_calls, weighted_score  # noqa: F401
from trials.llm.config import LLMConfigError, resolve_judge_cfg  # noqa: F401
from trials.llm.scripted import Rule, ScriptedBackend  # noqa: F401
from trials.llm.usage import CallRecorder  # noqa: F401
