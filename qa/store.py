"""The Chroma index: an embedded PersistentClient or a Chroma server, behind one code path.

Chunks are never visible half-written. Each chunk carries the generation that added it and the
generation that retired it; a separate small `<collection>-state` collection holds the committed
generation, written last by ingest. Readers only see chunks alive in the committed generation, so
an ingest killed at any moment leaves the previous content answering, and the next run finishes.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from qa.errors import IndexMissing, ModelMismatch, NotesQAError, StoreUnavailable
from qa.settings import Settings

ALIVE = 2**31 - 1  # retired_gen of a chunk that no generation has retired
STATE_ID = "state"
DEFAULT_GET_BATCH = 2000
# Chroma's HNSW defaults (16 neighbours, ef 100) lose the notes among 21k distractor chunks: measured on
# the eval questions at full scale, its top 30 held 0.955 of the exact top 30, and none of it for some
# questions (a small cluster of notes among many documents). A denser graph and a wider search bring
# that to 0.99+ for a few milliseconds; `ef_search` can be raised on an existing index, the rest
# applies to indexes built from now on.
HNSW_CONFIGURATION = {"space": "cosine", "max_neighbors": 32, "ef_construction": 200, "ef_search": 400}


@dataclass
class IndexState:
    """What the last committed ingest recorded."""

    generation: int = 0
    model: str = ""
    dimension: int = 0
    ingested_at: float | None = None
    notes_dir: str = ""
    files: int = 0
    sections: int = 0
    chunks: int = 0
    notes_stamp: str = ""  # sizes and modification times of the notes that were indexed (see ingest.index)
    extra: dict[str, Any] = field(default_factory=dict)


def _chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def check_server(settings: Settings) -> None:
    """Fail fast (within `CHROMA_TIMEOUT_S`) with host:port when the Chroma server is unreachable."""
    address = f"{settings.chroma_host}:{settings.chroma_port}"
    try:
        with socket.create_connection((settings.chroma_host, settings.chroma_port), timeout=settings.chroma_timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise StoreUnavailable(
            f"Cannot reach the Chroma server at {address} ({reason}): start it (chroma run --host "
            f"{settings.chroma_host} --port {settings.chroma_port}) or unset CHROMA_HOST to use the local index."
        ) from exc


def connect(settings: Settings):
    """A chromadb client: HTTP when `CHROMA_HOST` is set, else embedded at `CHROMA_DIR`."""
    import chromadb

    if settings.uses_server:
        check_server(settings)
        try:
            return chromadb.HttpClient(
                host=settings.chroma_host,
                port=settings.chroma_port,
                ssl=settings.chroma_ssl,
                headers=settings.headers,
                settings=_chroma_settings(),
            )
        except Exception as exc:  # chromadb wraps httpx and auth errors in several types
            raise StoreUnavailable(
                f"The Chroma server at {settings.chroma_host}:{settings.chroma_port} refused the connection "
                f"({type(exc).__name__}: {str(exc)[:120]}); check CHROMA_SSL and CHROMA_HEADERS."
            ) from exc
    try:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=_chroma_settings())
    except Exception as exc:
        raise StoreUnavailable(
            f"The index folder {settings.chroma_dir} cannot be opened ({type(exc).__name__}), it may be damaged; "
            f"rebuild it with: python -m ingest --rebuild"
        ) from exc


def folder_stamp(settings: Settings) -> tuple[int, int] | None:
    """Identity (device, inode) of the local index's database file: None for a server or a missing file.

    An open embedded client keeps reading a deleted or replaced folder through its open file handles,
    so readers compare this stamp before each question to notice `rm -r`, `--rebuild` or a restore.
    """
    if settings.uses_server:
        return None
    try:
        stat = (settings.chroma_dir / "chroma.sqlite3").stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def explain_failure(settings: Settings, exc: Exception) -> StoreUnavailable:
    """One sentence for a failed read: the server is down, or answered an error, or the folder is damaged."""
    if settings.uses_server:
        check_server(settings)  # raises "Cannot reach the Chroma server at host:port …" while it is down
        return StoreUnavailable(
            f"The Chroma server at {settings.chroma_host}:{settings.chroma_port} answered with an error "
            f"({type(exc).__name__}: {str(exc)[:120]}); check its log, or rebuild with: python -m ingest --rebuild"
        )
    return StoreUnavailable(
        f"The index folder {settings.chroma_dir} cannot be read ({type(exc).__name__}), it may be damaged; "
        f"rebuild it with: python -m ingest --rebuild"
    )


_client_epoch = 0  # bumped by forget_clients: indexes opened before it read through a client no one writes to


@contextmanager
def store_errors(settings: Settings) -> Iterator[None]:
    """Chroma's own errors (a damaged folder, a server error) as `explain_failure`'s one sentence, so no
    command shows a traceback; errors that already are one sentence pass through."""
    try:
        yield
    except NotesQAError:
        raise
    except Exception as exc:
        raise explain_failure(settings, exc) from exc


def forget_clients() -> None:
    """Drop chromadb's per-process client cache so the next `connect` rereads the folder from disk.

    Clients opened before keep their own in-memory vector index, which no longer sees writes made
    through the new one (a query then returns ids whose records are gone): `client_epoch` tells them.
    """
    global _client_epoch
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    _client_epoch += 1


def client_epoch() -> int:
    """How many times this process dropped its Chroma clients (see `forget_clients`)."""
    return _client_epoch


def alive_filter(generation: int) -> dict:
    """Chroma `where` clause selecting the chunks alive in `generation`."""
    return {"$and": [{"added_gen": {"$lte": generation}}, {"retired_gen": {"$gt": generation}}]}


def is_alive(metadata: dict, generation: int) -> bool:
    """The same test as `alive_filter`, on one chunk's metadata."""
    return metadata["added_gen"] <= generation < metadata["retired_gen"]


def _is_not_found(exc: Exception) -> bool:
    return "does not exist" in str(exc) or type(exc).__name__ in ("NotFoundError", "InvalidCollectionException")


class NotesIndex:
    """The chunk collection and its state record."""

    def __init__(self, client, settings: Settings, collection, state_collection, stamp=None, epoch: int = 0):
        self.client = client
        self.settings = settings
        self.collection = collection
        self.state_collection = state_collection
        self.stamp = stamp  # folder_stamp() when opened (local folders only)
        self.epoch = epoch  # client_epoch() when opened: another one means this client may be stale

    @property
    def name(self) -> str:
        return self.collection.name

    @property
    def model(self) -> str:
        return str((self.collection.metadata or {}).get("embed_model", ""))

    @property
    def dimension(self) -> int:
        return int((self.collection.metadata or {}).get("embed_dim", 0))

    def read_state(self) -> IndexState:
        """The committed state; a damaged index (or a server error) is `explain_failure`'s one sentence."""
        with store_errors(self.settings):
            got = self.state_collection.get(ids=[STATE_ID], include=["documents"])
            if not got["ids"]:
                return IndexState(model=self.model, dimension=self.dimension)
            data = json.loads(got["documents"][0])
            known = {k: data.pop(k) for k in list(data) if k in IndexState.__dataclass_fields__}
            return IndexState(**known, extra=data)

    def write_state(self, state: IndexState) -> None:
        """Commit: after this call readers see `state.generation`."""
        data = asdict(state)
        data.update(data.pop("extra"))
        with store_errors(self.settings):
            self.state_collection.upsert(
                ids=[STATE_ID], embeddings=[[1.0]], documents=[json.dumps(data)],
                metadatas=[{"generation": state.generation}],
            )

    def get_chunks(self, *, where: dict | None = None, include=("metadatas",), batch: int = DEFAULT_GET_BATCH) -> dict:
        """Every chunk matching `where`, fetched in pages (Chroma caps one `get`)."""
        out: dict[str, list] = {"ids": [], **{k: [] for k in include}}
        offset = 0
        while True:
            with store_errors(self.settings):
                page = self.collection.get(where=where, include=list(include), limit=batch, offset=offset)
            out["ids"].extend(page["ids"])
            for k in include:
                out[k].extend(page[k])
            if len(page["ids"]) < batch:
                return out
            offset += batch


def open_index(settings: Settings, *, model: str, dimension: int | None = None, create: bool = False,
               client=None) -> NotesIndex:
    """Open (or with `create`, make) the collection built by `model`; never mix models."""
    epoch = client_epoch()
    client = client or connect(settings)
    stamp = folder_stamp(settings)
    name = settings.collection
    try:
        try:
            collection = client.get_collection(name)
        except Exception as exc:
            if not _is_not_found(exc):
                raise
            if not create:
                raise IndexMissing(
                    f"There is no index yet in the {settings.index_location}; build it with: python -m ingest"
                ) from None
            collection = client.create_collection(
                name, embedding_function=None, configuration={"hnsw": HNSW_CONFIGURATION},
                metadata={"embed_model": model, "embed_dim": int(dimension or 0), "created_at": time.time()},
            )
        built_with = (collection.metadata or {}).get("embed_model")
        if built_with != model:
            raise ModelMismatch(
                f"The index in the {settings.index_location} was built with the embedding model {built_with!r}, "
                f"not {model!r}: set EMBED_MODEL={built_with} or rebuild with: python -m ingest --rebuild"
            )
        if create:
            widen_search(collection)
        state_collection = client.get_or_create_collection(f"{name}-state", embedding_function=None)
    except (IndexMissing, ModelMismatch):
        raise
    except Exception as exc:
        raise StoreUnavailable(
            f"The index in the {settings.index_location} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); "
            f"rebuild it with: python -m ingest --rebuild"
        ) from exc
    return NotesIndex(client, settings, collection, state_collection, stamp, epoch)


def widen_search(collection) -> None:
    """Raise an older index's HNSW search width to ours (ingest calls this; readers never write)."""
    hnsw = (getattr(collection, "configuration", None) or {}).get("hnsw") or {}
    wanted = HNSW_CONFIGURATION["ef_search"]
    if int(hnsw.get("ef_search") or 0) < wanted:
        collection.modify(configuration={"hnsw": {"ef_search": wanted}})


def drop_index(settings: Settings) -> None:
    """Delete the collection and its state (for `--rebuild`); an unreadable local folder is removed."""
    try:
        client = connect(settings)
        for name in (settings.collection, f"{settings.collection}-state"):
            try:
                client.delete_collection(name)
            except Exception as exc:
                if not _is_not_found(exc):
                    raise
    except Exception:
        if settings.uses_server:
            raise
        forget_clients()
        shutil.rmtree(settings.chroma_dir, ignore_errors=True)
