"""WebSocket routes of every app, gathered for the ASGI router."""
from __future__ import annotations

from conversations.routing import websocket_urlpatterns as conversation_routes
from faces.routing import websocket_urlpatterns as face_routes
from knowledge.routing import websocket_urlpatterns as knowledge_routes

websocket_urlpatterns = [*conversation_routes, *face_routes, *knowledge_routes]
