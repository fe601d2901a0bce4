"""What a live call runs, read once: the frozen ``SessionConfig`` (the session-config selector,
never a model instance), the engines its pipeline gets, the pipeline itself and the face renderer.
The benchmarks build theirs through the same functions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from conversations.realtime.agent import ConversationPipeline, EngineBundle
from conversations.realtime.config import PipelineConfig
from knowledge.index import DEFAULT_STRATEGY
from knowledge.memories import recall, recall_context
from knowledge.retrieval import KnowledgeScope
from pronunciations.selectors import pipeline_with_pronunciation


@dataclass(frozen=True)
class SessionConfig:
    conversation_id: str
    account_id: int
    status: str
    pipeline: PipelineConfig
    face_id: str | None
    face_assets: str | None
    audio_only: bool
    greenscreen: bool
    closed_captions: bool
    require_auth: bool
    meeting_token: str = field(repr=False, default="")
    max_participants: int | None = None
    max_call_duration: float = 3600
    participant_left_timeout: float = 0
    participant_absent_timeout: float = 300
    created_at_epoch: float = 0.0
    callback_url: str = ""
    enable_recording: bool = False
    #: this server's URL for the links the call emits (PUBLIC_URL, else the creating request's host)
    base_url: str = ""
    #: the documents the call may look up (its PAL's and its own, by id and tag); None: none
    knowledge: KnowledgeScope | None = None


def load_session_config(conversation_id: str) -> SessionConfig | None:
    """Read everything a session needs from the database, once, into frozen data."""
    from conversations.selectors import conversation_get_public
    from faces.paths import face_assets_dir

    conv = conversation_get_public(conversation_id=conversation_id)
    if conv is None:
        return None
    snap = conv.pal_snapshot or {}
    props = conv.properties or {}
    # enable_dynamic_greeting: the LLM writes the opening line instead of the PAL's fixed greeting
    greeting = "" if conv.enable_dynamic_greeting else (conv.custom_greeting or snap.get("greeting", ""))
    remembered = recall_context(recall(account_id=conv.account_id, stores=list(conv.memory_stores or [])))
    pipeline = PipelineConfig.from_layers(
        snap.get("system_prompt", ""),
        snap.get("context", ""),
        snap.get("layers") or {},
        conversational_context="\n\n".join(p for p in (conv.conversational_context, remembered) if p),
        custom_greeting=greeting,
        dynamic_greeting=conv.enable_dynamic_greeting,
        language=props.get("language", "english"),
        pipeline_mode=snap.get("pipeline_mode", "full"),
        objectives=snap.get("objectives"),
        guardrails=snap.get("guardrails"),
    )
    pipeline = pipeline_with_pronunciation(pipeline, account_id=conv.account_id)
    assets = None
    if conv.face is not None and conv.face.status == "ready":
        assets = str(face_assets_dir(conv.face))
    return SessionConfig(
        conversation_id=conv.pk,
        account_id=conv.account_id,
        status=conv.status,
        pipeline=pipeline,
        face_id=conv.face_id,
        face_assets=assets,
        audio_only=conv.audio_only,
        greenscreen=bool(props.get("apply_greenscreen")),
        closed_captions=bool(props.get("enable_closed_captions", True)),
        require_auth=conv.require_auth,
        meeting_token=conv.meeting_token,
        max_participants=conv.max_participants,
        max_call_duration=float(props.get("max_call_duration", 3600)),
        participant_left_timeout=float(props.get("participant_left_timeout", 0)),
        participant_absent_timeout=float(props.get("participant_absent_timeout", 300)),
        created_at_epoch=conv.created_at.timestamp(),
        callback_url=conv.callback_url,
        enable_recording=bool(props.get("enable_recording")),
        base_url=settings.PUBLIC_URL or conv.public_base_url,
        knowledge=_knowledge_scope(conv, snap),
    )


def _knowledge_scope(conv, snap: dict) -> KnowledgeScope | None:  # noqa: ANN001 - a Conversation
    scope = KnowledgeScope(
        account_id=conv.account_id,
        document_ids=tuple(dict.fromkeys([*(snap.get("document_ids") or []), *(conv.document_ids or [])])),
        document_tags=tuple(dict.fromkeys([*(snap.get("document_tags") or []), *(conv.document_tags or [])])),
        strategy=conv.document_retrieval_strategy or DEFAULT_STRATEGY)
    return None if scope.empty else scope


def pipeline_for(config: SessionConfig, engines: EngineBundle, **hooks: Any) -> ConversationPipeline:
    """The pipeline a live call of ``config`` runs, with the live settings (the input buffer
    and everything else are ConversationPipeline's defaults); the benchmarks build theirs here
    too. ``hooks``: event sink, renderer, visual context provider."""
    return ConversationPipeline(config.pipeline, engines, conversation_id=config.conversation_id, **hooks)


def build_renderer(config: SessionConfig):
    if config.audio_only or not config.face_assets:
        return None
    from faces.renderer import create_renderer
    from faces.training import load_assets  # any version: version 1 folders are brought up to date

    return create_renderer(config.face_assets, greenscreen=config.greenscreen, load=load_assets)
