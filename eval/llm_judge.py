"""Optional LLM judge (`python -m eval --judge llm`): RAGAS faithfulness and answer relevancy.

Advisory only, never part of the CI gate: the mean of `runs` runs with their spread. Needs an LLM
configured (`LLM_PROVIDER`, `LLM_MODEL`, …; see the README's settings) and the `ragas` package, which
is not a dependency; when either is missing it says so in one line and the offline judge stands alone.
"""

from __future__ import annotations

import statistics

DEFAULT_RUNS = 3
METRIC_NAMES = ("faithfulness", "answer_relevancy")


def llm_configured(settings) -> bool:
    return bool(settings.llm_provider) and settings.llm_provider.lower() not in ("none", "")


def not_configured_message(settings) -> str | None:
    """One line saying why the LLM judge cannot run, or None when it can be tried."""
    if not llm_configured(settings):
        return "LLM judge: not configured (LLM_PROVIDER is unset); reporting the offline judge only."
    try:
        import ragas  # noqa: F401
    except ImportError:
        return "LLM judge: the ragas package is not installed (pip install ragas); offline judge only."
    return None


def chat_model(settings):
    """The pipeline's own chat model for the configured provider (`qa.llm.make_chat_model`)."""
    from qa.llm import make_chat_model

    return make_chat_model(settings)


def run_llm_judge(records: list[dict], settings, model, *, runs: int = DEFAULT_RUNS) -> dict:
    """RAGAS scores of the answered items, `runs` times: {"status", "metrics": {name: mean, stdev, runs}}."""
    message = not_configured_message(settings)
    if message:
        return {"status": message, "metrics": {}}
    try:
        from ragas import EvaluationDataset, evaluate
        from ragas.embeddings import LangchainEmbeddingsWrapper
        from ragas.llms import LangchainLLMWrapper
        from ragas.metrics import Faithfulness, ResponseRelevancy

        rows = [{"user_input": r["question"], "response": r["answer"],
                 "retrieved_contexts": [c["quote"] for c in r["citations"]] or [""]}
                for r in records if not r["abstained"]]
        if not rows:
            return {"status": "LLM judge: no answered items to judge.", "metrics": {}}
        llm = LangchainLLMWrapper(chat_model(settings))
        embeddings = LangchainEmbeddingsWrapper(model.embeddings)
        scores: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
        for _ in range(runs):
            result = evaluate(EvaluationDataset.from_list(rows), metrics=[Faithfulness(), ResponseRelevancy()],
                              llm=llm, embeddings=embeddings, show_progress=False)
            frame = result.to_pandas()
            for name in METRIC_NAMES:
                if name in frame:
                    scores[name].append(float(frame[name].mean()))
    except Exception as exc:  # advisory: any failure (network, API, version) is reported, not fatal
        return {"status": f"LLM judge failed ({type(exc).__name__}: {exc}); offline judge only.", "metrics": {}}
    return {
        "status": f"RAGAS with LLM_PROVIDER={settings.llm_provider}, {runs} runs (advisory, not gated)",
        "metrics": {name: {"mean": statistics.fmean(v), "stdev": statistics.pstdev(v) if len(v) > 1 else 0.0,
                           "runs": len(v)} for name, v in scores.items() if v},
    }
