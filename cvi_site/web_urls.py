"""URLs of the PAL Maker (the web UI), namespace ``web``. The REST API lives under /v2/ and
the live conversation page at /c/<id>/ (the transport's)."""
from django.urls import path

from conversations import views as conversation_views
from cvi_site import web
from faces import views as face_views
from guardrails import views as guardrail_views
from knowledge import views as knowledge_views
from objectives import views as objective_views
from pals import views as pal_views

app_name = "web"

urlpatterns = [
    path("", web.home, name="home"),
    path("login/", web.SignInView.as_view(), name="login"),
    path("logout/", web.SignOutView.as_view(), name="logout"),
    path("account/keys/", web.api_keys, name="api_keys"),
    path("account/keys/<int:key_id>/revoke/", web.api_key_revoke, name="api_key_revoke"),
    path("webhooks/<int:delivery_id>/resend/", web.webhook_resend, name="webhook_resend"),
    # PALs
    path("pals/", pal_views.pal_list, name="pal_list"),
    path("pals/new/", pal_views.pal_create, name="pal_create"),
    path("pals/test-llm/", pal_views.pal_test_llm, name="pal_test_llm"),
    path("pals/preview-voice/", pal_views.pal_preview_voice, name="pal_preview_voice"),
    path("pals/perception-coverage/", pal_views.pal_perception_coverage, name="pal_perception_coverage"),
    path("pals/<str:pal_id>/", pal_views.pal_edit, name="pal_edit"),
    path("pals/<str:pal_id>/duplicate/", pal_views.pal_duplicate, name="pal_duplicate"),
    path("pals/<str:pal_id>/delete/", pal_views.pal_delete, name="pal_delete"),
    path("pals/<str:pal_id>/talk/", pal_views.pal_talk, name="pal_talk"),
    # faces
    path("faces/", face_views.face_gallery, name="face_gallery"),
    path("faces/train/", face_views.face_train, name="face_train"),
    path("faces/<str:face_id>/", face_views.face_detail, name="face_detail"),
    path("faces/<str:face_id>/rename/", face_views.face_rename, name="face_rename"),
    path("faces/<str:face_id>/retrain/", face_views.face_retrain, name="face_retrain"),
    path("faces/<str:face_id>/delete/", face_views.face_delete, name="face_delete"),
    path("faces/<str:face_id>/thumbnail.jpg", face_views.face_thumbnail, name="face_thumbnail"),
    path("faces/<str:face_id>/preview.mp4", face_views.face_preview, name="face_preview"),
    # knowledge base and memories
    path("knowledge/", knowledge_views.knowledge_page, name="knowledge"),
    path("knowledge/documents/<str:document_id>/delete/", knowledge_views.document_delete, name="document_delete"),
    path("knowledge/memories/<str:store>/", knowledge_views.memory_store, name="memory_store"),
    # objectives and guardrails
    path("objectives/", objective_views.objective_list, name="objective_list"),
    path("objectives/<str:objectives_id>/", objective_views.objective_edit, name="objective_edit"),
    path("objectives/<str:objectives_id>/delete/", objective_views.objective_delete, name="objective_delete"),
    path("guardrails/", guardrail_views.guardrail_list, name="guardrail_list"),
    path("guardrails/<str:guardrails_id>/", guardrail_views.guardrail_edit, name="guardrail_edit"),
    path("guardrails/<str:guardrails_id>/delete/", guardrail_views.guardrail_delete, name="guardrail_delete"),
    # conversations
    path("conversations/", conversation_views.conversation_list, name="conversation_list"),
    path("conversations/<str:conversation_id>/", conversation_views.conversation_detail, name="conversation_detail"),
    path("conversations/<str:conversation_id>/recording", conversation_views.conversation_recording,
         name="conversation_recording"),
    path("conversations/<str:conversation_id>/end/", conversation_views.conversation_end, name="conversation_end"),
    path("conversations/<str:conversation_id>/delete/", conversation_views.conversation_delete,
         name="conversation_delete"),
]
