"""The bundled MiniLM under onnxruntime + tokenizers: questions are embedded without importing torch.

`import sentence_transformers` alone takes seconds (it imports torch and transformers); onnxruntime and
tokenizers (the pair Chroma's own default embedding function uses) take a fraction of one. The model
is exported once from the bundled weights (at the first ingest, or the first question if no ingest
did it), into a cache folder, never downloaded, and checked against sentence-transformers: if any
vector differs (cosine < 0.9999) the export is thrown away and torch answers instead.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np

MIN_AGREEMENT = 0.9999
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length
CHECK_TEXTS = (
    "How long can a Lambda function run?", "Maximum execution time: 900 seconds (15 minutes).",
    "What does DAX cache?", "what does poetry do when it isn't already running inside a virtualenv?",
    "If you have the python executable in your `PATH` you can use it: `poetry env use python3.7`.",
    "Serverless › Lambda › Lambda Limits: Execution Limits: Memory allocation: 128 MB to 10GB.",
    "🙂 naïve café — ünïcode, numbers 1,000,000 and 99.9%", "a " * 400,
)
ONNX_FILE, TOKENIZER_FILE, META_FILE = "model.onnx", "tokenizer.json", "meta.json"


class OnnxEncoder:
    """Mean-pooled, normalised sentence vectors from an exported transformer (what sentence-transformers'
    all-MiniLM-L6-v2 computes: Transformer → mean pooling → L2 normalisation)."""

    def __init__(self, folder: Path, *, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        self.dimension = int(json.loads((self.folder / META_FILE).read_text())["dimension"])
        self._lock = threading.Lock()  # the tokenizer's padding/truncation state is shared

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        types = np.asarray([e.type_ids for e in encoded], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


def export_folder(cache_dir: Path, model_path: str) -> Path:
    """Where the export of one model lives: named by the model folder and its weights' size and time."""
    import hashlib

    weights = sorted(Path(model_path).glob("*.safetensors")) + sorted(Path(model_path).glob("*.bin"))
    stamp = "|".join(f"{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights)
    key = hashlib.sha1(f"{Path(model_path).resolve()}|{stamp}".encode()).hexdigest()[:12]
    return Path(cache_dir) / "onnx" / f"{Path(model_path).name}-{key}"


def is_exported(folder: Path) -> bool:
    return all((Path(folder) / f).is_file() for f in (ONNX_FILE, TOKENIZER_FILE, META_FILE))


def exportable(model_path: str) -> bool:
    """A local sentence-transformers folder of a BERT-like transformer with mean pooling (the bundled MiniLM)."""
    folder = Path(model_path)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "") for m in modules]
    return ((folder / TOKENIZER_FILE).is_file() and pooling.get("pooling_mode_mean_tokens") is True
            and kinds[:2] == ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]
            and all(k.endswith(("Transformer", "Pooling", "Normalize")) for k in kinds))


def export(model_path: str, folder: Path, sentence_model=None) -> float:
    """Export the transformer to ONNX in `folder` and check it; returns the lowest cosine to the
    sentence-transformers vectors (the folder is removed again when that is below MIN_AGREEMENT)."""
    import torch
    from sentence_transformers import SentenceTransformer

    st = sentence_model or SentenceTransformer(model_path, device="cpu")
    transformer = st[0].auto_model.eval()

    class Hidden(torch.nn.Module):
        """The transformer taking its three inputs positionally, returning the last hidden state."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")  # two processes may export at once
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sample = st.tokenizer(["a question", "a longer passage of the notes"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's tracer warnings are expected
        torch.onnx.export(Hidden(transformer), (sample["input_ids"], sample["attention_mask"],
                                                sample["token_type_ids"]), str(tmp / ONNX_FILE),
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes})
    shutil.copyfile(Path(model_path) / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
    dimension = int((getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)())
    (tmp / META_FILE).write_text(json.dumps({"model": str(model_path), "dimension": dimension}))
    reference = st.encode(list(CHECK_TEXTS), normalize_embeddings=True)
    agreement = float((OnnxEncoder(tmp).encode(list(CHECK_TEXTS)) * reference).sum(axis=1).min())
    if agreement < MIN_AGREEMENT:
        shutil.rmtree(tmp, ignore_errors=True)
        return agreement
    try:
        tmp.replace(folder)
    except OSError:  # another process finished its export first: keep that one
        shutil.rmtree(tmp, ignore_errors=True)
    return agreement
