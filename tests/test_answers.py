"""The answer-parsing layer (trials.judging.answers): a corpus of realistic replies from strong
and weak models, each with its right value or its missing reason (issue #11)."""

from __future__ import annotations

import pytest

from trials.judging.answers import (CLAMPED, MISSING_REASONS, NO_ANSWER, OUT_OF_RANGE, UNPARSEABLE,
                                    missing, parse_choice, parse_score, parse_vote)

# (reply, right value or a missing reason from the vocabulary)
SCORES = [
    # the quoted input 1: "10" is clamped (flagged), never the "2" of the reason
    ("Score: 10\nReason: The answer mentions 2 hobbies and fits the persona perfectly.", 9),
    ("Score: 7\nReason: fits well", 7),
    ("score 3 - reason: weak", 3),
    ("**Score:** 9", 9),
    ("**Score**: 6\n**Reason**: consistent tone", 6),
    ("## Score\n4\n## Reason\nHalf the lines are off-persona.", 4),
    ("I would give it a 4 out of 9.", 4),
    ("Score = 2/9", 2),
    ("Score: 8/10", 8),
    ("Score (0-9): 3\nReason: mostly false", 3),
    ("On a scale from 0 to 9, I'd rate this a 6.", 6),
    ("Rating: 5 — not enough evidence to decide.", 5),
    ('{"score": 6, "reason": "stays in character"}', 6),
    ('```json\n{"score": "8", "reason": "clear"}\n```', 8),
    ("Score: seven\nReason: mostly true", 7),
    ("My score is 2 because the agent contradicts itself twice.", 2),
    ("Score:5", 5),
    ("score: 0\nreason: plainly false", 0),
    ("7", 7),
    ("7.", 7),
    ("The claim is mostly true. Score: 7. Reason: she speaks like a nurse of 20 years.", 7),
    ("Score: 9 Reason: In 3 of 3 turns she talks about her 2 kids.", 9),
    ("Score: 10/10", 9),  # 10 on a 10-point scale: clamped to the top of 0-9, flagged
    ("Score: 12", OUT_OF_RANGE),
    ("Score: 4-5\nReason: borderline", UNPARSEABLE),
    ("Score: 6 or 7", UNPARSEABLE),
    ("Score: 3\n...\nScore: 8", UNPARSEABLE),
    ("Score: 7.5", UNPARSEABLE),
    ("I'd give it 7. It mentions 2 hobbies.", UNPARSEABLE),
    ("The persona fits reasonably well overall.", UNPARSEABLE),
    ("Score: \nReason: I am not sure.", UNPARSEABLE),
    ("7 (out of 9) - the tone fits.", 7),
    ("On a scale of 10 I would say 6.", 6),
    ("I give it a 6, because no one would talk like that.", 6),
    ("Score: 10 out of 10", 9),
    ("I'm sorry, but I cannot rate this conversation.", NO_ANSWER),
    ("As an AI, I am unable to score on a 0-9 scale.", NO_ANSWER),
    ("", NO_ANSWER),
    ("   \n ", NO_ANSWER),
    # signs are read, never dropped (issue: "Score: -3" read 3); below the scale is never clamped
    ("Score: -3", OUT_OF_RANGE),
    ("Score: -1", OUT_OF_RANGE),
    ("Score: \u22122", OUT_OF_RANGE),  # Unicode minus
    ("Score: \u20132", OUT_OF_RANGE),  # en dash attached to the digit: a minus
    ("I give it a -1.", OUT_OF_RANGE),
    ("Score: -0", 0),
    ("Score: minus two", OUT_OF_RANGE),
    ("Score: negative 1", OUT_OF_RANGE),
    ("Score: +3", 3),
    ("Score - 2", 2),  # a dash with spaces is a separator, not a sign
    # another scale than the asked 0-9 (or the 0-10 habit) is never read on 0-9
    ("Score: 5/5", OUT_OF_RANGE),
    ("Score: 4 out of 5", OUT_OF_RANGE),
    ("Score: 3 (on 1-10)", OUT_OF_RANGE),
    ("Score: 3 (on 0-9)", 3),
    ("Score: 3 (0-10)", 3),
    ("Score: 8 out of 10", 8),
    ("Score: 70%", OUT_OF_RANGE),
    # two answers in one reply: the same decision as parse_vote
    ("Vote: 4 out of 5, maybe 3", UNPARSEABLE),
    ("Score: 6 (perhaps 7)", UNPARSEABLE),
    ("Score: 6-7", UNPARSEABLE),
    ("Score: 7,5", UNPARSEABLE),
    ("Seven.", UNPARSEABLE),  # a number word without a label is prose
    # a label word inside the reason is prose; a number in the answer's sentence without a hedge is not an answer
    ("Score: 6\nReason: the answer mentions 2 hobbies.", 6),
    ("Score: 7 since 3 of her 4 answers fit", 7),
    ("Reason: fits the persona well. Score: 7", 7),
]

VOTES = [
    # the quoted input 2: the "1" of "1-5" is the scale, not the vote
    ("On a scale of 1-5, I'd say 4: I would probably buy it for my lunch.", 4),
    ("Vote: 4\nReason: I would buy it for lunch.", 4),
    ("vote 2 - too expensive", 2),
    ("**Vote:** 5", 5),
    ("Vote: 3/5\nReason: meh", 3),
    ("I'd rate it 2 out of 5.", 2),
    ("Vote: four", 4),
    ('{"vote": 1, "reason": "hates soup"}', 1),
    ('{"vote": "5"}', 5),
    ("I'd say 5", 5),
    ("Between 1 and 5, definitely a 3.", 3),
    ("Rating (1-5): 2", 2),
    ("Answer: 4", 4),
    ("Vote: 1 (not at all). Reason: she said she never buys bottled food, not even 1 time.", 1),
    ("Yes! 5 — absolutely, I would buy 10 bottles.", UNPARSEABLE),
    ("Vote: 9", OUT_OF_RANGE),
    ("Vote: 0", OUT_OF_RANGE),
    ("Vote: 6\nReason: loves it", OUT_OF_RANGE),
    ("Vote: 3 or 4", UNPARSEABLE),
    ("Vote: 2-3", UNPARSEABLE),
    ("Vote: 3.5", UNPARSEABLE),
    ("She would probably buy it.", UNPARSEABLE),
    ("Yes, I would buy it.", UNPARSEABLE),
    ("I cannot say how she would vote.", NO_ANSWER),
    ("", NO_ANSWER),
    # the user tester's inputs: a sign is read (out of range), another scale is not rescaled,
    # a hedge is two answers (was: 1, 5, 4)
    ("Vote: -1", OUT_OF_RANGE),
    ("Vote: 5/10", OUT_OF_RANGE),
    ("Vote: 4 out of 5, maybe 3", UNPARSEABLE),
    ("Vote: 4 (maybe 3)", UNPARSEABLE),
    ("Vote: 3 or maybe 4", UNPARSEABLE),
    ("Vote: 10/10", OUT_OF_RANGE),
    ("On a scale of 1-10, I'd say 4.", OUT_OF_RANGE),
    ("On a scale of 10 I would say 4.", OUT_OF_RANGE),
    ("Vote: 4 (on 0-9)", OUT_OF_RANGE),
    ("Vote: \u22122", OUT_OF_RANGE),
    ("Vote: -0", OUT_OF_RANGE),
    ("Vote: minus 1", OUT_OF_RANGE),
    ("Vote: +3", 3),
    ("Vote: 6-7", UNPARSEABLE),
    ("Vote: seven", OUT_OF_RANGE),
    ("Vote: 4 out of 5", 4),
    ("Vote: 4\nReason: my answer is 2 words long", 4),
]

# a second candidate answer anywhere in the answer segment after the labelled number (tester's
# inputs: all read as the first number before); both parsers must call them two answers
TWO_ANSWERS = [
    "Vote: between 3 and 4", "Vote: 3 and 4", "Vote: 3 & 4", "Vote: 3\u20144", "Vote: 3 \u2014 4",
    "Vote: 3 \u2212 4", "Vote: 3 vs 4", "Vote: 3 -> 4", "Vote: 3 \u2192 4", "Vote: 3 (no, 4)",
    "Vote: 3, no wait, 4", "Vote: 3\nActually, 4", "Vote: 3. Or 4.", "Score: 7. Actually 8.",
    "Vote: 3 but maybe 4", "Rating: 4/5 for taste, 2/5 for price", "Vote: 3, no wait, four",
    # no "Reason:" label: the answer segment runs to the end, so prose numbers are a second candidate
    "Vote: 3\nI liked 2 of the features",
    # a reason connective ends the segment, but a hedged number after it is still an alternative
    "Vote: 3 because it is cheap, or maybe 4",
]
VOTES += [(r, UNPARSEABLE) for r in TWO_ANSWERS]
SCORES += [(r, UNPARSEABLE) for r in TWO_ANSWERS]
# the same kind, kept right: scale restatements, the reason, a connective's reason, agreeing labels
KEPT = [
    ("Vote: 4 (on a 1-5 scale)", 4, None), ("Score: 7/10", None, 7), ("Vote: 4 out of 5", 4, None),
    ("Score: 6 Reason: it was 2 before but the new answer fits", None, 6),
    ("Vote: 3\nReason: I rate it 3 because 2 things are missing", 3, 3),
    ("Score: 7.", None, 7), ("Vote: 3 \u2014 great value", 3, 3), ("Vote: 3 since no one else sells it", 3, 3),
    ("Vote: 3 because 2 of my friends like it", 3, 3), ("Vote: 3\nScore: 3", 3, 3),
    ("## Vote\n3\n## Reason\nI liked 2 of the features", 3, 3),
]
VOTES += [(r, v) for r, v, _ in KEPT if v is not None]
SCORES += [(r, s) for r, _, s in KEPT if s is not None]

OPTIONS = ["Night market", "Solar benches", "Community garden"]
CHOICES = [
    ("Choice: Night market\nReason: most votes", "Night market"),
    ("choice - solar benches", "Solar benches"),
    ("**Choice:** Community garden.", "Community garden"),
    ('{"choice": "Solar benches", "reason": "cheap"}', "Solar benches"),
    ("The group chose the night market.", "Night market"),
    # part of an option is not that option (a guess): "garden" could be any garden
    ("Choice: garden", UNPARSEABLE),
    ("I wouldn't pick the night market", UNPARSEABLE),  # negated
    ("Night market, not Solar benches", UNPARSEABLE),  # several options named
    ("Choice: **Solar benches**", "Solar benches"),
    ("The group chose the night market, because it was cheap.", "Night market"),
    ("Choice: a zoo", UNPARSEABLE),
    ("Night market or Solar benches", UNPARSEABLE),
    ("I'm sorry, I can't tell from this transcript.", NO_ANSWER),
    ("", NO_ANSWER),
]

# options that are words of each other: part of an option or a negated option is never read as one
YES_NO = ["yes", "no", "not sure"]
YES_NO_CHOICES = [
    ("Sure", UNPARSEABLE, "only part of option"),  # was "not sure": the opposite of what it means
    ("Definitely not yes", UNPARSEABLE, "negated"),  # was "yes"
    ("I would not say no", UNPARSEABLE, "negated"),  # was "no"
    ("Choice: not sure", "not sure", ""),
    ("I'm not sure.", "not sure", ""),
    ("Answer: No.", "no", ""),
    ("**Choice:** yes", "yes", ""),
    ('{"choice": "Yes"}', "yes", ""),
    ("My answer is yes. Reason: she said so twice.", "yes", ""),
    ("yes or no", UNPARSEABLE, "several options"),
    ("No, not sure", UNPARSEABLE, "several options"),
]
ACCENTED = ["Caf\u00e9 cr\u00e8me", "Th\u00e9 (vert)", "C++ / Rust"]
ACCENTED_CHOICES = [
    ("Choice: caf\u00e9 cr\u00e8me.", "Caf\u00e9 cr\u00e8me", ""),
    ("She ordered the th\u00e9 (vert)", "Th\u00e9 (vert)", ""),
    ('{"choice": "C++ / Rust"}', "C++ / Rust", ""),
    ("Choice: caf\u00e9", UNPARSEABLE, "only part of option"),
]


@pytest.mark.parametrize("reply, expected, why", YES_NO_CHOICES)
def test_choice_never_reads_part_of_or_a_negated_option(reply, expected, why):
    answer = parse_choice(reply, YES_NO)
    _check(answer, expected)
    assert why in answer.detail


@pytest.mark.parametrize("reply, expected, why", ACCENTED_CHOICES)
def test_choice_options_with_punctuation_and_accents(reply, expected, why):
    answer = parse_choice(reply, ACCENTED)
    _check(answer, expected)
    assert why in answer.detail


def _check(answer, expected):
    if expected in MISSING_REASONS:
        assert answer.value is None and answer.missing_reason == expected, answer
        assert answer.detail or expected == NO_ANSWER
    else:
        assert answer.value == expected and answer.missing_reason == "", answer


def test_corpus_has_at_least_60_replies():
    assert len(SCORES) + len(VOTES) + len(CHOICES) >= 60


@pytest.mark.parametrize("reply, expected", SCORES)
def test_score_corpus(reply, expected):
    _check(parse_score(reply), expected)


@pytest.mark.parametrize("reply, expected", VOTES)
def test_vote_corpus(reply, expected):
    _check(parse_vote(reply), expected)


@pytest.mark.parametrize("reply, expected", CHOICES)
def test_choice_corpus(reply, expected):
    _check(parse_choice(reply, OPTIONS), expected)


def test_clamp_is_flagged_and_only_one_step():
    a = parse_score("Score: 10\nReason: The answer mentions 2 hobbies and fits the persona perfectly.")
    assert (a.value, a.flag) == (9, CLAMPED) and "10" in a.detail
    assert a.reason.startswith("The answer mentions 2 hobbies")
    assert parse_score("Score: 7").flag == ""
    assert parse_score("Score: 11").missing_reason == OUT_OF_RANGE
    assert parse_vote("Vote: 6").flag == "" and parse_vote("Vote: 6").value is None  # votes never clamp


@pytest.mark.parametrize("reply", [r for r, _ in SCORES + VOTES if "10" not in r])
def test_score_and_vote_decide_alike(reply):
    """One grammar and one set of labels for both (before: "Vote: 4 out of 5, maybe 3" was a vote
    of 4 but an unparseable score): asked on the same 0-9 scale, a reply gets the same value or the
    same missing reason from either parser. Replies with a 10 are left out: only the judge's score
    has the 0-10 habit (10 clamped, x/10 accepted)."""
    score, vote = parse_score(reply), parse_vote(reply, lo=0, hi=9)
    assert (score.value, score.missing_reason) == (vote.value, vote.missing_reason), (score, vote)


def test_missing_reason_vocabulary_is_enforced():
    with pytest.raises(ValueError, match="not one of"):
        missing("judge was sad")
