"""Guardrails in a call: rules the agent must keep, checked on each turn before the reply is spoken.

A PAL links guardrails (``guardrail_ids``); the conversation's snapshot holds them. In a call:

- The rules are stated in the system prompt (``rules_note``), so the model mostly keeps them anyway.
- ``GuardrailProcessor`` sits between the LLM and the voice. It holds each generated reply until it
  is complete, then ``GuardrailChecker`` judges the user's turn and the reply (visual rules: what
  perception reports the camera shows) rule by rule, with yes/no answers from the call's model
  constrained to JSON (``structured.complete_json``). A reply that breaks a rule is never spoken:
  the agent says ``SAFE_LINE`` instead, and the history keeps the safe line, so the model does not
  build on what was withheld.
- Each broken rule emits ``conversation.guardrail.triggered`` {guardrail, guardrail_uuid, reason,
  role, modality}: sent to the client as an app message when the guardrail's ``app_message`` is
  true (else stored only, message type ``internal``); the Django side sends its ``callback_url``.

Cost: a reply is spoken only once it is complete and checked. ``bench_guardrails`` measures what
this adds to the time to first audio. A check that gets no answer (engine error, timeout) lets
the reply through and logs it: a broken check must not silence the agent.

No Django here.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .engines.base import LanguageModel
from .frames import (CancelFrame, Frame, InterruptionFrame, LLMTextFrame, ReplyEndFrame, ReplyStartFrame,
                     TurnDiscardFrame)
from .processors import FrameProcessor
from .structured import complete_json

logger = logging.getLogger(__name__)

GUARDRAIL_TRIGGERED = "conversation.guardrail.triggered"
#: the message type of an event kept from the client (stored and sent to webhooks only)
INTERNAL = "internal"
SAFE_LINE = "Sorry, that is something I can't talk about. Is there anything else I can help you with?"
_NONE = "none"


@dataclass(frozen=True)
class Guardrail:
    uuid: str
    name: str
    prompt: str
    modality: str = "verbal"  # verbal | visual
    app_message: bool = True
    callback_url: str = ""

    @classmethod
    def from_snapshot(cls, raw: Mapping[str, Any]) -> Guardrail:
        return cls(uuid=str(raw.get("guardrail_uuid") or ""), name=str(raw["guardrail_name"]),
                   prompt=str(raw.get("guardrail_prompt") or ""), modality=str(raw.get("modality") or "verbal"),
                   app_message=bool(raw.get("app_message", True)), callback_url=str(raw.get("callback_url") or ""))


def from_snapshot(items: Sequence[Mapping[str, Any]] | None) -> tuple[Guardrail, ...]:
    return tuple(Guardrail.from_snapshot(raw) for raw in items or ())


def rules_note(rules: Sequence[Guardrail]) -> str:
    """The rules, for the system prompt."""
    if not rules:
        return ""
    return "Rules you must always keep:\n" + "\n".join(f"- {r.prompt.strip()}" for r in rules)


@dataclass(frozen=True)
class Verdict:
    #: (guardrail, role "user" | "assistant", reason) for each rule broken
    broken: tuple[tuple[Guardrail, str, str], ...] = ()
    ms: float = 0.0
    #: how many yes/no questions the model was asked (0: the prefilter cleared everything)
    asked: int = 0
    answered: bool = True

    @property
    def reply_blocked(self) -> bool:
        return any(role == "assistant" for _, role, _ in self.broken)


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


#: what a rule forbids, in a short phrase, by (model, rule): asked once per process
_SUBJECTS: dict[tuple[str, str], str] = {}
_YES_NO = {"type": "object", "additionalProperties": False, "properties": {"answer": {"enum": ["yes", "no"]}},
           "required": ["answer"]}
_SUBJECT = {"type": "object", "additionalProperties": False,
            "properties": {"forbidden_subject": {"type": "string"}}, "required": ["forbidden_subject"]}


class GuardrailChecker:
    """Whether a message breaks a rule, asked the way a 0.5B model answers reliably.

    Asked "does this message break the rule 'Never talk about the weather'?", the embedded model
    answers no to everything (negation defeats it: 0 of 7 violations found, here). Asked "is this
    message about the weather?", it answered 32 of 33 messages right. So each rule is first turned
    into the subject it forbids (asked once, at the start of the call), and each message is then
    checked subject by subject with a yes/no answer. A sentence-embedding prefilter skips the
    subjects a message is nowhere near (cosine < ``PREFILTER``), so an ordinary reply usually costs
    two embeddings (~10 ms) and no question at all.
    """

    #: below this cosine similarity to a rule (or its subject), a message is not asked about it;
    #: benign replies measured -0.10..0.21, violations 0.23..0.67 (bench_guardrails)
    PREFILTER = 0.15

    def __init__(self, rules: Sequence[Guardrail], llm: LanguageModel, *, embedder: Embedder | None = None) -> None:
        self.rules = tuple(rules)
        self._llm = llm
        self._embedder = embedder
        self._subjects: dict[str, str] = {}
        self._vectors: np.ndarray | None = None  # rows: each rule's prompt, then each subject
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return len(self._subjects) == len(self.rules)

    async def prepare(self) -> None:
        """Find each rule's subject and embed the rules (once; ``check`` waits for it). Cancelled
        or unanswered, it is simply done again by the next caller."""
        async with self._lock:
            if not self.ready:
                await self._prepare()

    async def _prepare(self) -> None:
        for rule in self.rules:
            key = (self._llm.name, rule.prompt)
            if key not in _SUBJECTS:
                answer = await complete_json(self._llm, [
                    {"role": "system", "content": "Answer as JSON."},
                    {"role": "user", "content": f"Rule: {rule.prompt.strip()}\nWhat subject does this rule forbid? "
                                                "A short phrase, without 'never' or 'not'."}], _SUBJECT, max_tokens=24)
                subject = str((answer or {}).get("forbidden_subject") or "").strip().rstrip(".")
                if not subject:
                    self._subjects.clear()
                    return  # no answer now: asked again at the next check
                _SUBJECTS[key] = subject
            self._subjects[rule.name] = _SUBJECTS[key]
        if self._embedder is not None:
            texts = [r.prompt for r in self.rules] + [self._subjects[r.name] for r in self.rules]
            self._vectors = await asyncio.to_thread(self._embedder.embed, texts)

    async def check(self, user_text: str, reply_text: str, visual: str = "") -> Verdict:
        t0 = time.perf_counter()
        await self.prepare()
        if not self.ready:
            return Verdict(ms=1000.0 * (time.perf_counter() - t0), answered=False)
        messages = [("user", user_text.strip()), ("assistant", reply_text.strip())]
        if visual.strip():
            messages.append(("camera", visual.strip()))
        near = await self._near(messages)
        broken: list[tuple[Guardrail, str, str]] = []
        asked = 0
        answered = True
        for (role, text), rules in zip(messages, near):
            for rule in rules:
                if (rule.modality == "visual") != (role == "camera"):
                    continue
                asked += 1
                answer = await complete_json(self._llm, [
                    {"role": "system", "content": "Answer as JSON."},
                    {"role": "user", "content": f"Message: \"{text}\"\nIs this message about "
                                                f"{self._subjects[rule.name]}? Answer yes or no."}], _YES_NO, max_tokens=12)
                if answer is None:
                    answered = False
                elif answer.get("answer") == "yes":
                    who = {"user": "the person's words", "assistant": "the agent's reply",
                           "camera": "what the camera shows"}[role]
                    broken.append((rule, "assistant" if role == "assistant" else "user",
                                   f"{who} touched on {self._subjects[rule.name]}: {rule.prompt.strip()}"))
        return Verdict(tuple(broken), 1000.0 * (time.perf_counter() - t0), asked, answered)

    async def _near(self, messages: list[tuple[str, str]]) -> list[list[Guardrail]]:
        """For each message, the rules it is near enough to ask about (all of them without an embedder)."""
        if self._embedder is None or self._vectors is None:
            return [list(self.rules) if text else [] for _, text in messages]
        texts = [text for _, text in messages]
        vectors = await asyncio.to_thread(self._embedder.embed, [t or "-" for t in texts])
        n = len(self.rules)
        sims = vectors @ self._vectors.T  # unit rows: cosine similarities
        return [[r for i, r in enumerate(self.rules) if text and max(sims[m, i], sims[m, n + i]) >= self.PREFILTER]
                for m, text in enumerate(texts)]


class GuardrailProcessor(FrameProcessor):
    """Holds each LLM reply until it is checked; a reply that breaks a rule becomes the safe line."""

    def __init__(self, *, checker: GuardrailChecker, emit: Callable[..., Any],
                 visual: Callable[[int], str], replace_reply: Callable[[int, str], None]) -> None:
        super().__init__(name="guardrails")
        self.checker = checker
        self._emit = emit
        self._visual = visual
        self._replace_reply = replace_reply
        self._held: dict[int, tuple[ReplyStartFrame, list[Frame]]] = {}
        #: the latest verdicts (bounded; benchmarks and tests)
        self.verdicts: list[Verdict] = []

    async def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, ReplyStartFrame) and frame.kind == "reply":
            self._held[frame.reply_id] = (frame, [])
            return
        reply_id = getattr(frame, "reply_id", None)
        held = self._held.get(reply_id) if reply_id is not None else None
        if held is not None and isinstance(frame, ReplyEndFrame):
            del self._held[reply_id]
            await self._release(held[0], held[1], frame)
            return
        if held is not None and not isinstance(frame, TurnDiscardFrame):
            held[1].append(frame)
            return
        if isinstance(frame, TurnDiscardFrame):
            self._held.pop(frame.reply_id, None)
        elif isinstance(frame, (InterruptionFrame, CancelFrame)):
            self._held.clear()
        await self.push_frame(frame)

    async def _release(self, start: ReplyStartFrame, frames: list[Frame], end: ReplyEndFrame) -> None:
        reply_text = "".join(f.text for f in frames if isinstance(f, LLMTextFrame))
        verdict = Verdict()
        if reply_text.strip() or start.user_text.strip():
            verdict = await self.checker.check(start.user_text, reply_text, self._visual(start.reply_id))
            self.verdicts.append(verdict)
            del self.verdicts[:-50]
            if not verdict.answered:
                logger.warning("guardrail check got no answer; the reply goes out unchecked")
        for rule, role, reason in verdict.broken:
            self._emit(GUARDRAIL_TRIGGERED,
                       {"guardrail": rule.name, "guardrail_uuid": rule.uuid, "reason": reason, "role": role,
                        "modality": rule.modality, "check_ms": round(verdict.ms, 1)},
                       inference_id=start.inference_id, turn_idx=start.turn_idx,
                       message_type="conversation" if rule.app_message else INTERNAL)
        await self.push_frame(start)
        if verdict.reply_blocked:
            self._replace_reply(start.reply_id, SAFE_LINE)
            frames = [f for f in frames if not isinstance(f, LLMTextFrame)] + [
                LLMTextFrame(reply_id=start.reply_id, text=SAFE_LINE)]
        for f in frames:
            await self.push_frame(f)
        await self.push_frame(end)
