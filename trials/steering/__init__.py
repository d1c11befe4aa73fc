"""Steering a session: action correction, interventions (with a no-LLM stagnation detector) and
story continuation. Each is optional and switched on per experiment arm."""

from trials.steering.correction import ActionCorrector, CorrectionConfig, CorrectionStats  # noqa: F401
from trials.steering.interventions import (  # noqa: F401
    VARIETY_TEXT,
    Intervention,
    broadcast,
    has_actions,
    no_new_ideas,
    story_continuation,
    talk,
    think,
    variety_intervention,
)
from trials.similarity import similarity  # noqa: F401
from trials.steering.stagnation import StagnationDetector  # noqa: F401
from trials.steering.story import Story  # noqa: F401
