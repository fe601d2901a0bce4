"""The interactions protocol at the edge: events out as JSON, client messages in.

:func:`to_wire` is the one place a call's typed events (``events.py``) become the protocol's
JSON envelope (shared/API.md), for the data channel, the WebSocket and the benchmark client.

:func:`handle_client_message` validates one message (shared/API.md) and calls the
pipeline's action for it: ``conversation.echo`` (text or base64 int16 audio, streamed by
``inference_id``), ``respond``, ``interrupt``, ``overwrite_llm_context`` /
``append_llm_context``, ``sensitivity`` and ``tool_result``. A message that cannot be
applied raises :class:`ProtocolError`, whose text is safe to send back to the client; the
actions themselves (``ConversationPipeline.respond`` and the others) raise it too when the
pipeline's state refuses them. This module holds no state of its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .audio import decode_pcm16_base64
from .events import Event

if TYPE_CHECKING:
    from .agent import ConversationPipeline

#: largest echo audio accepted in one message (60 s at 48 kHz, int16)
MAX_ECHO_AUDIO_SAMPLES = 48_000 * 60


class ProtocolError(ValueError):
    """A client message that cannot be applied; ``str(exc)`` is safe to send back."""


def to_wire(event: Event, conversation_id: str) -> dict[str, Any]:
    """The event as the protocol sends it::

        {"message_type": "conversation", "event_type": "...", "conversation_id": "...",
         "inference_id": "...", "seq": n, "turn_idx": n, "timestamp": float, "properties": {...}}
    """
    return {
        "message_type": event.message_type,
        "event_type": event.name,
        "conversation_id": conversation_id,
        "inference_id": event.inference_id,
        "seq": event.seq,
        "turn_idx": event.turn_idx,
        "timestamp": event.timestamp,
        "properties": event.properties(),
    }


def as_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "")
    return bool(value)


async def handle_client_message(pipeline: ConversationPipeline, message: dict[str, Any]) -> None:
    """Apply one interactions-protocol message (shared/API.md). Raises ProtocolError."""
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    event_type = message.get("event_type")
    props = message.get("properties") or {}
    if not isinstance(props, dict):
        raise ProtocolError("properties must be an object")
    if pipeline.closed:
        raise ProtocolError("the conversation has ended")
    if event_type == "conversation.echo":
        await _handle_echo(pipeline, props)
    elif event_type == "conversation.respond":
        text = props.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("conversation.respond needs properties.text")
        await pipeline.respond(text, inference_id=props.get("inference_id"))
    elif event_type == "conversation.interrupt":
        await pipeline.interrupt()
    elif event_type == "conversation.overwrite_llm_context":
        ctx = props.get("context")
        if not isinstance(ctx, str):
            raise ProtocolError("conversation.overwrite_llm_context needs properties.context")
        pipeline.context.overwrite(ctx)
    elif event_type == "conversation.append_llm_context":
        ctx = props.get("context")
        if not isinstance(ctx, str):
            raise ProtocolError("conversation.append_llm_context needs properties.context")
        pipeline.context.append(ctx)
    elif event_type == "conversation.sensitivity":
        pipeline.set_sensitivity(pause=props.get("participant_pause_sensitivity"),
                                 interrupt=props.get("participant_interrupt_sensitivity"))
    elif event_type == "conversation.tool_result":
        await pipeline.tool_result(props.get("tool_call_id"), props.get("output"),
                                   status=props.get("status") or "")
    elif event_type == "conversation.objective.confirm":
        name = props.get("objective_name")
        if not isinstance(name, str) or not name:
            raise ProtocolError("conversation.objective.confirm needs properties.objective_name")
        if pipeline.objectives is None:
            raise ProtocolError("this conversation has no objectives")
        if not pipeline.objectives.confirm(name):
            raise ProtocolError(f"objective {name!r} is not waiting for a confirmation")
    else:
        raise ProtocolError(f"unknown event_type: {event_type!r}")


async def _handle_echo(pipeline: ConversationPipeline, props: dict[str, Any]) -> None:
    modality = props.get("modality") or ("audio" if props.get("audio") else "text")
    inference_id = props.get("inference_id")
    if inference_id is not None and not isinstance(inference_id, str):
        raise ProtocolError("inference_id must be a string")
    done = as_bool(props.get("done"), True)
    if modality == "text":
        text = props.get("text")
        if not isinstance(text, str):
            raise ProtocolError("conversation.echo with modality text needs properties.text")
        await pipeline.echo_text(text, inference_id=inference_id, done=done)
    elif modality == "audio":
        data = props.get("audio")
        if not isinstance(data, str):
            raise ProtocolError("conversation.echo with modality audio needs properties.audio")
        try:
            rate = int(props.get("sample_rate") or 24_000)
            pcm = decode_pcm16_base64(data)
        except (ValueError, TypeError) as exc:
            raise ProtocolError(f"bad echo audio: {exc}") from None
        if not 8_000 <= rate <= 96_000:
            raise ProtocolError("sample_rate must be between 8000 and 96000")
        if len(pcm) > MAX_ECHO_AUDIO_SAMPLES:
            raise ProtocolError("echo audio too long for one message")
        await pipeline.echo_audio(pcm, rate, inference_id=inference_id, done=done)
    else:
        raise ProtocolError("modality must be text or audio")
