"""Notes folder → Chroma, incrementally: embed only new content, retire what is gone, commit last."""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import hashlib
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunk import Chunk, chunk_sections
from notes.model import ParsedNote
from notes.parse import parse_note
from notes.units import unit_embed_text, units_of
from qa.embeddings import EmbeddingModel
from qa.errors import NotesQAError
from qa.keyword import cached_keyword_index, fit_keyword_index, save_keyword_index
from qa.settings import Settings
from qa.text import plural
from qa.store import ALIVE, IndexState, NotesIndex, drop_index, is_alive, open_index, store_errors

NOTE_SUFFIXES = (".md", ".markdown", ".txt")
DEFAULT_WRITE_BATCH = 256
# Chunks retired by the last commit stay this long (or until the next commit) for questions that
# started on the previous generation and are still running, so no answer ever sees a half-deleted one.
RETIRED_GRACE_S = 60.0

ProgressFn = Callable[[int, int], None]


@dataclass
class IngestReport:
    """What one ingest run did; `summary` is the one line the CLI prints."""

    files: int = 0
    sections: int = 0
    chunks: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0
    units_embedded: int = 0
    seconds: float = 0.0
    generation: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (
            f"{plural(self.files, 'file')}, {plural(self.sections, 'section')}, {plural(self.chunks, 'chunk')}: "
            f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged "
            f"({self.embedded} embedded, {plural(self.units_embedded, 'answer unit')} embedded, "
            f"{plural(len(self.skipped), 'file')} skipped) in {self.seconds:.1f}s"
        )


@dataclass
class NotesCorpus:
    """The parsed notes folder: notes that parsed, and one line per file skipped."""

    notes: list[ParsedNote]
    skipped: list[str]
    notices: list[str] = field(default_factory=list)  # about the folder as a whole

    @property
    def warnings(self) -> list[str]:
        return self.notices + [w for n in self.notes for w in n.warnings]


class SkipFile(Exception):
    """A file that cannot be indexed; the message is the reason."""


class UnreadableFolder(NotesQAError):
    """A folder of the notes cannot be listed: indexing it as empty would remove every note in it."""


def iter_note_files(notes_dir: Path, *, skip_unreadable: bool = False) -> Iterator[Path]:
    """Markdown and text files under `notes_dir`, nested folders included, hidden ones excluded. A folder
    that cannot be listed raises `UnreadableFolder` (or, with `skip_unreadable`, is left out: for views)."""
    def refuse(exc: OSError) -> None:
        if skip_unreadable:
            return
        folder = Path(exc.filename or notes_dir)
        which = "notes folder" if folder == Path(notes_dir) else "folder"
        raise UnreadableFolder(
            f"The {which} {folder} cannot be read ({exc.strerror or type(exc).__name__}): fix its permissions "
            f"(or move it out of {notes_dir}), then index again; the index was left as it was.") from exc

    for root, dirs, files in os.walk(notes_dir, onerror=refuse, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(NOTE_SUFFIXES):
                yield Path(root) / name


def notes_stamp(notes_dir: Path) -> str:
    """A fingerprint of the notes folder from file names, sizes and modification times (no reading):
    cheap enough to ask every few seconds whether the notes changed since they were indexed."""
    digest = hashlib.sha1()
    if Path(notes_dir).is_dir():
        try:
            for path in iter_note_files(Path(notes_dir)):
                try:
                    info = path.stat()
                except OSError:
                    continue
                digest.update(f"{path.relative_to(notes_dir).as_posix()}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
        except UnreadableFolder as exc:  # a change to flag: re-indexing then says what is wrong
            digest.update(str(exc).encode())
    return digest.hexdigest()


def read_note_bytes(path: Path, notes_dir: Path, *, max_bytes: int, limit: int = -1) -> bytes:
    """The bytes of a note file (the first `limit`, or all), or `SkipFile` when it is a symlink out of the
    folder, not a regular file or too big. Opened without blocking: a FIFO or a device named `x.md` never
    hangs a reader, and the file type is checked on the open file itself."""
    real = path.resolve()
    if path.is_symlink() and not real.is_relative_to(notes_dir.resolve()):
        raise SkipFile("symlink pointing outside the notes folder")
    with os.fdopen(os.open(real, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SkipFile("not a regular file")
        if info.st_size > max_bytes:
            raise SkipFile(f"{info.st_size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
        return handle.read(limit)


# Byte order marks, UTF-32 first (its little-endian mark begins with UTF-16's): editors on Windows save
# "Unicode" notes as UTF-16 with a mark, whose NUL bytes must not read as a binary file.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def note_encoding(data: bytes) -> str:
    """The encoding a note's first bytes announce: UTF-16/32 by their mark, else UTF-8 (mark or not)."""
    return next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8-sig")


def decode_note(data: bytes) -> str:
    """A note's bytes as text: UTF-8 (with or without a mark), or UTF-16/32 with a mark; `SkipFile` otherwise."""
    encoding = note_encoding(data)
    if encoding == "utf-8-sig" and b"\x00" in data[:8192]:
        raise SkipFile("binary file")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SkipFile(f"not {encoding.removesuffix('-sig').upper()} (byte {exc.start})") from None


def read_note(path: Path, notes_dir: Path, *, max_bytes: int) -> str:
    """The note's text, or `SkipFile` with the reason (outside the folder, too big, binary, empty…)."""
    text = decode_note(read_note_bytes(path, notes_dir, max_bytes=max_bytes))
    if not text.strip():
        raise SkipFile("empty file")
    return text


def load_corpus(notes_dir: Path, *, max_bytes: int = 5 * 1024 * 1024) -> NotesCorpus:
    """Parse every note under `notes_dir`; bad files are skipped with a reason, never fatal."""
    if notes_dir.exists() and not notes_dir.is_dir():
        raise NotesQAError(f"The notes folder {notes_dir} is a file, not a folder: set NOTES_DIR (or --notes) "
                           "to the folder that holds your notes.")
    if not notes_dir.is_dir():
        raise NotesQAError(f"The notes folder {notes_dir} does not exist: create it or set NOTES_DIR.")
    notes, skipped = [], []
    for path in iter_note_files(notes_dir):
        source = path.relative_to(notes_dir).as_posix()
        try:
            text = read_note(path, notes_dir, max_bytes=max_bytes)
        except (SkipFile, OSError) as exc:
            skipped.append(f"{source}: skipped: {exc}")
            continue
        note = parse_note(text, source)
        if not note.content_sections:
            skipped.append(f"{source}: skipped: nothing to index" + (" (only a table of contents)"
                           if any(s.is_navigation for s in note.sections) else ""))
            continue
        notes.append(note)
    notices = [] if notes or skipped else [
        f"{notes_dir} holds no notes ({', '.join(NOTE_SUFFIXES)} files, hidden folders left out): add some, or "
        "set NOTES_DIR to the folder that holds them"]
    return NotesCorpus(notes, skipped, notices)


@contextlib.contextmanager
def ingest_lock(settings: Settings) -> Iterator[None]:
    """One ingest at a time per local index folder (a server index is shared; callers coordinate)."""
    if settings.uses_server:
        yield
        return
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.chroma_dir / ".ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NotesQAError(
                f"Another ingest is already updating {settings.chroma_dir}; wait for it to finish."
            ) from None
        yield


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _stored_metadata(chunk: Chunk, added_gen: int) -> dict:
    """A chunk's metadata as stored: traceability fields plus the generation that added it, alive."""
    return {**chunk.metadata(), "added_gen": added_gen, "retired_gen": ALIVE}


def _embed_and_add(index: NotesIndex, model: EmbeddingModel, chunks: list[Chunk], generation: int, *,
                   batch_size: int, progress: bool, on_progress: ProgressFn | None) -> None:
    from tqdm import tqdm

    # Similar lengths in one batch waste less padding; order does not matter to Chroma.
    ordered = sorted(chunks, key=lambda c: len(c.embed_text))
    bar = tqdm(total=len(ordered), desc="Embedding", unit="chunk", file=sys.stderr, disable=not progress)
    done = 0
    for batch in _batches(ordered, batch_size):
        vectors = model.embed_documents([c.embed_text for c in batch])
        # Raw chromadb upsert rather than langchain's add_texts: we store the display text while the
        # vector is of the heading-prefixed text, and write generation fields for the commit protocol.
        with store_errors(index.settings):
            index.collection.upsert(
                ids=[c.id for c in batch], embeddings=vectors, documents=[c.text for c in batch],
                metadatas=[_stored_metadata(c, generation) for c in batch],
            )
        done += len(batch)
        bar.update(len(batch))
        if on_progress:
            on_progress(done, len(ordered))
    bar.close()


def _embed_units(model: EmbeddingModel, texts: list[str], *, progress: bool, on_progress: ProgressFn | None
                 ) -> dict[str, object]:
    """Vectors (float16: half the size, the same rankings) of answer-unit texts, in batches by length."""
    import numpy as np
    from tqdm import tqdm

    ordered = sorted(texts, key=len)
    out: dict[str, object] = {}
    bar = tqdm(total=len(ordered), desc="Answer units", unit="unit", file=sys.stderr, disable=not progress or not texts)
    for batch in _batches(ordered, DEFAULT_WRITE_BATCH):
        for text, vector in zip(batch, model.embed_documents(batch)):
            out[text] = np.asarray(vector, dtype=np.float16)
        bar.update(len(batch))
        if on_progress:
            on_progress(len(out), len(ordered))
    bar.close()
    return out


def _readable_generation(settings: Settings, model: EmbeddingModel, client) -> int:
    """The committed generation of the index about to be rebuilt, or 0 when it cannot be read."""
    try:
        return open_index(settings, model=model.name, client=client).read_state().generation
    except Exception:  # noqa: BLE001 - a damaged or other-model index is exactly what --rebuild replaces
        return 0


def sync_index(settings: Settings, model: EmbeddingModel, *, rebuild: bool = False, progress: bool = True,
               on_progress: ProgressFn | None = None, client=None) -> IngestReport:
    """Bring the index in line with the notes folder; see qa/store.py for the commit protocol."""
    started = time.perf_counter()
    stamp = notes_stamp(settings.notes_dir)  # before reading: an edit made during the run shows as a change
    corpus = load_corpus(settings.notes_dir, max_bytes=settings.max_file_bytes)
    sections = [s for n in corpus.notes for s in n.content_sections]
    desired = {c.id: c for c in chunk_sections(sections)}
    report = IngestReport(files=len(corpus.notes), sections=len(sections), chunks=len(desired),
                          skipped=corpus.skipped, warnings=corpus.warnings)
    with ingest_lock(settings):
        previous = 0
        if rebuild:
            previous = _readable_generation(settings, model, client)
            drop_index(settings)
        index = open_index(settings, model=model.name, dimension=model.dimension, create=True, client=client)
        state = index.read_state()
        # Generations never repeat, even across --rebuild, so a reader's cached generation stays unambiguous.
        committed, new_gen = state.generation, max(state.generation, previous) + 1
        present = index.get_chunks(include=["metadatas"])
        stored = dict(zip(present["ids"], present["metadatas"]))
        grace_over = time.time() - (state.ingested_at or 0.0) > RETIRED_GRACE_S

        def unfinished(md: dict) -> bool:  # written by an interrupted run, never committed
            return md["added_gen"] > committed

        def expired(md: dict) -> bool:  # retired, and no reader of the previous generation can need it
            return md["retired_gen"] < committed or (md["retired_gen"] == committed and grace_over)

        old_keys = {(md["source"], md["anchor"], md["ordinal"]): cid for cid, md in stored.items()
                    if is_alive(md, committed)}
        new_keys = {(c.section.source, c.section.anchor, c.ordinal): cid for cid, c in desired.items()}
        report.added = len(new_keys.keys() - old_keys.keys())
        report.removed = len(old_keys.keys() - new_keys.keys())
        shared = old_keys.keys() & new_keys.keys()
        report.updated = sum(old_keys[k] != new_keys[k] for k in shared)
        report.unchanged = len(shared) - report.updated

        to_embed = [c for cid, c in desired.items() if cid not in stored]
        relabel_ids, relabel_mds = [], []
        final_mds = {}  # each desired chunk's metadata once this run is done, as Chroma will hold it
        for cid, chunk in desired.items():
            if cid in stored:
                md = stored[cid]
                want = _stored_metadata(chunk, md["added_gen"] if is_alive(md, committed) else new_gen)
                final_mds[cid] = {**md, **want}  # Chroma's update merges keys
                if any(md.get(k) != v for k, v in want.items()):
                    relabel_ids.append(cid)
                    relabel_mds.append(want)
            else:
                final_mds[cid] = _stored_metadata(chunk, new_gen)
        retire = [cid for cid, md in stored.items() if cid not in desired and is_alive(md, committed)]
        leftovers = [cid for cid, md in stored.items() if cid not in desired and unfinished(md)]
        garbage = leftovers + [cid for cid, md in stored.items() if cid not in desired
                               and not is_alive(md, committed) and not unfinished(md) and expired(md)]
        for cid in retire:
            relabel_ids.append(cid)
            relabel_mds.append({**stored[cid], "retired_gen": new_gen})

        if garbage:  # invisible to readers: left by an interrupted run, or retired long enough ago
            for batch in _batches(garbage, DEFAULT_WRITE_BATCH):
                with store_errors(settings):
                    index.collection.delete(ids=batch)
        if to_embed:
            _embed_and_add(index, model, to_embed, new_gen, batch_size=settings.embed_batch_size,
                           progress=progress, on_progress=on_progress)
        for start in range(0, len(relabel_ids), DEFAULT_WRITE_BATCH):
            with store_errors(settings):
                index.collection.update(ids=relabel_ids[start:start + DEFAULT_WRITE_BATCH],
                                        metadatas=relabel_mds[start:start + DEFAULT_WRITE_BATCH])
        report.embedded = len(to_embed)
        # A run killed before its commit leaves chunks that need neither embedding nor relabelling but are
        # not alive yet: what decides a commit is whether readers' chunks differ from the notes' chunks.
        alive_now = {cid for cid, md in stored.items() if is_alive(md, committed)}
        changed = bool(relabel_ids or leftovers) or alive_now != desired.keys() or state.generation == 0
        generation = new_gen if changed else committed
        previous = cached_keyword_index(index, committed, cache_dir=settings.keyword_cache) if committed else None
        known = previous.unit_vectors if previous is not None else {}
        if changed or not known:  # a new generation, or one whose snapshot is missing or predates answer units
            # Answer units are embedded here, once, so a question only embeds itself; unchanged ones are
            # reused from the previous generation. Readers would each rebuild BM25 over every chunk on their
            # first question: it is fitted here too, from the chunks in hand.
            units = {s.text: units_of(s.text) for s in sections}
            wanted = list(dict.fromkeys(unit_embed_text(u, s.breadcrumb) for s in sections for u in units[s.text]))
            missing_units = [t for t in wanted if t not in known]
            vectors = {t: known[t] for t in wanted if t in known}
            vectors.update(_embed_units(model, missing_units, progress=progress, on_progress=on_progress))
            report.units_embedded = len(missing_units)
            ids = list(desired)
            keyword = fit_keyword_index(generation, ids, [desired[cid].text for cid in ids],
                                        [final_mds[cid] for cid in ids], unit_vectors=vectors, units=units)
            save_keyword_index(keyword, index, cache_dir=settings.keyword_cache)
        report.seconds = time.perf_counter() - started
        index.write_state(IndexState(
            generation=generation, model=model.name, dimension=model.dimension,
            ingested_at=time.time() if changed else state.ingested_at,  # when this generation was committed
            notes_dir=str(settings.notes_dir), files=report.files, sections=report.sections,
            chunks=report.chunks, notes_stamp=stamp, extra={"seconds": round(report.seconds, 2), "skipped": len(report.skipped)},
        ))
    report.generation = generation
    report.seconds = time.perf_counter() - started
    return report
