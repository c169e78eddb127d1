"""Server settings: model specs, the config file (TOML/JSON), RANKWISE_* variables, flags and their precedence, and
``rankwise serve`` as a real process (start, answer, SIGTERM, clean exit)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from rankwise.errors import InvalidInputError
from rankwise.server.config import ServerConfig, build_config, parse_model_spec, read_env
from tests.support.server import DOCS, free_port

pytest_plugins = ("tests.support.server_fixtures",)  # its fixture sharp_cross_encoder


@pytest.mark.parametrize(
    ("spec", "name", "source", "backend", "options"),
    [
        ("bm25", "bm25", "bm25", None, {}),
        (
            "cross-encoder/ms-marco-MiniLM-L-6-v2",
            "cross-encoder/ms-marco-MiniLM-L-6-v2",
            "cross-encoder/ms-marco-MiniLM-L-6-v2",
            None,
            {},
        ),
        ("minilm=./models/ce", "minilm", "./models/ce", None, {}),
        ("fast=./models/ce:onnx", "fast", "./models/ce", "onnx", {}),
        (
            "./models/ce:cross-encoder?normalize=true&max_length=256&overflow=truncate",
            "./models/ce",
            "./models/ce",
            "cross-encoder",
            {"normalize": True, "max_length": 256, "overflow": "truncate"},
        ),
        ("C:/models/ce", "C:/models/ce", "C:/models/ce", None, {}),  # a colon that names no backend stays
        ("a=b=c", "a", "b=c", None, {}),
        ("x/y=z", "x/y=z", "x/y=z", None, {}),  # '/' cannot be in a name: the whole thing is the source
        ('m=./ce?fields=["title","text"]', "m", "./ce", None, {"fields": ["title", "text"]}),
    ],
)
def test_parse_model_spec(spec: str, name: str, source: str, backend: str | None, options: dict) -> None:
    parsed = parse_model_spec(spec)
    assert (parsed.name, parsed.source, parsed.backend, dict(parsed.options)) == (
        name,
        source,
        backend,
        options,
    )


@pytest.mark.parametrize("spec", ["", "  ", "name=", "m=./ce?novalue"])
def test_parse_model_spec_errors(spec: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_model_spec(spec)


def test_precedence_flags_over_env_over_file(tmp_path) -> None:  # noqa: ANN001
    toml = tmp_path / "server.toml"
    toml.write_text(
        'port = 9001\nmax_documents = 10\nmax_wait_ms = 2.5\napi_keys = ["file-key"]\n'
        '[[models]]\nname = "ce"\nsource = "./folder"\nbackend = "onnx"\noptions = { normalize = true }\n'
    )
    env = {"RANKWISE_PORT": "9002", "RANKWISE_API_KEYS": "env-a, env-b", "RANKWISE_BATCHING": "off"}
    config = build_config({"port": 9003, "host": None}, config_file=toml, environ=env)
    assert config.port == 9003  # flag
    assert config.api_keys == ("env-a", "env-b")  # env replaces the file's list
    assert config.batching is False
    assert config.max_documents == 10 and config.max_wait_ms == 2.5  # file
    assert config.host == "127.0.0.1"  # default (a None flag is "not given")
    (model,) = config.models
    assert (model.name, model.source, model.backend, dict(model.options)) == (
        "ce",
        "./folder",
        "onnx",
        {"normalize": True},
    )


def test_config_file_from_env_json_and_models_as_specs(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "server.json"
    path.write_text(
        json.dumps({"models": ["a=./x:onnx", "bm25"], "default_model": "bm25", "cors_origins": ["*"]})
    )
    config = build_config({}, environ={"RANKWISE_CONFIG": str(path), "RANKWISE_MODELS": ""})
    assert config.models == ()  # an empty variable clears the file's list
    config = build_config({}, environ={"RANKWISE_CONFIG": str(path)})
    assert [m.name for m in config.models] == ["a", "bm25"] and config.default_model == "bm25"
    assert config.cors_origins == ("*",)
    env = read_env({"RANKWISE_MODELS": "a=./x:onnx,b=bm25", "RANKWISE_MAX_WAIT_MS": "7", "OTHER": "1"})
    assert [m.name for m in env["models"]] == ["a", "b"] and env["max_wait_ms"] == 7.0


def test_api_keys_file(tmp_path) -> None:  # noqa: ANN001
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nk1\n\n  k2  \nk1\n")
    config = ServerConfig(api_keys=("flag",), api_keys_file=str(keys))
    assert config.all_api_keys() == ("flag", "k1", "k2")
    with pytest.raises(InvalidInputError, match="cannot read api_keys_file"):
        ServerConfig(api_keys_file=str(tmp_path / "missing")).all_api_keys()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"flags": {"port": "http"}}, "port='http' is not a valid int"),
        ({"environ": {"RANKWISE_BATCHING": "maybe"}}, "RANKWISE_BATCHING"),
        ({"flags": {"max_documents": 0}}, "max_documents must be an integer >= 1"),
        ({"flags": {"models": ["a=./x", "a=./y"]}}, "given twice"),
        ({"flags": {"models": ["a=./x"], "default_model": "b"}}, "default_model 'b'"),
        ({"flags": {"max_wait_ms": -1}}, "max_wait_ms"),
    ],
)
def test_bad_settings_name_the_setting(kwargs: dict, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words.replace("(", r"\(").replace("[", r"\[")):
        build_config(kwargs.get("flags"), environ=kwargs.get("environ", {}))


def test_bad_config_files(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.toml"
    bad.write_text("port = \n")
    with pytest.raises(InvalidInputError, match="does not parse"):
        build_config({}, config_file=bad, environ={})
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"prot": 1}')
    with pytest.raises(InvalidInputError, match=r"unknown settings \['prot'\]"):
        build_config({}, config_file=unknown, environ={})
    with pytest.raises(InvalidInputError, match="cannot read config file"):
        build_config({}, config_file=tmp_path / "none.toml", environ={})


def test_cli_print_config(capsys, monkeypatch) -> None:  # noqa: ANN001
    from rankwise.cli import main

    monkeypatch.setenv("RANKWISE_API_KEYS", "secret-1,secret-2")
    assert (
        main(
            [
                "serve",
                "--model",
                "m=./ce:onnx?normalize=true",
                "--port",
                "9100",
                "--no-batching",
                "--print-config",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["port"] == 9100 and shown["batching"] is False and shown["api_keys"] == "2 key(s)"
    assert shown["models"] == [
        {"name": "m", "source": "./ce", "backend": "onnx", "options": {"normalize": True}}
    ]
    assert "secret" not in out


def test_no_key_shows_in_a_repr_or_the_printed_config(capsys) -> None:  # noqa: ANN001
    from rankwise.cli import main

    assert "client-key" not in repr(ServerConfig(api_keys=("client-key",)))
    status = main(["serve", "--model", "gw=rerank-v3.5:cohere?api_key=upstream-key&timeout=5", "--print-config"])
    out = capsys.readouterr().out
    assert status == 0 and "upstream-key" not in out
    assert json.loads(out)["models"][0]["options"] == {"api_key": "***", "timeout": 5}


def test_request_timeout_from_every_source(tmp_path) -> None:  # noqa: ANN001
    assert ServerConfig().request_timeout_s == 60.0
    assert ServerConfig(request_timeout_s=0).request_timeout_s is None  # 0: no deadline
    toml = tmp_path / "server.toml"
    toml.write_text("request_timeout_s = 5\n")
    assert build_config({}, config_file=toml, environ={}).request_timeout_s == 5.0
    env = {"RANKWISE_REQUEST_TIMEOUT_S": "none"}
    assert build_config({}, config_file=toml, environ=env).request_timeout_s is None
    env = {"RANKWISE_REQUEST_TIMEOUT_S": "0"}
    assert build_config({"request_timeout_s": 2.5}, config_file=toml, environ=env).request_timeout_s == 2.5
    with pytest.raises(InvalidInputError, match="request_timeout_s must be a number of seconds >= 0"):
        build_config({"request_timeout_s": -1}, environ={})
    with pytest.raises(InvalidInputError, match="RANKWISE_REQUEST_TIMEOUT_S"):
        read_env({"RANKWISE_REQUEST_TIMEOUT_S": "soon"})


def test_cli_request_timeout_flag(capsys) -> None:  # noqa: ANN001
    from rankwise.cli import main

    assert main(["serve", "--request-timeout-s", "12.5", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["request_timeout_s"] == 12.5
    assert main(["serve", "--request-timeout-s", "0", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["request_timeout_s"] is None


def test_toml_on_python_310_needs_tomli(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Python 3.10 has no tomllib: the config reader takes the tomli backport, or says how to install it."""
    from rankwise.errors import MissingDependencyError
    from rankwise.server.config import read_config_file

    toml = tmp_path / "server.toml"
    toml.write_text("port = 9009\n")
    assert read_config_file(toml) == {"port": 9009}  # this interpreter's own reader
    try:
        import tomli
    except ModuleNotFoundError:
        tomli = None
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    if tomli is None:
        with pytest.raises(MissingDependencyError, match=r"'tomli'.*rankwise\[server\].*\.json file"):
            read_config_file(toml)
    else:
        assert read_config_file(toml) == {"port": 9009}
    json_file = tmp_path / "server.json"
    json_file.write_text('{"port": 9010}')
    assert read_config_file(json_file) == {"port": 9010}  # JSON never needs a TOML reader


def test_cli_reports_a_bad_setting_without_a_traceback(capsys) -> None:  # noqa: ANN001
    from rankwise.cli import main

    assert main(["serve", "--max-documents", "0", "--print-config"]) == 2
    assert "max_documents must be an integer >= 1" in capsys.readouterr().err


def test_cli_serve_runs_answers_and_stops_on_sigterm(sharp_cross_encoder) -> None:  # noqa: ANN001
    port = free_port()
    env = {**os.environ, "RANKWISE_API_KEYS": "cli-key", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rankwise.cli",
            "serve",
            "--model",
            f"tiny={sharp_cross_encoder}",
            "--port",
            str(port),
            "--log-level",
            "info",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)
        r = httpx.post(
            url + "/v2/rerank",
            json={"model": "tiny", "query": "lstm", "documents": DOCS},
            headers={"Authorization": "Bearer cli-key"},
        )
        assert r.status_code == 200 and len(r.json()["results"]) == len(DOCS)
        assert httpx.post(url + "/v2/rerank", json={"query": "q", "documents": ["a"]}).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status says "ended by SIGTERM"
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out and "Finished server process" in out
    assert "Traceback" not in out
