"""Writes for conversations: create, end, delete, and the transcript/events a live session stores.

``conversation_create`` takes a create body's validated values (the edge checks the body with
``conversations.api.serializers.conversation_input``); a broken rule is a ``cvi_site.domain`` error.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import Conversation, ConversationEvent, Utterance
from conversations.webhooks import event_webhook_send
from cvi_site.domain import ApplicationError, LimitReachedError
from cvi_site.models import Account
from cvi_site.selectors import account_conversation_limit
from faces.models import Face

logger = logging.getLogger(__name__)

LIMIT_MESSAGE = "User has reached maximum concurrent conversations"
PROPERTY_DEFAULTS = {
    "max_call_duration": 3600,
    "participant_left_timeout": 0,
    "participant_absent_timeout": 300,
    "enable_recording": False,
    "enable_closed_captions": True,
    "apply_greenscreen": False,
    "language": "english",
}


class Shutdown:
    """The documented shutdown reasons."""

    MAX_DURATION = "max_call_duration reached"
    LEFT_TIMEOUT = "participant_left_timeout reached"
    ABSENT_TIMEOUT = "participant_absent_timeout reached"
    END_ENDPOINT = "end_conversation_endpoint_hit"
    STARTUP_ERROR = "exception_encountered_during_conversation_startup"
    #: OpenCVI's own: the server process already held MAX_LIVE_CALLS_PER_PROCESS calls
    SERVER_AT_CAPACITY = "server_at_capacity"


#: the hosted API's names for two create fields (both may be sent only when they agree; the
#: create body's serializer maps them onto ours)
LEGACY_NAMES = {"replica_id": "face_id", "persona_id": "pal_id"}


def _resolve_pal(account: Account, pal_id: str | None):
    from pals.selectors import pal_get_stock_default, pal_get_visible

    if pal_id:
        pal = pal_get_visible(account=account, pal_id=pal_id)
        if pal is None:
            raise ApplicationError(f"persona_id/pal_id: no PAL {pal_id!r}")
        return pal
    pal = pal_get_stock_default()
    if pal is None:
        raise ApplicationError("no pal_id given and no stock PAL is installed")
    return pal


def _resolve_face(account: Account, face_id: str | None, pal) -> Face:
    from faces.selectors import face_get_visible

    if not face_id:
        if pal.default_face_id is None:
            raise ApplicationError("replica_id/face_id is required: the PAL has no default face")
        face_id = pal.default_face_id
    face = face_get_visible(account=account, face_id=face_id)
    if face is None:
        raise ApplicationError(f"replica_id/face_id: no face {face_id!r}")
    if face.status != Face.Status.READY:
        raise ApplicationError(f"replica_id/face_id: face {face_id!r} is not ready (status {face.status})")
    return face


def pal_snapshot(pal) -> dict[str, Any]:
    """The PAL as a call reads it, frozen at creation: its fields, plus ``objectives``
    (``{"objectives_id", "data": [objective, ...]}`` or None) and ``guardrails`` (a list of
    ``{"guardrail_uuid", "guardrail_name", "guardrail_prompt", "modality", "callback_url", "tags",
    "app_message", "guardrails_id"}``, empty when none)."""
    from guardrails.selectors import guardrails_snapshot
    from objectives.selectors import objectives_snapshot
    from pals.services import pal_representation

    snapshot = pal_representation(pal, mask=False)
    snapshot["objectives"] = objectives_snapshot(account_id=pal.account_id, objectives_id=pal.objectives_id)
    snapshot["guardrails"] = guardrails_snapshot(account_id=pal.account_id, guardrail_ids=list(pal.guardrail_ids),
                                                 guardrails_id=pal.guardrails_id)
    return snapshot


def face_voice_applied(snapshot: dict[str, Any], face: Face) -> dict[str, Any]:
    """The PAL snapshot a call with ``face`` runs: the face's ``voice_name`` (set when it was created,
    e.g. from an image) becomes the voice when the PAL names none (no tts voice_id or
    external_voice_id) and its TTS engine is the voice's own or unset. A PAL's explicit voice wins."""
    if not face.voice_name:
        return snapshot
    from conversations.realtime.engines.registry import canonical_name
    from conversations.realtime.frontdoor import voice_catalogue

    voice = next((v for v in voice_catalogue() if v["voice_id"] == face.voice_name), None)
    tts = dict((snapshot.get("layers") or {}).get("tts") or {})
    if voice is None or tts.get("voice_id") or tts.get("external_voice_id"):
        return snapshot
    engine = tts.get("tts_engine")
    if engine and canonical_name("tts", engine) != voice["engine"]:
        return snapshot
    snapshot["layers"] = {**(snapshot.get("layers") or {}),
                          "tts": {**tts, "voice_id": voice["voice_id"], "tts_engine": voice["engine"]}}
    return snapshot


def _check_stt_language(pal, language: str) -> None:
    """A PAL whose speech recogniser hears only some languages cannot hold a call in another."""
    from conversations.realtime.engines import registry
    from conversations.realtime.engines.languages import language_code

    engine = registry.canonical_name("stt", ((pal.layers or {}).get("stt") or {}).get("stt_engine") or None,
                                      language=language_code(language))
    info = next((e for e in registry.available_engines()["stt"] if e["name"] == engine), {})
    code = language_code(language)
    if info.get("languages") and code not in info["languages"]:
        raise ApplicationError(f"properties.language: the PAL's speech recogniser {engine} hears only "
                               f"{', '.join(info['languages'])}, not {language}; choose stt_engine "
                               f"{registry.DEFAULT_STT} on the PAL for this language")


@transaction.atomic
def conversation_create(*, account: Account, data: dict[str, Any], base_url: str = "") -> Conversation:
    """A new conversation from a create body's validated values (``conversation_input``: our field
    names, ``properties`` checked). ``base_url``: where the authenticated caller reached this
    server (links the call emits use it when PUBLIC_URL is not set)."""
    values = dict(data)
    pal = _resolve_pal(account, values.pop("pal_id", None))
    face = _resolve_face(account, values.pop("face_id", None), pal)
    if values.get("document_ids"):
        from knowledge.services import check_document_ids

        check_document_ids(account=account, document_ids=values["document_ids"])
    if values.get("enable_dynamic_greeting") and pal.pipeline_mode != "full":
        raise ApplicationError("enable_dynamic_greeting: the PAL is in echo mode, which has no LLM to write a greeting")
    properties = {**PROPERTY_DEFAULTS, **dict(values.pop("properties", {}))}
    _check_stt_language(pal, properties["language"])
    test_mode = values.get("test_mode", False)

    if not test_mode:
        # Lock the account row so two concurrent creates cannot both pass the limit.
        Account.objects.select_for_update().filter(pk=account.pk).first()
        live = Conversation.objects.filter(account=account, status=Conversation.Status.ACTIVE).count()
        if live >= account_conversation_limit(account=account):
            raise LimitReachedError(LIMIT_MESSAGE)

    conversation = Conversation(account=account, pal=pal, face=face, properties=properties,
                                pal_snapshot=face_voice_applied(pal_snapshot(pal), face),
                                public_base_url=base_url.rstrip("/"), **values)
    if conversation.require_auth:
        conversation.meeting_token = secrets.token_urlsafe(24)
    if test_mode:
        conversation.status = Conversation.Status.ENDED
        conversation.ended_at = timezone.now()
        conversation.shutdown_reason = "test_mode"
    conversation.full_clean()
    conversation.save()
    return conversation


@transaction.atomic
def conversation_end(*, conversation: Conversation, reason: str = Shutdown.END_ENDPOINT) -> Conversation:
    """End a conversation (idempotent). A live session learns of it through the channel layer."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.status == Conversation.Status.ENDED:
        return conversation
    conversation.status = Conversation.Status.ENDED
    conversation.ended_at = timezone.now()
    conversation.shutdown_reason = reason
    conversation.save(update_fields=["status", "ended_at", "shutdown_reason", "updated_at"])
    event_record(conversation=conversation, message_type="system", event_type="system.shutdown",
                 properties={"replica_id": conversation.face_id, "shutdown_reason": reason})
    _send_transcript(conversation)
    transaction.on_commit(lambda: _notify_session_end(conversation.pk, reason))
    if conversation.memory_stores and conversation.started_at is not None:
        from knowledge.tasks import memories_learn

        transaction.on_commit(lambda: memories_learn.delay(conversation.pk))
    return conversation


def _notify_session_end(conversation_id: str, reason: str) -> None:
    """Tell whichever server process holds the live session to stop it."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from conversations.groups import session_group

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(conversation_id), {"type": "session.end", "reason": reason})
    except Exception:  # noqa: BLE001 - the DB already says ended; a session also checks it on its timers
        logger.warning("could not notify the session of %s", conversation_id, exc_info=True)


@transaction.atomic
def conversation_delete(*, conversation: Conversation, hard: bool = False) -> None:
    if conversation.status == Conversation.Status.ACTIVE:
        conversation_end(conversation=conversation)
        conversation.refresh_from_db()
    if hard:
        recording = recording_path(conversation)
        conversation.delete()  # cascades to the transcript and the events
        if recording is not None:
            transaction.on_commit(lambda: recording.unlink(missing_ok=True))
    else:
        Conversation.objects.filter(pk=conversation.pk).update(deleted_at=timezone.now())


@transaction.atomic
def conversation_mark_started(*, conversation_id: str, session_channel: str = "") -> None:
    Conversation.objects.filter(pk=conversation_id, started_at__isnull=True).update(started_at=timezone.now())
    if session_channel:
        Conversation.objects.filter(pk=conversation_id).update(session_channel=session_channel)


def event_record(*, conversation: Conversation | str, message_type: str, event_type: str,
                 properties: dict[str, Any] | None = None, webhook: bool = True) -> ConversationEvent:
    conversation_id = conversation if isinstance(conversation, str) else conversation.pk
    event = ConversationEvent.objects.create(
        conversation_id=conversation_id, message_type=message_type, event_type=event_type, properties=properties or {}
    )
    if webhook:
        event_webhook_send(conversation=conversation, event=event)
    return event


@transaction.atomic
def conversation_set_perception_analysis(*, conversation_id: str, analysis: str) -> None:
    """Store the end-of-call perception analysis and send ``application.perception_analysis``."""
    if Conversation.objects.filter(pk=conversation_id).update(perception_analysis=analysis):
        event_record(conversation=conversation_id, message_type="application",
                     event_type="application.perception_analysis", properties={"analysis": analysis})


def recording_path_for(conversation_id: str, *, video: bool) -> Path:
    """Where a live session writes the recording of ``conversation_id``."""
    return Path(settings.DATA_DIR) / "recordings" / f"{conversation_id}{'.mp4' if video else '.m4a'}"


def recording_path(conversation: Conversation) -> Path | None:
    """The conversation's recording file, if it has one that exists."""
    if not conversation.recording_file:
        return None
    path = Path(settings.DATA_DIR) / conversation.recording_file
    return path if path.is_file() else None


#: a recording still being written is touched every few seconds; one left alone this long is
#: the remains of a server process that died mid-call (an MP4 without its index: unplayable)
ABANDONED_RECORDING_S = 3600


def recordings_remove_abandoned(*, now: float | None = None) -> list[str]:
    """Delete half-written recordings (``*.part``) that nothing has written to for an hour."""
    import time

    folder = Path(settings.DATA_DIR) / "recordings"
    now = time.time() if now is None else now
    removed = []
    for part in folder.glob("*.part") if folder.is_dir() else ():
        try:
            if now - part.stat().st_mtime > ABANDONED_RECORDING_S:
                part.unlink()
                removed.append(part.name)
        except FileNotFoundError:
            continue  # finished (renamed) or removed meanwhile
    if removed:
        logger.warning("removed %d abandoned recording(s): %s", len(removed), ", ".join(removed))
    return removed


def recording_media_type(path: Path) -> str:
    return "video/mp4" if path.suffix == ".mp4" else "audio/mp4"


def recording_url(conversation: Conversation, *, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/v2/conversations/{conversation.pk}/recording"


@transaction.atomic
def conversation_set_recording(*, conversation_id: str, path: Path, duration_s: float, base_url: str) -> None:
    """Store a finished recording and send ``application.recording_ready`` {storage_uri, duration}."""
    try:
        relative = str(Path(path).resolve().relative_to(Path(settings.DATA_DIR).resolve()))
    except ValueError:
        relative = str(Path(path).resolve())
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    if conversation is None:  # hard-deleted during the call: the file has no owner left
        transaction.on_commit(lambda: Path(path).unlink(missing_ok=True))
        return
    conversation.recording_file = relative
    conversation.recording_duration = duration_s
    conversation.save(update_fields=["recording_file", "recording_duration", "updated_at"])
    event_record(conversation=conversation, message_type="application", event_type="application.recording_ready",
                 properties={"storage_uri": recording_url(conversation, base_url=base_url), "duration": duration_s})


def utterance_record(*, conversation_id: str, role: str, content: str, inference_id: str = "", turn_idx: int = 0,
                     seconds_from_start: float = 0.0, duration: float | None = None, interrupted: bool = False,
                     visual_context: str = "", latency: dict | None = None) -> Utterance:
    utterance = Utterance(
        conversation_id=conversation_id, role=role, content=content, inference_id=inference_id, turn_idx=turn_idx,
        seconds_from_start=seconds_from_start, duration=duration, interrupted=interrupted,
        visual_context=visual_context, latency=latency or {},
    )
    utterance.full_clean(exclude=["conversation"])
    utterance.save()
    return utterance


def utterance_set_latency(*, conversation_id: str, inference_id: str, latency: dict) -> None:
    Utterance.objects.filter(conversation_id=conversation_id, inference_id=inference_id, role=Utterance.Role.ASSISTANT).update(latency=latency)


def transcript_of(conversation: Conversation) -> list[dict[str, Any]]:
    started = conversation.started_at or conversation.created_at
    entries = []
    snapshot = conversation.pal_snapshot or {}
    system = "\n\n".join(p for p in (snapshot.get("system_prompt", ""), snapshot.get("context", ""),
                                     conversation.conversational_context) if p)
    if system:
        entries.append({"role": "system", "content": system, "timestamp": _iso(started), "seconds_from_start": 0.0,
                        "duration": None, "inference_id": None})
    for u in conversation.utterances.all():
        entries.append({
            "role": u.role, "content": u.content, "timestamp": _iso(u.timestamp),
            "seconds_from_start": round(u.seconds_from_start, 3), "duration": u.duration,
            "inference_id": u.inference_id or None,
        })
    return entries


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _send_transcript(conversation: Conversation) -> None:
    if conversation.test_mode:
        return
    event_record(conversation=conversation, message_type="application", event_type="application.transcription_ready",
                 properties={"transcript": transcript_of(conversation)})


@transaction.atomic
def conversation_fail_stale(*, now: datetime | None = None) -> int:
    """End active conversations whose absent timeout or max duration passed with no live session
    enforcing them (nobody ever joined, or the server process holding it died)."""
    now = now or timezone.now()
    ended = 0
    for conv in Conversation.objects.filter(status=Conversation.Status.ACTIVE):
        props = conv.properties or {}
        if conv.started_at is None:
            limit = props.get("participant_absent_timeout", 300)
            if (now - conv.created_at).total_seconds() > limit:
                conversation_end(conversation=conv, reason=Shutdown.ABSENT_TIMEOUT)
                ended += 1
        elif (now - conv.started_at).total_seconds() > props.get("max_call_duration", 3600) + 30:
            conversation_end(conversation=conv, reason=Shutdown.MAX_DURATION)
            ended += 1
    return ended
