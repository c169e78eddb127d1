"""Calibration pairs for static int8: real (query, document) pairs whose activations set the int8 ranges.

Static int8 (OpenVINO through NNCF, ONNX through ``onnxruntime.quantization.quantize_static``) fixes each
activation's int8 scale once, from the model's activations on calibration inputs, instead of measuring it on every
batch at run time as dynamic int8 does. The ranges are only as good as the calibration inputs: pairs from the domain
the re-ranker will see, at their real lengths, tokenized and padded exactly as inference does them. This module is
that one path: :func:`check_calibration` validates what a caller passes, :func:`calibration_batches` turns it into
the padded batches the engine itself would build (same pair template, same truncation, same right padding, same
length-sorted token-budget batches), and :func:`calibration_digest` keys the export cache by it.

Without pairs, :data:`DEFAULT_CALIBRATION` is used: a few dozen general-domain pairs written for this purpose, of
mixed lengths. Pass a few hundred pairs of your own (queries and the candidates your first stage returns for them)
for the best agreement; ``benchmarks/throughput.py`` calibrates on SciFact train queries x BM25 candidates.

Example:
    >>> pairs = check_calibration([("what is an lstm?", "LSTMs gate a cell state."), ("q", {"text": "a doc"})])
    >>> pairs[1]
    ('q', 'a doc')
    >>> len(calibration_digest(pairs))
    16
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rankwise.documents import DocumentLike, document_text, to_documents
from rankwise.errors import InvalidInputError
from rankwise.rerankers.cross_encoder.batching import iter_batches
from rankwise.rerankers.cross_encoder.pairs import PairEncoder, load_fast_tokenizer

CalibrationPairs = Sequence[tuple[str, DocumentLike]]
MAX_CALIBRATION_PAIRS = 10_000
"""More pairs than this add calibration time, not accuracy (NNCF and onnxruntime subsample to a few hundred)."""

_PASSAGES = (
    ("Long short-term memory (LSTM) networks add a cell state and three gates to a recurrent network. The forget "
     "gate decides what to drop from the cell state, the input gate what to write, and the output gate what to "
     "expose. Because the cell state is updated additively, gradients can flow over hundreds of time steps without "
     "vanishing, which is why LSTMs learned long-range dependencies that plain recurrent networks could not."),
    ("The seasons are caused by the tilt of the Earth's rotational axis, about 23.4 degrees relative to its orbital "
     "plane. When the Northern Hemisphere leans toward the Sun it receives more direct sunlight and longer days."),
    ("Metformin is the usual first medicine for type 2 diabetes. It lowers glucose production in the liver and "
     "improves insulin sensitivity. Common side effects are gastrointestinal: nausea, diarrhoea and abdominal "
     "discomfort, which often fade after the first weeks or with an extended-release tablet. Lactic acidosis is a "
     "rare but serious risk in people with severely reduced kidney function, so the dose is adjusted to the "
     "estimated glomerular filtration rate and the drug is stopped before some contrast imaging procedures."),
    ("In Python, a list comprehension builds a new list from an iterable in one expression: [x * 2 for x in items "
     "if x > 0]. It is usually faster and clearer than appending inside a for loop."),
    "Bananas are a good source of potassium and vitamin B6.",
    ("The Treaty of Westphalia, signed in 1648, ended the Thirty Years' War in the Holy Roman Empire and the Eighty "
     "Years' War between Spain and the Dutch Republic. Historians often date the modern system of sovereign states "
     "to it: each ruler could determine the religion of their own territory, and the independence of the Dutch "
     "Republic and the Swiss Confederation was recognised. The negotiations took place in the cities of Osnabrueck "
     "and Muenster over several years and involved delegations from most European powers."),
    ("To reset a forgotten router password, hold the reset button on the back for ten seconds until the lights "
     "flash, then log in with the default credentials printed on the label."),
    ("BM25 scores a document by summing, over the query terms, the inverse document frequency of each term times a "
     "saturating function of its frequency in the document, normalised by the document's length relative to the "
     "average. Its two parameters, k1 and b, control term-frequency saturation and length normalisation."),
    ("Photosynthesis converts light energy into chemical energy. In the light-dependent reactions, water is split "
     "and ATP and NADPH are produced in the thylakoid membranes; in the Calvin cycle, carbon dioxide is fixed into "
     "three-carbon sugars in the stroma using that ATP and NADPH. Oxygen is released as a by-product. The enzyme "
     "RuBisCO, which catalyses carbon fixation, is thought to be the most abundant protein on Earth, and its "
     "tendency to react with oxygen instead of carbon dioxide, photorespiration, wastes part of the fixed energy. "
     "C4 and CAM plants concentrate carbon dioxide around RuBisCO to limit that loss in hot, dry climates."),
    ("A tenant who wants to end a fixed-term lease early usually owes rent until the landlord re-lets the unit, "
     "but many jurisdictions require the landlord to make reasonable efforts to find a new tenant."),
    ("The 2008 financial crisis began in the United States housing market, where subprime mortgages had been "
     "packaged into securities rated far safer than they were. When house prices fell, losses spread through "
     "banks that held those securities or had insured them, interbank lending froze, and Lehman Brothers failed "
     "in September 2008. Central banks cut interest rates to near zero and governments recapitalised banks."),
    ("Vaccines train the immune system by presenting an antigen, a weakened or inactivated pathogen, a protein "
     "subunit, or messenger RNA encoding a protein, so that memory B and T cells respond quickly to a later "
     "infection. Herd immunity arises when enough people are immune that chains of transmission die out."),
)
_QUERIES = (
    ("how do lstm networks remember long-term dependencies?", (0, 7, 4)),
    ("why does earth have seasons", (1, 8, 5)),
    ("side effects of metformin", (2, 11, 9)),
    ("python list comprehension example", (3, 0, 6)),
    ("is banana high in potassium", (4, 2, 8)),
    ("what did the peace of westphalia establish", (5, 10, 1)),
    ("router admin password reset", (6, 3, 7)),
    ("bm25 ranking function parameters k1 b", (7, 0, 3)),
    ("where does the calvin cycle take place", (8, 1, 11)),
    ("can i break my lease early", (9, 5, 6)),
    ("causes of the 2008 financial crisis", (10, 9, 2)),
    ("how do mrna vaccines work", (11, 8, 4)),
)
DEFAULT_CALIBRATION: tuple[tuple[str, str], ...] = tuple(
    (query, _PASSAGES[i]) for query, picks in _QUERIES for i in picks
)
"""36 general-domain pairs (12 queries x their relevant passage and two others), 10 to ~100 words each."""


def check_calibration(pairs: CalibrationPairs | None) -> tuple[tuple[str, str], ...]:
    """Validated ``(query, document text)`` pairs; ``None`` gives :data:`DEFAULT_CALIBRATION`.

    A document may be a string, a dict with ``text`` (and ``title``) or a :class:`~rankwise.types.Document`; its
    text is what inference would read (title + text, :func:`rankwise.documents.document_text`).

    Raises:
        InvalidInputError: not a sequence of pairs, an empty sequence, more than :data:`MAX_CALIBRATION_PAIRS`,
            or a pair whose query is not a non-empty string (the message names the pair's index).
    """
    if pairs is None:
        return DEFAULT_CALIBRATION
    if isinstance(pairs, (str, bytes, dict)) or not isinstance(pairs, Sequence):
        raise InvalidInputError(
            f"calibration must be a list of (query, document) pairs, got {type(pairs).__name__}; "
            "e.g. calibration=[('what is bm25?', 'BM25 is a ranking function.'), ...]."
        )
    if not pairs or len(pairs) > MAX_CALIBRATION_PAIRS:
        raise InvalidInputError(
            f"calibration needs 1 to {MAX_CALIBRATION_PAIRS:,} pairs (a few hundred is plenty), got {len(pairs)}."
        )
    out = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidInputError(f"calibration pair {i} must be a (query, document) pair, got {pair!r:.80}.")
        query, document = pair
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"calibration pair {i}: the query must be a non-empty string, got {query!r:.80}.")
        try:
            text = document_text(to_documents([document])[0])
        except InvalidInputError as exc:
            raise InvalidInputError(f"calibration pair {i}: {str(exc).replace('document 0 ', 'the document ', 1)}") from None
        out.append((query, text))
    return tuple(out)


def calibration_digest(pairs: Sequence[tuple[str, str]]) -> str:
    """A short hash of checked pairs, for cache keys and manifests (same pairs, same digest)."""
    return hashlib.sha256(json.dumps(list(pairs), ensure_ascii=False).encode()).hexdigest()[:16]


def calibration_batches(
    folder: str | Path,
    pairs: Sequence[tuple[str, str]],
    names: Sequence[str],
    *,
    max_length: int,
    pad_id: int,
    max_tokens: int = 2048,
    batch_size: int = 32,
) -> list[dict[str, np.ndarray]]:
    """The model inputs inference would build for ``pairs``: one dict of int64 arrays (``names`` only) per batch.

    The tokenizer is the folder's ``tokenizer.json``; long documents are cut at ``max_length`` (the first passage
    is what calibration needs to see; chunking would only add more passages of the same kind).
    """
    encoder = PairEncoder(load_fast_tokenizer(folder), max_length=max_length, overflow="truncate")
    by_query: dict[str, list[str]] = {}
    for query, text in pairs:
        by_query.setdefault(query, []).append(text)
    ids: list[np.ndarray] = []
    types: list[np.ndarray] = []
    for query, texts in by_query.items():
        encoded = encoder.encode(query, texts)
        ids.extend(encoded.input_ids)
        types.extend(encoded.token_type_ids)
    batches = []
    for batch in iter_batches(ids, types, pad_id, batch_size, max(max_tokens, max_length)):
        arrays = batch.arrays()
        batches.append({name: arrays[name] for name in names})
    return batches
