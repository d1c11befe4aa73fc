"""The LLM layer: one interface (`LLM.chat`) over the openai, local and scripted backends."""

from trials.llm.base import (  # noqa: F401
    Backend,
    BudgetExceeded,
    CacheMiss,
    Completion,
    LLMError,
    LLMTimeout,
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
