"""Writes for conversations: create, end, delete, and the transcript/events a live session stores."""
from __future__ import annotations

import logging
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from conversations.models import Conversation, ConversationEvent, Utterance
from cvi_site.errors import ApplicationError
from cvi_site.models import Account
from cvi_site.selectors import account_conversation_limit
from cvi_site.serializers import OutboundURLField, StrictSerializer
from cvi_site.webhooks import webhook_send
from faces.models import Face

logger = logging.getLogger(__name__)

RETRIEVAL_STRATEGIES = ("speed", "balanced", "quality")
LIMIT_BODY = {"message": "User has reached maximum concurrent conversations"}
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


def _validate_language(value: str) -> str:
    from conversations.realtime.engines.languages import language_code

    try:
        language_code(value)
    except ValueError:
        raise serializers.ValidationError(
            f"unknown language {value!r}; use a full name such as 'spanish', an ISO code, or 'multilingual'"
        ) from None
    return value.strip().lower()


#: why a recording destination is refused
RECORDING_ON_DISK = ("recordings are kept on this server's disk and fetched with GET "
                     "/v2/conversations/{id}/recording (application.recording_ready gives that storage_uri); "
                     "nothing uploads them to S3, GCS or Azure")
#: the hosted recording-destination properties (PropertiesSerializer refuses any non-empty one)
RECORDING_DESTINATIONS = ("recording_storage", "recording_s3_bucket_name", "recording_s3_bucket_region",
                          "aws_assume_role_arn")


class PropertiesSerializer(StrictSerializer):
    not_object_message = "must be an object"
    unknown_label = "propert(ies)"

    max_call_duration = serializers.IntegerField(min_value=10, max_value=4 * 3600, required=False,
                                                 help_text="Seconds before the call ends by itself (default 3600).")
    participant_left_timeout = serializers.IntegerField(min_value=0, max_value=3600, required=False,
                                                        help_text="Seconds the call waits after the last person leaves (default 0).")
    participant_absent_timeout = serializers.IntegerField(min_value=10, max_value=3600, required=False,
                                                          help_text="Seconds from creation before the call ends if nobody joins (default 300).")
    enable_recording = serializers.BooleanField(
        required=False, help_text="Record the call (face video, the replica's voice and the participants' microphones; "
        "not their cameras) to one MP4 (M4A when audio-only); when it ends, application.recording_ready gives "
        "its storage_uri, GET /v2/conversations/{id}/recording.")
    enable_closed_captions = serializers.BooleanField(required=False)
    apply_greenscreen = serializers.BooleanField(required=False, help_text="Render the face on RGB(0,255,155).")
    language = serializers.CharField(required=False, max_length=40,
                                     help_text="Full language name (e.g. spanish) or `multilingual` to detect.")
    # The hosted product's recording destinations. Recordings here are written to this server's disk
    # and served by GET /v2/conversations/{id}/recording; nothing uploads them to a bucket, so a
    # destination is refused (an empty value asks for nothing and is accepted).
    recording_storage = serializers.JSONField(
        required=False, help_text=f"Not supported here: {RECORDING_ON_DISK}. Refused unless empty.")
    recording_s3_bucket_name = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text=f"Not supported here: {RECORDING_ON_DISK}. "
        "Refused unless empty.")
    recording_s3_bucket_region = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text=f"Not supported here: {RECORDING_ON_DISK}. "
        "Refused unless empty.")
    aws_assume_role_arn = serializers.CharField(
        required=False, allow_blank=True, max_length=2048, help_text=f"Not supported here: {RECORDING_ON_DISK}. "
        "Refused unless empty.")

    def validate_language(self, value):
        return _validate_language(value)

    def validate(self, attrs):
        for name in RECORDING_DESTINATIONS:
            if attrs.pop(name, None):
                raise serializers.ValidationError(
                    {name: f"not supported here: {RECORDING_ON_DISK}; leave it out (or send it empty)"})
        return attrs


#: the hosted API's names for two create fields (both may be sent only when they agree)
LEGACY_NAMES = {"replica_id": "face_id", "persona_id": "pal_id"}


class ConversationInputSerializer(StrictSerializer):
    replica_id = serializers.CharField(max_length=32, required=False, help_text="Legacy name of face_id.")
    face_id = serializers.CharField(max_length=32, required=False,
                                    help_text="The face to render; defaults to the PAL's default face.")
    persona_id = serializers.CharField(max_length=32, required=False, help_text="Legacy name of pal_id.")
    pal_id = serializers.CharField(max_length=32, required=False, help_text="The PAL; defaults to the stock PAL.")
    conversation_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    conversational_context = serializers.CharField(max_length=50_000, required=False, allow_blank=True,
                                                   help_text="Appended to the PAL's prompt for this session.")
    custom_greeting = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                            help_text="Spoken first; never interruptible.")
    enable_dynamic_greeting = serializers.BooleanField(
        required=False, help_text="The PAL's LLM writes the opening line from its prompt and the conversational "
        "context, spoken as custom_greeting is (never interruptible). Not with custom_greeting; needs a PAL in "
        "full pipeline mode.")
    callback_url = OutboundURLField(max_length=2000, required=False, allow_blank=True)
    audio_only = serializers.BooleanField(required=False)
    test_mode = serializers.BooleanField(required=False, help_text="Create it already ended; nothing joins.")
    require_auth = serializers.BooleanField(required=False, help_text="Private: the response adds meeting_token.")
    max_participants = serializers.IntegerField(min_value=2, max_value=32, required=False,
                                                help_text="People + the face (which counts as one).")
    memory_stores = serializers.ListField(child=serializers.CharField(max_length=200), required=False, max_length=20)
    document_ids = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=100)
    document_tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    document_retrieval_strategy = serializers.ChoiceField(RETRIEVAL_STRATEGIES, required=False)
    properties = PropertiesSerializer(required=False)

    def validate(self, attrs):
        if attrs.get("enable_dynamic_greeting") and (attrs.get("custom_greeting") or "").strip():
            raise serializers.ValidationError(
                {"enable_dynamic_greeting": "send either custom_greeting (a fixed line) or enable_dynamic_greeting "
                                            "(the LLM writes it), not both"})
        for legacy, new in LEGACY_NAMES.items():
            if legacy in attrs:
                if new in attrs and attrs[new] != attrs[legacy]:
                    raise serializers.ValidationError(f"{legacy} and {new} disagree; send one of them")
                attrs[new] = attrs.pop(legacy)
        return attrs


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
    """A new conversation. ``base_url``: where the authenticated caller reached this server (links
    the call emits use it when PUBLIC_URL is not set)."""
    serializer = ConversationInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    values = dict(serializer.validated_data)
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
            raise ApplicationError(LIMIT_BODY["message"], body=LIMIT_BODY)

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
    if webhook and event_type in ITEM_WEBHOOKS:
        conv = conversation if isinstance(conversation, Conversation) else Conversation.objects.get(pk=conversation_id)
        item_webhook_send(conversation=conv, event=event)
    if webhook and event_type in WEBHOOK_EVENTS:
        conv = conversation if isinstance(conversation, Conversation) else Conversation.objects.get(pk=conversation_id)
        if conv.callback_url:
            webhook_send(url=conv.callback_url, event_type=event_type, subject_id=conversation_id,
                         account_id=conv.account_id, payload={
                "conversation_id": conversation_id, "event_type": event_type, "message_type": message_type,
                "timestamp": event.timestamp.isoformat(), "properties": event.properties,
            })
    return event


#: events of a call whose webhook goes to the URL of the objective or guardrail that caused them
#: (the snapshot's ``callback_url`` of that item, not the conversation's)
ITEM_WEBHOOKS = {
    # event in the call -> (webhook event_type, snapshot key, item key, property naming the item)
    "conversation.objective.completed": ("application.objective_completed", "objectives", "objective_name",
                                         "objective_name"),
    "conversation.guardrail.triggered": ("application.guardrail_triggered", "guardrails", "guardrail_name",
                                         "guardrail"),
}


def item_webhook_send(*, conversation: Conversation, event: ConversationEvent) -> None:
    """The webhook of an objective's completion or a guardrail's violation, to the ``callback_url``
    of that objective or guardrail as the conversation's PAL snapshot holds it.
    Objectives: {conversation_id, objective_name, output_variables} (NOTFOUND for the missing);
    guardrails: {conversation_id, properties {guardrail, guardrail_uuid, reason}}."""
    webhook_type, snap_key, item_key, prop = ITEM_WEBHOOKS[event.event_type]
    props = event.properties or {}
    snap = (conversation.pal_snapshot or {}).get(snap_key) or {}
    items = snap.get("data") if isinstance(snap, dict) else snap
    item = next((i for i in items or () if i.get(item_key) == props.get(prop)), None)
    url = (item or {}).get("callback_url") or ""
    if not url:
        return
    payload: dict[str, Any] = {"conversation_id": conversation.pk, "event_type": webhook_type,
                               "message_type": "application", "timestamp": event.timestamp.isoformat()}
    if snap_key == "objectives":
        payload.update(objective_name=props.get("objective_name"), output_variables=props.get("output_variables") or {},
                       properties={"objective_name": props.get("objective_name"),
                                   "output_variables": props.get("output_variables") or {}})
    else:
        payload["properties"] = {k: props.get(k) for k in ("guardrail", "guardrail_uuid", "reason", "role")}
    webhook_send(url=url, event_type=webhook_type, subject_id=conversation.pk, account_id=conversation.account_id,
                 payload=payload)


WEBHOOK_EVENTS = {
    "system.replica_joined", "system.shutdown", "application.transcription_ready",
    "application.recording_ready", "application.perception_analysis",
}


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
