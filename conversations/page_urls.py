"""URLs of the conversation page (``conversation_url``) and its scripts."""
from django.urls import path

from conversations.page import conversation_page

urlpatterns = [
    path("c/<str:conversation_id>/", conversation_page, name="conversation-page"),
]
