"""Helpers the tests import (``from tests.support.llm import ScriptedServer``), kept apart from test modules.

``llm`` (a scripted HTTP server, the real llama.cpp one), ``retrieval`` (the judged collections, cached indexes),
``evaluation`` (a tiny BEIR folder), ``server`` (a live server, gated re-rankers), ``server_fixtures`` (the served
models, loaded with ``pytest_plugins = ("tests.support.server_fixtures",)``) and ``fuzzing`` (the hypothesis profile).
"""
