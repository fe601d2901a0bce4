"""The PAL Maker pages through Django's test client: sign-in, PAL editor (every option, errors
beside the field, the same rules as the API), talk now, voice preview and connection test,
faces (upload checks, thumbnails, the live status WebSocket), conversations and API keys."""
from __future__ import annotations

import asyncio
import io
import json
import re
import wave

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations.models import Conversation
from conversations.services import conversation_create, event_record, utterance_record
from faces.models import Face
from pals.models import Pal
from tests.factories import make_face, make_pal

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def web(client, account):
    client.force_login(account)
    return client


@pytest.fixture(autouse=True)
def _private_data_dir(settings, tmp_path):
    """Uploads and face assets go to a temporary data dir, not the real one."""
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def queued(monkeypatch):
    jobs = []
    monkeypatch.setattr("faces.tasks.face_training_start.delay", lambda face_id: jobs.append(face_id))
    return jobs


def field_block(html: str, name: str) -> str:
    """The HTML of one field's wrapper (label, input, help, errors)."""
    m = re.search(rf'<(div|fieldset) class="field[^"]*" id="field-{name}"', html)
    assert m, f"no field {name}"
    end = html.find('class="field', m.end())
    return html[m.start(): end if end > 0 else None]


def editor_post(**overrides) -> dict:
    """A minimal valid editor submission (what a browser sends for a new PAL)."""
    data = {"pal_name": "Ada", "pipeline_mode": "full", "system_prompt": "You are Ada, a kind tutor.",
            "llm_source": "embedded", "llm_speculative_inference": "on"}
    data.update(overrides)
    return data


# ------------------------------------------------------------------------------ sign-in, home


def test_pages_need_sign_in(client):
    for url in ("/", "/pals/", "/pals/new/", "/faces/", "/conversations/", "/account/keys/"):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/login/?next="), url


def test_sign_in_and_out(client, account):
    page = client.get("/login/")
    assert page.status_code == 200 and b'name="username"' in page.content
    bad = client.post("/login/", {"username": "alice", "password": "nope"})
    assert bad.status_code == 200 and b"Please enter a correct username and password" in bad.content
    r = client.post("/login/", {"username": "alice", "password": PASSWORD, "next": "/pals/"})
    assert r.status_code == 302 and r["Location"] == "/pals/"
    home = client.get("/")
    assert home.status_code == 200 and b"Hello, alice" in home.content
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_home_counts(web, account):
    make_pal(account=account, name="Mine")
    html = web.get("/").content.decode()
    assert "PALs of yours" in html and "Mine" in html and "Getting started" in html


def test_stylesheet_and_script_are_served(client):
    css = client.get("/static/css/opencvi.css")
    assert css.status_code == 200 and b".editor" in b"".join(css.streaming_content)
    js = client.get("/static/js/palmaker.js")
    assert js.status_code == 200 and "javascript" in js["Content-Type"]
    assert client.get("/static/css/../../cvi_site/settings.py").status_code == 404


# ------------------------------------------------------------------------------ PAL editor


def test_editor_shows_every_layer_with_help_and_seconds(web):
    html = web.get("/pals/new/").content.decode()
    for title in ("Identity", "Conversational flow", "Speech to text", "Language model", "Text to speech",
                  "Perception", "Knowledge and guardrails"):
        assert f">{title}</legend>" in html
    from conversations.realtime.levels import PATIENCE_WAITS

    # patience choices are labelled with the seconds the pipeline uses
    high = PATIENCE_WAITS["high"]
    assert f"High — patient ({high.complete_ms / 1000:g} s–{high.incomplete_ms / 1000:g} s)" in html
    assert f"high {high.complete_ms / 1000:g} / {high.neutral_ms / 1000:g} / {high.incomplete_ms / 1000:g} s" in html
    # help texts come from the layer serializers (the OpenAPI descriptions)
    assert "OpenAI-compatible endpoint without /chat/completions" in html
    assert "Test connection" in html and "Preview voice" in html
    # engines offered are the ones that exist here
    assert 'value="whisper-base"' in html and 'value="espeak-ng"' in html


def test_create_pal_with_every_layer(web, account):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = web.post("/pals/new/", editor_post(
        greeting="Hi!", cf_turn_taking_patience="high", cf_replica_interruptibility="low",
        stt_engine="whisper-base", stt_hotwords="Ada, Lovelace", llm_source="endpoint",
        llm_base_url="http://127.0.0.1:8080/v1/", llm_model="local", llm_api_key="sk-abcdefgh12345678",
        llm_headers='{"X-Team": "tutors"}', llm_tools=json.dumps(tools), llm_temperature="0.3",
        tts_engine="espeak-ng", tts_voice_id="en-gb", tts_speed="1.2", pc_perception_model="off",
        pc_visual_awareness_queries="Is the person smiling?\nIs anyone else there?",
        document_tags="faq, pricing", llm_speculative_inference=""))
    assert r.status_code == 302, r.content.decode()[:3000]
    pal = Pal.objects.get(account=account, pal_name="Ada")
    assert r["Location"] == f"/pals/{pal.id}/"
    layers = pal.layers
    assert layers["conversational_flow"] == {"turn_taking_patience": "high", "replica_interruptibility": "low"}
    assert layers["llm"]["base_url"] == "http://127.0.0.1:8080/v1"  # normalised by the service
    assert layers["llm"]["api_key"] == "sk-abcdefgh12345678"
    assert layers["llm"]["speculative_inference"] is False and layers["llm"]["tools"] == tools
    assert layers["tts"] == {"tts_engine": "espeak-ng", "voice_id": "en-gb", "voice_settings": {"speed": 1.2}}
    assert layers["perception"]["visual_awareness_queries"] == ["Is the person smiling?", "Is anyone else there?"]
    assert pal.document_tags == ["faq", "pricing"] and pal.greeting == "Hi!"


def test_validation_error_appears_beside_the_field_and_nothing_is_saved(web, account):
    r = web.post("/pals/new/", editor_post(llm_source="endpoint", llm_base_url="ftp://models.example.com", llm_model="m"))
    assert r.status_code == 400
    html = r.content.decode()
    assert "must be an http(s) URL" in field_block(html, "llm_base_url")
    assert "must be an http(s) URL" not in field_block(html, "llm_model")
    assert not Pal.objects.filter(account=account).exists()
    # the value typed stays in the field so it can be fixed
    assert 'value="ftp://models.example.com"' in field_block(html, "llm_base_url")


# (form overrides, the equivalent API body, the field the error must appear beside)
SAME_RULES = [
    (dict(llm_source="endpoint", llm_base_url="file:///etc/passwd", llm_model="x"),
     {"layers": {"llm": {"base_url": "file:///etc/passwd", "model": "x"}}}, "llm_base_url"),
    (dict(llm_tools='[{"type": "function", "function": {"name": "has space"}}]'),
     {"layers": {"llm": {"tools": [{"type": "function", "function": {"name": "has space"}}]}}}, "llm_tools"),
    (dict(tts_speed="3.5"), {"layers": {"tts": {"voice_settings": {"speed": 3.5}}}}, "tts_speed"),
    (dict(llm_temperature="7"), {"layers": {"llm": {"temperature": 7}}}, "llm_temperature"),
    (dict(system_prompt=""), {"system_prompt": ""}, "system_prompt"),
    (dict(pc_perception_model="vision-llm"), {"layers": {"perception": {"perception_model": "vision-llm"}}},
     "pc_base_url"),
    (dict(default_face_id="rnotmine0001"), {"default_face_id": "rnotmine0001"}, "default_face_id"),
]


@pytest.mark.parametrize("overrides, api_body, field", SAME_RULES, ids=[s[2] for s in SAME_RULES])
def test_a_rule_enforced_in_the_api_also_blocks_the_form(web, api, account, other_account, monkeypatch, overrides,
                                                         api_body, field):
    # A face that exists but belongs to someone else is "no face" for both entry points.
    Face.objects.filter(pk=make_face(account=other_account).pk).update(id="rnotmine0001")
    body = {"pal_name": "Ada", "system_prompt": "You are Ada."}
    body.update(api_body)
    api_response = api.post("/v2/pals", body, format="json")
    assert api_response.status_code == 400
    api_error = api_response.json()["error"]

    form_data = editor_post(**overrides)
    if field == "default_face_id":
        # the select only offers visible faces; a crafted POST must still be refused by the service
        from pals import forms as pal_forms

        original = pal_forms.PalEditorForm.__init__

        def allow_any_face(self, *a, **kw):
            original(self, *a, **kw)
            self.fields["default_face_id"].choices += [("rnotmine0001", "x")]

        monkeypatch.setattr(pal_forms.PalEditorForm, "__init__", allow_any_face)
    r = web.post("/pals/new/", form_data)
    assert r.status_code == 400
    block = field_block(r.content.decode(), field)
    errors = re.findall(r"<li>(.*?)</li>", block.split('class="errors"', 1)[1]) if 'class="errors"' in block else []
    assert errors, f"no error beside {field}; API said {api_error!r}"
    import html as html_lib

    # the words beside the field are the API's words (one service, one message)
    assert any(html_lib.unescape(e) in api_error for e in errors), (errors, api_error)
    assert not Pal.objects.filter(account=account).exists()


def test_edit_keeps_a_secret_it_never_shows(web, api, account):
    created = api.post("/v2/pals", {"pal_name": "Keyed", "system_prompt": "x", "layers": {"llm": {
        "base_url": "https://llm.example.com/v1", "model": "big", "api_key": "sk-live-0123456789abcdef"}}},
        format="json").json()
    url = f"/pals/{created['pal_id']}/"
    html = web.get(url).content.decode()
    assert "sk-live-0123456789abcdef" not in html and "****cdef" in html
    r = web.post(url, editor_post(pal_name="Keyed 2", llm_source="endpoint", llm_base_url="https://llm.example.com/v1",
                                  llm_model="bigger", llm_api_key=""))
    assert r.status_code == 302
    pal = Pal.objects.get(pk=created["pal_id"])
    assert pal.pal_name == "Keyed 2" and pal.layers["llm"]["model"] == "bigger"
    assert pal.layers["llm"]["api_key"] == "sk-live-0123456789abcdef"
    web.post(url, editor_post(llm_source="endpoint", llm_base_url="https://llm.example.com/v1", llm_model="bigger",
                              llm_api_key_clear="on"))
    pal.refresh_from_db()
    assert "api_key" not in pal.layers["llm"]


def test_round_trip_of_an_api_pal_through_the_editor_changes_nothing(web, api, account):
    from knowledge.models import Document

    Document.objects.create(id="d1", account=account, document_name="a document the PAL names")
    layers = {
        "perception": {"perception_model": "mediapipe", "visual_awareness_queries": ["Smiling?"],
                       "perception_analysis_queries": ["Mood?"], "pause_when_absent": True},
        "conversational_flow": {"turn_taking_patience": "low", "replica_interruptibility": "high",
                                "turn_detection_model": "vad"},
        "stt": {"stt_engine": "whisper-base", "hotwords": "Zürich", "participant_pause_sensitivity": "high",
                "smart_turn_detection": False},
        "llm": {"model": "qwen2.5-0.5b", "max_tokens": 200, "tools": [{"type": "function", "function": {"name": "f"}}]},
        "tts": {"tts_engine": "espeak-ng", "voice_id": "es", "voice_settings": {"speed": 0.9, "pitch": 40}},
    }
    created = api.post("/v2/pals", {"pal_name": "RT", "system_prompt": "p", "context": "c", "greeting": "g",
                                    "document_ids": ["d1"], "layers": layers}, format="json").json()
    page = web.get(f"/pals/{created['pal_id']}/")
    form = page.context["form"]
    data = {k: v for k, v in form.initial.items() if v not in (None, False)}
    data = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in data.items()}
    data = {k: ("on" if v is True else v) for k, v in data.items()}
    r = web.post(f"/pals/{created['pal_id']}/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    after = api.get(f"/v2/pals/{created['pal_id']}").json()
    for key in ("pal_name", "system_prompt", "context", "greeting", "document_ids", "layers"):
        assert after[key] == created[key], key


def test_stock_pal_is_read_only_and_can_be_duplicated(web, account):
    html = web.get("/pals/pstock000001/").content.decode()
    assert "read-only" in html and "<fieldset disabled" in html
    before = Pal.objects.get(pk="pstock000001").pal_name
    web.post("/pals/pstock000001/", editor_post(pal_name="Hijacked"))
    assert Pal.objects.get(pk="pstock000001").pal_name == before
    r = web.post("/pals/pstock000001/duplicate/")
    copy = Pal.objects.get(account=account)
    assert r.status_code == 302 and r["Location"] == f"/pals/{copy.id}/" and copy.pal_name.endswith("(copy)")


def test_other_accounts_pal_is_404(web, other_account):
    theirs = make_pal(account=other_account)
    assert web.get(f"/pals/{theirs.id}/").status_code == 404
    assert web.post(f"/pals/{theirs.id}/delete/").status_code == 404
    assert web.post(f"/pals/{theirs.id}/talk/").status_code == 404
    assert Pal.objects.filter(pk=theirs.id).exists()


def test_list_duplicate_delete(web, account):
    pal = make_pal(account=account, name="Zed")
    html = web.get("/pals/").content.decode()
    assert "Zed" in html and "Talk now" in html and "stock" in html
    web.post(f"/pals/{pal.id}/duplicate/")
    assert Pal.objects.filter(account=account, pal_name="Zed (copy)").exists()
    r = web.post(f"/pals/{pal.id}/delete/")
    assert r.status_code == 302 and not Pal.objects.filter(pk=pal.id).exists()


# ------------------------------------------------------------------------------ talk now


def test_talk_now_creates_a_conversation_and_opens_its_page(web, account):
    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    r = web.post(f"/pals/{pal.id}/talk/")
    conversation = Conversation.objects.get(account=account)
    assert r.status_code == 302 and r["Location"] == f"http://testserver/c/{conversation.id}/"
    assert conversation.pal_id == pal.id and conversation.face_id == face.id


def test_talk_now_without_a_face_asks_for_one(web, account):
    pal = make_pal(account=account)
    r = web.post(f"/pals/{pal.id}/talk/")
    assert r.status_code == 400 and b"the PAL has no default face" in r.content
    face = make_face(account=account, name="Picked")
    r = web.post(f"/pals/{pal.id}/talk/", {"face_id": face.id, "language": "spanish"})
    conversation = Conversation.objects.get(account=account)
    assert r.status_code == 302 and conversation.properties["language"] == "spanish"


def test_talk_now_respects_the_concurrency_limit(web, account):
    account.max_concurrent_conversations = 1
    account.save()
    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    assert web.post(f"/pals/{pal.id}/talk/").status_code == 302
    r = web.post(f"/pals/{pal.id}/talk/")
    assert r.status_code == 400 and b"maximum concurrent conversations" in r.content


# ------------------------------------------------------------------------------ live helpers


@pytest.mark.slow
def test_preview_voice_returns_a_wav_of_the_current_settings(web):
    slow = web.post("/pals/preview-voice/", editor_post(tts_engine="espeak-ng", tts_voice_id="en-us", tts_speed="0.7"))
    fast = web.post("/pals/preview-voice/", editor_post(tts_engine="espeak-ng", tts_voice_id="en-us", tts_speed="1.6"))
    assert slow.status_code == 200 and slow["Content-Type"] == "audio/wav"
    durations = []
    for response in (slow, fast):
        with wave.open(io.BytesIO(response.content)) as w:
            assert w.getnchannels() == 1 and w.getsampwidth() == 2
            durations.append(w.getnframes() / w.getframerate())
    assert durations[0] > 2.0 and durations[0] > durations[1] * 1.5  # speed really changes the voice


def test_preview_voice_plays_a_remote_tts_engine(web):
    from tests.conversations.realtime.engines.speech_server import SpeechServer

    with SpeechServer() as server:
        r = web.post("/pals/preview-voice/", editor_post(tts_engine="openai-tts", tts_base_url=server.url + "/v1",
                                                         tts_voice_id="af_bella", tts_speed="1.2"))
    assert r.status_code == 200 and r["Content-Type"] == "audio/wav", r.content[:300]
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getframerate() == 24_000 and w.getnframes() / 24_000 > 2.0
    body = json.loads(server.requests[0]["body"])
    assert body["voice"] == "af_bella" and body["speed"] == 1.2 and "This is how I sound" in body["input"]


def test_preview_voice_refuses_what_the_service_refuses(web):
    r = web.post("/pals/preview-voice/", editor_post(tts_speed="9"))
    assert r.status_code == 400 and "speed must be a number from 0.5 to 2.0" in r.json()["error"]


def test_perception_coverage_says_which_queries_the_embedded_engine_cannot_answer(web):
    queries = "Is the user looking at the screen?\nWhat colour is the user's shirt?"
    r = web.post("/pals/perception-coverage/", editor_post(pc_perception_model="mediapipe",
                                                           pc_visual_awareness_queries=queries))
    assert r.status_code == 200
    c = r.json()
    assert [a["query"] for a in c["answerable"]] == ["Is the user looking at the screen?"]
    assert c["answerable"][0]["signal"] == "attention"
    assert c["unanswerable"] == ["What colour is the user's shirt?"]
    assert "vision-llm" in c["note"]
    # A vision model answers everything; "off" answers nothing; hosted aliases mean mediapipe.
    r = web.post("/pals/perception-coverage/", editor_post(pc_perception_model="vision-llm",
                                                           pc_visual_awareness_queries=queries))
    assert r.json()["unanswerable"] == [] and len(r.json()["answerable"]) == 2
    r = web.post("/pals/perception-coverage/", editor_post(pc_perception_model="off", pc_visual_awareness_queries=queries))
    assert r.json()["answerable"] == [] and "off" in r.json()["note"]
    assert web.post("/pals/perception-coverage/", {"pc_perception_model": "raven-0",
                                                   "pc_visual_awareness_queries": queries}).json()["engine"] == "mediapipe"
    assert web.get("/pals/perception-coverage/").status_code == 405


def test_editor_shows_the_perception_coverage_of_a_saved_pal(web, account):
    pal = make_pal(account=account, layers={"perception": {"perception_model": "mediapipe", "visual_awareness_queries": [
        "Is the user smiling?", "Is the user holding a cup?"]}})
    html = web.get(f"/pals/{pal.id}/").content.decode()
    box = html[html.index('id="perception-coverage"'):]
    box = box[: box.index("</div>")]
    assert "✓</span> Is the user smiling?" in box and "(smiling)" in box
    assert "✗</span> Is the user holding a cup?" in box and "needs vision-llm" in box


def _stream_text(response) -> str:
    async def collect():
        return b"".join([part async for part in response.streaming_content])

    return asyncio.run(collect()).decode()


def test_test_connection_reports_an_unreachable_endpoint(web):
    r = web.post("/pals/test-llm/", editor_post(llm_source="endpoint", llm_base_url="http://127.0.0.1:9/v1",
                                                llm_model="nothing"))
    assert r.status_code == 200 and r["Content-Type"].startswith("text/plain")
    text = _stream_text(r)
    assert "Asking http://127.0.0.1:9/v1" in text and "cannot reach the LLM endpoint" in text


def test_test_connection_refuses_an_invalid_setting(web):
    r = web.post("/pals/test-llm/", editor_post(llm_source="endpoint", llm_base_url="gopher://x", llm_model="m"))
    assert r.status_code == 400 and b"must be an http(s) URL" in r.content


def test_test_connection_refuses_a_private_address_before_trying_it(web):
    """With ALLOW_PRIVATE_URLS off the connection test says why it did not test, and never
    claims to have reached the endpoint."""
    from cvi_site import netguard

    netguard.configure(allow_private=False)
    try:
        r = web.post("/pals/test-llm/", editor_post(llm_source="endpoint", llm_base_url="http://127.0.0.1:9/v1",
                                                    llm_model="m"))
    finally:
        netguard.configure(allow_private=True)
    assert r.status_code == 400
    text = r.content.decode()
    assert text.startswith("Not tested:") and "private address" in text and "Asking" not in text


@pytest.mark.slow
def test_test_connection_streams_from_the_embedded_model(web):
    r = web.post("/pals/test-llm/", editor_post())
    text = _stream_text(r)
    assert "Asking embedded model" in text and "✓ The model answered." in text, text


# ------------------------------------------------------------------------------ faces


def test_gallery_and_train_page(web, account):
    make_face(account=account, name="Mine ready")
    make_face(account=account, name="Mine training", status=Face.Status.TRAINING)
    html = web.get("/faces/").content.decode()
    assert "Mine ready" in html and "Mine training" in html and "Eileen" in html
    assert 'data-face-ws="/ws/faces/' in html  # the training one follows its progress
    train = web.get("/faces/train/").content.decode()
    assert "Recording guidelines" in train and "one minute" in train and 'data-max-bytes="' in train


def test_train_upload_checks_and_starts_training(web, account, queued, django_capture_on_commit_callbacks):
    bad = web.post("/faces/train/", {"face_name": "X", "consent": "on",
                                     "file": SimpleUploadedFile("me.gif", b"GIF89a", content_type="image/gif")})
    assert bad.status_code == 400
    assert "upload an mp4/webm/mov video" in field_block(bad.content.decode(), "file").lower()
    no_consent = web.post("/faces/train/", {"face_name": "X", "file": SimpleUploadedFile("me.png", b"\x89PNG")})
    assert no_consent.status_code == 400 and not Face.objects.filter(account=account).exists()
    with django_capture_on_commit_callbacks(execute=True):
        r = web.post("/faces/train/", {"face_name": "Me", "consent": "on",
                                       "file": SimpleUploadedFile("me.png", b"\x89PNG\r\n" + b"0" * 64,
                                                                  content_type="image/png")})
    face = Face.objects.get(account=account)
    assert r.status_code == 302 and r["Location"] == f"/faces/{face.id}/"
    assert queued == [face.id] and face.status == Face.Status.STARTED
    page = web.get(r["Location"]).content.decode()
    assert f'data-face-ws="/ws/faces/{face.id}/"' in page and 'role="progressbar"' in page


def test_failed_face_shows_a_readable_error(web, account):
    face = make_face(account=account, status=Face.Status.ERROR)
    Face.objects.filter(pk=face.pk).update(error_code="second_person_detected",
                                           error_message="two faces were seen in 40% of the frames")
    html = web.get(f"/faces/{face.id}/").content.decode()
    assert "two faces were seen" in html and "Only one person may be in the frame" in html


def test_thumbnails_need_a_session_and_the_right_account(web, client, account, other_account, settings):
    face = make_face(account=account)
    assets = settings.DATA_DIR / "faces" / face.id
    assets.mkdir(parents=True)
    (assets / "thumbnail.jpg").write_bytes(b"\xff\xd8\xff fake jpeg")
    r = web.get(f"/faces/{face.id}/thumbnail.jpg")
    assert r.status_code == 200 and r["Content-Type"] == "image/jpeg" and "private" in r["Cache-Control"]
    web.logout()
    assert web.get(f"/faces/{face.id}/thumbnail.jpg").status_code == 302
    web.force_login(other_account)
    assert web.get(f"/faces/{face.id}/thumbnail.jpg").status_code == 404


def test_rename_retrain_delete(web, account, queued, django_capture_on_commit_callbacks):
    face = make_face(account=account, status=Face.Status.ERROR)
    Face.objects.filter(pk=face.pk).update(train_image_url="https://example.com/a.jpg")
    web.post(f"/faces/{face.id}/rename/", {"face_name": "Renamed"})
    assert Face.objects.get(pk=face.pk).face_name == "Renamed"
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/faces/{face.id}/retrain/")
    assert queued == [face.id] and Face.objects.get(pk=face.pk).status == Face.Status.STARTED
    r = web.post(f"/faces/{face.id}/retrain/", follow=True)
    assert b"already being trained" in r.content
    web.post(f"/faces/{face.id}/delete/")
    assert not Face.objects.filter(pk=face.pk).exists()
    stock = Face.objects.filter(account__isnull=True).first()
    assert web.post(f"/faces/{stock.id}/delete/").status_code == 404


# ------------------------------------------------------------------------------ face status socket


def _session_cookie(user) -> str | None:
    """A real signed-in session (the socket authenticates by the session cookie)."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import Client

    if isinstance(user, AnonymousUser):
        return None
    c = Client()
    c.force_login(user)
    return c.cookies["sessionid"].value


async def _connect(session: str | None, face_id: str, *, origin: str | None = None):
    from channels.testing import WebsocketCommunicator

    from cvi_site.asgi import application

    headers = [(b"host", b"testserver")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, f"/ws/faces/{face_id}/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
def test_face_socket_pushes_progress_to_the_owner_only(account, other_account):
    from django.contrib.auth.models import AnonymousUser

    from faces import training_job as face_services

    face = make_face(account=account, status=Face.Status.TRAINING)
    mine, theirs, nobody = (_session_cookie(u) for u in (account, other_account, AnonymousUser()))

    async def scenario():
        from channels.db import database_sync_to_async

        ws, ok, _ = await _connect(mine, face.id)
        assert ok
        first = await ws.receive_json_from(timeout=5)
        assert first["status"] == "training" and first["progress"] == 0
        # The worker reports progress through the service (its own process in production).
        await database_sync_to_async(face_services._set_progress)(face.id, 42)
        update = await ws.receive_json_from(timeout=5)
        assert update["progress"] == 42 and update["status"] == "training"
        # A worker in another process cannot reach the in-memory layer: the consumer must
        # notice a change of the row by itself (a quiet update, no broadcast).
        await database_sync_to_async(Face.objects.filter(pk=face.id).update)(training_progress=61)
        quiet = await ws.receive_json_from(timeout=8)
        assert quiet["progress"] == 61
        await database_sync_to_async(Face.objects.filter(pk=face.id).update)(
            status=Face.Status.ERROR, error_code="poor_lighting", error_message="too dark")
        await database_sync_to_async(face_services._notify)(face.id)
        final = await ws.receive_json_from(timeout=5)
        assert final["status"] == "error" and final["error_message"] == "too dark" and "Light your face" in final["advice"]
        await ws.disconnect()

        for session in (theirs, nobody):
            ws, ok, code = await _connect(session, face.id)
            assert not ok and code in (4403, 4404)
        ws, ok, code = await _connect(mine, face.id, origin="https://evil.example.com")
        assert not ok and code == 4403
        ws, ok, _ = await _connect(mine, face.id, origin="http://testserver")
        assert ok
        await ws.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 30))


# ------------------------------------------------------------------------------ conversations


def _conversation_with_turns(account):
    face = make_face(account=account)
    pal = make_pal(account=account, face=face, name="Tutor")
    c = conversation_create(account=account, data={"pal_id": pal.id, "conversation_name": "Maths"})
    utterance_record(conversation_id=c.id, role="user", content="What is seven times eight?", seconds_from_start=1.0)
    utterance_record(conversation_id=c.id, role="assistant", content="Seven times eight is fifty-six.",
                     seconds_from_start=2.1, turn_idx=1, latency={
                         "turn_decided_ms": 520.0, "transcript_final_ms": 480.0, "llm_first_token_ms": 610.0,
                         "first_phrase_ms": 790.0, "tts_first_audio_ms": 805.0, "u2u_ms": 860.0, "stt_ms": 280.0,
                         "speculative": True})
    utterance_record(conversation_id=c.id, role="user", content="And nine times nine?", seconds_from_start=5.0)
    utterance_record(conversation_id=c.id, role="assistant", content="Eighty-one.", seconds_from_start=6.0,
                     turn_idx=2, latency={"turn_decided_ms": 300.0, "transcript_final_ms": 590.0,
                                          "llm_first_token_ms": 700.0, "first_phrase_ms": 900.0,
                                          "tts_first_audio_ms": 910.0, "u2u_ms": 950.0})
    event_record(conversation=c, message_type="system", event_type="system.replica_joined",
                 properties={"replica_id": face.id})
    return c


def test_conversation_list_and_transcript_with_latency_chart(web, account):
    c = _conversation_with_turns(account)
    listing = web.get("/conversations/").content.decode()
    assert "Maths" in listing and "live" in listing and "Tutor" in listing
    html = web.get(f"/conversations/{c.id}/").content.decode()
    assert "What is seven times eight?" in html and "Seven times eight is fifty-six." in html
    assert 'data-testid="latency-chart"' in html and "system.replica_joined" in html
    # turn 1: the transcript was final before the turn was decided (speculative), so the
    # STT segment adds nothing to the critical path; every segment is >= 0
    assert "Turn 1: Turn wait 520 ms" in html and "Turn 1: STT" not in html
    assert "Turn 1: LLM first token 90 ms" in html and "Turn 2: STT 290 ms" in html
    assert "860 ms" in html and "950 ms" in html


def test_a_recorded_conversation_plays_on_its_page_for_its_owner_only(web, client, account, other_account, settings):
    from conversations.services import conversation_set_recording, recording_path_for

    c = _conversation_with_turns(account)
    c.properties = {**c.properties, "enable_recording": True}
    c.save()
    assert "none was made" in web.get(f"/conversations/{c.id}/").content.decode() or c.status == "active"
    path = recording_path_for(c.id, video=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"mp4 bytes")
    conversation_set_recording(conversation_id=c.id, path=path, duration_s=42.0, base_url="http://testserver")
    html = web.get(f"/conversations/{c.id}/").content.decode()
    assert f'<video class="recording" controls preload="metadata" src="/conversations/{c.id}/recording"' in html
    assert "42 s" in html
    r = web.get(f"/conversations/{c.id}/recording")
    assert r.status_code == 200 and r["Content-Type"] == "video/mp4" and b"".join(r.streaming_content) == b"mp4 bytes"
    client.force_login(other_account)
    assert client.get(f"/conversations/{c.id}/recording").status_code == 404


def test_turn_latencies_never_negative_and_sum_to_the_last_mark():
    from conversations.views import turn_latencies

    class U:
        role = "assistant"
        interrupted = False
        turn_idx = 3

        def __init__(self, latency):
            self.latency = latency

    rows = turn_latencies([U({"turn_decided_ms": 400, "transcript_final_ms": 100, "llm_first_token_ms": 350,
                              "first_phrase_ms": None, "tts_first_audio_ms": 700}), U({}), U({"error": "x"})])
    assert len(rows) == 1
    ms = [s[2] for s in rows[0].segments]
    assert min(ms) >= 0 and sum(ms) == 700 and ms == [400, 0, 0, 0, 300]


def test_end_and_delete_a_conversation(web, account, other_account):
    c = _conversation_with_turns(account)
    assert web.get(f"/conversations/{c.id}/").status_code == 200
    web.post(f"/conversations/{c.id}/end/")
    c.refresh_from_db()
    assert c.status == Conversation.Status.ENDED and c.shutdown_reason == "end_conversation_endpoint_hit"
    web.post(f"/conversations/{c.id}/delete/")
    assert web.get(f"/conversations/{c.id}/").status_code == 404
    web.force_login(other_account)
    theirs = _conversation_with_turns(other_account)
    web.force_login(account)
    assert web.get(f"/conversations/{theirs.id}/").status_code == 404
    assert web.post(f"/conversations/{theirs.id}/end/").status_code == 404


# ------------------------------------------------------------------------------ API keys


def test_api_key_is_shown_once_and_works_until_revoked(web, account):
    r = web.post("/account/keys/", {"action": "create", "name": "ci server"})
    assert r.status_code == 302
    html = web.get("/account/keys/").content.decode()
    raw = re.search(r'<code id="new-key-value">(cvi_[^<]+)</code>', html).group(1)
    assert "ci server" in html
    assert raw not in web.get("/account/keys/").content.decode()  # never again

    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_X_API_KEY=raw)
    assert api.get("/v2/pals").status_code == 200
    key = account.api_keys.get(name="ci server")
    web.post(f"/account/keys/{key.id}/revoke/")
    assert api.get("/v2/pals").status_code == 401
    assert "revoked" in web.get("/account/keys/").content.decode()


def test_embed_origins_are_validated_by_the_service(web, account):
    r = web.post("/account/keys/", {"action": "origins", "origins": "https://ok.example.com\nnot an origin"})
    assert r.status_code == 400 and "is not an origin like https://example.com" in r.content.decode()
    account.refresh_from_db()
    assert account.allowed_embed_origins == []
    web.post("/account/keys/", {"action": "origins", "origins": "https://ok.example.com/\nhttp://localhost:3000"})
    account.refresh_from_db()
    assert account.allowed_embed_origins == ["https://ok.example.com", "http://localhost:3000"]


def test_cannot_revoke_someone_elses_key(web, other_api_key, other_account):
    key = other_account.api_keys.first()
    assert web.post(f"/account/keys/{key.id}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_talk_now_on_a_pal_without_a_face_talks_through_the_stock_face(web, account):
    """The picker offers only faces that can talk, preset to the PAL's default or else the stock
    face, and a PAL without a default face opens a call with the stock face."""
    from cvi_site.ids import STOCK_FACE_ID
    from faces.models import Face

    Face.objects.filter(pk=STOCK_FACE_ID).update(status="ready")
    pal = make_pal(account=account)
    page = web.get(f"/pals/{pal.id}/talk/").content.decode()
    assert "The PAL&#x27;s default face" not in page and "The PAL's default face" not in page
    assert "Eileen (stock)" in page and "(stock) (stock)" not in page
    r = web.post(f"/pals/{pal.id}/talk/", {"language": "english"})
    conversation = Conversation.objects.get(account=account)
    assert r.status_code == 302 and conversation.face_id == STOCK_FACE_ID
