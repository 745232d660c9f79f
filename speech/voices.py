"""Which voice speaks which language, for Azure (neural voices) and espeak-ng (local)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

AZURE_VOICES: Mapping[str, str] = MappingProxyType(
    {
        "en-US": "en-US-AvaMultilingualNeural",
        "en-GB": "en-GB-SoniaNeural",
        "pt-PT": "pt-PT-RaquelNeural",
        "es-ES": "es-ES-ElviraNeural",
        "de-DE": "de-DE-KatjaNeural",
        "fr-FR": "fr-FR-DeniseNeural",
        "it-IT": "it-IT-ElsaNeural",
    }
)
# A multilingual voice reads most languages, so it is the fallback for locales without their own voice.
AZURE_FALLBACK_VOICE = "en-US-AvaMultilingualNeural"

ESPEAK_VOICES: Mapping[str, str] = MappingProxyType(
    {
        "en-US": "en-us",
        "en-GB": "en-gb",
        "pt-PT": "pt",
        "pt-BR": "pt-br",
        "es-ES": "es",
        "de-DE": "de",
        "fr-FR": "fr-fr",
        "it-IT": "it",
        "nl-NL": "nl",
        "pl-PL": "pl",
        "sv-SE": "sv",
        "da-DK": "da",
        "el-GR": "el",
        "tr-TR": "tr",
    }
)
ESPEAK_FALLBACK_VOICE = "en-us"

_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))?")


def normalize_locale(locale: str) -> str:
    """'pt_pt' -> 'pt-PT', 'EN' -> 'en', 'zh-Hans' stays; anything unparseable comes back stripped."""
    match = _LOCALE.match(locale.strip())
    if not match:
        return locale.strip()
    language, region = match.group(1).lower(), match.group(2)
    if not region:
        return language
    return f"{language}-{region.upper() if len(region) == 2 else region}"


def language_of(locale: str) -> str:
    """'pt-PT' -> 'pt'."""
    return normalize_locale(locale).split("-", 1)[0]


@dataclass(frozen=True)
class VoiceMap:
    """locale -> voice. A locale without its own entry gets the first voice of its language
    (entries keep their order, so en-AU gets en-US's voice), then the fallback."""

    voices: Mapping[str, str]
    fallback: str
    _index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for locale, voice in self.voices.items():
            index.setdefault(normalize_locale(locale).lower(), voice)
            index.setdefault(language_of(locale), voice)
        object.__setattr__(self, "_index", index)

    def voice_for(self, locale: str | None) -> str:
        if not locale:
            return self.fallback
        norm = normalize_locale(locale)
        return self._index.get(norm.lower()) or self._index.get(language_of(norm)) or self.fallback

    def with_overrides(self, overrides: Mapping[str, str] | None) -> VoiceMap:
        """A copy where `overrides` (locale -> voice) win over the defaults."""
        if not overrides:
            return self
        merged = {normalize_locale(k): v for k, v in overrides.items()}
        whole_languages = {k for k in merged if "-" not in k}  # "en" overrides every English default
        for locale, voice in self.voices.items():
            norm = normalize_locale(locale)
            if norm not in merged and language_of(norm) not in whole_languages:
                merged[norm] = voice
        return VoiceMap(merged, self.fallback)


DEFAULT_AZURE_VOICES = VoiceMap(AZURE_VOICES, AZURE_FALLBACK_VOICE)
DEFAULT_ESPEAK_VOICES = VoiceMap(ESPEAK_VOICES, ESPEAK_FALLBACK_VOICE)


def voice_locale(voice: str) -> str | None:
    """'pt-PT-RaquelNeural' -> 'pt-PT'; None when the name does not start with a locale."""
    match = re.match(r"^([a-z]{2,3}-[A-Z]{2})-", voice)
    return match.group(1) if match else None
