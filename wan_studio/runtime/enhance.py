"""The prompt enhancer: a short prompt expanded into the detailed style Wan was trained on.

    enhance(prompt, mode="t2v", llm="rules" | "local" | "endpoint", settings=..., swap=...) -> Enhanced

- rules: deterministic and instant; adds what the prompt lacks among motion, camera, lighting and
  style, in the prompt's own language (English, Chinese, Spanish, French, German; other languages
  are kept as written, with a message). Data in presets/enhancer.json.
- local: an instruct model through transformers (`enhancer_model`: a Hub id or folder). It is loaded
  through the swap manager: the active video pipeline is released first, and the language model is
  dropped after the call, so the two never share the accelerator.
- endpoint: an OpenAI-compatible `/v1/chat/completions` server (`enhancer_url`, `enhancer_key`,
  `enhancer_endpoint_model`, from config.json or WAN_STUDIO_* variables), with a timeout.
Our own instructions per mode go with both LLM paths (for I2V: describe the motion of the given
image). A timeout, an error or an unusable reply falls back to the rules, with a message saying why.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import httpx

from wan_studio.errors import RequestError

log = logging.getLogger(__name__)

ENHANCER_FILE = Path(__file__).resolve().parents[2] / "presets" / "enhancer.json"
METHODS = ("rules", "local", "endpoint")
MAX_PROMPT_CHARS = 2000
MAX_REPLY_CHARS = 2500
LOCAL_MAX_NEW_TOKENS = 200  # about 150 words, the length Wan prompts are trained on
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass
class Enhanced:
    prompt: str
    method: str  # what produced the prompt: rules | local | endpoint
    language: str
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"prompt": self.prompt, "method": self.method, "language": self.language, "messages": self.messages}


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(ENHANCER_FILE.read_text())


def instructions(mode: str) -> str:
    texts = _data()["instructions"]
    return f"{texts['_common']} {texts.get(mode, texts['t2v'])}"


# -- rules ----------------------------------------------------------------------------------------
def detect_language(text: str) -> str:
    """en, zh, es, fr, de, or 'other' (a simple, deterministic guess from script and common words)."""
    if _CJK.search(text):
        return "zh"
    if re.search(r"[\u3040-\u30ff\uac00-\ud7af\u0400-\u04ff\u0600-\u06ff]", text):
        return "other"
    padded = f" {text.lower()} "
    scores = {lang: sum(padded.count(m) for m in rules.get("markers", ()))
              for lang, rules in _data()["rules"].items() if rules.get("markers")}
    best = max(scores, key=scores.get) if scores else None
    if best and scores[best] >= 2:
        return best
    return "en"


def enhance_rules(prompt: str, mode: str = "t2v") -> Enhanced:
    text = " ".join(prompt.split())
    language = detect_language(text)
    if language not in _data()["rules"]:
        return Enhanced(text, "rules", language, ["The rules know English, Chinese, Spanish, French and German; "
                                                  "the prompt is kept as written (an LLM keeps any language)."])
    rules = _data()["rules"][language]
    lowered = text.lower()
    added = []
    for aspect in rules["aspects"].values():
        if any(keyword in lowered for keyword in aspect["keywords"]):
            continue
        added.append(aspect["add"].get(mode, aspect["add"]["default"]))
    body = text.rstrip(" .。!！")
    enhanced = rules["join"].join([body, *added]) + rules["end"] if added else text
    return Enhanced(enhanced, "rules", language)


# -- LLM paths ------------------------------------------------------------------------------------
def _messages_for(prompt: str, mode: str) -> list[dict]:
    return [{"role": "system", "content": instructions(mode)}, {"role": "user", "content": prompt}]


def usable_reply(reply, prompt: str) -> str | None:
    """The reply cleaned up, or None when it cannot be a prompt (empty, too long, not text)."""
    if not isinstance(reply, str):
        return None
    text = reply.strip().strip('"“”').strip()
    text = re.sub(r"^(enhanced|rewritten)?\s*prompt\s*:\s*", "", text, flags=re.I)
    if len(text) < max(10, len(prompt) // 2) or len(text) > MAX_REPLY_CHARS:
        return None
    printable = sum(ch.isprintable() or ch.isspace() for ch in text) / len(text)
    letters = sum(ch.isalpha() for ch in text) / len(text)
    return text if printable > 0.98 and letters > 0.5 else None


def ask_endpoint(prompt: str, mode: str, settings) -> str:
    """One chat completion from an OpenAI-compatible server; raises on any failure."""
    url = settings.enhancer_url.rstrip("/")
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"
    headers = {"Authorization": f"Bearer {settings.enhancer_key}"} if settings.enhancer_key else {}
    body = {"model": settings.enhancer_endpoint_model or "default", "messages": _messages_for(prompt, mode),
            "temperature": 0.2, "max_tokens": 400}
    response = httpx.post(url, json=body, headers=headers, timeout=settings.enhancer_timeout_s)
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"]


def ask_local(prompt: str, mode: str, settings, swap=None) -> str:
    """Greedy generation with a local instruct model; the video pipeline is released first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cpu"
    if swap is not None:
        swap.release()  # never beside a video model on the accelerator
        device = swap.backend.device
    source = settings.enhancer_model
    offline = not settings.auto_download
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
    model = AutoModelForCausalLM.from_pretrained(source, local_files_only=offline).to(device).eval()
    try:
        messages = _messages_for(prompt, mode)
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{messages[0]['content']}\n\nPrompt: {prompt}\nRewritten prompt:"
        inputs = tokenizer(text, return_tensors="pt").to(device)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=LOCAL_MAX_NEW_TOKENS, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        del model
        from wan_studio.runtime.swap import free_memory

        free_memory()


def enhance(prompt: str, mode: str = "t2v", llm: str | None = "rules", settings=None, swap=None) -> Enhanced:
    """The engine call behind the UI's Enhance button, the API's /enhance and the CLI's `enhance`."""
    from wan_studio.requests import request_types

    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError("prompt", "The prompt is empty: write a few words to enhance.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise RequestError("prompt", f"The prompt is {len(prompt)} characters; "
                                     f"the enhancer takes at most {MAX_PROMPT_CHARS}.")
    if mode not in request_types():
        raise RequestError("mode", f"Unknown mode {mode!r}; known modes: {', '.join(request_types())}.")
    llm = llm or "rules"
    if llm not in METHODS:
        raise RequestError("llm", f"Unknown enhancer {llm!r}; choose rules, local or endpoint.")
    if llm == "rules":
        return enhance_rules(prompt, mode)
    if settings is None:
        from wan_studio.settings import load_settings

        settings = load_settings()
    fallback = enhance_rules(prompt, mode)
    if llm == "endpoint" and not settings.enhancer_url:
        why = "no endpoint is configured (set enhancer_url in config.json or WAN_STUDIO_ENHANCER_URL)"
    elif llm == "local" and not settings.enhancer_model:
        why = "no local model is configured (set enhancer_model in config.json or WAN_STUDIO_ENHANCER_MODEL)"
    else:
        try:
            if llm == "endpoint":
                reply = ask_endpoint(prompt, mode, settings)
            else:
                reply = ask_local(prompt, mode, settings, swap)
            text = usable_reply(reply, prompt)
            if text is not None:
                return Enhanced(text, llm, detect_language(prompt))
            why = "its reply was not a usable prompt"
        except Exception as exc:  # timeouts, HTTP errors, malformed JSON, a model that will not load
            why = _describe_failure(exc)
            log.info("enhancer %s failed: %s", llm, why)
    label = "The endpoint" if llm == "endpoint" else "The local model"
    fallback.messages.append(f"{label} could not enhance the prompt ({why}); used the rules instead.")
    return fallback


def _describe_failure(exc: Exception) -> str:
    name = type(exc).__name__
    if "Timeout" in name:
        return "it did not answer in time"
    if name == "HTTPStatusError":
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, (KeyError, IndexError, TypeError)):
        return "malformed reply: no choices[0].message.content"
    if isinstance(exc, ValueError) and "JSON" in name:
        return "malformed reply: not JSON"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{name}: {first}"[:200]


def enhance_in_studio(studio, prompt: str, mode: str = "t2v", llm: str | None = "rules") -> Enhanced:
    """For the page and the API: a local model waits for the running job and holds the accelerator
    (through the queue worker) while it runs, so a video job never starts beside it."""
    if llm != "local":
        return enhance(prompt, mode, llm=llm, settings=studio.settings)
    with studio.worker.accelerator_between_jobs():
        return enhance(prompt, mode, llm=llm, settings=studio.settings, swap=studio.engine.swap)
