"""Prompt enhancer: deterministic rules in the prompt's language, a tiny local LLM through the swap manager,
and a fake OpenAI-compatible server on 127.0.0.1 (success, timeout, malformed reply, HTTP error)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wan_studio.errors import RequestError
from wan_studio.runtime import enhance


# -- rules ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, language, must_contain", [
    ("a red fox in the snow", "en", ["a red fox in the snow", "camera", "lighting", "cinematic"]),
    ("一只红狐狸在雪地里", "zh", ["一只红狐狸在雪地里", "镜头", "光", "电影感"]),
    ("un zorro rojo corre por la nieve con el sol", "es", ["un zorro rojo", "cámara", "cinematográfico"]),
    ("un renard roux dans la neige avec le soleil", "fr", ["un renard roux", "caméra", "cinématographique"]),
    ("ein roter Fuchs läuft durch die Schneelandschaft und das Licht", "de", ["ein roter Fuchs", "Kamera", "filmisch"]),
])
def test_rules_expand_in_the_prompts_language_and_are_deterministic(prompt, language, must_contain):
    first = enhance.enhance(prompt, "t2v")
    assert first.method == "rules" and first.language == language and first.messages == []
    assert first.prompt.startswith(prompt.split()[0])
    for text in must_contain:
        assert text in first.prompt
    assert len(first.prompt) > len(prompt) * 2
    assert enhance.enhance(prompt, "t2v").prompt == first.prompt
    if language != "zh":
        assert not enhance._CJK.search(first.prompt)  # no other language mixed in


def test_rules_keep_what_the_prompt_already_says_and_follow_the_mode():
    detailed = enhance.enhance("a slow aerial camera shot of a fox running at golden hour, cinematic", "t2v")
    assert detailed.prompt == "a slow aerial camera shot of a fox running at golden hour, cinematic"
    i2v = enhance.enhance("a fox", "i2v").prompt
    assert "from the first frame" in i2v  # I2V: the motion of the given image


def test_rules_leave_unknown_languages_as_written():
    result = enhance.enhance("красная лиса в снегу", "t2v")
    assert result.prompt == "красная лиса в снегу" and "kept as written" in result.messages[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompt="  "), "The prompt is empty"),
    (dict(prompt="a fox", mode="x2v"), "Unknown mode 'x2v'"),
    (dict(prompt="a fox", llm="gpt"), "Unknown enhancer 'gpt'"),
    (dict(prompt="a" * 3000), "at most 2000"),
])
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(RequestError, match=message):
        enhance.enhance(**kwargs)


# -- the OpenAI-compatible endpoint ---------------------------------------------------------------
class FakeChatServer:
    """/v1/chat/completions answering as `behaviour` says; records what it was sent."""

    def __init__(self):
        self.behaviour, self.seen = "ok", []
        self.release = threading.Event()  # a "slow" reply waits for this: longer than any client timeout
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if owner.behaviour == "slow":
                    owner.release.wait(120)
                status, payload = 200, {"choices": [{"message": {"role": "assistant", "content":
                    "A red fox trots through deep snow, its breath visible in the cold air; the camera tracks "
                    "it at ground level in soft morning light, cinematic and realistic."}}]}
                if owner.behaviour == "malformed":
                    payload = {"result": "no choices here"}
                elif owner.behaviour == "error":
                    status, payload = 500, {"error": "boom"}
                elif owner.behaviour == "empty":
                    payload = {"choices": [{"message": {"content": "  "}}]}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def chat_server():
    server = FakeChatServer()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def endpoint_settings(settings, chat_server):
    return replace(settings, enhancer_url=chat_server.url, enhancer_key="secret-key",
                   enhancer_endpoint_model="qwen-test", enhancer_timeout_s=60)  # a loaded CI still answers


def test_endpoint_success_sends_our_mode_instructions(endpoint_settings, chat_server):
    result = enhance.enhance("a fox", "i2v", llm="endpoint", settings=endpoint_settings)
    assert result.method == "endpoint" and result.messages == []
    assert result.prompt.startswith("A red fox trots through deep snow")
    sent = chat_server.seen[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer secret-key"
    assert sent["body"]["model"] == "qwen-test"
    system, user = sent["body"]["messages"]
    assert system["role"] == "system" and "describe the MOTION" in system["content"]
    assert user == {"role": "user", "content": "a fox"}


@pytest.mark.parametrize("behaviour, reason", [
    ("slow", "it did not answer in time"),
    ("malformed", "malformed reply: no choices[0].message.content"),
    ("error", "HTTP 500"),
    ("empty", "its reply was not a usable prompt"),
])
def test_endpoint_failures_fall_back_to_rules_with_a_message(endpoint_settings, chat_server, behaviour, reason):
    chat_server.behaviour = behaviour
    if behaviour == "slow":  # the server holds its reply until the test ends; the client gives up first
        endpoint_settings = replace(endpoint_settings, enhancer_timeout_s=0.5)
    result = enhance.enhance("a fox", "t2v", llm="endpoint", settings=endpoint_settings)
    assert result.method == "rules" and result.prompt == enhance.enhance_rules("a fox", "t2v").prompt
    assert result.messages == [f"The endpoint could not enhance the prompt ({reason}); used the rules instead."]


def test_endpoint_url_and_key_come_from_the_environment(settings, chat_server, monkeypatch):
    from wan_studio.settings import load_settings

    monkeypatch.setenv("WAN_STUDIO_ENHANCER_URL", chat_server.url)
    monkeypatch.setenv("WAN_STUDIO_ENHANCER_KEY", "env-key")
    result = enhance.enhance("a fox", "t2v", llm="endpoint", settings=load_settings())
    assert result.method == "endpoint" and chat_server.seen[0]["auth"] == "Bearer env-key"


def test_unconfigured_llm_falls_back_with_what_to_set(settings):
    result = enhance.enhance("a fox", "t2v", llm="endpoint", settings=replace(settings, enhancer_url=""))
    assert result.method == "rules" and "WAN_STUDIO_ENHANCER_URL" in result.messages[0]
    result = enhance.enhance("a fox", "t2v", llm="local", settings=replace(settings, enhancer_model=""))
    assert result.method == "rules" and "WAN_STUDIO_ENHANCER_MODEL" in result.messages[0]


# -- a tiny random local model --------------------------------------------------------------------
WORDS = ("fox snow camera light slowly runs across forest golden evening soft wide shot tracks river "
         "mountain wind trees glowing cinematic detail").split()


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    """A 2-layer random Llama with a word-level tokenizer, saved like a Hub model folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llm")
    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=0, bos_token_id=1, eos_token_id=None)  # never stops early
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_local_model_runs_through_the_swap_manager(engine, settings, tiny_llm, monkeypatch):
    from wan_studio.requests import T2VRequest

    monkeypatch.setattr(enhance, "LOCAL_MAX_NEW_TOKENS", 40)  # enough words for a prompt, quick on CPU
    engine.generate(T2VRequest(model="tiny-t2v", prompt="a fox", width=64, height=64, frames=5, seed=1))
    assert engine.swap.active_key is not None
    local = replace(settings, enhancer_model=str(tiny_llm), auto_download=False)
    result = enhance.enhance("a fox in the snow", "t2v", llm="local", settings=local, swap=engine.swap)
    assert engine.swap.active_key is None  # the video pipeline left before the language model came
    assert result.method == "local" and result.messages == []
    assert set(result.prompt.split()) <= set(WORDS)  # what the random model said, decoded
    again = enhance.enhance("a fox in the snow", "t2v", llm="local", settings=local, swap=engine.swap)
    assert again.prompt == result.prompt  # greedy: deterministic


def test_local_model_that_cannot_load_falls_back(settings, tmp_path):
    missing = replace(settings, enhancer_model=str(tmp_path / "no-model"), auto_download=False)
    result = enhance.enhance("a fox", "t2v", llm="local", settings=missing)
    assert result.method == "rules" and result.messages[0].startswith("The local model could not enhance the prompt (")


def test_cli_enhance_prints_the_prompt_and_notes_a_fallback(cli_env, chat_server):
    from tests.test_cli import run_cli

    proc = run_cli(cli_env, "enhance", "一只红狐狸在雪地里", "--mode", "i2v")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == enhance.enhance_rules("一只红狐狸在雪地里", "i2v").prompt
    chat_server.behaviour = "error"
    env = dict(cli_env, WAN_STUDIO_ENHANCER_URL=chat_server.url)
    proc = run_cli(env, "enhance", "a fox", "--llm", "endpoint")
    assert proc.returncode == 0 and proc.stdout.strip() == enhance.enhance_rules("a fox", "t2v").prompt
    assert "note: The endpoint could not enhance the prompt (HTTP 500); used the rules instead." in proc.stderr
    proc = run_cli(cli_env, "enhance", " ")
    assert proc.returncode == 2 and "error: The prompt is empty" in proc.stderr


def test_in_the_studio_the_local_model_waits_for_the_running_job(settings, tiny_llm, monkeypatch):
    from wan_studio.runtime.studio import Studio

    monkeypatch.setattr(enhance, "LOCAL_MAX_NEW_TOKENS", 20)
    studio = Studio(replace(settings, enhancer_model=str(tiny_llm), auto_download=False))
    results = []
    with studio.worker.accelerator_between_jobs():  # as a running job holds it
        waiting = threading.Thread(target=lambda: results.append(
            enhance.enhance_in_studio(studio, "a fox in the snow", "t2v", "local")))
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive() and results == []  # not beside the job
    waiting.join(timeout=120)
    assert results[0].method == "local"
    assert enhance.enhance_in_studio(studio, "a fox", "t2v", "rules").method == "rules"
