"""Indexing from the app in a thread of its own, one per index: a rerun never aborts it half-way.

Streamlit stops a script run as soon as the user types or clicks again. An ingest run in the script
itself would stop with it: harmless for an incremental one (the next run finishes it), but a
`--rebuild` stopped after dropping the index leaves none. So the ingest runs in a worker thread,
the page only waits for it and shows its progress, and a page that comes back while it runs waits
for the same job instead of starting another.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from qa.settings import Settings

POLL_S = 0.1


@dataclass
class IngestJob:
    """One ingest in its worker thread: its progress, then its report or its error."""

    rebuild: bool
    done: threading.Event = field(default_factory=threading.Event)
    progress: tuple[int, int] = (0, 0)
    loading_model: bool = False
    report: object | None = None
    error: BaseException | None = None

    def outcome(self):
        """The report, or the ingest's own exception raised again here."""
        if self.error is not None:
            raise self.error
        return self.report


_jobs: dict[tuple, IngestJob] = {}
_jobs_lock = threading.Lock()


def start_ingest(key: tuple, settings: Settings, model=None, *, load_model=None, rebuild: bool = False) -> IngestJob:
    """The running ingest of this index (`key`), or a new one in its own thread; without a `model`, the
    thread first calls `load_model()` (a first start: the page need not wait for the model either)."""
    from ingest.index import sync_index

    with _jobs_lock:
        running = _jobs.get(key)
        if running is not None and not running.done.is_set():
            return running
        job = _jobs[key] = IngestJob(rebuild=rebuild)

    def on_progress(done: int, total: int) -> None:
        job.progress = (done, total)

    def work() -> None:
        try:
            job.loading_model = model is None
            loaded = model or load_model()
            job.loading_model = False
            job.report = sync_index(settings, loaded, rebuild=rebuild, progress=False, on_progress=on_progress)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the job
            job.error = exc
        finally:
            job.done.set()

    threading.Thread(target=work, name="notesqa-ingest", daemon=True).start()
    return job


def running_ingest(key: tuple) -> IngestJob | None:
    """The ingest of this index still running (started by this session or another), if any."""
    job = _jobs.get(key)
    return job if job is not None and not job.done.is_set() else None


def progress_text(job: IngestJob) -> tuple[float, str]:
    """(share done, what the job is doing) for a progress bar."""
    label = "Rebuilding the index" if job.rebuild else "Indexing the notes"
    done, total = job.progress
    if job.loading_model:
        return 0.0, f"{label}: loading the embedding model…"
    if not total:
        return 0.0, f"{label}: reading the notes…"
    return done / total, f"{label}: embedding {done} / {total}…"


def wait_for_ingest(job: IngestJob, container) -> object:
    """Show the job's progress in `container` until it ends; its report (or its error, raised)."""
    bar = container.progress(*progress_text(job))
    try:
        while not job.done.wait(POLL_S):
            bar.progress(*progress_text(job))
    finally:
        bar.empty()
    return job.outcome()
