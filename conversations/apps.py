from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self) -> None:
        from django.conf import settings

        from conversations.realtime.engines import outbound, registry
        from cvi_site import netguard

        # Engines read their model files from the data dir that setup_opencvi filled.
        if settings.LLM_MODEL and registry.canonical_name("llm", settings.LLM_MODEL) not in registry.EMBEDDED_LLMS:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"LLM_MODEL: {settings.LLM_MODEL!r} is not an embedded model; choose one of "
                                       + ", ".join(registry.EMBEDDED_LLMS))
        registry.configure(model_dir=settings.MODELS_DIR, llm_url=settings.LLM_URL,
                           llm_service_model=settings.LLM_MODEL or None,
                           llm_n_ctx=settings.LLM_CONTEXT_TOKENS, stt_beam_size=settings.STT_BEAM_SIZE,
                           live_calls=settings.MAX_LIVE_CALLS_PER_PROCESS, llm_threads=settings.LLM_THREADS,
                           stt_threads=settings.STT_THREADS)
        netguard.configure(allow_private=settings.ALLOW_PRIVATE_URLS)
        # remote engines connect through the site's rule
        outbound.install(async_client=netguard.async_client, check=netguard.acheck_request)
