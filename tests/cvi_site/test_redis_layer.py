"""A Channels group message goes through the real Redis layer between two consumers."""
from __future__ import annotations

import asyncio

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer


class RoomConsumer(AsyncJsonWebsocketConsumer):
    """Joins group ``room``; what one client sends is broadcast to every member."""

    layer: RedisChannelLayer | None = None

    async def connect(self):
        self.channel_layer = self.layer
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = lambda: self.channel_layer.receive(self.channel_name)
        await self.channel_layer.group_add("room", self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard("room", self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.channel_layer.group_send("room", {"type": "room.message", "text": content["text"]})

    async def room_message(self, event):
        await self.send_json({"text": event["text"], "to": self.channel_name})


