"""WebSocket routes of the faces app."""
from django.urls import path

from faces.consumers import FaceStatusConsumer

websocket_urlpatterns = [
    path("ws/faces/<str:face_id>/", FaceStatusConsumer.as_asgi()),
]
