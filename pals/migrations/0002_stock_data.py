"""Stock data with stable ids: the default PAL and the stock face it uses.

The stock face's render assets are built by ``manage.py setup_opencvi`` (``make run`` and
``make test`` call it); until then it stays ``started``.
"""
from django.db import migrations

STOCK_PAL_ID = "pstock000001"
STOCK_FACE_ID = "rstock000001"

SYSTEM_PROMPT = (
    "You are Eileen, a friendly and helpful assistant talking with a person over a video call. "
    "Answer in one to three short spoken sentences. Be warm and natural. Never use lists, "
    "markdown, emoji or code: everything you write is spoken aloud."
)


def forwards(apps, schema_editor):
    Face = apps.get_model("faces", "Face")
    Pal = apps.get_model("pals", "Pal")
    Face.objects.get_or_create(
        pk=STOCK_FACE_ID, defaults={"face_name": "Eileen (stock)", "source_type": "image", "status": "started"}
    )
    Pal.objects.update_or_create(
        pk=STOCK_PAL_ID,
        defaults={
            "pal_name": "Friendly assistant (stock)",
            "system_prompt": SYSTEM_PROMPT,
            "greeting": "Hi! I'm Eileen. What would you like to talk about?",
            "pipeline_mode": "full",
            "default_face_id": STOCK_FACE_ID,
            "layers": {
                "conversational_flow": {"turn_taking_patience": "medium", "replica_interruptibility": "medium"},
                "llm": {"speculative_inference": True},
                "tts": {"voice_id": "en-us+f3", "voice_settings": {"speed": 1.0}},
                "perception": {"perception_model": "mediapipe"},
            },
        },
    )


def backwards(apps, schema_editor):
    apps.get_model("pals", "Pal").objects.filter(pk=STOCK_PAL_ID).delete()


class Migration(migrations.Migration):
    dependencies = [("pals", "0001_initial"), ("faces", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
