"""Which knowledge is an access detail (door, key-box, gate and alarm codes, Wi-Fi passwords).

Such chunks are only shown to guests whose stay is close enough (see `search`), so a false positive
costs little (the bot hands off or says the code comes later) and a false negative leaks a code to
anyone who asks. The patterns therefore look for a credential *value* next to a credential word, in
English, Portuguese, German and Spanish. Authors can also mark text explicitly: front matter
`access: true` for a whole file, or a heading marker (`## Door code [access]`, or a 🔒 in the heading)
for a section and its subsections.

A second, lower gate covers exact street addresses (`looks_like_private_address`): a street named with
its house number is only shown to guests with a live booking of that property (see `Scope`). Authors
mark such text with `private: true` in front matter or a `[private]` heading marker. A street named
without a number ("the bins at the corner of Rua dos Remédios") stays open.
"""

from __future__ import annotations

import re

HEADING_MARKERS = ("[access]", "🔒")
PRIVATE_MARKERS = ("[private]",)

# Postal codes look like "code 1100-148"; drop them before looking for credential codes.
_POSTAL = re.compile(
    r"\b(?:postal|post|zip|area|country|dialling|dialing|promo|discount|coupon|dress|source)\s*-?\s*code\b"
    r"|c[óo]digo\s+(?:postal|promocional|de\s+desconto|de\s+descuento)|\bpostleitzahl\b|\bplz\b|\bpromo\w*",
    re.IGNORECASE,
)

# A code word followed on the same line, within a few words, by a number of 3+ digits
# ("door code is 4821", "key box code: 7 3 1 9", "Código da porta: 2580#", "Türcode 1234").
_CODE_WITH_NUMBER = re.compile(
    r"(?:\b|(?<=[a-zäöüß]))(?:code|codes|pin|passcode|combination|c[óo]digo|combinaci[óo]n|combina[çc][ãa]o|"
    r"zahlencode|kombination|clave)\b[^\n\d]{0,40}?\d(?:[\s\-]?\d){2,}",
    re.IGNORECASE,
)

# An instruction to key in a number: "then type 7 3 9 0", "enter 2619 on the panel", "digite 4821".
_KEY_IN_NUMBER = re.compile(
    r"\b(?:type|enter|key\s+in|punch\s+in|digite|introduza|insira|eingeben|tippen|teclee|"
    r"introduzca)\b[^\n\d]{0,20}?\d(?:[\s\-]?\d){2,}",
    re.IGNORECASE,
)

# A password word followed by an explicit value: "password: sunny-terrace-42", "Senha = abc12345",
# 'the password is "Ribeira2024"', "WLAN-Passwort: **Spree!Blick**", "contraseña del wifi: Playa2024".
_PASSWORD_WITH_VALUE = re.compile(
    r"\b(?:password|passwort|kennwort|senha|palavra-passe|contrase[ñn]a|clave|passphrase|wpa\s*key|"
    r"network\s+key|wlan-schl[üu]ssel|wifi-schl[üu]ssel)\b"
    r"(?:\s+(?:of|the|for|do|da|de|del|des|vom|für|wifi|wi-fi|wlan|network|rede|red|router)\b){0,3}"
    r"(?:\s*[:=]\s*[`\"“'*]*[^\s`\"”'*]{4,}"
    r"|\s+(?:is|é|ist|es)\s*:?\s*[`\"“'*]+[^\s`\"”'*]{4,})",
    re.IGNORECASE,
)


def has_heading_marker(heading: str) -> bool:
    """True when the author marked a heading as an access detail."""
    lowered = heading.lower()
    return any(marker in lowered for marker in HEADING_MARKERS)


def has_private_marker(heading: str) -> bool:
    """True when the author marked a heading as private (an exact address, a neighbour's name)."""
    lowered = heading.lower()
    return any(marker in lowered for marker in PRIVATE_MARKERS)


def strip_heading_marker(heading: str) -> str:
    """The heading without its access or private marker, as guests and agents should see it."""
    for marker in (*HEADING_MARKERS, *PRIVATE_MARKERS):
        heading = re.sub(re.escape(marker), "", heading, flags=re.IGNORECASE)
    return " ".join(heading.split())


def looks_like_access_detail(text: str) -> bool:
    """Whether the text states a door/key-box/gate/alarm code or a Wi-Fi (or other) password."""
    cleaned = _POSTAL.sub(" ", text)
    patterns = (_CODE_WITH_NUMBER, _KEY_IN_NUMBER, _PASSWORD_WITH_VALUE)
    return any(pattern.search(cleaned) for pattern in patterns)


# ---------------------------------------------------------------------------------------- addresses

# Lower-case words that join the parts of a street name ("Rua dos Remédios", "Via della Scala").
_JOIN = r"(?:de|da|do|das|dos|del|della|delle|dei|degli|di|des|du|la|le|les|el|los|las|d'|l'|e|y|et)"
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"
_NAME = rf"(?:{_JOIN}\s+)*{_NAME_WORD}(?:\s+(?:{_JOIN}\s+)*{_NAME_WORD}){{0,5}}"
# A house number: not a time ("8:00"), a range of hours, a distance or a duration ("3 minutes away").
_HOUSE_NUMBER = (
    r"\d{1,4}[a-zA-Z]?\b(?![:.,]?\d)(?i:(?!\s*[-–]\s*\d{1,2}(?::|\s*(?:uhr|h|am|pm)\b)))"
    r"(?i:(?!\s*(?:min\w*|mins?\b|km\b|m\b|h\b|hours?\b|horas?\b|stunden?\b|uhr\b|heures?\b|ore\b|"
    r"€|eur\b|%|am\b|pm\b|metres|meters|metros|meter|metri|st\b|nd\b|rd\b|th\b|floor|andar|piso|stock)))"
)
_NUMBER_PREFIX = r"(?:n\.?\s*[º°o]\.?\s*|nr\.?\s*|no\.\s*|num\.?\s*)?"
# Street word, name, house number: PT, ES, IT, FR and English spellings of the Romance ones.
_STREET_FIRST = re.compile(
    r"\b(?i:rua|avenida|av\.|avda\.?|travessa|largo|pra[çc]a|beco|cal[çc]ada|estrada|alameda|rampa|escadinhas|"
    r"calle|c/|paseo|plaza|carrer|camino|ronda|via|viale|piazza|piazzale|corso|vicolo|lungarno|borgo)"
    rf"\s+{_NAME}\s*,?\s*{_NUMBER_PREFIX}{_HOUSE_NUMBER}",
)
# German: "Linienstraße 140", "Rosenthaler Platz 3", "Kastanienallee 12a".
_GERMAN = re.compile(
    r"\b[A-ZÄÖÜ][\wäöüß-]*(?:(?i:stra(?:ß|ss)e|str\.|weg|platz|allee|gasse|damm|ufer|ring|chaussee|steig|zeile)"
    r"|\s+(?:Straße|Strasse|Platz|Allee|Weg|Damm|Ufer|Ring|Chaussee))"
    rf"\s+{_HOUSE_NUMBER}",
)
# House number first: "12 Main Street", "221b Baker St.", "12 rue de Rivoli", "5, avenue des Ternes".
_NUMBER_FIRST = re.compile(
    r"\b\d{1,4}[a-zA-Z]?(?:\s*(?:bis|ter))?,?\s+"
    rf"(?:(?:{_NAME_WORD}\s+){{1,4}}(?:(?:Street|Road|Avenue|Lane|Boulevard|Drive|Place|Square|Terrace|Way|"
    r"Court|Crescent|Row|Close|Mews)\b|(?:St|Rd|Ave|Blvd)\b\.?)"
    rf"|(?i:rue|avenue|boulevard|bd|place|quai|impasse|all[ée]e|chemin|cours)\s+(?:{_JOIN}\s+)?{_NAME_WORD})",
)


def looks_like_private_address(text: str) -> bool:
    """Whether the text states an exact street address: a street together with its house number."""
    return any(pattern.search(text) for pattern in (_STREET_FIRST, _GERMAN, _NUMBER_FIRST))
