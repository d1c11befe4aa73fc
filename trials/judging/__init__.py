"""Measuring sessions: LLM-as-judge propositions (0-9 scores) and extraction of ideas, votes and
choices from transcripts. Reads events; never drives a session."""

from trials.judging.answers import MISSING_REASONS, Answer, parse_choice, parse_number, parse_vote
from trials.judging.extract import (ExtractionResult, count_unique_ideas, dedupe_ideas, extract_choice,
                                    extract_ideas, extract_vote)
from trials.judging.judge import JudgeResult, Proposition, judge, parse_score
from trials.judging.propositions import standard

__all__ = ["MISSING_REASONS", "Answer", "parse_choice", "parse_number", "parse_vote", "ExtractionResult", "JudgeResult", "Proposition", "count_unique_ideas", "dedupe_ideas",
           "extract_choice", "extract_ideas", "extract_vote", "judge", "parse_score", "standard"]
