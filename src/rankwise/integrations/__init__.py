"""Adapters for other frameworks: :mod:`rankwise.integrations.langchain` and :mod:`rankwise.integrations.llamaindex`.

Import the one you need; each needs its framework installed (``rankwise[langchain]`` / ``rankwise[llamaindex]``).
"""
