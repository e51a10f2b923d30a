"""One settings object, read from the environment and `.env` (see the README's settings table)."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "notes-qa"
DEFAULT_COLLECTION = "notes"


class Settings(BaseSettings):
    """Where the notes and the index live, which models to use."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    notes_dir: Path = Path("corpus")
    chroma_dir: Path = Path(".chroma")
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_ssl: bool = False
    chroma_headers: str | None = None  # JSON object, e.g. {"Authorization": "Bearer …"}
    chroma_timeout_s: float = 5.0
    chroma_retry_s: float = 30.0  # how long `qa batch` waits for a Chroma server that stopped answering
    collection: str = DEFAULT_COLLECTION
    keyword_cache_dir: Path = Path(".keyword-cache")  # server mode only; a local index keeps its own
    embed_model: str = DEFAULT_EMBED_MODEL
    embed_batch_size: int = 64
    model_cache_dir: Path = DEFAULT_MODEL_CACHE_DIR  # where the model's ONNX export is kept (made once, offline)
    max_file_bytes: int = 5 * 1024 * 1024
    auto_reindex: bool = False  # the app re-indexes by itself when a note changes on disk
    app_db: Path = Path(".notesqa.sqlite3")  # conversations and feedback, beside the index (qa/records.py)
    eval_reports: str = ""  # more folders of `python -m eval --out` reports for the Evaluation page (os.pathsep)
    app_url: str = "http://localhost:8501"  # where the app is reached: links back from exported study cards
    study_new_per_day: int = 20  # new study cards a day, after the due ones (study/deck.py)
    answer_model: Path | None = None  # fitted answer model (python -m eval.fit); None: qa/answer_model.json

    llm_provider: str = "none"
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 30.0
    llm_max_tokens: int = 400
    ollama_url: str = "http://localhost:11434"  # where the app looks for Ollama when LLM_PROVIDER is unset

    @field_validator("chroma_host", "chroma_headers", "llm_model", "llm_base_url", "llm_api_key")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def uses_server(self) -> bool:
        return bool(self.chroma_host)

    @cached_property
    def headers(self) -> dict[str, str]:
        """`CHROMA_HEADERS` parsed as a JSON object (empty when unset)."""
        if not self.chroma_headers:
            return {}
        parsed = json.loads(self.chroma_headers)
        if not isinstance(parsed, dict):
            raise ValueError("CHROMA_HEADERS must be a JSON object")
        return {str(k): str(v) for k, v in parsed.items()}

    @property
    def keyword_cache(self) -> Path:
        """Where keyword indexes are cached: inside a local index folder, else per server on this machine."""
        if self.uses_server:
            return self.keyword_cache_dir / f"{self.chroma_host}-{self.chroma_port}"
        return self.chroma_dir

    @property
    def index_location(self) -> str:
        """Human-readable place of the index, for messages and the UI."""
        if self.uses_server:
            scheme = "https" if self.chroma_ssl else "http"
            return f"Chroma server {scheme}://{self.chroma_host}:{self.chroma_port}"
        return f"local folder {self.chroma_dir}"


def load_settings(**overrides) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides (used by CLIs and tests)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
