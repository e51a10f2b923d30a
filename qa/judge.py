"""The support judge (shared with the evaluation): see eval/judge.py."""

from eval.judge import SupportJudge  # noqa: F401  (moved here once the eval work settles)
