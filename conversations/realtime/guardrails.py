"""Guardrails in a call: rules the agent must keep, checked on each turn before the reply is spoken.

A PAL links guardrails (``guardrail_ids``); the conversation's snapshot holds them. In a call:

- The rules are stated in the system prompt (``rules_note``), so the model mostly keeps them anyway.
- ``GuardrailProcessor`` sits between the LLM and the voice. It lets each generated reply go on
  sentence by sentence, each once ``GuardrailChecker`` has judged it (the first one together
  with the user's turn; visual rules: what perception reports the camera shows), rule by rule,
  with yes/no answers from the call's model constrained to JSON (``structured.complete_json``). A
  sentence that breaks a rule is never spoken: the agent says ``SAFE_LINE`` instead, drops the rest
  of the reply, and the history keeps what was said, so the model does not build on what was
  withheld.
- Each broken rule emits ``conversation.guardrail.triggered`` {guardrail, guardrail_uuid, reason,
  role, modality}: sent to the client as an app message when the guardrail's ``app_message`` is
  true (else stored only, message type ``internal``); the Django side sends its ``callback_url``.

Cost: the voice starts at the end of the first sentence, not at its first phrase, and waits for
the sentence's check (usually the prefilter's ~20 ms; a yes/no question when it is near a rule). ``bench_guardrails`` measures what this adds to the time to
first audio. A check that gets no answer (engine error, timeout) lets the sentence through and logs
it: a broken check must not silence the agent.

No Django here.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .engines.base import LanguageModel
from .events import Event, GuardrailTriggered
from .frames import (CancelFrame, Frame, InterruptionFrame, LLMTextFrame, ReplyEndFrame, ReplyStartFrame,
                     TextFrame, TurnDiscardFrame)
from .phrases import PhraseSplitter
from .processors import FrameProcessor
from .structured import complete_json

logger = logging.getLogger(__name__)

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


#: what a rule forbids, in a short phrase, by (model, rule): asked once per process, and kept for
#: the most recently used rules only (a server sees every account's rules)
_SUBJECTS: OrderedDict[tuple[str, str], str] = OrderedDict()
MAX_SUBJECTS = 2000
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
                while len(_SUBJECTS) > MAX_SUBJECTS:
                    _SUBJECTS.popitem(last=False)
            _SUBJECTS.move_to_end(key)
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


#: the pieces a reply is checked in: whole sentences (a phrase cut for the voice, "London will be
#: a beautiful", passes a check its sentence fails, and would be heard before the safe line)
SENTENCES = {"first_min_words": 10_000, "first_cut_words": 10_000, "first_max_words": 60, "max_words": 60,
             "max_chars": 600}


@dataclass
class _Reply:
    """A generated reply on its way through the guardrails."""

    start: ReplyStartFrame
    splitter: PhraseSplitter = field(default_factory=lambda: PhraseSplitter(**SENTENCES))
    started: bool = False  # its start frame has gone on
    checked: bool = False  # its first sentence (with the user's turn) has been checked
    blocked: bool = False  # a sentence broke a rule: the rest is dropped
    spoken: list[str] = field(default_factory=list)
    broken: list[tuple[Guardrail, str, str]] = field(default_factory=list)
    first_ms: float = 0.0
    asked: int = 0
    answered: bool = True


class GuardrailProcessor(FrameProcessor):
    """Lets each LLM reply go on sentence by sentence, each once it is checked (the first with the
    user's turn); a sentence that breaks a rule is replaced by the safe line and the rest of the
    reply is dropped. A reply is so never held longer than its first sentence and that sentence's
    check (the prefilter usually clears it in ~20 ms), and nothing that breaks a rule is spoken."""

    def __init__(self, *, checker: GuardrailChecker, emit: Callable[[Event], Any],
                 visual: Callable[[int], str], replace_reply: Callable[[int, str], None]) -> None:
        super().__init__(name="guardrails")
        self.checker = checker
        self._emit = emit
        self._visual = visual
        self._replace_reply = replace_reply
        self._replies: dict[int, _Reply] = {}
        #: one per checked reply (bounded; benchmarks and tests): every rule broken, how long its
        #: first sentence waited for its check, how many questions the model was asked
        self.verdicts: list[Verdict] = []

    async def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, ReplyStartFrame) and frame.kind == "reply":
            self._replies[frame.reply_id] = _Reply(frame)
            return
        reply_id = getattr(frame, "reply_id", None)
        reply = self._replies.get(reply_id) if reply_id is not None else None
        if reply is not None and isinstance(frame, LLMTextFrame):
            if not reply.blocked:
                for sentence in reply.splitter.push(frame.text):
                    await self._check(reply, sentence)
            return
        if reply is not None and isinstance(frame, ReplyEndFrame):
            del self._replies[reply_id]
            for sentence in reply.splitter.flush():
                if not reply.blocked:
                    await self._check(reply, sentence)
            if not reply.checked and reply.start.user_text.strip():
                await self._check(reply, "")  # no words in the reply (a tool call): the user's turn alone
            self.verdicts.append(Verdict(tuple(reply.broken), reply.first_ms, reply.asked, reply.answered))
            del self.verdicts[:-50]
            await self._start(reply)
            await self.push_frame(frame)
            return
        if isinstance(frame, TurnDiscardFrame):
            self._replies.pop(frame.reply_id, None)
        elif isinstance(frame, (InterruptionFrame, CancelFrame)):
            self._replies.clear()
        elif reply is not None:
            if reply.blocked:
                return
            await self._start(reply)
        await self.push_frame(frame)

    async def _start(self, reply: _Reply) -> None:
        if not reply.started:
            reply.started = True
            await self.push_frame(reply.start)

    async def screen(self, text: str, *, turn_idx: int) -> bool:
        """Whether ``text`` that answers no turn (an LLM-written greeting) may be spoken; each rule
        it breaks is reported like a reply's."""
        verdict = await self.checker.check("", text)
        self._report(verdict, inference_id=None, turn_idx=turn_idx)
        return not verdict.reply_blocked

    def _report(self, verdict: Verdict, *, inference_id: str | None, turn_idx: int) -> None:
        for rule, role, reason in verdict.broken:
            self._emit(GuardrailTriggered(
                guardrail=rule.name, guardrail_uuid=rule.uuid, reason=reason, role=role, modality=rule.modality,
                check_ms=round(verdict.ms, 1), app_message=rule.app_message,
                inference_id=inference_id, turn_idx=turn_idx))

    async def _check(self, reply: _Reply, phrase: str) -> None:
        start = reply.start
        first = not reply.checked
        reply.checked = True
        verdict = await self.checker.check(start.user_text if first else "", phrase,
                                           self._visual(start.reply_id) if first else "")
        if first:
            reply.first_ms = verdict.ms
        reply.asked += verdict.asked
        if not verdict.answered:
            reply.answered = False
            logger.warning("guardrail check got no answer; the sentence goes out unchecked")
        reply.broken += verdict.broken
        self._report(verdict, inference_id=start.inference_id, turn_idx=start.turn_idx)
        await self._start(reply)
        if verdict.reply_blocked:
            reply.blocked = True
            self._replace_reply(start.reply_id, " ".join([*reply.spoken, SAFE_LINE]))
            await self.push_frame(TextFrame(reply_id=start.reply_id, text=SAFE_LINE))
        elif phrase:
            reply.spoken.append(phrase)
            # a complete sentence, spoken at once (as LLM text the voice would wait for the next word)
            await self.push_frame(TextFrame(reply_id=start.reply_id, text=phrase))
