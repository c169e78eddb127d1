"""Seeded generators of hostile inputs for benchmarks/robustness.py: odd Unicode, empty and token-less texts,
structured documents with junk fields, broken files and random JSON bodies.

Plain ``random.Random`` (no hypothesis) so a benchmark run is one fixed, reproducible list of cases per seed; the
fuzz tests under tests/ explore with hypothesis instead.
"""

from __future__ import annotations

import json
import random
from typing import Any

# The inputs that broke wave 1, and their relatives: no indexable BM25 token, lone surrogates, bidi and control
# characters, combining marks, characters whose case mapping changes length, non-characters, very long words.
CRAFTED: tuple[str, ...] = (
    "", " ", "\t\n", "A", "B", "7", "8", "👍", "👎", "the of", "it is", "\ud800", "a\ud800b", "\udfff\ud800",
    "\x00", "nul\x00inside", "\u202eevil", "e\u0301", "ﬁ", "İstanbul", "Straße", "\uffff", "\U0010ffff",
    "🏳️‍🌈", "中文文本检索", "مرحبا بالعالم", "<script>alert(1)</script>", '{"text": 1}', "\\", "\r\n", "...",
    "lstm memory gates", "x" * 5000,
)
_RANGES = ((0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x2FF), (0x300, 0x36F), (0x4E00, 0x4E80), (0x1F300, 0x1F64F),
           (0xD800, 0xDFFF), (0xFFF0, 0xFFFF), (0x10FF00, 0x10FFFF))


def random_text(rng: random.Random, max_len: int = 120) -> str:
    """A crafted string, or random code points from ASCII, controls, combining marks, CJK, emoji and surrogates."""
    if rng.random() < 0.35:
        return rng.choice(CRAFTED)
    weights = (60, 3, 5, 3, 5, 5, 2, 1, 1)
    chars = []
    for _ in range(rng.randint(0, max_len)):
        lo, hi = rng.choices(_RANGES, weights)[0]
        chars.append(chr(rng.randint(lo, hi)))
    return "".join(chars)


def random_json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 2 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**70), 3.5, 1e308, -0.0])
    if kind in (3, 4):
        return random_text(rng, 30)
    if kind == 5:
        return [random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {random_text(rng, 8): random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def random_document(rng: random.Random) -> Any:
    """A string, or a dict with text and any of id/title/metadata/first_stage_score/extra keys."""
    if rng.random() < 0.4:
        return random_text(rng)
    doc: dict[str, Any] = {"text": random_text(rng)}
    if rng.random() < 0.6:
        doc["id"] = rng.choice([f"d{rng.randint(0, 99)}", rng.randint(0, 10**6), random_text(rng, 10)])
    if rng.random() < 0.4:
        doc["title"] = random_text(rng, 30)
    if rng.random() < 0.5:
        doc["first_stage_score"] = rng.uniform(-5, 30)
    if rng.random() < 0.4:
        doc["metadata"] = {"source": random_text(rng, 10), "year": rng.randint(1900, 2030)}
    if rng.random() < 0.3:
        doc[random_text(rng, 6) or "extra"] = random_json_value(rng)
    return doc


def random_documents(rng: random.Random, most: int = 12) -> list[Any]:
    docs = [random_document(rng) for _ in range(rng.randint(0, most))]
    if docs and rng.random() < 0.2:  # duplicates in several positions
        docs.append(docs[0])
        docs.insert(0, docs[-1])
    return docs


def random_file(rng: random.Random, docs: list[Any]) -> tuple[bytes, int | None]:
    """A document file in one of the CLI's formats, sometimes broken; returns its bytes and how many documents a
    correct reader yields (None when the file is malformed and must be refused)."""
    shape = rng.choice(["jsonl", "json", "lines", "broken-jsonl", "empty", "binary", "bom-jsonl"])
    plain = [d if isinstance(d, str) else d.get("text", "") for d in docs]
    if shape in ("jsonl", "bom-jsonl"):
        body = "\n".join(json.dumps(d) for d in docs)  # ASCII escapes keep surrogates representable
        prefix = "\ufeff" if shape == "bom-jsonl" else ""
        return (prefix + body).encode("utf-8"), len(docs)
    if shape == "json":
        return json.dumps(docs).encode("utf-8"), len(docs)
    if shape == "lines":
        lines = [" ".join(t.split()) for t in plain]
        lines = [ln.encode("utf-8", "replace").decode("utf-8") for ln in lines if ln]
        lines = [ln for ln in lines if not ln.startswith(("{", '"', "["))]  # keep the format unambiguous
        return "\n".join(lines).encode("utf-8"), len(lines)
    if shape == "broken-jsonl":
        return ("\n".join(json.dumps(d) for d in docs) + '\n{"text": "unterminated').encode(), None
    if shape == "empty":
        return b"", 0
    return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 200))), None


def random_body(rng: random.Random, route: str) -> Any:
    """A request body for ``route``: mostly well-formed with hostile values, sometimes wrong types or junk."""
    roll = rng.random()
    if roll < 0.1:
        return random_json_value(rng)
    docs = random_documents(rng)
    if route == "/rerank":
        body: dict[str, Any] = {"query": random_text(rng), "texts": [random_text(rng) for _ in docs]}
        for key in ("raw_scores", "return_text", "truncate"):
            if rng.random() < 0.4:
                body[key] = rng.choice([True, False])
        if rng.random() < 0.2:
            body["truncation_direction"] = rng.choice(["Left", "right", "up"])
    else:
        body = {"query": random_text(rng), "documents": docs}
        if rng.random() < 0.4:
            body["top_n"] = rng.choice([1, 3, 0, -1, 10**9])
        if rng.random() < 0.4:
            body["return_documents"] = rng.choice([True, False])
        if rng.random() < 0.2:
            body["rank_fields"] = rng.choice([["title", "text"], ["text"], ["missing"], []])
    if rng.random() < 0.5:
        body["model"] = rng.choice(["bm25", "default", "nope"])
    if roll > 0.9:  # a field of the wrong type
        key = rng.choice(sorted(body))
        body[key] = random_json_value(rng)
    return body
