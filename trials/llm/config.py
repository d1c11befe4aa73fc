"""The `llm` / `judge` config (Hydra group conf/llm/, conf/judge/), validated with clear errors."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trials.llm.base import LLMError
from trials.secrets import HIDDEN, looks_like_key, shown


class LLMConfigError(LLMError, ValueError):
    """A bad `llm`/`judge` config value; the message names the field and the fix."""


#: Upper bounds of the numeric settings (README, "LLM settings"): a timeout or retry wait of at
#: most one day, at most 1,000,000 reply tokens, 100 retries, 100,000 requests in flight and
#: 10^12 requests or tokens per minute; far above any real endpoint, but finite.
MAX_WAIT_S = 86_400.0
MAX_TOKENS = 1_000_000
MAX_RETRIES = 100
MAX_CONCURRENCY = 100_000
MAX_PER_MIN = 1e12


class LLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    backend: Literal["local", "openai", "scripted"]
    model: str = ""
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    api_version: str | None = None  # Azure OpenAI: set it to use AzureOpenAI with base_url as endpoint
    # Every number is finite and bounded: inf, nan or an absurd value (llm.timeout=1e20) would
    # otherwise pass here and fail in every job (OverflowError in libcurl's or time.sleep's int).
    temperature: float = Field(0.7, ge=0.0, le=2.0, allow_inf_nan=False)
    max_tokens: int = Field(256, gt=0, le=MAX_TOKENS)
    timeout: float = Field(60.0, gt=0, le=MAX_WAIT_S, allow_inf_nan=False)
    max_retries: int = Field(4, ge=0, le=MAX_RETRIES)
    # the endpoint's scheduler (trials/llm/scheduler.py): in-flight cap (null = adaptive: start at
    # 16, grow while requests succeed, shrink 10% on 429/503), requests and tokens per minute (optional)
    max_concurrency: Annotated[int, Field(gt=0, le=MAX_CONCURRENCY)] | None = None
    rpm: Annotated[float, Field(gt=0, le=MAX_PER_MIN, allow_inf_nan=False)] | None = None
    tpm: Annotated[float, Field(gt=0, le=MAX_PER_MIN, allow_inf_nan=False)] | None = None
    retry_base_s: float = Field(0.5, ge=0, le=MAX_WAIT_S, allow_inf_nan=False)
    retry_max_s: float = Field(20.0, ge=0, le=MAX_WAIT_S, allow_inf_nan=False)
    json_schema: bool = True  # use response_format=json_schema where the endpoint supports it
    price: dict[str, float] | None = None  # {input_per_1m, output_per_1m} overriding the price table
    # local backend
    model_path: str | None = None
    n_ctx: int = Field(2048, gt=0)
    # per process; "auto" = the machine's cores (capped at 8; the runner divides them among its
    # joblib workers); null = llama.cpp's default (cores / 2)
    n_threads: Annotated[int, Field(gt=0)] | Literal["auto"] | None = "auto"
    use_extra_bufts: bool = False  # llama.cpp repack/AMX buffers: faster on some CPUs, SIGILL on others
    # scripted backend
    rules: list[dict[str, Any]] = Field(default_factory=list)


def _plain(cfg: Any) -> dict[str, Any]:
    """DictConfig or Mapping -> a plain dict (resolving interpolations)."""
    if cfg is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return dict(cfg)


def parse_llm_config(cfg: Any, where: str = "llm") -> LLMConfig:
    try:
        return LLMConfig.model_validate(_plain(cfg))
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":  # a typo: name the closest setting
                close = difflib.get_close_matches(field, list(LLMConfig.model_fields), n=1, cutoff=0.6)
                hint = f" (did you mean '{where}.{close[0]}'?)" if close else ""
                problems.append(f"unknown key {where}.{field}{hint}: not a setting, trials never reads it")
                continue
            # the bad value, unless it (or the field's name) looks like a key: the message reaches the console
            value = HIDDEN if looks_like_key(err.get("input"), field) else shown(err.get("input"))
            got = f" (got {value})" if err["type"] != "missing" and "input" in err else ""
            problems.append(f"{where}.{field}: {err['msg']}{got}")
        raise LLMConfigError(
            "invalid LLM config: " + "; ".join(problems)
            + f". Fix the file in conf/{where}/ or the command-line override (e.g. {where}.temperature=0.7)."
        ) from None


def resolve_judge_cfg(llm_cfg: Any, judge_cfg: Any) -> dict[str, Any]:
    """The judge's config: the agent `llm` config overlaid with whatever `judge` sets.

    An empty judge config (conf/judge/same.yaml) means "judge with the same model as the agents".
    If the judge switches backend, keys that only make sense for the agent backend (base_url,
    model, model_path, api_key_env, api_version, rules, price) are not inherited.
    """
    base, over = _plain(llm_cfg), _plain(judge_cfg)
    if over.get("backend") and over["backend"] != base.get("backend"):
        for key in ("base_url", "model", "model_path", "api_key_env", "api_version", "rules", "price"):
            base.pop(key, None)
    return {**base, **over}
