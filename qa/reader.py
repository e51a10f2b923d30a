"""The answer reader: a cross-encoder that reads a question with one answer unit and scores whether the
unit answers it (log-odds), run with onnxruntime + tokenizers so questions never import torch.

Trained by `python -m eval.train_reader` (SQuAD v1.1 train, from the bundled all-MiniLM-L6-v2
weights) and shipped as `qa/models/reader.onnx`, with `reader.json` recording its sha256, the data
it was trained on and its held-out figures. It uses the bundled model's own tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent / "models"
READER_PATH = MODELS_DIR / "reader.onnx"
META_PATH = MODELS_DIR / "reader.json"
DEFAULT_MAX_TOKENS = 128
DEFAULT_THREADS = 0  # onnxruntime's default: every core
# One pair per run: the int8 model quantises activations with one scale per run (dynamic quantisation),
# so a pair batched with others would score differently depending on them; on a CPU, batching saves
# nothing measurable here (12 units: 150 ms either way, under load).
DEFAULT_BATCH = 1


class Reader:
    """Scores (question, passage) pairs; thread-safe."""

    def __init__(self, path: Path = READER_PATH, *, max_tokens: int = DEFAULT_MAX_TOKENS,
                 threads: int = DEFAULT_THREADS, batch: int = DEFAULT_BATCH):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from qa.embeddings import resolve_model_path

        self.path = Path(path)
        self.batch = batch
        self.tokenizer = Tokenizer.from_file(str(Path(resolve_model_path("all-MiniLM-L6-v2")) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens, strategy="only_second")
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: beside Streamlit, Chroma and other sessions on two
        # cores, spinning threads starve the ones doing the work.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()  # the tokenizer's padding/truncation state is shared

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        """The log-odds that each passage answers the question."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            encoded = self.tokenizer.encode_batch([(question, p) for p in passages])
        # Passages of similar length run together: one long list among short sentences would otherwise
        # pad every pair to its length (the cost is per token, padding included).
        order = sorted(range(len(encoded)), key=lambda i: sum(encoded[i].attention_mask))
        scores = np.zeros(len(encoded), dtype=np.float32)
        for at in range(0, len(order), self.batch):
            ids = order[at:at + self.batch]
            width = max(sum(encoded[i].attention_mask) for i in ids)
            feeds = {name: np.asarray([getattr(encoded[i], field)[:width] for i in ids], dtype=np.int64)
                     for name, field in (("input_ids", "ids"), ("attention_mask", "attention_mask"),
                                         ("token_type_ids", "type_ids"))}
            scores[ids] = self.session.run(None, feeds)[0][:, 0]
        return scores


def reader_meta(path: Path = META_PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_reader(path: Path = READER_PATH, meta_path: Path = META_PATH) -> None:
    """Refuse a model file that is not the one `reader.json` describes (a bad checkout, a stray edit)."""
    from qa.errors import ModelUnavailable

    try:
        expected = reader_meta(meta_path)["sha256"]
        actual = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailable(f"The answer reader {path} cannot be read ({exc}); restore qa/models/ from the "
                               "repository or retrain it with: python -m eval.train_reader") from exc
    if actual != expected:
        raise ModelUnavailable(f"The answer reader {path} is not the shipped one (sha256 {actual[:12]}…, expected "
                               f"{expected[:12]}…); restore qa/models/ from the repository or retrain it with: "
                               "python -m eval.train_reader")


@lru_cache(maxsize=2)
def load_reader(path: str | None = None) -> Reader:
    """The shipped reader, checked against its sha256, loaded once per process."""
    where = Path(path) if path else READER_PATH
    if path is None:
        check_reader(where)
    return Reader(where, max_tokens=int(reader_meta().get("max_tokens", DEFAULT_MAX_TOKENS)) if path is None
                  else DEFAULT_MAX_TOKENS)
