"""The engines' thread plan: counts follow the cores and the calls the box is sized for."""
from conversations.realtime.engines import registry, threads


def test_a_two_core_box_sized_for_two_calls_generates_on_one_thread():
    p = threads.plan(live_calls=2, cores=2)
    # the measured case (MODELS.md): one generation thread holds up beside two calls' media
    assert (p.llm_generation, p.llm_prompt, p.stt, p.tts) == (1, 2, 1, 1)


def test_a_quiet_box_gives_the_engines_its_cores_within_their_caps():
    p = threads.plan(live_calls=0, cores=2)
    assert (p.llm_generation, p.stt, p.tts) == (2, 1, 1)
    big = threads.plan(live_calls=4, cores=32)
    assert big.llm_generation == threads.LLM_GENERATION_MAX
    assert big.stt == threads.STT_MAX and big.tts == threads.TTS_MAX
    assert big.llm_prompt == 32


def test_more_calls_leave_fewer_generation_threads_but_never_none():
    counts = [threads.plan(live_calls=n, cores=8).llm_generation for n in range(0, 20, 2)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == 8 and counts[-1] == 1


def test_settings_override_the_rule():
    p = threads.plan(live_calls=2, cores=2, llm_generation=2, stt=2)
    assert (p.llm_generation, p.stt) == (2, 2)


def test_a_cgroup_quota_caps_the_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.usable_cores(tmp_path) == min(2, threads.usable_cores(tmp_path / "none"))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.usable_cores(tmp_path) == threads.usable_cores(tmp_path / "none")


def test_the_django_side_plans_for_the_calls_one_process_holds(settings):
    plan = registry.thread_plan()
    assert plan.live_calls == settings.MAX_LIVE_CALLS_PER_PROCESS
    assert plan == threads.plan(live_calls=settings.MAX_LIVE_CALLS_PER_PROCESS,
                                llm_generation=settings.LLM_THREADS, stt=settings.STT_THREADS)
