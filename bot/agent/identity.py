"""Who is writing, as far as the channel can vouch for it: the ground under every door code we give.

A right to access details must rest on something the writer cannot type. A contact's email and phone are
only as good as where they came from:

- WhatsApp and SMS: the phone is the sender's own number, which Chatwoot also keeps as the contact
  inbox's `source_id` ("351912345678", "+351912345678", "whatsapp:+351912345678"). We trust it when the
  contact's phone parses strictly to E.164 and is the same number as the source id.
- an email inbox: the address is the sender's (the contact inbox's `source_id`).
- the web widget: whatever the visitor typed in a pre-chat form or passed to setUser, and Chatwoot merges
  that visitor into the contact already holding the email. Only identity validation (the host site signs
  the visitor's identifier; Chatwoot sets `contact_inbox.hmac_verified`) vouches for it.
- anything else (API inboxes, Telegram, social): nothing.

Pure functions; the agent reads the sender from the delivery, and again from Chatwoot before a release.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.chatwoot.contacts import normalize_email, normalize_phone
from integrations.chatwoot.models import MessageEvent

PHONE_CHANNELS = {
    "Channel::Whatsapp": "WhatsApp number",
    "Channel::Sms": "SMS number",
    "Channel::TwilioSms": "Twilio number",
}
EMAIL_CHANNEL = "Channel::Email"
WIDGET_CHANNEL = "Channel::WebWidget"
BY_EMAIL = "email sender address"
BY_WIDGET = "widget identity validation"


@dataclass(frozen=True)
class SenderView:
    """The contact as seen at one moment (the delivery, or re-read from Chatwoot) and its channel."""

    contact_id: int | None
    channel: str | None
    email: str | None
    phone_number: str | None
    source_id: str | None  # the contact inbox's address on the channel (wa_id, phone, email, widget uuid)
    hmac_verified: bool = False


@dataclass(frozen=True)
class Vouched:
    """What the channel vouches for (exact forms) and how, for the trail; empty when nothing."""

    phone: str | None = None
    email: str | None = None
    how: str | None = None

    def __bool__(self) -> bool:
        return bool(self.phone or self.email)


def sender_of(msg: MessageEvent) -> SenderView:
    """The sender as the delivery describes it."""
    conv = msg.conversation
    contact = (
        msg.sender
        if msg.sender is not None and msg.sender.kind == "contact"
        else (conv.meta.sender if conv.meta else None)
    )
    inbox = conv.contact_inbox
    hmac = bool((inbox.hmac_verified if inbox else None) or (conv.meta.hmac_verified if conv.meta else None))
    return SenderView(
        contact_id=msg.contact_id,
        channel=conv.channel,
        email=contact.email if contact else None,
        phone_number=contact.phone_number if contact else None,
        source_id=inbox.source_id if inbox else None,
        hmac_verified=hmac,
    )


def vouched(sender: SenderView) -> Vouched:
    """The phone or email the channel itself stands behind (nothing the visitor merely typed)."""
    channel = sender.channel or ""
    if channel in PHONE_CHANNELS:
        phone = normalize_phone(sender.phone_number)
        if phone is None or not same_number(sender.source_id, phone):
            return Vouched()
        return Vouched(phone=phone, how=PHONE_CHANNELS[channel])
    if channel == EMAIL_CHANNEL:
        email = normalize_email(sender.email)
        if email is None or normalize_email(sender.source_id) != email:
            return Vouched()
        return Vouched(email=email, how=BY_EMAIL)
    if channel == WIDGET_CHANNEL and sender.hmac_verified:
        return Vouched(phone=normalize_phone(sender.phone_number), email=normalize_email(sender.email), how=BY_WIDGET)
    return Vouched()


def claimed(sender: SenderView) -> Vouched:
    """The phone and email the contact holds, whoever typed them: enough to point at a booking, no more."""
    return Vouched(phone=normalize_phone(sender.phone_number), email=normalize_email(sender.email), how="claimed")


def same_number(source_id: str | None, e164: str) -> bool:
    """Whether a contact inbox's source id is this number ("351…", "+351…" or "whatsapp:+351…").

    No source id, or anything but digits after an optional "+", is not the same number: we fail closed."""
    if not source_id:
        return False
    text = source_id.strip().removeprefix("whatsapp:")
    digits = text.removeprefix("+")
    return digits.isdigit() and digits == e164.removeprefix("+")
