"""How many threads each embedded engine gets, chosen from the machine.

The rules live here and nowhere else; settings may override a number (``LLM_THREADS``,
``STT_THREADS``), never the rules.

What the box runs decides it, not only its core count:
- ``cores``: the CPUs this process may use (its affinity mask, capped by a cgroup CPU quota,
  which is what a container gets), not the host's count.
- Every live call keeps media work running the whole time (face rendering, video and audio
  encoding, VAD): about half a core at 25 fps on this project's 2-core reference box
  (``bench_u2u``: two calls with face video used ~1.1 of 2 cores). That share is reserved for
  the calls the box is sized for (``live_calls``).
- LLM generation is memory-bound and suffers most from competing for cores: on a busy 2-core
  box one generation thread kept 10–11 tokens/s where two collapsed to 0.4–2.4 (shared
  MODELS.md). It gets what the calls leave, at least one, at most 8 (no gain beyond).
  Prompt evaluation is a short compute-bound burst and may use every core.
- Speech recognition runs once per turn on the critical path while the LLM waits for it, and
  beside it only the end-of-turn model (one thread): it gets the cores less that one, at
  least one, at most 4 (Whisper tiny/base gain nothing beyond).
- The neural TTS synthesises one phrase at a time, overlapping LLM generation: it gets the
  cores the calls and one generation thread leave, at least one, at most 2.
- VAD and the end-of-turn model run tiny models per chunk: one thread each (fixed in their
  modules; more threads only add overhead).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

#: share of a core one live call's media work keeps busy (see the module docstring)
MEDIA_CORES_PER_CALL = 0.5
LLM_GENERATION_MAX = 8
STT_MAX = 4
TTS_MAX = 2


def usable_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 ``cpu.max`` quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


@dataclass(frozen=True)
class ThreadPlan:
    cores: int
    live_calls: int
    llm_generation: int
    llm_prompt: int
    stt: int
    tts: int

    def describe(self) -> str:
        return (f"{self.cores} cores, {self.live_calls} live calls reserved: LLM {self.llm_generation} "
                f"generation / {self.llm_prompt} prompt threads, STT {self.stt}, TTS {self.tts}")


def plan(*, live_calls: int, cores: int | None = None, llm_generation: int = 0, stt: int = 0) -> ThreadPlan:
    """The thread counts for a box sized for ``live_calls`` calls. ``llm_generation`` and
    ``stt`` override the rule when positive (the ``LLM_THREADS`` / ``STT_THREADS`` settings)."""
    cores = cores or usable_cores()
    left = cores - math.ceil(max(0, live_calls) * MEDIA_CORES_PER_CALL)
    generation = llm_generation or max(1, min(LLM_GENERATION_MAX, left))
    return ThreadPlan(
        cores=cores, live_calls=live_calls,
        llm_generation=generation,
        llm_prompt=cores,
        stt=stt or max(1, min(STT_MAX, cores - 1)),
        tts=max(1, min(TTS_MAX, left - 1)),
    )
