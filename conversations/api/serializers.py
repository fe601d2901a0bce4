"""Input of ``POST /v2/conversations``: the create body's serializers (they are also its OpenAPI
schema) and ``conversation_input()``, which the API and the PAL Maker's "talk now" run on a body
before handing the values to ``conversations.services.conversation_create``."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from conversations.services import LEGACY_NAMES
from cvi_site.serializers import OutboundURLField, StrictSerializer, validated

RETRIEVAL_STRATEGIES = ("speed", "balanced", "quality")


def validate_language(value: str) -> str:
    """A language the recognisers know (full name, ISO code or ``multilingual``), lower-cased."""
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
        return validate_language(value)

    def validate(self, attrs):
        for name in RECORDING_DESTINATIONS:
            if attrs.pop(name, None):
                raise serializers.ValidationError(
                    {name: f"not supported here: {RECORDING_ON_DISK}; leave it out (or send it empty)"})
        return attrs



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



def conversation_input(data: Any) -> dict[str, Any]:
    """A create body's values (legacy names mapped to ours, ``properties`` checked and its
    language lower-cased), or ``InvalidError`` naming the fields."""
    return validated(ConversationInputSerializer(data=data))
