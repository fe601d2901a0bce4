"""Objectives in a call: the graph a PAL links by ``objectives_id``, its progress, and the evaluator.

The graph (``ObjectiveGraph``, from the conversation's PAL snapshot) is a set of objectives, each
with a prompt, the output variables it must collect, and where it leads once done: all of
``next_required`` in order, or the one of ``next_conditional`` whose condition holds. The objectives
no other points to are where the call starts.

In a call (``ObjectiveRunner``):

- **Steering.** Each user turn sent to the LLM carries a note (``steering_note``) with the current
  objective, what is still missing, and what comes next, so the model asks for the right thing. The
  note rides on the last user turn, not the system prompt, so the cached prompt prefix survives a
  change of objective.
- **Evaluation.** After each reply, while nobody speaks, the same model is asked one question about
  the current objective with its answer constrained to JSON (``structured.complete_json``): the
  value of each output variable in the user's own words or NOTFOUND, whether the goal was reached,
  and, for a conditional objective, which condition holds. Completion is then decided by rules, not
  by the model's word alone: every output variable must have a value that the user actually said (a
  word of it occurs in the user's turns), and a conditional objective needs a condition. A user who
  starts speaking cancels an evaluation in flight (the reply comes first); it runs again after the
  next reply.
- **Completion.** ``confirmation_mode`` auto completes at once; manual emits
  ``conversation.objective.pending`` and waits for the client's ``conversation.objective.confirm``.
  A completed objective emits ``conversation.objective.completed`` (its variables, NOTFOUND for the
  missing, and the objectives it led to); the Django side stores it and sends the objective's
  ``callback_url`` webhook.

No Django here.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engines.base import LanguageModel
from .events import Event, ObjectiveCompleted, ObjectivePending
from .structured import complete_json

logger = logging.getLogger(__name__)

NOTFOUND = "NOTFOUND"
#: how many of the latest messages the evaluator reads
EVALUATOR_WINDOW = 10
_NONE_OF_THESE = "none of these"
_WORD = re.compile(r"[\w']+")
#: values that sum up an answer rather than quote it (a "yes" said as "sure")
_ANSWERS = {"yes", "no", "true", "false"}


@dataclass(frozen=True)
class Objective:
    name: str
    prompt: str
    confirmation_mode: str = "auto"
    output_variables: tuple[str, ...] = ()
    next_required: tuple[str, ...] = ()
    #: (objective name, condition) in the order given
    next_conditional: tuple[tuple[str, str], ...] = ()
    callback_url: str = ""

    @property
    def leads_to(self) -> tuple[str, ...]:
        return self.next_required + tuple(name for name, _ in self.next_conditional)


@dataclass(frozen=True)
class ObjectiveGraph:
    objectives_id: str
    objectives: tuple[Objective, ...]

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any] | None) -> ObjectiveGraph | None:
        """The graph from a PAL snapshot's ``objectives`` ({objectives_id, data: [...]}); None if empty.
        The API validated it; a broken graph (a name that is not there) raises ValueError."""
        if not snapshot or not snapshot.get("data"):
            return None
        items = []
        for raw in snapshot["data"]:
            conditional = raw.get("next_conditional_objectives") or {}
            items.append(Objective(
                name=str(raw["objective_name"]), prompt=str(raw.get("objective_prompt") or ""),
                confirmation_mode=str(raw.get("confirmation_mode") or "auto"),
                output_variables=tuple(str(v) for v in raw.get("output_variables") or ()),
                next_required=tuple(str(n) for n in raw.get("next_required_objectives") or ()),
                next_conditional=tuple((str(k), str(v)) for k, v in dict(conditional).items()),
                callback_url=str(raw.get("callback_url") or "")))
        graph = cls(objectives_id=str(snapshot.get("objectives_id") or ""), objectives=tuple(items))
        names = {o.name for o in items}
        for o in items:
            missing = [n for n in o.leads_to if n not in names]
            if missing:
                raise ValueError(f"objective {o.name} leads to unknown objectives {missing}")
        if not graph.starts:
            raise ValueError("no objective to start from: every objective is pointed to by another")
        return graph

    def get(self, name: str) -> Objective:
        for o in self.objectives:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def starts(self) -> tuple[str, ...]:
        pointed = {n for o in self.objectives for n in o.leads_to}
        return tuple(o.name for o in self.objectives if o.name not in pointed)


@dataclass
class Outcome:
    """What one evaluation or confirmation changed."""

    kind: str  # "pending" | "completed"
    objective: Objective
    variables: dict[str, str]
    activated: tuple[str, ...] = ()


@dataclass
class ObjectiveTracker:
    """Progress through one graph (pure: no model, no clock)."""

    graph: ObjectiveGraph
    active: list[str] = field(default_factory=list)
    completed: dict[str, dict[str, str]] = field(default_factory=dict)
    #: variables found so far for objectives not completed yet
    found: dict[str, dict[str, str]] = field(default_factory=dict)
    #: manual objectives waiting for the client's confirmation: name -> (variables, branch)
    pending: dict[str, tuple[dict[str, str], str | None, int]] = field(default_factory=dict)
    #: how many user turns the history held when each objective became active
    since: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.active and not self.completed:
            self.active = list(self.graph.starts)

    @property
    def current(self) -> Objective | None:
        for name in self.active:
            if name not in self.pending:
                return self.graph.get(name)
        return None

    @property
    def finished(self) -> bool:
        return not self.active

    # ------------------------------------------------------------------ steering
    def steering_note(self) -> str:
        obj = self.current
        if obj is None:
            return ""
        have = self.found.get(obj.name, {})
        lines = [f"[Your current goal: {obj.prompt.strip()}"]
        missing = [v for v in obj.output_variables if v not in have]
        if obj.output_variables:
            if have:
                lines.append("Already known: " + "; ".join(f"{k} = {v}" for k, v in have.items()) + ".")
            if missing:
                lines.append("Still to find out from the user: " + ", ".join(_words(v) for v in missing) + ".")
        follow = [self.graph.get(n).prompt.strip() for n in obj.next_required]
        if follow:
            lines.append("Once that is done, go on to: " + " Then: ".join(follow))
        if obj.next_conditional:
            lines.append("Once that is done, " + "; ".join(
                f"if {cond.strip().rstrip('.')}, go on to: {self.graph.get(name).prompt.strip()}"
                for name, cond in obj.next_conditional))
        lines.append("Work towards it naturally, one question at a time.]")
        return "\n".join(lines)

    # ------------------------------------------------------------------ evaluation
    def evaluation(self, history: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        """The evaluator's messages and JSON schema for the current objective (None: nothing to do)."""
        obj = self.current
        if obj is None:
            return None
        lines = []
        for m in list(history)[-EVALUATOR_WINDOW:]:
            if m.get("role") in ("user", "assistant") and (m.get("content") or "").strip():
                who = "User" if m["role"] == "user" else "Assistant"
                lines.append(f"{who}: {m['content'].strip()}")
        if not any(line.startswith("User:") for line in lines):
            return None
        properties: dict[str, Any] = {}
        ask = [*lines, ""]
        # One plain question per item, answered in the user's words: asked "for each item, write
        # what the user said or NOTFOUND", the 0.5B model wrote NOTFOUND for a name it had just
        # heard; asked "what is the user's full name?", it answers (and invents one when there is
        # none, which ``apply`` catches: a value must be made of words the user said).
        for v in obj.output_variables:
            properties[v] = {"type": "string"}
            ask.append(f"{v}: what is the {_words(v)} the user gave? (NOTFOUND if the user never said it)")
        if not obj.output_variables:
            properties["goal_reached"] = {"type": "boolean"}
            ask.append(f"goal_reached: has this been achieved: {obj.prompt.strip()}")
        if obj.next_conditional:
            options = [cond.strip() for _, cond in obj.next_conditional] + [_NONE_OF_THESE]
            properties["which_is_true"] = {"enum": options}
            ask.append("which_is_true: which of these is true? " + " | ".join(options))
        schema = {"type": "object", "additionalProperties": False, "properties": properties,
                  "required": list(properties)}
        messages = [
            {"role": "system", "content": "You extract facts from a conversation as JSON. Copy the user's words."},
            {"role": "user", "content": "\n".join(ask)},
        ]
        return messages, schema

    def apply(self, answer: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]) -> Outcome | None:
        """Take the evaluator's answer for the current objective; an Outcome if it completed (or now
        waits for confirmation)."""
        obj = self.current
        if obj is None or not answer:
            return None
        said = {w.lower() for m in history if m.get("role") == "user" for w in _WORD.findall(m.get("content") or "")}
        have = self.found.setdefault(obj.name, {})
        for name in obj.output_variables:
            value = str(answer.get(name) or "").strip().strip(".")
            if value and value.upper() != NOTFOUND and _grounded(value, said):
                have[name] = value
        branch: str | None = None
        if obj.next_conditional:
            chosen = str(answer.get("which_is_true") or "")
            branch = next((name for name, cond in obj.next_conditional if cond.strip() == chosen), None)
            if branch is None:
                return None
        if obj.output_variables:
            if any(v not in have for v in obj.output_variables):
                return None
        elif not answer.get("goal_reached"):
            return None
        if not obj.output_variables and _user_turns(history) <= self.since.get(obj.name, 0):
            # judged on the model's word alone: only on what the user said once it was the goal
            # (the 0.5B model picked a branch from the question the agent had just asked)
            return None
        variables = self.variables_of(obj)
        if obj.confirmation_mode == "manual":
            self.pending[obj.name] = (variables, branch, _user_turns(history))
            return Outcome("pending", obj, variables)
        return self._complete(obj, variables, branch, _user_turns(history))

    def confirm(self, name: str) -> Outcome | None:
        """The client confirmed a pending objective."""
        if name not in self.pending:
            return None
        variables, branch, user_turns = self.pending.pop(name)
        return self._complete(self.graph.get(name), variables, branch, user_turns)

    def variables_of(self, obj: Objective) -> dict[str, str]:
        have = self.completed.get(obj.name) or self.found.get(obj.name, {})
        return {v: have.get(v, NOTFOUND) for v in obj.output_variables}

    def _complete(self, obj: Objective, variables: dict[str, str], branch: str | None, user_turns: int) -> Outcome:
        self.completed[obj.name] = variables
        self.found.pop(obj.name, None)
        if obj.name in self.active:
            self.active.remove(obj.name)
        nexts = obj.next_required + ((branch,) if branch else ())
        activated = tuple(n for n in nexts if n not in self.completed and n not in self.active)
        self.active.extend(activated)
        self.since.update({name: user_turns for name in activated})
        return Outcome("completed", obj, variables, activated)

    def progress(self) -> dict[str, Any]:
        return {"objectives_id": self.graph.objectives_id, "active": list(self.active),
                "pending": sorted(self.pending), "completed": list(self.completed)}


def _user_turns(history: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for m in history if m.get("role") == "user")


def _words(name: str) -> str:
    return name.replace("_", " ").strip()


def _grounded(value: str, said: set[str]) -> bool:
    """Whether a word of ``value`` (or a number in it) is among the words the user said."""
    words = {w.lower() for w in _WORD.findall(value)}
    return bool(words & said) or value.lower() in _ANSWERS


class ObjectiveRunner:
    """Runs the evaluator of one call and emits the objectives' events. Event-loop only."""

    def __init__(self, graph: ObjectiveGraph, *, llm: LanguageModel,
                 history: Callable[[], list[dict[str, Any]]],
                 emit: Callable[[Event], Any], spawn: Callable[[Any, str], asyncio.Task[Any]]) -> None:
        self.tracker = ObjectiveTracker(graph)
        self._llm = llm
        self._history = history
        self._emit = emit
        self._spawn = spawn
        self._task: asyncio.Task[Any] | None = None
        self._dirty = False
        self.evaluations = 0

    def steering_note(self) -> str:
        return self.tracker.steering_note()

    # ------------------------------------------------------------------ triggers
    def reply_done(self) -> None:
        """A reply ended: evaluate (again) the current objective."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = self._spawn(self._evaluate_while_dirty(), "objectives")

    def user_speaking(self) -> None:
        """The user started to speak: the reply comes first; the evaluation waits for the next one."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            self._dirty = True

    async def _evaluate_while_dirty(self) -> None:
        while self._dirty:
            self._dirty = False
            history = self._history()
            request = self.tracker.evaluation(history)
            if request is None:
                return
            messages, schema = request
            self.evaluations += 1
            answer = await complete_json(self._llm, messages, schema, max_tokens=32 + 48 * len(schema["properties"]))
            logger.info("objective %s: evaluator answered %s", getattr(self.tracker.current, "name", "-"), answer)
            self._report(self.tracker.apply(answer, history))

    def confirm(self, name: str) -> bool:
        outcome = self.tracker.confirm(name)
        self._report(outcome)
        if outcome is not None:
            self.reply_done()  # the next objective may already be done
        return outcome is not None

    def _report(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        found = {"objective_name": outcome.objective.name, "output_variables": outcome.variables,
                 "objectives_id": self.tracker.graph.objectives_id}
        if outcome.kind == "pending":
            self._emit(ObjectivePending(**found))
            return
        self._emit(ObjectiveCompleted(**found, next_objectives=list(outcome.activated),
                                      progress=self.tracker.progress()))
        if outcome.activated:
            self.reply_done()  # what the user already said may complete the next one too
