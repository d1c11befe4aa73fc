"""One key-like rule (trials.secrets.KEYLIKE) for refusing and for redacting: the common token
prefixes of the major providers, not only sk-/AIza/Bearer."""

from __future__ import annotations

import pytest

from trials.cli import main
from trials.llm.openai_backend import url_problem
from trials.secrets import looks_like_key, redact

TOKENS = {  # made-up tokens of each provider's form
    "hf_": "hf_" + "aB3dE5gH7j" * 3 + "kL",                       # Hugging Face (was not detected)
    "xoxb-": "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",        # Slack bot
    "xoxp-": "xoxp-1234567890-0987654321-AbCdEfGhIjKlMnOp",        # Slack user
    "glpat-": "glpat-AbCdEfGhIjKlMnOpQrSt",                        # GitLab
    "AKIA": "AKIAIOSFODNN7EXAMPLE",                                # AWS access key id
    "sk-ant-": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv",              # Anthropic
    "github_pat_": "github_pat_11ABCDEFG0abcdefghijklmnopqrstuv",  # GitHub fine-grained
    "ghp_": "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",            # GitHub classic
}


@pytest.mark.parametrize("prefix, token", TOKENS.items())
def test_provider_tokens_are_key_like_and_redacted_by_the_same_rule(prefix, token):
    assert looks_like_key(token) and looks_like_key(f"my token is {token}.")
    text = redact(f"HTTP 401: bad key {token} given")
    assert token not in text and f"{prefix}***" in text
    problem = url_problem(f"ftp://example.com/{token}")  # the endpoint message never shows it
    assert problem and token not in problem


@pytest.mark.parametrize("text", ["hf_short", "the AKIA rule", "AKIAsmall", "xoxb-", "ask_me_anything"])
def test_ordinary_words_are_not_keys(text):
    assert not looks_like_key(text) and redact(text) == text


def test_a_hugging_face_token_on_the_command_line_is_refused(tmp_path, monkeypatch, capsys):
    # was: exit 0 and the token saved in config.yaml, .hydra/ and the report
    monkeypatch.chdir(tmp_path)
    token = TOKENS["hf_"]
    assert main(["run", "llm=scripted", "experiment=hello", f"experiment.questions=[{token}]"]) == 2
    out, err = capsys.readouterr()
    assert "looks like an API key" in err and token not in out + err
    assert sorted(tmp_path.iterdir()) == []
