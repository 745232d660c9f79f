"""Does a guest ask for gated details? Door, key, code, Wi-Fi, password or address, in our six languages.

The gate itself is the retrieval filter (bot.knowledge.retrieval): this only decides when to offer the
identity check and what to write in the access log. A miss costs little (no check offered, nothing
released); a false hit asks a guest for their booking code once. Words are matched whole, on text
folded to lower case without accents ("Tür" → "tur", "código" → "codigo").
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Fact = Literal["access", "address"]
FACTS: tuple[Fact, ...] = ("access", "address")

ACCESS_WORDS = {
    "en": (
        "door",
        "doors",
        "key",
        "keys",
        "keybox",
        "key box",
        "lockbox",
        "lock box",
        "key safe",
        "code",
        "codes",
        "pin code",
        "passcode",
        "wifi",
        "wi-fi",
        "wi fi",
        "password",
        "alarm",
    ),
    "pt": (
        "porta",
        "portas",
        "chave",
        "chaves",
        "codigo",
        "codigos",
        "cofre",
        "senha",
        "palavra-passe",
        "palavra passe",
        "wifi",
        "alarme",
    ),
    "es": (
        "puerta",
        "puertas",
        "llave",
        "llaves",
        "codigo",
        "codigos",
        "clave",
        "contrasena",
        "caja de llaves",
        "wifi",
        "alarma",
    ),
    "de": (
        "tur",
        "turen",
        "haustur",
        "wohnungstur",
        "schlussel",
        "schlusselbox",
        "schlusselkasten",
        "schlusselsafe",
        "code",
        "zugangscode",
        "passwort",
        "kennwort",
        "wlan",
        "wifi",
        "alarmanlage",
    ),
    "fr": (
        "porte",
        "portes",
        "cle",
        "cles",
        "clef",
        "clefs",
        "boite a cles",
        "code",
        "codes",
        "digicode",
        "mot de passe",
        "wifi",
        "alarme",
    ),
    "it": ("porta", "porte", "chiave", "chiavi", "cassetta", "codice", "codici", "password", "wifi", "allarme"),
}
ADDRESS_WORDS = {
    "en": ("address", "street", "house number", "postcode", "zip code", "exact location"),
    "pt": ("morada", "endereco", "rua", "numero da porta", "codigo postal", "localizacao exata"),
    "es": ("direccion", "calle", "numero de la casa", "codigo postal", "ubicacion exacta"),
    "de": ("adresse", "anschrift", "strasse", "hausnummer", "postleitzahl", "genaue lage"),
    "fr": ("adresse", "rue", "numero de rue", "code postal", "emplacement exact"),
    "it": ("indirizzo", "numero civico", "codice postale", "posizione esatta"),
}


def fold(text: str) -> str:
    """Lower case, accents dropped, "ß" as "ss": the form every word list here is written in."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _pattern(words: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    every = sorted({w for group in words.values() for w in group}, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in every) + r")(?![a-z0-9])")


_ACCESS = _pattern(ACCESS_WORDS)
_ADDRESS = _pattern(ADDRESS_WORDS)


def gated_facts(text: str) -> frozenset[Fact]:
    """The kinds of gated detail a message asks about: "access" (codes, keys, Wi-Fi) and/or "address"."""
    folded = fold(text)
    found: set[Fact] = set()
    if _ADDRESS.search(folded):
        found.add("address")
    if _ACCESS.search(_ADDRESS.sub(" ", folded)):  # "código postal" asks for an address, not a code
        found.add("access")
    return frozenset(found)
