"""The live side of a conversation: one ``ConversationSession`` (``conversations.session``) per call,
wired from the parts here: its frozen configuration and engines (``config``), where its events are
stored (``sink``), its perception policy (``perception``) and the process's registry of live
sessions with admission control (``registry``)."""
