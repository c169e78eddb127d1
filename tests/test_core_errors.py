import math
import subprocess
import sys

import pytest

import rankwise
from rankwise import InvalidInputError, MissingDependencyError, Reranker, UnknownModelError
from rankwise.errors import require


class ConstantReranker(Reranker):
    """A minimal backend: exercises the base class's contract, which is what is under test here."""

    name = "constant"

    def __init__(self, value=0.0):
        self.value = value

    def _score(self, query, documents, progress):
        return [self.value] * len(documents)


@pytest.mark.parametrize("query", ["", "   ", None, 3])
def test_bad_query_is_rejected_with_its_value(query):
    with pytest.raises(InvalidInputError, match="query"):
        ConstantReranker().rank(query, ["a"])


def test_empty_candidates_give_empty_results():
    assert ConstantReranker().score("q", []) == []
    results = ConstantReranker().rank("q", [])
    assert len(results) == 0 and results.model == "constant"


def test_nan_scores_are_reported_not_ranked():
    with pytest.raises(InvalidInputError, match="NaN score for document 0"):
        ConstantReranker(math.nan).rank("q", ["a"])


def test_top_k_below_one_is_rejected():
    with pytest.raises(InvalidInputError, match="top_k must be >= 1, got 0"):
        ConstantReranker().rank("q", ["a"], top_k=0)


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(UnknownModelError) as info:
        rankwise.load("no-such-model")
    message = str(info.value)
    assert "'no-such-model'" in message and "default" in message and "backend=" in message


def test_unknown_backend_lists_backends():
    with pytest.raises(UnknownModelError, match="valid backends: .*cross-encoder"):
        rankwise.load("x", backend="nope")


def test_missing_extra_names_the_install_command():
    with pytest.raises(MissingDependencyError, match=r"pip install 'rankwise\[llm\]'"):
        require("surely_not_an_installed_module", "llm", "Something")


def test_import_is_light():
    code = "import sys, rankwise; rankwise.Document; rankwise.load; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version_comes_from_metadata():
    from importlib.metadata import version

    assert rankwise.__version__ == version("rankwise")
