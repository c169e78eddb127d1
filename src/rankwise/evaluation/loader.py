"""Reading judged test collections: BEIR-layout folders, TREC run files and qrels.

A BEIR folder holds ``corpus.jsonl`` (``{"_id", "title", "text"}``), ``queries.jsonl`` (``{"_id", "text"}``)
and ``qrels/<split>.tsv`` (``query-id  corpus-id  score`` with a header row). A *re-ranking pool* is the same
folder plus one TREC run file (``*.run``) that lists the candidates of every query (e.g. TREC DL 2019's BM25
top-100).

Nothing is dropped silently: queries without judgements in the split are skipped and counted, judgements that
point at unknown queries or at documents outside the corpus are counted, and a malformed line raises an error
that names the file and line.

Example:
    >>> from rankwise.evaluation import load_dataset          # doctest: +SKIP
    >>> data = load_dataset("../shared/data/scifact", split="test")  # doctest: +SKIP
    >>> len(data.queries), data.kind, data.relevance_threshold  # doctest: +SKIP
    (300, 'collection', 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rankwise.documents import CorpusError, EmptyCorpusError, decode, json_lines, read_corpus
from rankwise.errors import RankwiseError
from rankwise.types import Document

Qrels = dict[str, dict[str, int]]
"""query id -> {document id: graded relevance} (higher = more relevant; 0 or below = judged not relevant)."""

Run = dict[str, list[tuple[str, float]]]
"""query id -> [(document id, score), ...], best first."""

COLLECTION_THRESHOLD = 1
"""Default relevance threshold of binary metrics for full collections (BEIR: any positive grade)."""
POOL_THRESHOLD = 2
"""Default relevance threshold for re-ranking pools given as a TREC run (TREC Deep Learning: grade >= 2)."""


class DataFormatError(RankwiseError, ValueError):
    """A collection file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class LoadCounts:
    """What the loader left out, and why (reported with every evaluation)."""

    queries_in_file: int = 0
    unjudged_queries: int = 0  # queries in queries.jsonl with no judgement in this split: skipped
    qrels_unknown_queries: int = 0  # judged query ids missing from queries.jsonl: skipped
    # (query, doc) judgements whose doc is not in corpus.jsonl (normal for pools)
    judged_docs_not_in_corpus: int = 0
    queries_without_relevant: int = 0  # judged queries whose judgements are all <= 0 (kept; they score 0)
    # judged queries the pool run lists no candidate for (kept; they score 0)
    queries_without_candidates: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Dataset:
    """One split of a judged collection, ready to evaluate.

    ``queries`` holds only the judged queries of the split (in file order); ``pool`` is the given candidate
    run for re-ranking pools and None for full collections (whose candidates come from
    :mod:`rankwise.evaluation.first_stage`).
    """

    name: str
    path: Path
    split: str
    corpus: Mapping[str, Document]
    queries: Mapping[str, str]
    qrels: Qrels
    kind: str  # "collection" or "pool"
    pool: Run | None = None
    pool_file: Path | None = None
    counts: LoadCounts = field(default_factory=LoadCounts)

    @property
    def relevance_threshold(self) -> int:
        """The loader's default threshold for binary metrics: 1 for collections, 2 for TREC-style pools."""
        return POOL_THRESHOLD if self.kind == "pool" else COLLECTION_THRESHOLD

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path),
            "split": self.split,
            "kind": self.kind,
            "documents": len(self.corpus),
            "queries": len(self.queries),
            "judgements": sum(len(v) for v in self.qrels.values()),
            "pool_file": None if self.pool_file is None else self.pool_file.name,
            "skipped": self.counts.to_dict(),
        }


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """The objects of a JSONL file with their line numbers (read by the library's one JSONL reader)."""
    try:
        for number, obj in json_lines(decode(path.read_bytes(), str(path)), str(path)):
            if not isinstance(obj, dict):
                raise DataFormatError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}.")
            yield number, obj
    except CorpusError as exc:
        raise DataFormatError(str(exc)) from exc


def _require_id(obj: dict, path: Path, number: int) -> str:
    raw = obj.get("_id", obj.get("id"))
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DataFormatError(f'{path}:{number}: missing "_id".')
    return str(raw)


def read_queries(path: str | Path) -> dict[str, str]:
    """``queries.jsonl`` as ``{id: text}`` in file order."""
    path = Path(path)
    _must_exist(path, "queries")
    queries: dict[str, str] = {}
    for number, obj in _jsonl(path):
        query_id = _require_id(obj, path, number)
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(f'{path}:{number}: query {query_id!r} has no "text".')
        if query_id in queries:
            raise DataFormatError(f"{path}:{number}: duplicate query id {query_id!r}.")
        queries[query_id] = text
    return queries


def read_qrels(path: str | Path) -> Qrels:
    """Judgements from a BEIR TSV (``query-id corpus-id score``, header optional) or a TREC qrels file
    (``qid iteration docid relevance``). Grades must be integers.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "q.tsv"
        >>> _ = p.write_text("query-id\\tcorpus-id\\tscore\\nq1\\td1\\t2\\n")
        >>> read_qrels(p)
        {'q1': {'d1': 2}}
    """
    path = Path(path)
    _must_exist(path, "qrels")
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if number == 1 and parts[0].lower() in ("query-id", "query_id", "qid"):
                continue  # header row
            if len(parts) == 3:
                query_id, doc_id, grade = parts
            elif len(parts) == 4:
                query_id, _, doc_id, grade = parts
            else:
                raise DataFormatError(
                    f"{path}:{number}: expected 'query-id corpus-id score' (3 columns) or TREC "
                    "'qid 0 docid rel' "
                    f"(4 columns), got {len(parts)} columns: {line.rstrip()!r}."
                )
            try:
                qrels.setdefault(query_id, {})[doc_id] = int(grade)
            except ValueError:
                raise DataFormatError(f"{path}:{number}: relevance {grade!r} is not an integer.") from None
    return qrels


def read_run(path: str | Path) -> Run:
    """A TREC run file (``qid Q0 docid rank score tag``) as ``{qid: [(docid, score), ...]}`` best first.

    Candidates are ordered by score (descending), ties by the file's rank column, as trec_eval orders them.

    Raises:
        DataFormatError: a line without 6 columns, a non-numeric rank or score, or a document listed twice
        for a query.
    """
    path = Path(path)
    _must_exist(path, "run")
    rows: dict[str, list[tuple[float, int, str]]] = {}
    seen: set[tuple[str, str]] = set()
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataFormatError(
                    f"{path}:{number}: a TREC run line has 6 columns 'qid Q0 docid rank score tag', "
                    f"got {len(parts)}: {line.rstrip()!r}."
                )
            query_id, _, doc_id, rank, score, _ = parts
            try:
                rank_value, score_value = int(rank), float(score)
            except ValueError:
                raise DataFormatError(
                    f"{path}:{number}: rank {rank!r} must be an integer and score {score!r} a number."
                ) from None
            if (query_id, doc_id) in seen:
                raise DataFormatError(
                    f"{path}:{number}: document {doc_id!r} is listed twice for query {query_id!r}."
                )
            seen.add((query_id, doc_id))
            rows.setdefault(query_id, []).append((score_value, rank_value, doc_id))
    return {q: [(d, s) for s, _, d in sorted(r, key=lambda x: (-x[0], x[1]))] for q, r in rows.items()}


def write_run(run: Mapping[str, list[tuple[str, float]]], path: str | Path, tag: str = "rankwise") -> Path:
    """Write ``run`` in TREC format (rank from 1, best first). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = "".join(tag.split()) or "rankwise"
    with path.open("w", encoding="utf-8") as fh:
        for query_id, ranked in run.items():
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                fh.write(f"{query_id} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
    return path


def _read_corpus(path: Path) -> dict[str, Document]:
    """``corpus.jsonl`` by id, read like every corpus (:func:`rankwise.documents.read_corpus`): every key of a line
    other than ``_id``, ``title`` and ``text`` is kept in ``metadata``; an empty title is None."""
    _must_exist(path, "corpus")
    try:
        return {str(doc.id): doc for doc in read_corpus(path, require_ids=True)}
    except (CorpusError, EmptyCorpusError) as exc:
        raise DataFormatError(str(exc)) from exc


def _must_exist(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataFormatError(
            f"{what} file {str(path)!r} does not exist; a BEIR folder needs corpus.jsonl, "
            "queries.jsonl and qrels/<split>.tsv."
        )


def _find_pool(folder: Path) -> Path | None:
    runs = sorted(folder.glob("*.run"))
    if len(runs) > 1:
        raise DataFormatError(
            f"{folder} holds several run files ({', '.join(r.name for r in runs)}); "
            "pass candidates=PATH to pick one."
        )
    return runs[0] if runs else None


def load_dataset(path: str | Path, split: str = "test", candidates: str | Path | None = None) -> Dataset:
    """Load one split of a BEIR-layout folder.

    Args:
        path: the folder.
        split: the qrels file to use (``qrels/<split>.tsv``).
        candidates: ``None`` = the folder's single ``*.run`` file when it has one (a re-ranking pool), else
            a full collection; a path = that TREC run file as the candidate pool; ``"bm25"`` = treat the
            folder as a full collection even if it carries a run file.

    Raises:
        DataFormatError: a missing file, a malformed line (named with file:line), or an unknown split.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataFormatError(f"dataset folder {str(folder)!r} does not exist.")
    qrels_path = _qrels_file(folder, split)
    corpus = _read_corpus(folder / "corpus.jsonl")
    all_queries = read_queries(folder / "queries.jsonl")
    all_qrels = read_qrels(qrels_path)
    pool_file = _pool_file(folder, candidates)
    pool = read_run(pool_file) if pool_file is not None else None
    queries = {q: t for q, t in all_queries.items() if q in all_qrels}
    qrels = {q: j for q, j in all_qrels.items() if q in all_queries}
    counts = LoadCounts(
        queries_in_file=len(all_queries),
        unjudged_queries=len(all_queries) - len(queries),
        qrels_unknown_queries=len(all_qrels) - len(qrels),
        judged_docs_not_in_corpus=sum(1 for j in qrels.values() for d in j if d not in corpus),
        queries_without_relevant=sum(1 for j in qrels.values() if not any(g > 0 for g in j.values())),
        queries_without_candidates=0 if pool is None else sum(1 for q in queries if not pool.get(q)),
    )
    if pool is not None:
        pool = _judged_pool(pool, pool_file, queries, corpus)
    return Dataset(
        name=folder.resolve().name,
        path=folder,
        split=split,
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        kind="pool" if pool is not None else "collection",
        pool=pool,
        pool_file=pool_file,
        counts=counts,
    )


def _qrels_file(folder: Path, split: str) -> Path:
    """``qrels/<split>.tsv`` of ``folder``; an error naming the splits there when it is missing."""
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise DataFormatError(
            f"{folder}: no qrels for split {split!r}; available splits: {', '.join(have) or 'none'}."
        )
    return qrels_path


def _pool_file(folder: Path, candidates: str | Path | None) -> Path | None:
    """The run file of the candidate pool (see :func:`load_dataset`); None for a full collection."""
    if candidates is None:
        return _find_pool(folder)
    return None if str(candidates) == "bm25" else Path(candidates)


def _judged_pool(
    pool: Run, pool_file: Path | None, queries: Mapping[str, str], corpus: Mapping[str, Document]
) -> Run:
    """The pool's candidates of the judged queries (an empty list for one the run lacks); every candidate must be a
    document of the corpus."""
    missing = {d for q in queries for d, _ in pool.get(q, []) if d not in corpus}
    if missing:
        raise DataFormatError(
            f"{pool_file}: {len(missing)} candidate documents are not in corpus.jsonl (e.g. {min(missing)!r})."
        )
    return {q: pool.get(q, []) for q in queries}
