"""Which knowledge is an access detail (door, key-box, gate and alarm codes, Wi-Fi passwords).

Such chunks are only shown to guests whose stay is close enough (see `search`), so a false positive
costs little (the bot hands off or says the code comes later) and a false negative leaks a code to
anyone who asks. Detection runs per section (`section_is_access`) in English, Portuguese, Spanish,
German, French and Italian, and gates a section when any of these holds:

1. The author marked it: front matter `access: true` for a whole file, or a heading marker
   (`## Door code [access]`, or a 🔒 in the heading) for a section and its subsections.
2. A heading on its path *names a credential* (`heading_names_credential`): "Wi-Fi password", "Door code",
   "Türcode", "Código da porta", "Codice del cancello", "Code d'accès", "Mot de passe Wi-Fi",
   "Contraseña del wifi", "Key safe", "Lockbox". The whole section and all its subsections are gated,
   whatever the body says: a guide that writes "The password for the guest network is sunshine" under
   such a heading gives no reliable pattern, and the heading alone says what the body is about. A heading
   that is a question ("When do I get the door code?") is an FAQ entry, not a label, and is not enough.
3. The text states a credential with its value (`looks_like_access_detail`): a key/value line
   ("Door: 4821", "WLAN: Spree!Blick", "Key safe: 1 2 3 4"), a sentence ("the code is 4821", "the password
   for the guest network is Ribeira2024"), a code word near a code ("Lockbox combo 4821", "Codice del
   cancello 4821"), or an instruction to key one in ("type 7 3 9 0", "digite 4821").
4. An arrival heading ("Check-in instructions", "Access", "Arrival", "Chegada", "Anreise", "Arrivée",
   "Arrivo", "Llegada", "Keys", …; `heading_is_arrival`) sits over a body that holds a bare code: a number
   of four to eight digits or a run of spaced single digits that is not a time, price, phone number,
   postal code, house number, year or measure ("Access: the street door opens with 1 9 7 3").

A value is a *code* when it is 3 to 8 digits (spaced "1 2 3 4" or dashed "0-5-5-8" allowed, an optional
trailing #/*), and not a time ("15:00"), a price ("€25", "25 EUR"), a measure ("200 m", "3 minutes"),
part of a phone number ("+351 912 345 678"), a postal code ("1100-148"), glued to letters ("5400D") or an
emergency number (112); after a code word and "is"/":" letters with two or more digits count too ("4B21A").
A value is a *secret* when it looks like a password (letters with digits, inner symbols, CamelCase) or
is quoted, or is a single word that ends its clause after a password word ("Password: sunshine").
Mentions without a value stay open: "The Wi-Fi password is printed on the router", "Wi-Fi is free and
fast", "the code of conduct", "dress code", "check-in from 15:00", "bus 728".

A second, lower gate covers exact street addresses (`looks_like_private_address`): a street named with
its house number is only shown to guests with a live booking of that property (see `Scope`). Authors
mark such text with `private: true` in front matter or a `[private]` heading marker. A street named
without a number ("the bins at the corner of Rua dos Remédios") stays open.
"""

from __future__ import annotations

import re

HEADING_MARKERS = ("[access]", "🔒")
PRIVATE_MARKERS = ("[private]",)

# ------------------------------------------------------------------------------------- vocabulary

# Compounds of "code" that are no credential, and postal/promo codes; removed before anything else.
_NOT_A_CREDENTIAL = re.compile(
    r"\b(?:postal|post|zip|area|country|dialling|dialing|promo|promotional|discount|coupon|voucher|gift|referral"
    r"|dress|source|qr|bar|colou?r|tax|booking|reservation|confirmation|tracking|fiscal|ateco)[\s-]*codes?\b"
    r"|\b(?:post|zip|bar|dress|promo|qr|source)codes?\b"
    r"|\bcodes?\s+(?:of\s+(?:conduct|practice)|de\s+(?:conduite|la\s+route|conduta|conducta|vestimenta|"
    r"vestuário|descuento|desconto|promo\w*)|postale?|vestimentaire|promo\w*|fiscale|di\s+(?:condotta|"
    r"comportamento|sconto)|sconto|qr|iban|bic|swift)\b"
    r"|\bc[óo]digos?\s+(?:postal|promocional|de\s+(?:desconto|descuento|conduta|conducta|vestimenta|"
    r"vestuário|barras|reserva|confirma[çc][ãa]o|confirmaci[óo]n)|qr)\b"
    r"|\bcodice\s+(?:postale|fiscale|di\s+(?:abbigliamento|condotta|comportamento|sconto|prenotazione)"
    r"|sconto|promo\w*)\b"
    r"|\b(?:postleitzahl|plz|rabattcode|gutscheincode|aktionscode|buchungscode|cap|nif|cif|iban)\b"
    r"|\bpromo\w*|\bpassword\s+(?:reset|manager)\b"
    r"|\bpin\s+(?:on|auf|no|en|sur|sulla)\s+(?:the\s+|der\s+)?(?:map|karte|mapa|carte|mappa)\b",
    re.IGNORECASE,
)

# Words that name a code ("code", "PIN", "combination"), including German compounds ("Türcode").
_CODE_WORD = (
    r"(?:(?:\b|(?<=[a-zäöüß]))(?:code|codes|pincode|passcode|zahlencode)\b|\bpin\b|\bpins\b|\bcombination\b|\bcombo\b"
    r"|\bc[óo]digo\b|\bc[óo]digos\b|\bcombinaci[óo]n\b|\bcombina[çc][ãa]o\b|\bkombination\b|\bclave\b|\bcodice\b"
    r"|\bcombinazione\b|\bdigicode\b|\bcode\s+d'acc[èe]s\b)"
)
# Things opened with a code. Strong ones (a key safe, an alarm) rarely sit next to an unrelated number.
_STRONG_OBJECT = (
    r"(?:lock[\s-]?box(?:es)?|key[\s-]?(?:box|safe|lock)|keysafe|keypad|padlock|smart\s?lock|alarm|alarme|alarma"
    r"|allarme|alarmanlage|cofre|caixa\s+(?:de|das)\s+chaves|caixa-forte|cadeado|teclado|caja\s+(?:fuerte|de\s+"
    r"(?:llaves|seguridad))|cajet[íi]n|candado|schl[üu]ssel(?:tresor|box|kasten|safe)|tresor|tastenfeld"
    r"|zahlenschloss|bo[îi]te\s+(?:à|a|aux)\s+cl[ée]s?|coffre(?:-fort)?|clavier|cadenas|digicode|cassetta\s+"
    r"(?:delle\s+chiavi|di\s+sicurezza|portachiavi|porta\s+chiavi)|keybox|cassaforte|tastierino|lucchetto|safe)"
)
_WEAK_OBJECT = (
    r"(?:(?:front|street|main|building|entrance|apartment|flat|garage|room)?\s?door|gate|entrance|entry|garage"
    r"|porta|port[ãa]o|entrada|puerta|portal|port[óo]n|garaje|t[üu]r|haust[üu]r|wohnungst[üu]r|tor|hoftor|eingang"
    r"|porte|portail|entr[ée]e|portone|cancello|ingresso|garagem)"
)
_OBJECT = rf"(?:{_STRONG_OBJECT}|{_WEAK_OBJECT})"
_PASSWORD_WORD = (
    r"(?:password|passwort|kennwort|senha|palavra[\s-]passe|contrase[ñn]a|mot\s+de\s+passe|mdp|passphrase"
    r"|wpa2?[\s-]?key|network\s+key|security\s+key|(?:wlan|wifi|wi-fi|netzwerk)-?schl[üu]ssel|chiave\s+(?:di\s+rete|"
    r"wi-?fi|wpa)|chave\s+(?:de\s+rede|wi-?fi)|cl[ée]\s+(?:wi-?fi|wpa|r[ée]seau|de\s+s[ée]curit[ée])|clave\s+"
    r"(?:wi-?fi|de\s+red)|\b(?:wi-?fi|wlan)[\s-]+(?:pass|pw|pwd|key|code)\b|\bpwd\b)"
)
_NETWORK_WORD = r"(?:wi-?fi|wlan|wireless|internet)"
# Link verbs: "is", "é", "ist", "lautet", "es", "est", "è", "are".
_IS = r"(?:is|are|é|e|ist|lautet|lauten|es|est|è|será|sera)"

# ------------------------------------------------------------------------------------------ values

_UNIT = (
    r"(?:€|eur\b|euros?\b|usd\b|\$|£|gbp\b|chf\b|%|min\w*|h\b|hrs?\b|hours?\b|horas?\b|stunden?\b|std\b|uhr\b"
    r"|heures?\b|ore\b|days?\b|dias?\b|días?\b|tage?n?\b|jours?\b|giorni\b|nights?\b|noites?\b|noches?\b|n[äa]chte\b"
    r"|nuits?\b|notti\b|weeks?\b|m\b|km\b|m²|m2\b|sq|metres?\b|meters?\b|metros?\b|metri\b|mètres?\b|steps?\b"
    r"|degraus\b|stufen\b|marches\b|gradini\b|escalones\b|mbps\b|mbit\w*|gbps\b|mb\b|gb\b|ghz\b|kg\b|l\b|liters?\b"
    r"|litres?\b|v\b|volts?\b|w\b|watts?\b|guests?\b|people\b|persons?\b|personas?\b|pessoas\b|personen\b"
    r"|personnes\b|persone\b|a\.m\.|p\.m\.|st\b|nd\b|rd\b|th\b|º|°|ª)"
)
_EMERGENCY = frozenset({"112", "911", "999", "110", "115", "118", "117", "116", "061", "060", "113", "119"})
# A digit code: 3-8 digits, spaced or dashed single digits, an optional # or *, not part of a bigger number.
_CODE_VALUE = (
    r"(?<![\d+€$£/.,:-])(?<![\d+€$£][\s])(?:[#*]\s?)?"
    r"(?P<code>\d{3,8}|\d(?:[\s.-]\d){2,7})(?![a-zà-ÿ])(?:\s?[#*])?"
    rf"(?![\d]|[:.,/-]\d|\s\d|\s?{_UNIT}|\s*(?:x|×)\s*\d)"
)
_CODE_VALUE_RE = re.compile(_CODE_VALUE, re.IGNORECASE)
_OPEN_QUOTE = "\"“”„«‘'`*("
_TOKEN = r"(?P<token>[^\s\"“”„«»‘’'`*]{3,64})"
_QUOTED = r"(?P<quote>[\"“„«‘'`*])"
# A value: optional opening quote, one token, and what follows it (the clause end decides a bare word).
_SECRET_VALUE = rf"{_QUOTED}?{_TOKEN}(?P<after>[\"”“»’'`*]*(?:\s*$|\s*[.,;!?)(]\s|\s*[.,;!?)]?$|\s+[-–(/|]|\s+\w+)?)"

# Bare words that follow "the password is …" and are no password.
_FILLER_WORDS = (
    "below above case-sensitive required optional included available free provided printed written shown displayed"
    " listed attached here there same different changed unique personal secret private long short simple easy sent"
    " none empty blank given inside outside underneath unchanged identical individual changes the on in at"
    " abaixo acima embaixo dentro fornecida fornecido incluída incluido incluida disponível disponible enviada"
    " unten oben darunter dabei angegeben gleich vorhanden dessous dessus ci-dessous ci-dessus fournie fourni"
    " indiqué indiquée sotto sopra indicata fornita inclusa disponibile gratuita gratuito gratis kostenlos gratuit"
    " la le il lo el o a das der die dem den na no en dans sur auf im sul nel wi-fi wifi wlan internet"
)
_NOT_A_SECRET = frozenset(_FILLER_WORDS.split())
# Words that start a pointer to where a password is, not the password: "Password: see page 2".
_POINTER_WORDS = (
    "see ask check look find printed written sent on in at from ver veja consulte pergunte siehe steht fragen voir"
    " demandez vedi chiedi consultate mira pregunta consulta"
)
_POINTERS = frozenset(_POINTER_WORDS.split())


def _is_code(value: str) -> bool:
    """A digit code, not an emergency number."""
    digits = re.sub(r"\D", "", value)
    return 3 <= len(digits) <= 8 and digits not in _EMERGENCY


def _looks_secret(token: str) -> bool:
    """Password-like: letters and digits, an inner symbol, CamelCase, or a long string of digits."""
    word = token.strip(".,;:!?")
    if len(word) < 4 or re.fullmatch(r"\d+(?:[.,]\d+)?\s?(?:mbps|gbps|mb|gb|ghz|g|k|m)?", word, re.IGNORECASE):
        return len(word) >= 6 and word.isdigit()
    if re.fullmatch(r"(?i)\d+(?:mbps|mbit/s|gbps|gbit/s|mb|gb|ghz|g)", word) or re.match(r"(?i)https?:|www\.", word):
        return False
    if re.fullmatch(r"(?i)[\w.+-]+@[\w-]+(?:\.[\w-]+)+|[\w-]+(?:\.[a-z]{2,})+", word):  # an e-mail or a domain
        return False
    has_alpha = any(c.isalpha() for c in word)
    has_digit = any(c.isdigit() for c in word)
    inner = word[1:-1]
    symbol = any(not c.isalnum() and c not in "-'’" for c in inner)
    camel = re.search(r"[a-zà-ÿ][A-ZÀ-Þ]", word) is not None
    titled_compound = re.search(r"-[A-ZÀ-Þ0-9]", word) is not None
    return (has_alpha and has_digit) or (has_alpha and symbol) or camel or titled_compound


def _is_secret_value(match: re.Match[str], *, bare_word_ok: bool) -> bool:
    """Whether the token of a `_SECRET_VALUE` match is a password: password-like, quoted, or (after a
    password word) a single word that ends its clause and is no filler ("printed", "below")."""
    token = match.group("token").rstrip(".,;:!?")
    if token.lower() in _NOT_A_SECRET or len(token) < 3:
        return False
    if _looks_secret(token):
        return True
    quoted = match.group("quote") is not None and len(token) >= 4
    after = match.group("after") or ""
    ends_clause = not re.match(r"\s+\w", after)
    return quoted or (bare_word_ok and ends_clause and len(token) >= 4 and token.isalpha())


# ---------------------------------------------------------------------------------------- patterns

_SEP = r"(?:\s*[:=]|\s+[-–—→>]|\s*:?\s*[-–—→]>?)"
# "Door: 4821", "Key safe (left of the door): 1 2 3 4", "Código do portão – 4821", "Alarm code = 9911".
_LABEL_CODE = re.compile(
    rf"(?:{_OBJECT}|{_CODE_WORD})[^\n:=\d]{{0,30}}?{_SEP}\s*[{_OPEN_QUOTE}]*\s*{_CODE_VALUE}", re.IGNORECASE
)
# A code word with a code later in the sentence: "the door code is 7390", "Lockbox combo 4821".
_WORD_THEN_CODE = re.compile(rf"{_CODE_WORD}[^\n\d.!?]{{0,40}}?{_CODE_VALUE}", re.IGNORECASE)
# A strong object with a code close by: "Key safe 1 2 3 4", "the alarm panel takes 9911".
_STRONG_THEN_CODE = re.compile(rf"\b{_STRONG_OBJECT}\b[^\n\d.!?]{{0,25}}?{_CODE_VALUE}", re.IGNORECASE)
# A code that opens something: "the street door opens with 4821", "a porta abre com 1984", "s'ouvre avec le 5821".
_OPENS_WITH = re.compile(
    r"\b(?:opens?|unlocks?|abre|öffnet|ouvre|apre|entsperrt)\s+(?:\w+\s+){0,2}?(?:with|com|con|mit|avec|using)\s+"
    rf"(?:the\s+|o\s+|a\s+|el\s+|le\s+|la\s+|il\s+|der\s+|dem\s+|l')?(?:code\s+|c[óo]digo\s+|codice\s+)?{_CODE_VALUE}",
    re.IGNORECASE,
)
# The code first: "4821 opens the street door", "1 2 3 4 is the key safe code".
_CODE_THEN_WORD = re.compile(
    rf"{_CODE_VALUE}\s*(?:#\s*)?(?:is|é|ist|es|est|è|opens|abre|öffnet|ouvre|apre)\s+(?:\w+\s+){{0,3}}?"
    rf"(?:{_CODE_WORD}|{_OBJECT})",
    re.IGNORECASE,
)
# An instruction to key in a number: "then type 7 3 9 0", "digite 4821", "tapez 4821", "digitare 4821".
_KEY_IN = re.compile(
    r"\b(?:type|enter|key\s+in|punch\s+in|tap\s+in|digite|digitar|introduza|insira|teclee|teclea|introduzca|"
    r"introduce|ingrese|eingeben|eintippen|tippen|tippe|gib|geben|tapez|taper|saisissez|saisir|entrez|digita|"
    r"digitare|digitate|inserisci|inserire|inserite|press|pulse|pulsa|presione|pressione|carregue|prima|premi"
    r"|premere|dr[üu]cken|dr[üu]cke|appuyez\s+sur|appuyer\s+sur)\b"
    rf"(?:\s+(?:sie|the|code|o|el|le|il|den|der|código|codice|c[óo]digo|pin|combination|numbers?|digits?))*"
    rf"[^\n\d.!?]{{0,12}}?{_CODE_VALUE}",
    re.IGNORECASE,
)
# A quoted value right after a password word: 'Wi-Fi network "Loft", password "gatito"'.
_PASSWORD_QUOTED = re.compile(
    rf"{_PASSWORD_WORD}\s*,?\s*[\"“„«‘'`](?P<token>[^\s\"“”„«»‘’'`]{{3,64}})[\"”“»’'`]", re.IGNORECASE
)
# A passphrase of a few words after a password label: "Contraseña: sol y mar 2024".
_PASSPHRASE = re.compile(rf"{_PASSWORD_WORD}[^\n.:;=!?]{{0,30}}?\s*[:=]\s*(?P<rest>[^\n.;!?]{{3,60}})", re.IGNORECASE)
# An alphanumeric code after a code word and a link verb: "Le digicode de l'immeuble est le 4B21A".
_CODE_IS_ALNUM = re.compile(
    rf"{_CODE_WORD}[^\n\d.!?]{{0,30}}?(?:\s(?:{_IS})\s*:?|\s*[:=])\s*(?:(?:le|la|el|o|the|il|der|das)\s+)?"
    r"(?P<token>[a-z0-9]*\d[a-z0-9#*]*)\b",
    re.IGNORECASE,
)
# A login line: "WiFi login: guest / Tagus#River", "Zugangsdaten: gast / Spree!Blick".
_LOGIN_LINE = re.compile(
    r"\b(?:log-?in|sign-?in|credentials|zugangsdaten|anmeldedaten|identifiants|credenciais|credenciales|credenziali)"
    r"\s*[:=]\s*(?P<rest>[^\n]{3,80})",
    re.IGNORECASE,
)
# "Dial" a number: a phone call, unless the sentence is about a door, gate, keypad or intercom ("For the garage,
# dial 6071 on the pad", "El portal se abre marcando 4 1 2 3 en el telefonillo").
_DIAL = re.compile(
    r"\b(?:dial|dialling|dialing|marcando|marque|marcar|marca|marcate|w[äa]hlen|w[äa]hle|composez|composer|componi"
    rf"|comporre|componete)\b(?:\s+(?:the|o|el|le|il|den|die|code|c[óo]digo|codice))*[^\n\d.!?]{{0,12}}?{_CODE_VALUE}",
    re.IGNORECASE,
)
_DOOR_CONTEXT = re.compile(
    rf"(?:\b{_OBJECT}\b|\b(?:pad|intercom|entryphone|telefonillo|portero|interfone|gegensprechanlage|klingel\w*"
    r"|interphone|citofono|pulsantiera|shutter)\b)",
    re.IGNORECASE,
)
# A password word and its value: "Password: azulejo-1755", 'the password is "X"', "the password for the guest
# network is Ribeira2024", "Das WLAN-Passwort lautet Spree!Blick", "Le mot de passe du Wi-Fi est : Soleil2024".
_PASSWORD_VALUE = re.compile(
    rf"{_PASSWORD_WORD}(?:[^\n.:;=!?]{{0,45}}?\s(?:{_IS})(?:\s*:)?|[^\n.:;=!?]{{0,30}}?(?:\s*[:=]|\s+[-–→]))"
    rf"\s*{_SECRET_VALUE}",
    re.IGNORECASE | re.MULTILINE,
)
# A bare Wi-Fi or key label and a password-like value: "Wifi: Casa2024", "WLAN: Spree!Blick", "Key: VillaMar2022",
# "Clave: hostal2024sol" (not "Wi-Fi network: Name", "Key: under the mat").
_NETWORK_VALUE = re.compile(
    rf"\b(?:{_NETWORK_WORD}|key|clave|chave|cl[ée]|schl[üu]ssel|chiave|pass|pw)\s*(?:[:=]|\s[-–→])\s*{_SECRET_VALUE}",
    re.IGNORECASE | re.MULTILINE,
)
# The value first: "use Casa2024 as the password", "Casa2024 é a senha".
_VALUE_AS_PASSWORD = re.compile(
    r"\b(?:use|usa|utilize|utilisez|nutze|nutzen\s+sie|verwende|verwenden\s+sie|utilizza|usate)\s+"
    r"[\"“„«‘'`*]?(?P<token>[^\s\"“”„«»‘’'`*]{4,64})[\"”“»’'`*]?\s+(?:as|como|comme|als|come)\s+"
    rf"(?:the\s+|a\s+|o\s+|la\s+|le\s+|das\s+|el\s+)?(?:[\w-]+\s+)?{_PASSWORD_WORD}",
    re.IGNORECASE,
)

# In a heading an alarm or a bare "safe" is no credential ("Fire alarm", "Staying safe"); "Alarm code" is.
_HEADING_OBJECT = (
    r"(?:lock[\s-]?box(?:es)?|key[\s-]?(?:box|safe|lock)|keysafe|keypad|padlock|smart\s?lock|cofre|caixa\s+(?:de|das)"
    r"\s+chaves|cadeado|caja\s+(?:fuerte|de\s+llaves)|cajet[íi]n|candado|schl[üu]ssel(?:tresor|box|kasten|safe)"
    r"|zahlenschloss|bo[îi]te\s+(?:à|a|aux)\s+cl[ée]s?|cadenas|digicode|cassetta\s+(?:delle\s+chiavi|di\s+sicurezza"
    r"|portachiavi|porta\s+chiavi)|keybox|lucchetto)"
)
_HEADING_CREDENTIAL = re.compile(rf"{_PASSWORD_WORD}|{_CODE_WORD}|\b{_HEADING_OBJECT}\b", re.IGNORECASE)
_HEADING_QUESTION = re.compile(
    r"\?|^\s*(?:when|how|where|what|can|do|does|is|are|will|why|quando|como|onde|qual|posso|cuando|c[óo]mo|d[óo]nde"
    r"|cu[áa]l|puedo|wann|wie|wo|was|kann|quand|comment|o[ùu]|quel|puis-je|est-ce|dove|perch[ée])\b",
    re.IGNORECASE,
)
_HEADING_ARRIVAL = re.compile(
    r"\b(?:arrival|arriving|check[\s-]?in|self[\s-]?check[\s-]?in|access|getting\s+in|entry|entering|keys?"
    r"|key\s+(?:collection|handover|pick[\s-]?up)|how\s+to\s+get\s+in|chegada|acesso|entrada|chaves?|llegada"
    r"|acceso|llaves?|anreise|ankunft|zugang|einlass|schl[üu]ssel\w*|arriv[ée]e|acc[èe]s|entr[ée]e|cl[ée]s?"
    r"|arrivo|accesso|ingresso|chiavi)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?:1[5-9]|20)\d\d")


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


def _clean(text: str) -> str:
    """Text with Markdown emphasis dropped and the non-credential "codes" (postal, dress, …) blanked."""
    text = text.replace("**", "").replace("__", "").replace("`", '"')
    return _NOT_A_CREDENTIAL.sub(" ", text)


def _any_code(pattern: re.Pattern[str], text: str) -> bool:
    return any(_is_code(m.group("code")) for m in pattern.finditer(text))


def _sentence(text: str, match: re.Match[str]) -> str:
    """The sentence (or line) around a match."""
    start = max(text.rfind(stop, 0, match.start()) for stop in ".!?\n") + 1
    ends = [i for i in (text.find(stop, match.end()) for stop in ".!?\n") if i >= 0]
    return text[start : min(ends, default=len(text))]


def _is_dialled_code(match: re.Match[str], text: str) -> bool:
    """A dialled number is a code in a sentence about a door or keypad, and when longer than a flat's
    intercom number ("dial 304 on the intercom" rings a neighbour)."""
    code = match.group("code")
    long_enough = len(re.sub(r"\D", "", code)) >= 4 or not code.isdigit()
    return long_enough and _is_code(code) and _DOOR_CONTEXT.search(_sentence(text, match)) is not None


def _is_passphrase(rest: str) -> bool:
    """A few words with a digit or a symbol after "Password:", not a pointer ("see page 2")."""
    words = rest.split()
    if not 2 <= len(words) <= 5 or words[0].lower() in _NOT_A_SECRET or words[0].lower() in _POINTERS:
        return False
    return any(c.isdigit() or c in "!#@$%&*+?" for c in rest)


def _is_alnum_code(token: str) -> bool:
    """Letters and at least two digits, 3-10 long, not a measure or time ("48h", "15min", "2nd")."""
    letters = sum(c.isalpha() for c in token)
    digits = sum(c.isdigit() for c in token)
    if not (3 <= len(token) <= 10 and letters and digits >= 2):
        return False
    return re.fullmatch(r"(?i)\d+(?:h|hrs?|min|mins|am|pm|m|km|st|nd|rd|th|e|er|ème|o|a|x)", token) is None


def looks_like_access_detail(text: str) -> bool:
    """Whether the text states a door/key-box/gate/alarm code or a Wi-Fi (or other) password with its value."""
    cleaned = _clean(text)
    if any(
        _any_code(p, cleaned)
        for p in (_LABEL_CODE, _WORD_THEN_CODE, _STRONG_THEN_CODE, _CODE_THEN_WORD, _OPENS_WITH, _KEY_IN)
    ):
        return True
    if any(_is_dialled_code(m, cleaned) for m in _DIAL.finditer(cleaned)):
        return True
    if any(_is_alnum_code(m.group("token")) for m in _CODE_IS_ALNUM.finditer(cleaned)):
        return True
    if any(_is_secret_value(m, bare_word_ok=True) for m in _PASSWORD_VALUE.finditer(cleaned)):
        return True
    if any(_is_secret_value(m, bare_word_ok=False) for m in _NETWORK_VALUE.finditer(cleaned)):
        return True
    if any(m.group("token").lower() not in _NOT_A_SECRET for m in _PASSWORD_QUOTED.finditer(cleaned)):
        return True
    if any(_looks_secret(word) for m in _LOGIN_LINE.finditer(cleaned) for word in re.split(r"[\s|,;]+", m["rest"])):
        return True
    if any(_is_passphrase(m.group("rest")) for m in _PASSPHRASE.finditer(cleaned)):
        return True
    return any(_looks_secret(m.group("token")) for m in _VALUE_AS_PASSWORD.finditer(cleaned))


def heading_names_credential(heading: str | None) -> bool:
    """Whether a heading (or any part of a heading path) labels a credential: "Wi-Fi password", "Türcode".

    Questions ("When do I get the door code?") are FAQ entries, not labels, and do not count.
    """
    if not heading:
        return False
    for part in re.split(r"\s+>\s+", heading):
        if not _HEADING_QUESTION.search(part) and _HEADING_CREDENTIAL.search(_clean(part)):
            return True
    return False


def heading_is_arrival(heading: str | None) -> bool:
    """Whether a heading (path) is about arriving and getting in: "Check-in instructions", "Access", "Chegada"."""
    return bool(heading) and _HEADING_ARRIVAL.search(heading or "") is not None


def has_bare_code(text: str) -> bool:
    """Whether the text holds a number that can only be a code: 4-8 digits, a run of spaced digits, or digits
    closed by #, that are no time, price, measure, phone or postal number, year, house number ("Rua Augusta
    1100") or part of a name ("TP1234")."""
    cleaned = _clean(text)
    for address in (_STREET_FIRST, _GERMAN, _NUMBER_FIRST):
        cleaned = address.sub(" ", cleaned)
    for match in _CODE_VALUE_RE.finditer(cleaned):
        code = match.group("code")
        digits = re.sub(r"\D", "", code)
        if match.start() and cleaned[match.start() - 1].isalpha():
            continue
        hashed = "#" in match.group(0) or "*" in match.group(0)
        spaced = code != digits
        if not (hashed or spaced or len(digits) >= 4) or (not hashed and not spaced and _YEAR.fullmatch(digits)):
            continue
        if _is_code(code):
            return True
    return False


def section_is_access(heading: str | None, text: str) -> bool:
    """Whether a section (heading path and body) is an access detail; see the module docstring for the rules.

    Explicit markings are the caller's (`Section.is_access`); this adds what the words say.
    """
    if heading_names_credential(heading):
        return True
    labelled = f"{heading}: {text}" if heading else text
    if looks_like_access_detail(labelled):
        return True
    return heading_is_arrival(heading) and has_bare_code(text)


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
