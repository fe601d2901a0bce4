"""Perception: the agent sees the user (Django-free).

- ``engine``: the embedded MediaPipe engine (one per process) and per-session streams;
- ``state``: per-frame signals smoothed into stable states and change events;
- ``context``: the one-line visual context given to the LLM with each user turn;
- ``awareness``: visual awareness queries (embedded signals, or a vision model);
- ``tools``: visual tools fired once per onset of their condition;
- ``analysis``: the end-of-call perception analysis;
- ``vision``: an OpenAI-compatible vision model client (image content as data URLs);
- ``options``: the layer's options (``PerceptionConfig``) and the ``SamplingPolicy``;
- ``vision_loop``: ``VisionLoop``, asking the vision model about the latest frames;
- ``monitor``: ``PerceptionMonitor``, what the session bridge uses;
- ``synthetic`` / ``bench``: camera video from the stock portrait, and the benchmark.
"""
