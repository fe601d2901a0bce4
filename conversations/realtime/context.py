"""The LLM's view of the conversation: prompt + history, kept per session.

The prompt is ``system_prompt`` + ``context`` (legacy PAL field) + the conversation's
``conversational_context`` (which ``overwrite_llm_context`` replaces and
``append_llm_context`` extends). The history holds what was actually said: the user's
committed turns and, for the replica, only the words that were played (an interrupted
reply is cut to what the user heard), plus tool calls and the client's tool results.

Entries carry the ``reply_id`` they belong to so a reply's text can be corrected after an
interruption. A speculative reply is generated from the history *plus* its pending user
text; nothing speculative enters the history until its turn is committed.
"""
from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engines.base import ToolCall

logger = logging.getLogger(__name__)

#: added to the system prompt when perception gives each user turn a visual context
VISUAL_CONTEXT_NOTE = (
    "Lines starting with [visual] describe what the user's camera shows as they speak. Use them only "
    "when relevant and never read them out."
)


@dataclass
class _Entry:
    role: str  # user | assistant | tool
    content: str
    reply_id: int | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    interrupted: bool = False

    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls]
        if self.role == "tool":
            msg["tool_call_id"] = self.tool_call_id
        return msg


def tool_signature(call: ToolCall) -> tuple[str, str]:
    """A call's identity for spotting repeats: its name and its arguments, key order aside."""
    try:
        args = json.dumps(json.loads(call.arguments), sort_keys=True)
    except (TypeError, ValueError):
        args = call.arguments.strip()
    return call.name, args


def repeats_answered_call(call: ToolCall, answered: set[tuple[str, str]]) -> bool:
    """Whether ``call`` asks again what an answered call asked: same tool and the same
    arguments, possibly with extra ones (small models stuff the result into a new call:
    ``{"city": "Paris", "temperature_c": 23}`` after ``{"city": "Paris"}``). A call to the
    same tool for something else (another city) is not a repeat."""
    name, args = tool_signature(call)
    for a_name, a_args in answered:
        if a_name != name:
            continue
        if a_args == args:
            return True
        try:
            old, new = json.loads(a_args), json.loads(args)
        except (TypeError, ValueError):
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.items() <= new.items():
            return True
    return False


#: added to the system prompt when the PAL has a knowledge base
#: (worded for the small embedded model: "say you do not know rather than guess" made the 0.5B model
#: answer "You do not know." to a question its passage answered; this wording answered all three of
#: tests/knowledge's checks)
KNOWLEDGE_NOTE = (
    "Lines after [knowledge] are passages from the documents you were given. Use them to answer; if they do "
    "not answer the question, say you are not sure."
)


@dataclass(frozen=True)
class Retrieved:
    """What the knowledge base gave one user turn: the text added to that turn for the LLM, and
    the passages (for ``conversation.rag.observability``)."""

    text: str
    passages: tuple[dict[str, Any], ...] = ()
    strategy: str = ""
    ms: float = 0.0


class ConversationContext:
    """History and prompt of one session. Not thread-safe: used from the event loop only."""

    def __init__(self, *, system_prompt: str = "", context: str = "",
                 conversational_context: str = "", max_messages: int = 40,
                 visual_context_provider: Callable[[], str] | None = None,
                 knowledge_provider: Callable[[str], Retrieved] | None = None,
                 steering_provider: Callable[[], str] | None = None) -> None:
        self.system_prompt = system_prompt
        self.context = context
        self.conversational_context = conversational_context
        self.max_messages = max_messages
        self._entries: list[_Entry] = []
        #: perception: returns the visual context for the user turn being answered now
        self.visual_context_provider = visual_context_provider
        self._visual: dict[int, str] = {}  # reply_id -> visual context given with that user turn
        #: the knowledge base: returns the passages for a user turn's text
        self.knowledge_provider = knowledge_provider
        self._knowledge: dict[int, Retrieved] = {}  # reply_id -> what that user turn was given
        #: fixed notes that features of the session add to the end of the system prompt
        #: (e.g. emotion.EMOTION_NOTE when tts_emotion_control is on)
        self.prompt_notes: list[str] = []
        self._replaced: dict[int, str] = {}  # reply_id -> the safe line said instead (guardrails)
        #: objectives: returns the note that steers the reply to the latest user turn
        self.steering_provider = steering_provider

    # ------------------------------------------------------------------ perception
    def visual_context_for(self, reply_id: int) -> str:
        """The visual context of one user turn: taken from the provider the first time it is
        asked for (speculative generation, the utterance event or the commit), then fixed, so
        the LLM, the event and later prompts all see the same text."""
        if self.visual_context_provider is None:
            return ""
        if reply_id not in self._visual:
            try:
                text = (self.visual_context_provider() or "").strip()
            except Exception:  # noqa: BLE001 - perception must never break a turn
                logger.exception("visual context provider failed")
                text = ""
            self._visual[reply_id] = text
            if len(self._visual) > 4 * self.max_messages:
                for old in sorted(self._visual)[: len(self._visual) - 2 * self.max_messages]:
                    del self._visual[old]
        return self._visual[reply_id]

    # ------------------------------------------------------------------ knowledge
    def knowledge_for(self, reply_id: int, text: str) -> Retrieved | None:
        """The passages for one user turn: looked up the first time it is asked for (speculative
        generation or the commit), with the turn's text then, and kept, so the LLM, the event and
        later prompts all see the same passages."""
        if self.knowledge_provider is None:
            return None
        if reply_id not in self._knowledge:
            try:
                found = self.knowledge_provider(text)
            except Exception:  # noqa: BLE001 - retrieval must never break a turn
                logger.exception("knowledge provider failed")
                found = Retrieved("")
            self._knowledge[reply_id] = found
            if len(self._knowledge) > 4 * self.max_messages:
                for old in sorted(self._knowledge)[: len(self._knowledge) - 2 * self.max_messages]:
                    del self._knowledge[old]
        return self._knowledge[reply_id]

    def knowledge_given(self, reply_id: int) -> Retrieved | None:
        return self._knowledge.get(reply_id)

    # ------------------------------------------------------------------ prompt
    def overwrite(self, text: str) -> None:
        self.conversational_context = text

    def append(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        self.conversational_context = (
            f"{self.conversational_context.rstrip()}\n{text}" if self.conversational_context.strip()
            else text)

    def system_message(self) -> str:
        parts = [p.strip() for p in (self.system_prompt, self.context, self.conversational_context)]
        if self.visual_context_provider is not None:
            parts.append(VISUAL_CONTEXT_NOTE)
        if self.knowledge_provider is not None:
            parts.append(KNOWLEDGE_NOTE)
        parts += self.prompt_notes
        return "\n\n".join(p for p in parts if p)

    # ------------------------------------------------------------------ history
    def _find(self, role: str, reply_id: int) -> _Entry | None:
        for e in reversed(self._entries):
            if e.role == role and e.reply_id == reply_id:
                return e
        return None

    def has_user(self, reply_id: int) -> bool:
        return self._find("user", reply_id) is not None

    def add_user(self, reply_id: int, text: str) -> None:
        """Record the user's committed turn (idempotent per reply)."""
        if not text.strip() or self.has_user(reply_id):
            return
        self._entries.append(_Entry("user", text.strip(), reply_id))

    def user_text(self, reply_id: int) -> str:
        entry = self._find("user", reply_id)
        return entry.content if entry is not None else ""

    def replace_reply(self, reply_id: int, text: str) -> None:
        """What the agent says instead of the reply it generated (a guardrail withheld it): the
        history keeps this text, also when the reply is recorded later (a speculative one)."""
        self._replaced[reply_id] = text
        entry = self._find("assistant", reply_id)
        if entry is not None:
            entry.content = text

    def add_assistant(self, reply_id: int, text: str, tool_calls: list[ToolCall] | None = None) -> None:
        """Record a reply as generated (or as spoken, for a greeting/echo)."""
        text = self._replaced.get(reply_id, text)
        entry = self._find("assistant", reply_id)
        if entry is None:
            entry = _Entry("assistant", text.strip(), reply_id)
            self._entries.append(entry)
        else:
            entry.content = text.strip()
        if tool_calls:
            known = {c.id for c in entry.tool_calls}
            entry.tool_calls.extend(c for c in tool_calls if c.id not in known)

    def set_played(self, reply_id: int, text: str) -> None:
        """An interrupted reply: keep only what was played (drop it if nothing was)."""
        entry = self._find("assistant", reply_id)
        text = text.strip()
        if entry is None:
            if text:
                self._entries.append(_Entry("assistant", text, reply_id, interrupted=True))
            return
        entry.content = text
        entry.interrupted = True
        if not text and not entry.tool_calls:
            self._entries.remove(entry)

    def has_tool_call(self, tool_call_id: str) -> bool:
        return any(c.id == tool_call_id for e in self._entries for c in e.tool_calls)

    def has_tool_result(self, tool_call_id: str) -> bool:
        return any(e.role == "tool" and e.tool_call_id == tool_call_id for e in self._entries)

    def answered_tool_calls(self) -> set[tuple[str, str]]:
        """(name, canonical arguments) of the tool calls answered since the user last spoke."""
        answered: set[tuple[str, str]] = set()
        for e in reversed(self._entries):
            if e.role == "user":
                break
            for c in e.tool_calls:
                if self.has_tool_result(c.id):
                    answered.add(tool_signature(c))
        return answered

    def unanswered_tool_calls(self, tool_call_id: str) -> list[str]:
        """Ids of the tool calls made together with ``tool_call_id`` that have no result yet."""
        for e in reversed(self._entries):
            ids = [c.id for c in e.tool_calls]
            if tool_call_id in ids:
                return [i for i in ids if not self.has_tool_result(i)]
        return []

    def add_tool_result(self, tool_call_id: str, output: Any, status: str = "") -> None:
        if not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False)
        if status and status not in ("success", "ok", "completed"):
            output = f"[{status}] {output}"
        self._entries.append(_Entry("tool", output, tool_call_id=tool_call_id))

    def messages(self, pending_user: tuple[int, str] | None = None) -> list[dict[str, Any]]:
        """OpenAI-style messages for the LLM: system, then the recent history (consecutive
        user turns merged, which chat templates expect), then a pending (speculative) user
        turn if it is not in the history yet."""
        entries = list(self._entries)
        if pending_user is not None and not self.has_user(pending_user[0]) and pending_user[1].strip():
            entries.append(_Entry("user", pending_user[1].strip(), pending_user[0]))
        last_user = next((e for e in reversed(entries) if e.role == "user"), None)
        msgs: list[dict[str, Any]] = []
        for e in entries:
            m = e.message()
            if e.role == "user" and e.reply_id is not None and self.visual_context_provider is not None:
                # the turn being answered takes its visual context now; older turns keep theirs
                visual = (self.visual_context_for(e.reply_id) if e is last_user
                          else self._visual.get(e.reply_id, ""))
                if visual:
                    m["content"] = f"{m['content']}\n{visual}"
            if e.role == "user" and e.reply_id is not None and self.knowledge_provider is not None:
                found = (self.knowledge_for(e.reply_id, e.content) if e is last_user
                         else self._knowledge.get(e.reply_id))
                if found is not None and found.text:
                    # passages first, the question last: the 0.5B model answered 12 of 12 samples
                    # this way, 10 of 12 with the passages after the question
                    m["content"] = f"{found.text}\n{m['content']}"
            if e is last_user and self.steering_provider is not None:
                # on the latest turn only: the cached prompt prefix survives a change of objective
                note = self.steering_provider()
                if note:
                    m["content"] = f"{m['content']}\n{note}"
            if (msgs and m["role"] == "user" and msgs[-1]["role"] == "user"):
                msgs[-1]["content"] = f"{msgs[-1]['content']} {m['content']}"
                continue
            msgs.append(m)
        msgs = self._trim(msgs)
        system = self.system_message()
        return ([{"role": "system", "content": system}] if system else []) + msgs

    def _trim(self, msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """At most ``max_messages`` of the latest history. The oldest are dropped half a window
        at a time, not one turn at a time: the prompt then starts the same way for many turns,
        so an LLM that caches the prompt's prefix (llama.cpp) evaluates only the new turn. (Cut
        one turn at a time, every reply after the 20th re-read the whole history: first token
        ~10 s instead of ~0.3 s, bench_pipeline.)"""
        if len(msgs) <= self.max_messages:
            return msgs
        step = max(2, self.max_messages // 4 * 2)  # even: a user turn stays first
        start = -(-(len(msgs) - self.max_messages) // step) * step  # rounded up to a step
        msgs = msgs[start:]
        # never start with a tool message cut off from its call
        while msgs and msgs[0]["role"] == "tool":
            msgs = msgs[1:]
        return msgs

    @property
    def history(self) -> list[dict[str, Any]]:
        """A copy of the history as messages (no system message)."""
        return copy.deepcopy([e.message() for e in self._entries])
