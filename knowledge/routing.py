from django.urls import path

from knowledge.consumers import DocumentStatusConsumer

websocket_urlpatterns = [path("ws/documents/", DocumentStatusConsumer.as_asgi())]
