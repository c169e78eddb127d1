"""Best-of-n measured on sampled answers (part of benchmarks/selection.py).

TrecQA's candidates differ by design; best-of-n candidates are n answers sampled for one prompt, where agreement
(self-consistency) is the classic signal. No judged set of sampled answers ships here, so this builds one the only
honest way available offline: short factual questions whose answer is one unambiguous word or name (below, written
for this benchmark), n = 8 answers sampled from the bundled SmolLM2-135M-Instruct exactly as
``rankwise.selection.generate_candidates`` (what best_of_n calls) samples them (temperature 0.8, a distinct seed per
sample, 24 tokens, one-sentence system prompt), and a sample counts as correct when its normalised tokens contain an
accepted answer (SQuAD normalisation; e.g. "paris", or "8"/"eight"). Each selection is scored by P@1 (how often the
chosen answer is correct) over all questions, and MAP/MRR over the questions with both correct and wrong samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is the capital of Italy?", ("rome",)),
    ("What is the capital of Germany?", ("berlin",)),
    ("What is the capital of Spain?", ("madrid",)),
    ("What is the capital of Russia?", ("moscow",)),
    ("What is the capital of Egypt?", ("cairo",)),
    ("What is the capital of Canada?", ("ottawa",)),
    ("What is the capital of Australia?", ("canberra",)),
    ("What is the capital of China?", ("beijing",)),
    ("What is the capital of England?", ("london",)),
    ("What is the capital of Greece?", ("athens",)),
    ("How many legs does a spider have?", ("8", "eight")),
    ("How many days are there in a week?", ("7", "seven")),
    ("How many continents are there on Earth?", ("7", "seven")),
    ("How many sides does a triangle have?", ("3", "three")),
    ("How many hours are there in a day?", ("24", "twentyfour", "twenty four")),
    ("How many months are there in a year?", ("12", "twelve")),
    ("What is the largest planet in the solar system?", ("jupiter",)),
    ("Which planet is known as the Red Planet?", ("mars",)),
    ("What is the closest star to the Earth?", ("sun",)),
    ("Who wrote Romeo and Juliet?", ("shakespeare",)),
    ("Who painted the Mona Lisa?", ("leonardo", "da vinci")),
    ("What is the chemical symbol for gold?", ("au",)),
    ("What is the chemical formula of water?", ("h2o",)),
    ("What is the boiling point of water in degrees Celsius?", ("100", "hundred")),
    ("What is the freezing point of water in degrees Celsius?", ("0", "zero")),
    ("What gas do plants absorb from the air for photosynthesis?", ("carbon dioxide", "co2")),
    ("What is the largest ocean on Earth?", ("pacific",)),
    ("What is the tallest mountain in the world?", ("everest",)),
    ("What is the longest river in Africa?", ("nile",)),
    ("What color is the sky on a clear day?", ("blue",)),
    ("What animal is known as the king of the jungle?", ("lion",)),
    ("What is the largest mammal in the world?", ("blue whale", "whale")),
    ("What language is spoken in Brazil?", ("portuguese",)),
    ("What is the opposite of hot?", ("cold",)),
    ("What is 2 plus 2?", ("4", "four")),
    ("What is 10 times 10?", ("100", "hundred")),
    ("In which country are the pyramids of Giza?", ("egypt",)),
    ("What is the currency of the United States?", ("dollar",)),
)
SYSTEM = "Answer the question in one short sentence."
N_SAMPLES, TEMPERATURE, MAX_TOKENS = 8, 0.8, 24


def is_correct(answer: str, accepted: Sequence[str]) -> bool:
    """Whether ``answer``'s normalised tokens contain one of the ``accepted`` answers as consecutive tokens."""
    from rankwise.selection.judges import normalize_answer

    tokens = normalize_answer(answer)
    for phrase in accepted:
        want = normalize_answer(phrase)
        if any(tokens[i : i + len(want)] == want for i in range(len(tokens) - len(want) + 1)):
            return True
    return False


def samples(n_questions: int, cache: Path) -> dict[str, list[str]]:
    """``N_SAMPLES`` answers per question from SmolLM2 (kept on disk: sampling is the slow part)."""
    from rankwise.llm.factory import make_client
    from rankwise.selection import generate_candidates

    path = cache / "selection" / f"sampled-smollm2-n{N_SAMPLES}-t{TEMPERATURE}-m{MAX_TOKENS}.json"
    have: dict[str, list[str]] = json.loads(path.read_text()) if path.is_file() else {}
    todo = [q for q, _ in QUESTIONS[:n_questions] if q not in have]
    if todo:
        client = make_client(None)
        for q in todo:
            have[q] = generate_candidates(q, client, N_SAMPLES, system=SYSTEM, temperature=TEMPERATURE,
                                          max_tokens=MAX_TOKENS, seed=0)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(have, ensure_ascii=False, indent=0))
    return {q: have[q] for q, _ in QUESTIONS[:n_questions]}


def _metrics(orders: dict[str, list[int]], labels: dict[str, list[int]]) -> dict[str, Any]:
    """P@1 over all questions (and its per-question values, for the significance test), MAP/MRR over the questions
    with both correct and wrong samples."""
    from rankwise.evaluation import evaluate_run
    from rankwise.evaluation.metrics import mean_scores

    def run(qids: list[str]) -> dict[str, list[tuple[str, float]]]:
        return {q: [(f"{q}-s{i}", float(len(orders[q]) - pos)) for pos, i in enumerate(orders[q])] for q in qids}

    qrels = {q: {f"{q}-s{i}": g for i, g in enumerate(v)} for q, v in labels.items()}
    mixed = [q for q, v in labels.items() if 0 < sum(v) < len(v)]
    per_q = evaluate_run(run(list(labels)), qrels, ["p@1"], relevance_threshold=1)["p@1"]
    out: dict[str, Any] = {"p@1 (all questions)": round(sum(per_q.values()) / len(per_q), 4), "_p@1": per_q}
    if mixed:
        per_mixed = evaluate_run(run(mixed), {q: qrels[q] for q in mixed}, ["map", "mrr@100"], 1)
        sub = mean_scores(per_mixed)
        out.update({"map (mixed questions)": round(sub["map"], 4), "mrr (mixed questions)": round(sub["mrr@100"], 4),
                    "_map": per_mixed["map"]})
    return out


def _with_significance(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each system's P@1 and MAP against the sample order's, by a paired randomization test (per-question values
    dropped from the output)."""
    import numpy as np

    from rankwise.evaluation.significance import randomization_test

    base = {key: dict(systems["sample order (random)"].get(key, {})) for key in ("_p@1", "_map")}
    out = {}
    for label, metrics in systems.items():
        for key, name in (("_p@1", "P@1"), ("_map", "MAP")):
            per_q = metrics.pop(key, None)
            if per_q is not None and label != "sample order (random)":
                qids = sorted(base[key])
                p = randomization_test(np.array([base[key][q] for q in qids]), np.array([per_q[q] for q in qids]))
                metrics[f"p vs sample order ({name})"] = round(p, 4)
        out[label] = metrics
    return out


def sampled_best_of_n(n_questions: int, judges: dict[str, Any], cache: Path, combine: Callable) -> dict[str, Any]:
    """Selections among sampled answers: sample order; select() with [correctness, agreement] judged by the SmolLM2
    LLMJudge (best_of_n's default judge; agreement then is token F1, best_of_n's default criterion), by the default
    re-ranker and by the bi-encoder (agreement: their similarity). Each criterion alone and equal weights come from the same per-criterion scores,
    combined as select() combines them (``combine``: benchmarks/selection.py's weighted_orders)."""
    from rankwise.llm.factory import make_client
    from rankwise.selection import LLMJudge, select

    answers = samples(n_questions, cache)
    accepted = dict(QUESTIONS)
    qids = {q: f"s{i}" for i, q in enumerate(answers)}
    labels = {qids[q]: [int(is_correct(a, accepted[q])) for a in a_list] for q, a_list in answers.items()}
    setups = {"LLMJudge smollm2": LLMJudge(make_client(None), max_reason_tokens=0),
              "default re-ranker": judges["default"], "minilm-bi-encoder": judges["minilm-bi-encoder"]}
    systems = {"sample order (random)": _metrics({q: list(range(N_SAMPLES)) for q in labels}, labels)}
    for label, judge in setups.items():
        per: dict[str, dict[str, list[float]]] = {"correctness": {}, "agreement": {}}
        for q, a_list in answers.items():
            result = sorted(select(q, a_list, criteria=["correctness", "agreement"], judge=judge),
                            key=lambda c: c.index)
            for name, scores in per.items():
                scores[qids[q]] = [c.scores[name] for c in result]
        agreement_by = "token F1" if label.startswith("LLM") else label
        systems[f"correctness: {label}"] = _metrics(combine(per, {"correctness": 1.0}), labels)
        systems[f"agreement: {agreement_by}"] = _metrics(combine(per, {"agreement": 1.0}), labels)
        systems[f"correctness ({label}) + agreement ({agreement_by}), equal weights"] = _metrics(
            combine(per, {"correctness": 1.0, "agreement": 1.0}), labels)
    correct = [sum(v) for v in labels.values()]
    return {
        "how": __doc__.strip().split("\n\n", 1)[1].replace("\n", " "),
        "questions": len(labels), "samples_per_question": N_SAMPLES,
        "sample_accuracy": round(sum(correct) / (N_SAMPLES * len(labels)), 4),
        "questions_with_a_correct_sample": sum(c > 0 for c in correct),
        "questions_with_mixed_samples": sum(0 < c < N_SAMPLES for c in correct),
        "systems": _with_significance(systems),
        "examples": {q: answers[q][:3] for q in list(answers)[:3]},
    }
