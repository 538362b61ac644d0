"""Builds the engines a job uses from settings (and, later, the job's own options)."""

from __future__ import annotations

from ..config import Settings
from ..errors import ConfigError
from .base import Engines, SpeechToText, TextToSpeech, Translator


def translator(settings: Settings) -> Translator:
    if settings.translator == "openai":
        from .openai_translate import OpenAITranslator

        return OpenAITranslator(settings.secret("openai_api_key"), settings.openai_base_url or None,
                                settings.openai_model, settings.vendor_timeout, settings.vendor_retries)
    raise ConfigError(f"The translator {settings.translator!r} is not available yet.",
                      hint="Set DUBSTUDIO_TRANSLATOR=openai.")


def stt(settings: Settings) -> SpeechToText:
    if settings.stt == "offline":
        from .offline.pocketsphinx_stt import PocketsphinxSTT

        return PocketsphinxSTT()
    raise ConfigError(f"The speech-to-text engine {settings.stt!r} is not available yet.",
                      hint="Set DUBSTUDIO_STT=offline.")


def tts(settings: Settings) -> TextToSpeech:
    if settings.tts == "offline":
        from .offline.espeak import EspeakTTS

        return EspeakTTS()
    raise ConfigError(f"The text-to-speech engine {settings.tts!r} is not available yet.",
                      hint="Set DUBSTUDIO_TTS=offline.")


def engines(settings: Settings) -> Engines:
    return Engines(stt=stt(settings), translator=translator(settings), tts=tts(settings))
