"""Objectives and guardrails in the pipeline, with fake engines isolating the logic: the graph's
progress rules, the steering note, the evaluator's triggers, manual confirmation, a withheld reply.
(Through the real engines and a live site: tests/objectives/test_objectives_in_a_call.py.)"""
from __future__ import annotations

import json

import pytest
from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, FakeTTS, make_pipeline, run, words_audio

from conversations.realtime import events as ev
from conversations.realtime.events import GUARDRAIL_TRIGGERED, INTERNAL, OBJECTIVE_COMPLETED, OBJECTIVE_PENDING
from conversations.realtime.guardrails import SAFE_LINE
from conversations.realtime.objectives import (NOTFOUND, ObjectiveGraph,
                                               ObjectiveTracker)
from conversations.realtime.protocol import ProtocolError

GRAPH = {"objectives_id": "o123", "data": [
    {"objective_name": "collect_name", "objective_prompt": "Ask the user for their full name.",
     "output_variables": ["full_name"], "next_required_objectives": ["ask_interest"]},
    {"objective_name": "ask_interest", "objective_prompt": "Ask whether the user wants a demo or prices.",
     "next_conditional_objectives": {"schedule_demo": "the user wants a demo",
                                     "send_pricing": "the user wants prices"}},
    {"objective_name": "schedule_demo", "objective_prompt": "Ask which day suits the user for the demo.",
     "output_variables": ["demo_day", "team_size"]},
    {"objective_name": "send_pricing", "objective_prompt": "Ask for the user's email address.",
     "output_variables": ["email"], "confirmation_mode": "manual"},
]}


def _history(*turns: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def test_the_graph_starts_where_nothing_points_and_follows_the_branch_taken() -> None:
    t = ObjectiveTracker(ObjectiveGraph.from_snapshot(GRAPH))
    assert t.active == ["collect_name"] and t.current.name == "collect_name"
    history = _history("I'm Anna Schmidt.", "Nice to meet you!")
    # a value the user never said is not taken (the small model invents names)
    assert t.apply({"full_name": "John Doe"}, history) is None
    assert t.apply({"full_name": NOTFOUND}, history) is None
    done = t.apply({"full_name": "Anna Schmidt"}, history)
    assert done.kind == "completed" and done.variables == {"full_name": "Anna Schmidt"}
    assert done.activated == ("ask_interest",) and t.current.name == "ask_interest"
    # judged on the model's word alone, an objective needs a user turn made once it was the goal
    assert t.apply({"goal_reached": True, "which_is_true": "the user wants a demo"}, history) is None
    history += _history("A demo, please.", "Sure.")
    # a conditional objective needs one of its conditions, whatever the model says of the goal
    assert t.apply({"goal_reached": True, "which_is_true": "none of these"}, history) is None
    done = t.apply({"goal_reached": True, "which_is_true": "the user wants a demo"}, history)
    assert done.activated == ("schedule_demo",) and t.active == ["schedule_demo"]
    # variables add up over several evaluations
    history += _history("Tuesday would be good.", "Great.")
    assert t.apply({"demo_day": "Tuesday", "team_size": NOTFOUND}, history) is None
    history += _history("We are 12 people.", "Thanks.")
    done = t.apply({"demo_day": NOTFOUND, "team_size": "12"}, history)
    assert done.variables == {"demo_day": "Tuesday", "team_size": "12"} and t.finished
    assert t.progress()["completed"] == ["collect_name", "ask_interest", "schedule_demo"]


def test_manual_objectives_wait_for_confirmation_and_report_notfound() -> None:
    graph = ObjectiveGraph.from_snapshot({"objectives_id": "o1", "data": [GRAPH["data"][3]]})
    t = ObjectiveTracker(graph)
    history = _history("My email is anna at example dot com.")
    pending = t.apply({"email": "anna at example dot com"}, history)
    assert pending.kind == "pending" and t.current is None and not t.finished
    assert t.confirm("nope") is None
    done = t.confirm("send_pricing")
    assert done.kind == "completed" and done.variables == {"email": "anna at example dot com"} and t.finished
    # the variables of an objective completed without a value say NOTFOUND
    t2 = ObjectiveTracker(ObjectiveGraph.from_snapshot(GRAPH))
    assert t2.variables_of(t2.graph.get("schedule_demo")) == {"demo_day": NOTFOUND, "team_size": NOTFOUND}


def test_a_graph_that_points_nowhere_or_has_no_start_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown objectives"):
        ObjectiveGraph.from_snapshot({"data": [{"objective_name": "a", "next_required_objectives": ["b"]}]})
    with pytest.raises(ValueError, match="no objective to start"):
        ObjectiveGraph.from_snapshot({"data": [{"objective_name": "a", "next_required_objectives": ["b"]},
                                               {"objective_name": "b", "next_required_objectives": ["a"]}]})


def _scripted_llm(verdicts: dict[str, object], reply: str = "Nice to meet you. Do you want a demo?") -> FakeLLM:
    """Answers the structured questions with JSON (by a phrase of the question: a dict, or a
    function of the question) and chats otherwise."""

    def answer(messages: list[dict]) -> str:
        question = "\n".join(m["content"] for m in messages)
        for key, value in verdicts.items():
            if key in question:
                return json.dumps(value(question) if callable(value) else value)
        return reply

    return FakeLLM(answer)


def _guardrail_llm(reply: str) -> FakeLLM:
    """A model that names the weather and swearing as the rules' subjects, and says yes when a
    message mentions them."""
    def is_about(question: str) -> dict:
        message = question.split("Message: ", 1)[1].split("\n")[0].lower()
        subject = question.rsplit("Is this message about ", 1)[1].split("?")[0]
        words = {"the weather": ("weather", "sunny", "rain"), "swearing": ("damn",)}[subject]
        return {"answer": "yes" if any(w in message for w in words) else "no"}

    return _scripted_llm({"Never talk about the weather.\nWhat subject": {"forbidden_subject": "the weather"},
                          "Never swear.\nWhat subject": {"forbidden_subject": "swearing"},
                          "Is this message about": is_about}, reply=reply)


def test_the_reply_is_steered_then_the_objective_is_evaluated_and_completed() -> None:
    async def main():
        events: list[dict] = []
        llm = _scripted_llm({"extract facts": {"full_name": "Anna Schmidt"}})
        pipe, drv, _ = make_pipeline(llm=llm, stt=FakeSTT("Hello, my name is Anna Schmidt."), events=events,
                                     objectives=GRAPH)
        await pipe.start()
        await drv.play(words_audio(6))
        await drv.wait_event(ev.UTTERANCE, timeout_ms=8000, where=lambda e: e["properties"]["role"] == "replica")
        await drv.wait_event(OBJECTIVE_COMPLETED, timeout_ms=8000)
        with pytest.raises(ProtocolError, match="not waiting"):
            await pipe.handle_client_message({"event_type": "conversation.objective.confirm",
                                              "properties": {"objective_name": "collect_name"}})
        await pipe.close()
        return llm, events

    llm, events = run(main())
    chat = [r for r in llm.requests if "extract facts" not in r[0]["content"]]
    last_user = chat[0][-1]["content"]
    assert last_user.startswith("Hello, my name is Anna Schmidt.\n[Your current goal: Ask the user for their full name.")
    assert "Once that is done, go on to: Ask whether the user wants a demo or prices." in last_user
    completed = [e for e in events if e["event_type"] == OBJECTIVE_COMPLETED]
    assert completed and completed[0]["properties"]["objective_name"] == "collect_name"
    assert completed[0]["properties"]["output_variables"] == {"full_name": "Anna Schmidt"}
    assert completed[0]["properties"]["next_objectives"] == ["ask_interest"]


GUARDRAILS = [{"guardrail_uuid": "g-1", "guardrail_name": "no_weather", "guardrail_prompt": "Never talk about "
               "the weather.", "modality": "verbal", "app_message": True},
              {"guardrail_uuid": "g-2", "guardrail_name": "quiet_rule", "guardrail_prompt": "Never swear.",
               "modality": "verbal", "app_message": False}]


def _one_turn(llm: FakeLLM, question: str, **kw):  # noqa: ANN003, ANN202
    async def main():
        events: list[dict] = []
        tts = FakeTTS()
        pipe, drv, _ = make_pipeline(llm=llm, tts=tts, stt=FakeSTT(question), events=events, **kw)
        await pipe.start()
        await drv.play(words_audio(6))
        await drv.wait_event(ev.UTTERANCE, timeout_ms=8000, where=lambda e: e["properties"]["role"] == "replica")
        await pipe.close()
        return tts, events, pipe

    return run(main())


def test_a_reply_that_breaks_a_guardrail_is_not_spoken_and_the_safe_line_is() -> None:
    llm = _guardrail_llm("It is sunny and warm in Paris today.")
    tts, events, pipe = _one_turn(llm, "Damn, what is the weather in Paris?", guardrails=GUARDRAILS)
    chat = [r for r in llm.requests if r[0]["content"] != "Answer as JSON."]
    assert "Rules you must always keep:\n- Never talk about the weather." in chat[0][0]["content"]
    assert not any("sunny" in t for t in tts.texts), tts.texts  # never spoken
    assert " ".join(tts.texts) == SAFE_LINE
    said = [e["properties"]["speech"] for e in events
            if e["event_type"] == ev.UTTERANCE and e["properties"]["role"] == "replica"]
    assert said == [SAFE_LINE]
    assert pipe.history[-1] == {"role": "assistant", "content": SAFE_LINE}  # the model does not see what was withheld
    hits = {(e["properties"]["guardrail"], e["properties"]["role"]): e for e in events
            if e["event_type"] == GUARDRAIL_TRIGGERED}
    assert set(hits) == {("no_weather", "assistant"), ("no_weather", "user"), ("quiet_rule", "user")}
    reply_hit = hits[("no_weather", "assistant")]
    assert reply_hit["message_type"] == "conversation" and reply_hit["properties"]["guardrail_uuid"] == "g-1"
    assert "the weather" in reply_hit["properties"]["reason"]
    assert hits[("quiet_rule", "user")]["message_type"] == INTERNAL  # app_message false: not sent to the client


def test_a_reply_that_breaks_nothing_is_spoken_as_generated() -> None:
    llm = _guardrail_llm("Paris is the capital of France.")
    tts, events, pipe = _one_turn(llm, "What is the capital of France?", guardrails=GUARDRAILS[:1])
    assert " ".join(tts.texts) == "Paris is the capital of France."
    assert not [e for e in events if e["event_type"] == GUARDRAIL_TRIGGERED]
    verdict = pipe.guardrails.verdicts[-1]
    assert verdict.answered and verdict.asked == 2  # no embedder here: each message is asked about each rule


def test_the_prefilter_asks_only_about_the_rules_a_message_is_near() -> None:
    from conversations.realtime.engines.embeddings import embedded_embedder
    from conversations.realtime.guardrails import GuardrailChecker, from_snapshot

    llm = _guardrail_llm("")
    checker = GuardrailChecker(from_snapshot(GUARDRAILS), llm, embedder=embedded_embedder())
    benign = run(checker.check("What is the capital of France?", "Paris is the capital of France."))
    assert benign.answered and benign.asked == 0 and not benign.broken
    weather = run(checker.check("Tell me something.", "It is sunny and warm, the weather is lovely today."))
    assert weather.asked >= 1 and [(r.name, role) for r, role, _ in weather.broken] == [("no_weather", "assistant")]


def test_pending_objective_is_announced_and_confirmed_by_the_client() -> None:
    async def main():
        events: list[dict] = []
        llm = _scripted_llm({"extract facts": {"email": "anna at example dot com"}},
                            reply="Thanks, I will send the prices.")
        pipe, drv, _ = make_pipeline(llm=llm, stt=FakeSTT("My email is anna at example dot com."), events=events,
                                     objectives={"objectives_id": "o9", "data": [GRAPH["data"][3]]})
        await pipe.start()
        await drv.play(words_audio(8))
        await drv.wait_event(OBJECTIVE_PENDING, timeout_ms=8000)
        assert not [e for e in events if e["event_type"] == OBJECTIVE_COMPLETED]
        await pipe.handle_client_message({"event_type": "conversation.objective.confirm",
                                          "properties": {"objective_name": "send_pricing"}})
        await drv.wait_event(OBJECTIVE_COMPLETED, timeout_ms=8000)
        await pipe.close()
        return events

    events = run(main())
    done = [e for e in events if e["event_type"] == OBJECTIVE_COMPLETED][0]["properties"]
    assert done["objective_name"] == "send_pricing" and done["output_variables"] == {"email": "anna at example dot com"}
    assert done["progress"]["active"] == [] and done["progress"]["completed"] == ["send_pricing"]


def test_a_reply_goes_on_sentence_by_sentence_and_stops_at_the_sentence_that_breaks_a_rule() -> None:
    llm = _guardrail_llm("Paris is lovely in spring. It is sunny and warm there today. You should visit the Louvre.")
    tts, events, pipe = _one_turn(llm, "Tell me about Paris.", guardrails=GUARDRAILS[:1])
    spoken = " ".join(tts.texts)
    assert spoken.startswith("Paris is lovely in spring.") and spoken.endswith(SAFE_LINE), tts.texts
    assert "sunny" not in spoken and "Louvre" not in spoken  # the breaking phrase and the rest are dropped
    assert pipe.history[-1] == {"role": "assistant", "content": f"Paris is lovely in spring. {SAFE_LINE}"}
    hits = [e for e in events if e["event_type"] == GUARDRAIL_TRIGGERED]
    assert [(h["properties"]["guardrail"], h["properties"]["role"]) for h in hits] == [("no_weather", "assistant")]


def test_a_visual_rule_is_judged_on_what_the_camera_shows_not_on_words() -> None:
    from conversations.realtime.guardrails import GuardrailChecker, from_snapshot

    def is_about(question: str) -> dict:
        message = question.split("Message: ", 1)[1].split("\n")[0].lower()
        return {"answer": "yes" if "phone" in message else "no"}

    llm = _scripted_llm({"What subject": {"forbidden_subject": "a phone"}, "Is this message about": is_about})
    rules = from_snapshot([{"guardrail_uuid": "g-9", "guardrail_name": "no_phone", "modality": "visual",
                            "guardrail_prompt": "The person must not show a phone on camera."}])
    checker = GuardrailChecker(rules, llm)
    words_only = run(checker.check("Can I use my phone?", "Sure, phones are fine."))
    assert not words_only.broken and words_only.asked == 0  # a visual rule is not asked about words
    seen = run(checker.check("Look at this.", "Nice!", visual="A person holds a phone up to the camera."))
    assert [(r.name, role) for r, role, _ in seen.broken] == [("no_phone", "user")]
    assert "what the camera shows" in seen.broken[0][2]


def test_the_rules_subjects_are_asked_once_and_kept_for_the_latest_rules_only(monkeypatch) -> None:
    from conversations.realtime import guardrails
    from conversations.realtime.guardrails import GuardrailChecker, from_snapshot

    monkeypatch.setattr(guardrails, "_SUBJECTS", guardrails.OrderedDict())
    monkeypatch.setattr(guardrails, "MAX_SUBJECTS", 2)
    asked: list[str] = []

    def subject(question: str) -> dict:
        asked.append(question)
        return {"forbidden_subject": question.split("Never talk about ", 1)[1].split(".")[0]}

    llm = _scripted_llm({"What subject": subject})

    def prepare(topic: str) -> dict[str, str]:
        rules = from_snapshot([{"guardrail_uuid": f"g-{topic}", "guardrail_name": f"no_{topic}",
                                "guardrail_prompt": f"Never talk about {topic}."}])
        checker = GuardrailChecker(rules, llm)
        run(checker.prepare())
        return checker._subjects

    assert prepare("weather") == {"no_weather": "weather"}
    assert prepare("weather") == {"no_weather": "weather"} and len(asked) == 1  # asked once per process
    prepare("sports")
    prepare("politics")
    assert [key[1] for key in guardrails._SUBJECTS] == ["Never talk about sports.", "Never talk about politics."]
    prepare("weather")  # forgotten: asked again
    assert len(asked) == 4


def test_a_dynamic_greeting_that_breaks_a_guardrail_is_not_spoken() -> None:
    import dataclasses

    async def main(greeting: str) -> tuple[list, list]:
        events: list[dict] = []
        pipe, drv, _ = make_pipeline(llm=_guardrail_llm(greeting), events=events, guardrails=GUARDRAILS[:1])
        pipe.config = dataclasses.replace(pipe.config, dynamic_greeting=True)
        await pipe.start()
        await drv.run_until(lambda: any(e["event_type"] in (ev.REPLICA_STOPPED, GUARDRAIL_TRIGGERED) for e in events),
                            timeout_ms=10_000)
        await drv.silence(300)
        await pipe.close()
        said = [e["properties"]["speech"] for e in events
                if e["event_type"] == ev.UTTERANCE and e["properties"]["role"] == "replica"]
        return said, [e for e in events if e["event_type"] == GUARDRAIL_TRIGGERED]

    said, hits = run(main("Lovely sunny weather today! How can I help?"))
    assert said == [] and [h["properties"]["guardrail"] for h in hits] == ["no_weather"]
    said, hits = run(main("Hello! How can I help you today?"))
    assert said == ["Hello! How can I help you today?"] and hits == []
