"""Channel-layer group names shared by the REST side and the live session."""


def session_group(conversation_id: str) -> str:
    return f"conversation.{conversation_id}"
