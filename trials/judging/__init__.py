"""Measuring sessions: LLM-as-judge propositions (0-9 scores) and extraction of ideas, votes and
choices from transcripts. Reads events; never drives a session."""

from trials.judging.extract import (ExtractionResult, count_unique_ideas, dedupe_ideas, extract_choice,
                                    extract_ideas, extract_vote)
from trials.judging.judge import JudgeResult, Proposition, judge, parse_score
from trials.judging.propositions import standard

__all__ = ["ExtractionResult", "JudgeResult", "Proposition", "count_unique_ideas", "dedupe_ideas",
           "extract_choice", "extract_ideas", "extract_vote", "judge", "parse_score", "standard"]
