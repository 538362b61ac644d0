"""Builds the engines a job uses from settings. Settings only admit engines that exist here."""

from __future__ import annotations

from typing import Any, get_args

from ..config import Settings
from ..errors import BadInput, ConfigError
from .base import SpeechToText, TextToSpeech, Translator

ENGINE_CHOICES = ("stt", "translator", "tts")


def for_job(settings: Settings, options: dict[str, Any]) -> Settings:
    """The settings with a job's own engine choices over them; an unknown engine is refused, naming the
    choices."""
    chosen = {k: options[k] for k in ENGINE_CHOICES if options.get(k)}
    for name, value in chosen.items():
        allowed = get_args(Settings.model_fields[name].annotation)
        if value not in allowed:
            raise BadInput(f"Unknown {name} engine {value!r}.", hint=f"Choose one of: {', '.join(allowed)}.",
                           details={name: value})
    return settings.model_copy(update=chosen)


def names(settings: Settings) -> tuple[str, str, str]:
    """The names the engines will report (for estimates), without building them."""
    stt = f"deepgram:{settings.deepgram_stt_model}" if settings.stt == "deepgram" else "offline"
    tts = {"deepgram": "deepgram:aura-2", "elevenlabs": f"elevenlabs:{settings.elevenlabs_model}"}.get(
        settings.tts, "offline")
    return stt, "manual" if settings.translator == "manual" else f"openai:{settings.openai_model}", tts


def translator(settings: Settings) -> Translator:
    if settings.translator == "manual":
        from .manual import ManualTranslator

        return ManualTranslator()
    from .openai_translate import OpenAITranslator

    return OpenAITranslator(settings.secret("openai_api_key"), settings.openai_base_url or None,
                            settings.openai_model, settings.vendor_timeout, settings.vendor_retries,
                            glossary=settings.glossary, keep=settings.do_not_translate,
                            concurrency=settings.vendor_concurrency)


def stt(settings: Settings) -> SpeechToText:
    if settings.stt == "deepgram":
        from .deepgram import DeepgramSTT

        # A whole file's transcription takes the server a while: never less than 300 s.
        return DeepgramSTT(settings.secret("deepgram_api_key"), settings.deepgram_base_url,
                           model=settings.deepgram_stt_model, timeout=max(settings.vendor_timeout, 300.0),
                           retries=settings.vendor_retries)
    from .offline.pocketsphinx_stt import PocketsphinxSTT

    return PocketsphinxSTT()


def tts(settings: Settings) -> TextToSpeech:
    if settings.tts == "deepgram":
        from .deepgram import DeepgramTTS

        return DeepgramTTS(settings.secret("deepgram_api_key"), settings.deepgram_base_url,
                           timeout=settings.vendor_timeout, retries=settings.vendor_retries,
                           concurrency=settings.vendor_concurrency)
    if settings.tts == "elevenlabs":
        if not settings.premium_voices:
            raise ConfigError("The ElevenLabs voices are behind a feature flag.",
                              hint="Set DUBSTUDIO_PREMIUM_VOICES=true, or choose DUBSTUDIO_TTS=offline or deepgram.")
        from .elevenlabs import ElevenLabsTTS, parse_voice_setting

        return ElevenLabsTTS(settings.secret("elevenlabs_api_key"), settings.elevenlabs_base_url,
                             model=settings.elevenlabs_model, voices=parse_voice_setting(settings.elevenlabs_voices),
                             timeout=settings.vendor_timeout, retries=settings.vendor_retries,
                             concurrency=settings.vendor_concurrency)
    from .offline.espeak import EspeakTTS

    return EspeakTTS()
