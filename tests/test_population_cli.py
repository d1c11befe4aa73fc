"""`trials population` like the other commands: an unwritable `out` is one line naming the fix,
an earlier population is replaced only with force=true, cache.mode=replay without its file stops
before anything runs (`trials run` too), and a long job says up front what it will do."""

from __future__ import annotations

from trials.cli import main

POP = ["population", "llm=scripted"]


def test_unwritable_out_is_one_line_with_the_fix(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main([*POP, "n=4", f"out={blocker}/pop"]) == 2
    err = capsys.readouterr().err.strip()  # checked before Hydra writes anything
    assert err.startswith(f"config error: out={blocker}/pop: cannot write the output there: ")
    assert "is a file" in err and err.endswith("fix: give a writable folder") and "\n" not in err


def test_existing_population_is_replaced_only_with_force(tmp_path, capsys):
    out = tmp_path / "pop"
    assert main([*POP, "n=4", f"out={out}"]) == 0
    first = sorted(p.name for p in (out / "personas").iterdir())
    capsys.readouterr()
    assert main([*POP, f"out={out}", "n=3"]) == 2
    err = capsys.readouterr().err
    assert f"out={out} already holds a population" in err and "pass force=true" in err
    assert sorted(p.name for p in (out / "personas").iterdir()) == first  # untouched
    for word in ("no", "maybe"):  # a text is not a boolean ('no' is truthy in Python)
        assert main([*POP, f"out={out}", "n=3", f"force={word}"]) == 2
        assert f"force='{word}': use true or false" in capsys.readouterr().err
        assert sorted(p.name for p in (out / "personas").iterdir()) == first
    assert main([*POP, f"out={out}", "n=3", "force=true"]) == 0
    assert len(list((out / "personas").iterdir())) == 3


def test_replay_without_its_cache_file_stops_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "none.sqlite"
    cache = ["cache.mode=replay", f"cache.path={missing}"]
    assert main([*POP, "n=4", f"out={tmp_path / 'pop'}", *cache]) == 2
    err = capsys.readouterr().err
    assert "cache.mode=replay but the cache file" in err and "fix: cache.path=" in err
    assert not (tmp_path / "pop").exists()
    assert main(["run", "experiment=hello", "llm=scripted", *cache, f"hydra.run.dir={tmp_path / 'run'}"]) == 2
    assert "config error: cache.mode=replay but the cache file" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not missing.exists()


def test_start_line_and_progress_on_stderr(tmp_path, capsys):
    assert main(["population", "llm=scripted", "n=30", f"out={tmp_path / 'pop'}"]) == 0
    err = capsys.readouterr().err
    assert ("sampling 30 personas from gazpacho_respondents (seed 0, distributions route): 30 narrative "
            "call(s) to scripted scripted, then a near-duplicate check (exact Jaccard join) ...") in err
    assert "narratives: 30/30" in err and "near-duplicate check: 30/30" in err  # captured: not a terminal


def test_a_spec_error_at_this_n_stops_before_hydra_or_the_cache_writes(tmp_path, capsys, monkeypatch):
    # was: exit 2 after "sampling 5 personas ...", leaving outputs/population/<ts>/cli.log and .cache/
    monkeypatch.chdir(tmp_path)
    assert main([*POP, "population=usa_adults", "n=5", "out=p1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: conf/population/usa_adults.yaml: field 'attributes.age_range.min_count'")
    assert "sampling" not in err and sorted(tmp_path.iterdir()) == []


def test_an_incomplete_price_entry_is_a_config_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*POP, "n=4", "out=p1", "+prices.fake.input_per_1m=1"]) == 2
    assert "config error: prices: entry 'fake' has no output_per_1m" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == []
