"""Prompts as the model was trained to see them: its own chat template, its own tokenizer.

The template (Jinja, from the model's tokenizer files) is rendered as transformers'
`apply_chat_template(..., add_generation_prompt=True)` renders it, for one user turn, and
the text is tokenized without adding special tokens (the template writes them). A model
without a template gets the prompt as is, with the tokenizer's own special tokens.

A prompt longer than the budget loses the start of the user's message, never the
template's head or tail: the template is rendered once around a marker to find them.
"""

from __future__ import annotations

import datetime
import functools

_MARK = "\x00agentc-user-message\x00"


@functools.cache
def _environment():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        from jinja2.exceptions import TemplateError

        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env


def _special(tokenizer_config: dict, key: str) -> str:
    v = tokenizer_config.get(key)
    return v.get("content", "") if isinstance(v, dict) else (v or "")


class ChatPrompt:
    """Prompt text -> token ids within a budget, and generated ids -> text."""

    def __init__(self, tokenizer, template: str | None, tokenizer_config: dict):
        self.tokenizer = tokenizer  # a `tokenizers.Tokenizer`
        self.template = _environment().from_string(template) if template else None
        self.specials = {k: _special(tokenizer_config, k) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}

    def render(self, prompt: str) -> str:
        return self.template.render(messages=[{"role": "user", "content": prompt}], add_generation_prompt=True,
                                    **self.specials)

    def ids(self, prompt: str, budget: int) -> tuple[list[int], int]:
        """The prompt's ids, and how many tokens of the user's message were dropped to fit."""
        tok = self.tokenizer
        if self.template is None:
            ids = tok.encode(prompt, add_special_tokens=True).ids
            return (ids, 0) if len(ids) <= budget else (ids[len(ids) - budget:], len(ids) - budget)
        ids = tok.encode(self.render(prompt), add_special_tokens=False).ids
        if len(ids) <= budget:
            return ids, 0
        head, _, tail = self.render(_MARK).partition(_MARK)
        h = tok.encode(head, add_special_tokens=False).ids
        t = tok.encode(tail, add_special_tokens=False).ids
        body = tok.encode(prompt, add_special_tokens=False).ids
        keep = max(budget - len(h) - len(t), 0)
        return h + body[len(body) - keep:] + t, len(body) - keep

    def text(self, ids: list[int], stop: set[int]) -> str:
        """Generated ids -> text, up to the first end-of-generation token."""
        out = []
        for t in ids:
            if t in stop:
                break
            out.append(t)
        return self.tokenizer.decode(out, skip_special_tokens=True)
