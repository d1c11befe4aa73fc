"""Issue #11: every number in metrics.csv is right, or missing with its reason. The issue's failing
inputs, each with its right value (input 5 is in test_llm_openai.py; the answer corpus in
test_answers.py)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from runner_support import config, metrics, run

from trials.judging import propositions as P
from trials.judging.extract import extract_vote
from trials.judging.judge import judge
from trials.run import jobs as run_jobs
from trials.run.budget import Budget
from trials.run.experiment import _prepare
from trials.run.rundir import RunDir
from trials.session.actions import parse_action
from trials.session.events import Event

ISSUE_SCORE = "Score: 10\nReason: The answer mentions 2 hobbies and fits the persona perfectly."
ISSUE_VOTE = "On a scale of 1-5, I'd say 4: I would probably buy it for my lunch."


def _talk(agent="Ana", text="I like cold soup."):
    return [Event(step=0, kind="stimulus", type="CONVERSATION", content="Would you buy it?", agent=agent),
            Event(step=0, kind="action", type="TALK", agent=agent, content=text)]


def test_input1_score_10_is_clamped_to_9_and_flagged_never_the_2_of_the_reason(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Claim:", "reply": ISSUE_SCORE}])
    r = judge(P.persona_adherence(), llm, events=_talk(), agent="Ana")
    assert r.score == 9 and r.flag == "clamped" and r.missing_reason == ""
    assert r.justification.startswith("The answer mentions 2 hobbies")


def test_input1_clamp_reaches_the_metrics_table(tmp_path):
    assert run(tmp_path, "experiment=hello", "run.replicates=2",
               f"llm.rules=[{{match:'Claim:',reply:'{ISSUE_SCORE.replace(chr(10), ' ')}'}}]") == 0
    m = metrics(tmp_path)
    adh = m[m["metric"] == "persona_adherence"]
    assert (adh["value"] == 9).all() and (adh["flag"] == "clamped").all()
    assert "flag" in pd.read_csv(tmp_path / "metrics.csv").columns


@pytest.mark.parametrize("mode", ["lines", "auto"])
def test_input2_restated_scale_is_not_the_vote(scripted_llm, mode):
    llm = scripted_llm(rules=[{"match": "Reply as:\nVote", "reply": ISSUE_VOTE},
                              {"match": "From what", "reply": "not json at all"}])
    r = extract_vote(llm, _talk(), agent="Ana", question="Would you buy it?", mode=mode)
    assert r.ok and r.value.vote == 4 and r.method == "lines"


def test_input3_an_agent_who_only_said_done_has_no_vote_and_no_call(scripted_llm):
    llm = scripted_llm(rules=[{"match": ".", "reply": "Vote: 5"}])
    events = [*_talk("Ben"), Event(step=0, kind="action", type="DONE", agent="Ana")]
    r = extract_vote(llm, events, agent="Ana", question="Would you buy it?")
    assert r.value is None and r.missing_reason == "no answer" and "said nothing" in r.missing_detail
    assert llm.recorder.rows == []


@pytest.mark.parametrize("line, names, target, content", [
    ("TALK to Anne-Marie Dubois: what do you think?", ["Anne-Marie Dubois", "Ana"], "Anne-Marie Dubois",
     "what do you think?"),
    ("TALK to Park Soo-jin: what do you think?", ["Park Soo-jin"], "Park Soo-jin", "what do you think?"),
    ("TALK to Seán O'Brien: hello", ["Seán O'Brien"], "Seán O'Brien", "hello"),
    ("TALK to J. R. Smith: ok?", ["J. R. Smith"], "J. R. Smith", "ok?"),
    ("talk to zoë müller - sounds good", ["Zoë Müller"], "Zoë Müller", "sounds good"),
    ("TALK to 李明：你好", ["李明"], "李明", "你好"),
    ("TALK to Анна Петрова: привет", ["Анна Петрова"], "Анна Петрова", "привет"),
    ("TALK to Anne-Marie: hi", ["Anne-Marie Dubois"], "Anne-Marie Dubois", "hi"),
    ("TALK to Bob-Lee Swagger: yo", ["Ana"], None, "yo"),  # unknown name: broadcast, content intact
])
def test_input4_names_with_hyphens_apostrophes_dots_accents_scripts(line, names, target, content):
    a = parse_action(line, names)
    assert (a.type, a.target, a.content) == ("TALK", target, content)


def test_shipped_personas_with_hyphens_are_addressable():
    from trials.persona import library_path, load_folder

    names = [p.name for sub in ("difficult_people", "political", "general")
             for p in load_folder(library_path(sub))]
    for name in names:
        a = parse_action(f"TALK to {name}: what do you think?", names)
        assert (a.target, a.content) == (name, "what do you think?"), name


def _judge_events(root):
    """The judge events of a run's transcript.jsonl, without the re-measurement marker."""
    events = [json.loads(line) for line in (root / "transcript.jsonl").read_text().splitlines()]
    return [{k: v for k, v in e.items() if k != "remeasured"} for e in events if e["kind"] == "judge"]


def _remeasured(root):
    return [e for e in map(json.loads, (root / "transcript.jsonl").read_text().splitlines()) if e.get("remeasured")]


HELLO_FAIL = ["experiment=hello", "run.replicates=2", "llm.rules=[{match:'Claim:',error:permanent,times:2}]"]


def test_input6_failed_judge_is_missing_call_failed_and_resume_remeasures(tmp_path):
    run_jobs._CLIENTS.clear()  # the scripted rule's `times` counts per backend instance
    clean = tmp_path / "clean"
    assert run(clean, "experiment=hello", "run.replicates=2") == 0
    root = tmp_path / "faulty"
    assert run(root, *HELLO_FAIL) == 0  # the jobs are done: their sessions are intact
    m = metrics(root)
    adh = m[m["metric"] == "persona_adherence"]
    assert adh["value"].isna().all() and (adh["missing_reason"] == "call failed").all()
    assert adh["missing_detail"].str.contains("judge call failed: PermanentLLMError").all()
    assert all((RunDir(root).job_dir("control", r) / "remeasure.jsonl").is_file() for r in range(2))
    actions_before = pd.read_parquet(root / "llm_calls.parquet").query("purpose == 'action'").shape[0]
    assert [e["content"] for e in _judge_events(root)] == ["call failed", "call failed"]

    # resume with the printed command: the two judge calls are repeated (the rule is used up),
    # the sessions are not re-simulated, and the values equal the fault-free run's
    assert run(root, *HELLO_FAIL, f"run.resume_dir={root}") == 0
    pd.testing.assert_frame_equal(metrics(root), metrics(clean))
    calls = pd.read_parquet(root / "llm_calls.parquet")
    assert calls.query("purpose == 'action'").shape[0] == actions_before
    assert not any(RunDir(root).jobs.glob("*/*/remeasure.jsonl"))
    # the transcript holds the new judgement (its justification and score), in place of "call failed"
    assert _judge_events(root) == _judge_events(clean) and len(_remeasured(root)) == 2
    assert all(e["content"] != "call failed" and e["scores"]["persona_adherence"] is not None
               for e in _judge_events(root))


def test_input7_calls_of_failed_jobs_are_recorded(tmp_path):
    code = run(tmp_path, "experiment=hello", "run.replicates=2",
               "+experiment.arms.broken={judge:{rules:[{match:'Claim:',error:transient}]}}",
               "++llm.max_retries=1", "++llm.retry_base_s=0")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    calls = pd.read_parquet(tmp_path / "llm_calls.parquet")
    broken = calls[calls["arm"] == "broken"]
    # hello's judge on a transient error -> missing value (job done); the action calls count too
    assert code == 0 and len(broken) == 4 and set(calls["job_status"]) == {"done"}
    assert manifest["totals"]["calls"] == len(calls)
    assert manifest["totals"]["requests_sent"] == int((1 + calls.loc[~calls["cached"], "retries"]).sum())
    assert (broken.loc[broken["purpose"] == "judge", "retries"] == 1).all()

    dead = tmp_path / "dead"
    assert run(dead, "experiment=hello", "run.replicates=2",
               "+experiment.arms.broken={llm:{rules:[{match:'.',error:permanent}]}}") == 1
    calls = pd.read_parquet(dead / "llm_calls.parquet")
    failed = calls[calls["job_status"] == "failed"]
    assert len(failed) == 2 and set(failed["arm"]) == {"broken"} and (failed["error"] != "").all()
    manifest = json.loads((dead / "manifest.json").read_text())
    assert manifest["totals"]["calls"] == len(calls) and manifest["totals"]["calls_failed_jobs"] == 2


def test_input8_budget_reserves_one_estimate_per_started_job():
    b = Budget(1.0, per_job_estimate=0.3)
    assert [b.try_reserve() for _ in range(4)] == [True, True, True, False] and b.stopped
    b.settle(0.5)  # a job cost more than its estimate: later estimates grow to the observed mean
    assert b.job_estimate() == 0.5 and b.spent == 0.5
    assert not b.try_reserve()  # 0.5 spent + 0.6 reserved + 0.5 > 1.0
    assert Budget(None, per_job_estimate=math.nan).try_reserve()


def test_input8_budget_counts_what_was_spent_before_resume():
    assert not Budget(1.0, per_job_estimate=0.1, spent=0.95).try_reserve()


def test_input8_budget_survives_resume(tmp_path):
    assert run(tmp_path, "experiment=hello", "run.replicates=1", "run.budget_usd=0.5") == 0
    cfg = _prepare(config("experiment=hello", f"run.resume_dir={tmp_path}"), tmp_path)
    assert cfg["run"]["budget_usd"] == 0.5  # the printed resume command does not drop it
    cfg = _prepare(config("experiment=hello", f"run.resume_dir={tmp_path}", "run.budget_usd=2"), tmp_path)
    assert cfg["run"]["budget_usd"] == 2


def test_input8_budget_with_an_unpriced_model_is_a_config_error(tmp_path, capsys):
    code = run(tmp_path, "experiment=hello", "llm=openai", "llm.model=my-private-model",
               "llm.base_url=http://127.0.0.1:9/v1", "run.budget_usd=1")
    err = capsys.readouterr().err
    assert code == 2 and "my-private-model" in err and "no price" in err and "llm.price" in err
    assert not (tmp_path / "manifest.json").exists()


def test_input9_undelivered_treatment_is_named_and_marked(tmp_path):
    """brainstorm_variety with one step: the variety intervention never fires."""
    assert run(tmp_path, "experiment=brainstorm_variety", "run.replicates=2", "experiment.steps=1",
               "experiment.group_size=2", "run.analyze=true", "run.report=true") == 0
    arms = json.loads((tmp_path / "manifest.json").read_text())["arms"]
    assert arms["control"]["delivered"] is None and arms["treatment"]["delivered"] is False
    assert arms["treatment"]["mechanisms"]["interventions_fired"] == 0
    assert arms["treatment"]["mechanisms"]["stimulus_differs"] is False  # same task, nothing injected
    assert "treatment not delivered" in arms["treatment"]["note"]
    delivery = pd.read_csv(tmp_path / "delivery.csv")
    assert list(delivery.columns) == ["arm", "mechanism", "expected", "delivered", "count", "note"]
    row = delivery[(delivery.arm == "treatment") & (delivery.mechanism == "interventions")].iloc[0]
    assert row["expected"] and not row["delivered"] and row["count"] == 0
    eff = pd.read_csv(tmp_path / "analysis" / "effects.csv")
    assert (eff["treatment_delivered"] == False).all()  # noqa: E712
    assert eff["notes"].str.contains("treatment not delivered").all()
    report = (tmp_path / "report.md").read_text()
    caveat = report.index("Arm 'treatment': treatment not delivered")
    assert caveat < report.index("## Headline results") < report.index("| treatment (treatment not delivered) |")


def test_delivered_treatment_is_marked_delivered(tmp_path):
    assert run(tmp_path, *["experiment=brainstorm_correction", "experiment.arms.treatment.interventions=[]",
                           "run.replicates=1", "experiment.steps=1", "experiment.group_size=2"]) == 0
    arms = json.loads((tmp_path / "manifest.json").read_text())["arms"]
    assert arms["treatment"]["delivered"] is True and arms["treatment"]["mechanisms"]["correction_checks"] > 0


def test_fired_intervention_is_delivered_and_its_stimulus_differs(tmp_path):
    assert run(tmp_path, "experiment=brainstorm_variety", "run.replicates=1", "experiment.steps=4",
               "experiment.group_size=2", "++experiment.intervention_options={variety:{k:1,similarity:0.0,cooldown:0}}") == 0
    arms = json.loads((tmp_path / "manifest.json").read_text())["arms"]
    mech = arms["treatment"]["mechanisms"]
    assert arms["treatment"]["delivered"] is True and mech["interventions_fired"] > 0 and mech["stimulus_differs"]


def test_measurement_check_flags_differential_missingness():
    from scipy import stats

    from analysis.missing import missingness

    rows = [{"arm": arm, "metric": "vote", "value": (float("nan") if i < k else 3.0),
             "missing_reason": "no answer" if i < k else ""}
            for arm, k in (("control", 1), ("treatment", 9)) for i in range(20)]
    miss = missingness(pd.DataFrame(rows), "control")
    t = miss[miss.arm == "treatment"].iloc[0]
    assert t["missing_share"] == 9 / 20 and t["share_diff"] == pytest.approx(8 / 20)
    assert t["p_fisher"] == pytest.approx(stats.fisher_exact([[9, 11], [1, 19]])[1]) and t["differential"]
    same = missingness(pd.DataFrame([{**r, "arm": r["arm"]} for r in rows if r["arm"] == "control"] +
                                    [{**r, "arm": "b"} for r in rows if r["arm"] == "control"]), "control")
    assert not same["differential"].any()


GEMMA_LIKE = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
              "{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
              "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + "
              "message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}"
              "{{'<start_of_turn>model\n'}}{% endif %}")


def test_input10_template_without_system_role_gets_it_folded_into_the_first_user_turn():
    pytest.importorskip("llama_cpp")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from trials.llm.local_backend import ChatTemplate

    raw = Jinja2ChatFormatter(template=GEMMA_LIKE, eos_token="<eos>", bos_token="<bos>")
    msgs = [{"role": "system", "content": "You are Ana."}, {"role": "user", "content": "Hi?"}]
    with pytest.raises(Exception, match="System role not supported"):
        raw(messages=msgs)  # what failed every job before
    tpl = ChatTemplate(raw, "gemma-like.gguf")
    assert tpl.system_role is False
    prompt = tpl.format(msgs).prompt
    assert "<start_of_turn>user\nYou are Ana.\n\nHi?<end_of_turn>" in prompt and "system" not in prompt
    plain = ChatTemplate(Jinja2ChatFormatter(template=GEMMA_LIKE.replace(
        "{{ raise_exception('System role not supported') }}", ""), eos_token="", bos_token=""), "ok.gguf")
    assert plain.system_role is True and "<start_of_turn>system\nYou are Ana." in plain.format(msgs).prompt


def test_input10_template_failing_otherwise_is_a_config_error():
    pytest.importorskip("llama_cpp")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from trials.llm import LLMConfigError
    from trials.llm.local_backend import ChatTemplate

    broken = Jinja2ChatFormatter(template="{{ raise_exception('Conversation roles must alternate') }}",
                                 eos_token="", bos_token="")
    with pytest.raises(LLMConfigError, match="broken.gguf"):
        ChatTemplate(broken, "broken.gguf")


def test_input11_loky_worker_logs_reach_cli_log(tmp_path):
    """Two loky worker processes: each one's INFO lines (here the judge's unparseable replies
    and the job start) are in <run dir>/cli.log, with the worker's pid."""
    assert run(tmp_path, "experiment=hello", "run.replicates=2", "run.n_jobs=2", "run.backend=loky",
               "+experiment.arms.mute={judge:{rules:[{match:'Claim:',reply:'no idea'}]}}") == 0
    log = (tmp_path / "cli.log").read_text()
    pids = {e["pid"] for e in RunDir(tmp_path).executions()}
    import os

    assert os.getpid() not in pids  # the jobs really ran in worker processes
    lines = [ln for ln in log.splitlines() if "judge reply without a clear score" in ln]
    assert len(lines) == 4  # 2 mute sessions x (first reply + re-ask)
    assert {int(ln.split("[pid ")[1].split("]")[0]) for ln in lines} <= pids


def test_input8_parallel_workers_stay_within_budget_plus_one_job_each(tmp_path):
    """4 workers, a priced model on the fake server: jobs start only while their reserved
    estimates fit, so the spend never runs to 4x the budget."""
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        code = run(tmp_path, "experiment=hello", "run.replicates=12", "llm=openai", "llm.model=fake-priced",
                   f"llm.base_url={srv.base_url}", "++llm.price={input_per_1m:1000,output_per_1m:1000}",
                   "run.n_jobs=4", "run.backend=threading", "run.budget_usd=3")
    man = json.loads((tmp_path / "manifest.json").read_text())
    calls = pd.read_parquet(tmp_path / "llm_calls.parquet")
    per_job = calls.groupby("session")["cost_usd"].sum()
    per_job_estimate = man["estimate"]["cost_usd"] / man["n_jobs_total"]
    assert code == 1 and man["stopped_for_budget"] and 0 < man["n_done"] < 12  # 1: jobs not run (budget)
    assert man["totals"]["cost_usd"] == pytest.approx(per_job.sum())
    # within the budget plus one job's overrun (real cost above its estimate) per worker
    assert per_job.sum() <= 3 + 4 * max(0.0, per_job.max() - per_job_estimate) + 1e-9
    assert man["n_done"] <= math.floor(3 / min(per_job_estimate, per_job.min()))


def test_input6_failed_vote_leaves_positive_share_missing_until_remeasured(tmp_path):
    run_jobs._CLIENTS.clear()
    base = ["experiment=market_research", "run.replicates=1", "experiment.group_size=3",
            "experiment.arms={control:{}}"]
    clean = tmp_path / "clean"
    assert run(clean, *base) == 0
    root = tmp_path / "faulty"
    # the first vote extraction (JSON, then lines) of the run fails: one agent's vote is missing
    failing = [*base, "llm.rules=[{match:'From what',error:permanent,times:2}]"]
    assert run(root, *failing) == 0
    m = metrics(root)
    vote = m[(m.metric == "vote") & m["value"].isna()]
    share = m[m.metric == "positive_share"].iloc[0]
    assert len(vote) == 1 and vote["missing_reason"].iloc[0] == "call failed"
    assert math.isnan(share["value"]) and share["missing_reason"] == "call failed"  # not a share of 2 of 3
    assert run(root, *failing, f"run.resume_dir={root}") == 0
    pd.testing.assert_frame_equal(metrics(root), metrics(clean))
    assert _judge_events(root) == _judge_events(clean)  # the vote's event: the new reason, not "call failed"
    assert [(e["type"], e["scores"]["vote"] is not None) for e in _remeasured(root)] == [("vote", True)]


def test_failed_session_rows_are_not_delivered_and_counted_in_missingness(tmp_path):
    run_jobs._CLIENTS.clear()
    # the first action request of the run fails for good: that session's job fails
    code = run(tmp_path, "experiment=hello", "run.replicates=3", "run.analyze=true",
               "llm.rules=[{match:'Stay in character',error:permanent,times:1}]")
    assert code == 1
    m = metrics(tmp_path)
    lost = m[m["missing_reason"] == "not delivered"]
    assert len(lost) == 2 and set(lost["metric"]) == {"persona_adherence", "answer_chars"}
    assert lost["missing_detail"].str.startswith("job failed: ").all() and lost["value"].isna().all()
    miss = pd.read_csv(tmp_path / "analysis" / "missing.csv")
    row = miss[(miss.metric == "answer_chars") & (miss.reason == "not delivered")].iloc[0]
    assert row["count"] == 1 and row["share"] == pytest.approx(1 / 3)


def test_faulty_endpoint_gives_the_fault_free_table_and_every_request_is_recorded(tmp_path):
    """20% faults (429, 500, malformed 200, no choices) on the loopback server; replies are a
    function of the request, so retried faults must reproduce the fault-free metrics exactly."""
    import sys

    from fake_openai import FakeOpenAI

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    from runner_scaling import reply

    over = ["experiment=brainstorm_correction", "run.replicates=1", "experiment.steps=2", "experiment.group_size=2",
            "llm=openai", "llm.model=fake", "llm.max_retries=8", "++llm.retry_base_s=0.01",
            "++llm.retry_max_s=0.05", "run.n_jobs=2", "run.backend=threading"]
    seen = {}
    for name, faults in (("clean", {}), ("faulty", {"429": 0.05, "500": 0.05, "malformed": 0.05, "no_choices": 0.05})):
        with FakeOpenAI(reply=reply, retry_after=0.01, faults=faults, fault_seed=3) as srv:
            assert run(tmp_path / name, *over, f"llm.base_url={srv.base_url}") == 0
            seen[name] = (srv.requests, sum(v for k, v in srv.faults_served.items() if k != "normal"))
    assert seen["faulty"][1] > 0  # faults were served
    pd.testing.assert_frame_equal(metrics(tmp_path / "faulty"), metrics(tmp_path / "clean"))
    for name in seen:
        totals = json.loads((tmp_path / name / "manifest.json").read_text())["totals"]
        assert totals["requests_sent"] == seen[name][0]


def test_a_remeasured_idea_extraction_adds_its_event_to_the_transcript(tmp_path):
    run_jobs._CLIENTS.clear()
    base = ["experiment=brainstorm_correction", "run.replicates=1",
            "experiment.steps=2", "experiment.group_size=3"]
    clean = tmp_path / "clean"
    assert run(clean, *base) == 0
    root = tmp_path / "faulty"
    failing = [*base, "llm.rules=[{match:'List every distinct idea',error:permanent,times:2}]"]
    assert run(root, *failing) == 0
    missing = metrics(root).query("metric == 'ideas' and missing_reason == 'call failed'")
    assert len(missing) == 1  # the run's first extraction failed: its session has no ideas event
    session = missing["session"].iloc[0]
    assert not [e for e in _judge_events(root) if e["type"] == "ideas" and e["session"] == session]
    assert run(root, *failing, f"run.resume_dir={root}") == 0
    pd.testing.assert_frame_equal(metrics(root), metrics(clean))
    ideas = [e for e in _remeasured(root) if e["type"] == "ideas"]
    assert [e["session"] for e in ideas] == [session]
    assert {k: ideas[0][k] for k in ("content", "scores", "agent")} == \
        {k: v for k, v in next(e for e in _judge_events(clean) if e["type"] == "ideas" and e["session"] == session).items()
         if k in ("content", "scores", "agent")}


def test_input8_resume_counts_earlier_jobs_of_unknown_cost_at_their_estimate(tmp_path, capsys):
    """The judge's endpoint reports no usage (its calls' cost NaN): a resume once counted the
    earlier jobs at their known part (~0) and ran on far past the cap. Now each earlier job counts
    the larger of its known cost and its estimate, as while running, and the resume stops there."""
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as agents, FakeOpenAI(usage=False) as judge:
        base = ("experiment=hello", "run.replicates=12", "llm=openai", "llm.model=fake-priced",
                f"llm.base_url={agents.base_url}", "++llm.price={input_per_1m:1000,output_per_1m:1000}",
                "judge=openai", "judge.model=fake-judge", f"judge.base_url={judge.base_url}",
                "++judge.price={input_per_1m:1000,output_per_1m:1000}", "run.backend=sequential",
                "run.analyze=false", "run.report=false")
        assert run(tmp_path, *base, "run.budget_usd=8") == 1  # stopped by the budget: not every job done
        man = json.loads((tmp_path / "manifest.json").read_text())
        per_job = man["estimate"]["cost_usd"] / man["n_jobs_total"]
        first = man["n_done"]
        assert man["stopped_for_budget"] and 0 < first < 12
        calls = pd.read_parquet(tmp_path / "llm_calls.parquet")
        assert calls.loc[calls["purpose"] == "judge", "cost_usd"].isna().all()  # the judge's cost is unknown
        known = calls.groupby("session")["cost_usd"].sum()  # NaN skipped: the known part per job
        assert (known < per_job).all()  # so only the estimate keeps these jobs from counting as less
        capsys.readouterr()
        assert run(tmp_path, *base, f"run.resume_dir={tmp_path}", "run.budget_usd=12") == 1
    man = json.loads((tmp_path / "manifest.json").read_text())
    # every job is counted at its estimate (it exceeds each job's known part): 12 USD holds
    # floor(12 / per_job) jobs in all, not ~12 / (known part) more
    assert man["n_done"] == math.floor(12 / per_job + 1e-9) and man["n_done"] * per_job <= 12
    err = capsys.readouterr().err
    assert f"already spent by this run directory, as the budget counts it: ${first * per_job:.4f}" in err
    assert f"{first} of unknown cost" in err


def test_the_end_line_counts_the_requests_sent_retries_included(tmp_path, capsys):
    """Was: "15 LLM calls (15 requests)" when the server saw 21 requests (the manifest's requests_sent)."""
    run_jobs._CLIENTS.clear()
    assert run(tmp_path, "experiment=hello", "run.replicates=2", "++llm.max_retries=3", "++llm.retry_base_s=0",
               "llm.rules=[{match:'Stay in character',error:transient,times:2}]") == 0
    totals = json.loads((tmp_path / "manifest.json").read_text())["totals"]
    assert totals["requests_sent"] == totals["calls"] + 2  # two retries
    assert f"{totals['calls']} LLM calls ({totals['requests_sent']} requests)" in capsys.readouterr().out
