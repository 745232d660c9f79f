"""Which knowledge is an access detail (door, key-box, gate and alarm codes, Wi-Fi passwords).

Such chunks are only shown to guests whose stay is close enough (see `search`), so a false positive
costs little (the bot hands off or says the code comes later) and a false negative leaks a code to
anyone who asks. The patterns therefore look for a credential *value* next to a credential word, in
English, Portuguese, German and Spanish. Authors can also mark text explicitly: front matter
`access: true` for a whole file, or a heading marker (`## Door code [access]`, or a 🔒 in the heading)
for a section and its subsections.
"""

from __future__ import annotations

import re

HEADING_MARKERS = ("[access]", "🔒")

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


def strip_heading_marker(heading: str) -> str:
    """The heading without its access marker, as guests and agents should see it."""
    for marker in HEADING_MARKERS:
        heading = re.sub(re.escape(marker), "", heading, flags=re.IGNORECASE)
    return " ".join(heading.split())


def looks_like_access_detail(text: str) -> bool:
    """Whether the text states a door/key-box/gate/alarm code or a Wi-Fi (or other) password."""
    cleaned = _POSTAL.sub(" ", text)
    patterns = (_CODE_WITH_NUMBER, _KEY_IN_NUMBER, _PASSWORD_WITH_VALUE)
    return any(pattern.search(cleaned) for pattern in patterns)
