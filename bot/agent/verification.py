"""Proving a booking in the conversation: its confirmation code and the last name on it.

Why these two: both are on the guest's booking confirmation (Airbnb, Booking.com and Guesty all print the
code), neither is stored in Chatwoot, where a visitor can type or merge into a contact, and together they
name exactly one booking, so a phone shared by two bookings never decides which. The code carries the
strength (it is long and random); the last name stops a code read off a forwarded screenshot from
working alone. Attempts are counted per contact and per booking (bot.agent.verification_store) so
neither can be guessed.

Pure functions and the message templates; the dialogue itself runs in bot.agent.entitlement.
"""

from __future__ import annotations

import re

from bot.agent.intent import fold

LANGUAGES = ("en", "pt", "es", "de", "fr", "it")

# The bot asks for the two factors (a gated detail was asked for by someone not verified).
ASK = {
    "en": "I can share door codes, Wi-Fi passwords and the exact address only with the guest of the booking. "
    "Please send me your booking's confirmation code and the last name on the booking, in one message.",
    "pt": "Só posso partilhar códigos de acesso, palavras-passe do Wi-Fi e a morada exata com o hóspede da reserva. "
    "Envie-me, numa só mensagem, o código de confirmação da reserva e o apelido que consta na reserva.",
    "es": "Solo puedo compartir códigos de acceso, contraseñas del Wi-Fi y la dirección exacta con el huésped de "
    "la reserva. Envíame en un solo mensaje el código de confirmación de la reserva y el apellido que figura "
    "en ella.",
    "de": "Türcodes, WLAN-Passwörter und die genaue Adresse kann ich nur dem Gast der Buchung geben. Bitte senden "
    "Sie mir in einer Nachricht den Bestätigungscode der Buchung und den Nachnamen, auf den sie lautet.",
    "fr": "Je ne peux communiquer les codes d'accès, les mots de passe Wi-Fi et l'adresse exacte qu'au voyageur de "
    "la réservation. Envoyez-moi en un seul message le code de confirmation de la réservation et le nom de "
    "famille qui y figure.",
    "it": "Posso condividere codici di accesso, password del Wi-Fi e indirizzo esatto solo con l'ospite della "
    "prenotazione. Inviami in un unico messaggio il codice di conferma della prenotazione e il cognome "
    "indicato sulla prenotazione.",
}
# The two factors did not name one booking (the same words whatever was wrong, so nothing leaks).
RETRY = {
    "en": "Sorry, that does not match a booking. Please check the confirmation code and the last name on the "
    "booking and send them again.",
    "pt": "Lamento, esses dados não correspondem a uma reserva. Verifique o código de confirmação e o apelido da "
    "reserva e envie-os novamente.",
    "es": "Lo siento, esos datos no coinciden con ninguna reserva. Comprueba el código de confirmación y el "
    "apellido de la reserva y envíalos de nuevo.",
    "de": "Das passt leider zu keiner Buchung. Bitte prüfen Sie den Bestätigungscode und den Nachnamen der Buchung "
    "und senden Sie beides erneut.",
    "fr": "Désolé, cela ne correspond à aucune réservation. Vérifiez le code de confirmation et le nom de famille "
    "de la réservation, puis renvoyez-les.",
    "it": "Spiacente, questi dati non corrispondono a nessuna prenotazione. Controlla il codice di conferma e il "
    "cognome della prenotazione e inviali di nuovo.",
}
# The two factors named the booking: the answer follows.
VERIFIED = {
    "en": "Thank you, that matches your booking.",
    "pt": "Obrigado, os dados correspondem à sua reserva.",
    "es": "Gracias, los datos coinciden con tu reserva.",
    "de": "Danke, das passt zu Ihrer Buchung.",
    "fr": "Merci, cela correspond bien à votre réservation.",
    "it": "Grazie, i dati corrispondono alla tua prenotazione.",
}
# After the thanks, when the message held nothing but the two factors.
HELP = {
    "en": "What would you like to know?",
    "pt": "Em que posso ajudar?",
    "es": "¿En qué puedo ayudarte?",
    "de": "Was möchten Sie wissen?",
    "fr": "Que souhaitez-vous savoir ?",
    "it": "Cosa desideri sapere?",
}
VERIFIED_BY = "confirmation code and last name"

# Name particles that are not a last name on their own ("Maria da Silva": "silva" counts, "da" does not).
PARTICLES = frozenset(
    {"da", "das", "de", "del", "della", "der", "di", "do", "dos", "du", "e", "la", "le", "van", "von", "y", "zu"}
)
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
_WORD = re.compile(r"[a-z]+")
MIN_CODE, MAX_CODE = 5, 24
MAX_JOINED = MAX_CODE  # a code spelled out in pieces ("H M 4 Z X 8", as transcribed from a voice note)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def language_for(*candidates: str | None) -> str:
    """The first candidate ("pt-PT", "de", …) that is one of our languages, else English."""
    for candidate in candidates:
        code = (candidate or "").strip()[:2].lower()
        if code in LANGUAGES:
            return code
    return "en"


def code_candidates(text: str) -> list[str]:
    """Words of a message that could be a confirmation code, upper-case, dashes dropped.

    A code has 5 to 24 letters and digits and at least one digit. Pieces separated only by spaces are also
    tried joined ("HM 4ZX 8Y2", "H M 4 Z X 8"), as people and speech recognition split codes; a piece
    joins when it is short or holds a digit, so "at 15:30 tomorrow" gives nothing. ISO dates are not codes."""
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    found: list[str] = []

    def add(candidate: str) -> None:
        key = candidate.upper().replace("-", "")
        if MIN_CODE <= len(key) <= MAX_CODE and any(ch.isdigit() for ch in key) and key not in found:
            found.append(key)

    for i, (token, _, _) in enumerate(tokens):
        if not _ISO_DATE.fullmatch(token):
            add(token)
        joined, end = "", None
        for piece, start, stop in tokens[i : i + MAX_JOINED]:
            apart = end is not None and bool(text[end:start].strip())
            if apart or _ISO_DATE.fullmatch(piece) or not (len(piece) <= 4 or _has_digit(piece)):
                break
            joined, end = joined + piece, stop
            add(joined)
    return found


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def surnames(guest_name: str | None) -> frozenset[str]:
    """The words of a booking's name that count as its last name: every word after the first, particles
    aside (a one-word name is its own last name)."""
    words = _WORD.findall(fold(guest_name or ""))
    rest = [w for w in words[1:] if w not in PARTICLES and len(w) > 1]
    return frozenset(rest or words[-1:])


def names_booking(guest_name: str | None, text: str) -> bool:
    """Whether the message contains the booking's last name (whole word, case and accents ignored)."""
    wanted = surnames(guest_name)
    return bool(wanted) and bool(wanted & set(_WORD.findall(fold(text))))
