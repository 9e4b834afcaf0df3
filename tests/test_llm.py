"""Generated answers with a real language model: llama.cpp's server (xllamacpp) running
SmolLM2-135M-Instruct on a free local port. Client, streaming, cancel, timeout, failures and the
fallback to the quoted answer; settings; the prompt; the CLI end to end."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import load_settings
from askdoc.engine import Engine
from askdoc.errors import ConfigError, LLMError
from askdoc.generate import (
    REFUSAL,
    build_messages,
    client_for,
    generate_with,
    is_refusal,
)
from askdoc.llm_client import Cancel, ChatClient, LLMConfig
from askdoc.types import Source

QUESTION = "Which think tank keeps a daily watch on the war?"


def source(number: int, text: str, heading: str = "") -> Source:
    return Source(number, "a.txt", text, 0, len(text), number, number, None, heading, 0.5)


# -- settings, prompt, refusal: no model needed -------------------------------------------------


def test_llm_settings_come_from_the_llm_table_environment_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "askdoc.toml"
    config.write_text(
        '[askdoc]\ntop_k = 4\n[llm]\nurl = "http://127.0.0.1:9/v1"\ntimeout = 5\nmax_tokens = 64\n'
    )
    settings = load_settings(config, environ={"ASKDOC_LLM_MODEL": "smol"})
    assert (settings.llm_url, settings.llm_model) == ("http://127.0.0.1:9/v1", "smol")
    assert (settings.llm_timeout, settings.llm_max_tokens, settings.top_k) == (5.0, 64, 4)
    assert load_settings(config, environ={}, llm_url="http://x/v1").llm_url == "http://x/v1"
    assert load_settings(environ={}).llm_url == ""  # no [llm] anywhere: no generation
    config.write_text("[llm]\ntimeout = 0\n")
    with pytest.raises(ConfigError, match="timeout"):
        load_settings(config, environ={})


def test_the_prompt_numbers_the_sources_and_ends_with_the_question() -> None:
    messages = build_messages(
        "  Who signed   it? ", [source(1, "Kim signed it."), source(2, "It rained.", "Weather")]
    )
    system, user = messages
    assert system["role"] == "system" and REFUSAL in system["content"]
    assert "[1]" in system["content"]
    assert user["content"].index("[1] Kim signed it.") < user["content"].index(
        "[2] Weather: It rained."
    )
    assert user["content"].endswith("Question: Who signed it?")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Not in the documents.", True),
        ("The answer is not in the documents", True),
        ("NOT IN THE PASSAGES!", True),
        ("The documents say it is not in Moscow.", False),
    ],
)
def test_is_refusal(text: str, expected: bool) -> None:
    assert is_refusal(text) is expected


@pytest.mark.parametrize("url", ["", "ftp://host/v1", "localhost:8080"])
def test_a_bad_url_is_one_line(url: str) -> None:
    with pytest.raises(LLMError, match="must be an http"):
        ChatClient(LLMConfig(url))


def test_the_base_url_gets_v1() -> None:
    assert ChatClient(LLMConfig("http://127.0.0.1:8080"))._base == "/v1"
    assert ChatClient(LLMConfig("http://h:1/api/v1/"))._base == "/api/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_one_line() -> None:
    client = ChatClient(LLMConfig(f"http://127.0.0.1:{free_port()}/v1", model="m"))
    with pytest.raises(LLMError, match="connection refused") as info:
        client.complete([{"role": "user", "content": "hi"}])
    assert "\n" not in str(info.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_a_server_that_does_not_answer_times_out(silent_server: str) -> None:
    client = ChatClient(LLMConfig(silent_server, model="m", timeout=0.5))
    with pytest.raises(LLMError, match=r"did not answer within 0\.5 s"):
        client.complete([{"role": "user", "content": "hi"}])


def test_cancel_stops_a_request_still_waiting_for_the_server(silent_server: str) -> None:
    client = ChatClient(LLMConfig(silent_server, model="m", timeout=60))
    cancel = Cancel()
    threading.Timer(0.3, cancel.set).start()
    completion = client.complete([{"role": "user", "content": "hi"}], cancel=cancel)
    assert completion.cancelled and completion.text == ""


def test_without_a_server_the_answer_is_quoted_and_says_why(
    fake_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_engine.build()
    answer = fake_engine.ask("When did Putin and Kim sign the agreement?")
    generated = generate_with(fake_engine, answer)
    assert generated.error.startswith("no language model is configured")
    assert not generated.ok and generated.checks == ()
    with pytest.raises(LLMError):
        client_for(fake_engine.settings)


# -- the real model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(llm_url: str) -> ChatClient:
    return ChatClient(LLMConfig(llm_url, timeout=120, max_tokens=48))


@pytest.mark.slow
def test_the_server_lists_its_model_and_streams_an_answer(client: ChatClient) -> None:
    assert client.models() == ["SmolLM2-135M-Instruct"]
    assert client.model_name() == "SmolLM2-135M-Instruct"
    pieces: list[str] = []
    completion = client.complete(
        [{"role": "user", "content": "Name one colour."}], on_text=pieces.append
    )
    assert len(pieces) > 1 and "".join(pieces) == completion.text
    assert completion.tokens >= len(pieces) and completion.model == "SmolLM2-135M-Instruct"
    assert 0 < completion.first_token_s <= completion.seconds
    assert completion.finish_reason in ("stop", "length") and not completion.cancelled


@pytest.mark.slow
def test_cancel_stops_the_model_mid_answer(client: ChatClient) -> None:
    cancel = Cancel()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()

    completion = client.complete(
        [{"role": "user", "content": "Count from 1 to 100, one number per line."}],
        on_text=on_text,
        cancel=cancel,
        max_tokens=300,
    )
    assert completion.cancelled
    assert 3 <= len(pieces) < 300


@pytest.mark.slow
def test_an_http_error_of_the_real_server_is_one_line(llm_url: str) -> None:
    wrong = ChatClient(LLMConfig(llm_url.replace("/v1", "/nothing/v1"), model="m"))
    with pytest.raises(LLMError, match="answered HTTP 404"):
        wrong.complete([{"role": "user", "content": "hi"}])


@pytest.mark.slow
@pytest.mark.model
def test_a_generated_answer_is_checked_against_the_quoted_answers_sources(
    sample_engine: Engine, llm_url: str
) -> None:
    engine = Engine(replace(sample_engine.settings, llm_url=llm_url), sample_engine.embedder)
    answer = engine.ask(QUESTION)
    pieces: list[str] = []
    generated = generate_with(engine, answer, pieces.append)
    engine.close()
    assert generated.ok and generated.model == "SmolLM2-135M-Instruct"
    assert "".join(pieces).strip() == generated.text and generated.claims
    assert generated.tokens >= len(pieces) > 0
    first = generated.claims[0]
    assert first.start == generated.text.index(first.text)
    for check in generated.checks:
        if check.support is None:
            continue
        source = answer.sources[check.support.source - 1]
        document = sample_engine.document(source.path)
        assert document is not None
        assert document.text[check.support.start : check.support.end] == check.support.text


@pytest.mark.slow
@pytest.mark.model
def test_cli_generate_json_and_text(
    sample_engine: Engine, llm_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = sample_engine.settings
    where = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    base = ["ask", "Who won the 2018 FIFA World Cup?", "--generate", "--llm-url", llm_url]
    assert main([*base, "--json", *where]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["found"] is False  # askdoc refuses ...
    generated = data["generated"]
    assert generated["model"] == "SmolLM2-135M-Instruct" and generated["error"] == ""
    verdicts = {s["verdict"] for s in generated["sentences"]}
    assert verdicts <= {"supported", "unsupported", "miscited", "no claim"}
    if generated["answered_anyway"]:  # ... and when the model answers anyway, askdoc says so
        assert any("answered anyway" in note for note in generated["notes"])
        assert generated["unsupported"] >= 1
    assert main(["ask", QUESTION, "--generate", "--stream", "--llm-url", llm_url, *where]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Generated answer (streaming)")
    assert "Generated answer  SmolLM2-135M-Instruct · " in out and "\nAnswer\n" in out


def test_cli_generate_with_a_dead_server_answers_from_the_documents(
    fake_engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine.build()
    from askdoc.cli import commands as cli_commands

    embedder = fake_engine.embedder
    monkeypatch.setattr(cli_commands, "Engine", lambda settings: Engine(settings, embedder))
    dead = f"http://127.0.0.1:{free_port()}/v1"
    question = "When did Putin and Kim sign the agreement?"
    where = [
        "--corpus",
        str(fake_engine.settings.corpus),
        "--index",
        str(fake_engine.settings.index),
    ]
    assert main(["ask", question, "--generate", "--llm-url", dead, *where]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"askdoc: cannot reach the language model at {dead}: connection refused; "
        "answered from the documents\n"
    )
    assert "Generated answer" not in captured.out and "Sources" in captured.out


@pytest.mark.slow
@pytest.mark.model
def test_eval_generate_compares_quoted_and_generated_answers(
    sample_engine: Engine, llm_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = sample_engine.settings
    report = tmp_path / "report.json"
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps(
            {
                "id": "q1",
                "question": QUESTION,
                "answers": ["Institute for the Study of War"],
                "sources": ["north-korea-russia-alliance.txt:2"],
            }
        )
        + "\n"
        + json.dumps(
            {"id": "q2", "question": "Who won the 2018 FIFA World Cup?", "unanswerable": True}
        )
        + "\n"
    )
    argv = ["eval", str(qa), "--index", str(settings.index), "--corpus", str(settings.corpus)]
    code = main(
        [*argv, "--generate", "--llm-url", llm_url, "--summary-only", "--json", str(report)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "quoted vs generated" in out and "sentences_unsupported" in out
    data = json.loads(report.read_text())["generated"]
    summary = data["summary"]
    assert summary["answer_contains"]["quoted"] == 1.0
    assert summary["refusal_recall"]["quoted"] == 1.0
    assert summary["errors"]["generated"] == 0.0
    assert summary["tokens_per_s_p50"]["generated"] > 0
    assert [q["id"] for q in data["questions"]] == ["q1", "q2"]
    assert all(q["text"] for q in data["questions"])


def test_eval_generate_needs_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q", "question": "Who?", "answers": ["x"]}) + "\n")
    assert main(["eval", str(qa), "--generate", "--index", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err == (
        "askdoc: --generate needs a language model: --llm-url URL or ASKDOC_LLM_URL\n"
    )
