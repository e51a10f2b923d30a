"""The fitted answer decision: when to answer (a logistic regression over the reader's scores and what
the retrieved sections hold) and how much to add to the best unit.

The reader (qa/reader.py) ranks the units; this calibrates it. Fitted by `python -m eval.fit` on the
tune halves of the evaluation corpora and stored as plain JSON (`qa/answer_model.json`: feature
names, standardisation, weights, threshold, margins), so a question needs only numpy: scikit-learn is
used to fit, not to answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).resolve().parent / "answer_model.json"
MODEL_VERSION = 2


@dataclass(frozen=True)
class LinearModel:
    """A standardised logistic regression: score = w · (x - mean) / scale + b."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per feature, how much it moved the score (rows: samples)."""
        z = (np.atleast_2d(x) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z * np.asarray(self.weights)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of each row."""
        return self.contributions(x).sum(axis=1) + self.intercept

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict) -> "LinearModel":
        return cls(tuple(data["features"]), tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]),
                   float(data["intercept"]))


@dataclass(frozen=True)
class AnswerModel:
    """What `python -m eval.fit` learned: when to answer, how much to add to the best unit."""

    answerable: LinearModel
    threshold: float  # answer when the answerable log-odds is at least this
    follow_margin: float  # a further unit joins the answer when it scores within this of the best…
    follow_floor: float = 0.0  # …and the reader gives it at least this log-odds (it answers too)
    keyword_weight: float = 0.5  # retrieval: the keyword ranking's weight in the fusion (dense: 1.0)
    ranker: LinearModel | None = None  # orders the read units (None: by the reader's score alone)
    fitted_on: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"version": MODEL_VERSION, "answerable": self.answerable.to_dict(), "threshold": self.threshold,
                "follow_margin": self.follow_margin, "follow_floor": self.follow_floor,
                "keyword_weight": self.keyword_weight,
                "ranker": self.ranker.to_dict() if self.ranker is not None else None, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict) -> "AnswerModel":
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"answer model version {data.get('version')} (expected {MODEL_VERSION})")
        return cls(LinearModel.from_dict(data["answerable"]), float(data["threshold"]), float(data["follow_margin"]),
                   float(data.get("follow_floor", 0.0)), float(data.get("keyword_weight", 0.5)),
                   LinearModel.from_dict(data["ranker"]) if data.get("ranker") else None, data.get("fitted_on", {}))


@lru_cache(maxsize=8)
def load_answer_model(path: str | None = None) -> AnswerModel:
    """The fitted model (`ANSWER_MODEL`, else qa/answer_model.json)."""
    from qa.errors import NotesQAError

    where = Path(path) if path else MODEL_PATH
    try:
        return AnswerModel.from_dict(json.loads(where.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise NotesQAError(f"The answer model {where} cannot be read ({exc}); re-fit it with: python -m eval.fit"
                           ) from exc
