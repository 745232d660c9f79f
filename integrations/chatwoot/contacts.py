"""Find or create the Chatwoot contact (and its conversation in an inbox) behind a phone or an email.

Every mirror (Aircall calls, Guesty reservations) funnels people through here so one guest is one
contact. Lookups go: our cache (table contact_links) -> Chatwoot search -> create. Chatwoot's search is
a substring match (ILIKE) and its phone check is not anchored, so we normalise to E.164 ourselves and
keep only exact matches. Concurrent jobs for the same new number must not create two contacts:
creation runs under a Postgres advisory lock on the key, and the cache is re-read once the lock is held.

Advisory locks here use the two-integer form with our own class ids, a key space apart from the
single-bigint locks the job layer takes on event subjects, so the two can never collide.
Contacts and search need CHATWOOT_API_TOKEN (a user token): Chatwoot refuses them to bot tokens.
"""

from __future__ import annotations

import logging
from typing import Any

import phonenumbers
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from integrations.chatwoot.client import ChatwootBadRequest, ChatwootClient

log = logging.getLogger(__name__)

CONTACT_LOCK_CLASS = 72_701
CONVERSATION_LOCK_CLASS = 72_702
LOCK_TIMEOUT = "120s"  # the holder makes a few Chatwoot calls (with their own retries) under the lock
ANONYMOUS = frozenset({"anonymous", "unknown", "private", "restricted", "unavailable", "withheld"})


def normalize_phone(raw: str | None, default_region: str | None = None) -> str | None:
    """The E.164 form of a phone number ("+447700900123"), or None when it is not a usable number.

    Accepts international input ("+44 7700 900123", "0044 7700 900123"), national input when a
    default region (ISO country code, e.g. "PT") is given, and bare international digits
    ("447700900123") when none is. "anonymous" and other withheld-number markers give None.
    A number only has to be *possible* (right length for its country), not allocated: new ranges
    and test numbers are real callers too.
    Parsing is strict at the front: the number must start with "+", a digit or "(". Anything before the
    "+" ("x+351912345678", "tel:+44…") or a second "+" gives None, because Chatwoot's own check is not
    anchored and a phone number decides whose booking a sender is.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text or text.lower() in ANONYMOUS or not any(ch.isdigit() for ch in text):
        return None
    if not (text[0].isdigit() or text[0] in "+(") or text.count("+") > 1 or "+" in text[1:]:
        return None
    candidates: list[tuple[str, str | None]] = []
    if text.startswith("+"):
        candidates.append((text, None))
    else:
        if default_region:
            candidates.append((text, default_region.upper()))
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits.startswith("00"):
            candidates.append(("+" + digits[2:], None))
        elif not default_region:
            candidates.append(("+" + digits, None))
    for candidate, region in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def display_phone(e164: str) -> str:
    """A readable international form ("+44 7700 900123") of an E.164 number, for notes."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalize_email(raw: str | None) -> str | None:
    """Lower-cased, trimmed email, or None when it does not look like one."""
    if raw is None:
        return None
    text = raw.strip().lower()
    local, at, domain = text.partition("@")
    if not at or not local or "." not in domain or " " in text:
        return None
    return text


def contact_keys(*, phone: str | None = None, email: str | None = None) -> list[str]:
    """Cache keys in lookup priority (email first): ["email:a@b.c", "phone:+4477..."]."""
    keys = []
    if email:
        keys.append(f"email:{email}")
    if phone:
        keys.append(f"phone:{phone}")
    return keys


async def find_or_create_contact(
    db: AsyncConnectionPool,
    chatwoot: ChatwootClient,
    *,
    phone: str | None = None,
    email: str | None = None,
    name: str | None = None,
    inbox_id: int | None = None,
) -> int | None:
    """The Chatwoot contact id for this person, creating the contact when none matches.

    Email is tried before phone. Returns None when neither is usable (no email, anonymous number).
    A contact found by one key is completed with the other (email or phone) when it lacks it and no
    other contact holds it, so the next lookup by either key lands on the same person.
    `inbox_id` is only used on creation (Chatwoot then links the contact to that inbox).
    """
    mail = normalize_email(email)
    e164 = normalize_phone(phone)
    keys = contact_keys(phone=e164, email=mail)
    if not keys:
        return None
    async with db.connection() as conn:
        cached = await _cached(conn, keys)
    if cached is not None:
        return cached
    async with db.connection() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        for key in sorted(keys):  # one global order, so two jobs never wait on each other in a cycle
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CONTACT_LOCK_CLASS, key))
        cached = await _cached(conn, keys)
        if cached is not None:
            return cached
        contact = await _search(chatwoot, mail, e164)
        if contact is None:
            contact, created = await _create(chatwoot, name=name, email=mail, phone=e164, inbox_id=inbox_id)
        else:
            contact, created = await _complete(chatwoot, contact, mail, e164), False
        contact_id = int(contact["id"])
        await _link(conn, keys if created else [k for k in keys if _holds(contact, k)], contact_id)
        return contact_id


async def forget_contact(db: AsyncConnectionPool, contact_id: int) -> None:
    """Drop cached links to a contact Chatwoot no longer has (deleted or merged away)."""
    async with db.connection() as conn:
        await conn.execute("DELETE FROM contact_links WHERE chatwoot_contact_id = %s", (contact_id,))


async def find_or_create_conversation(
    db: AsyncConnectionPool, chatwoot: ChatwootClient, *, contact_id: int, inbox_id: int
) -> int:
    """The contact's newest unresolved conversation in the inbox, or a new one (display id).

    Runs under an advisory lock per (contact, inbox) so two events for the same guest never open two
    conversations. A fresh contact inbox is created first, as Chatwoot wants a source_id for it.
    """
    async with db.connection() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CONVERSATION_LOCK_CLASS, f"{contact_id}:{inbox_id}")
        )
        existing = pick_open_conversation(await chatwoot.contact_conversations(contact_id), inbox_id)
        if existing is not None:
            return existing
        contact_inbox = await chatwoot.create_contact_inbox(contact_id, inbox_id)
        source_id = contact_inbox.get("source_id")
        created = await chatwoot.create_conversation(
            inbox_id=inbox_id, contact_id=contact_id, source_id=str(source_id) if source_id else None
        )
        log.info(
            "opened Chatwoot conversation",
            extra={"conversation_id": created.get("id"), "contact_id": contact_id, "inbox_id": inbox_id},
        )
        return int(created["id"])


def pick_open_conversation(conversations: list[dict[str, Any]], inbox_id: int) -> int | None:
    """Newest (highest display id) conversation in the inbox that is not resolved."""
    ids = [
        int(c["id"])
        for c in conversations
        if _int(c.get("inbox_id")) == inbox_id and c.get("status") != "resolved" and c.get("id") is not None
    ]
    return max(ids) if ids else None


# ------------------------------------------------------------------------------------- helpers


async def _cached(conn: AsyncConnection[Any], keys: list[str]) -> int | None:
    cur = await conn.execute("SELECT key, chatwoot_contact_id FROM contact_links WHERE key = ANY(%s)", (keys,))
    found = {row[0]: int(row[1]) for row in await cur.fetchall()}
    for key in keys:
        if key in found:
            return found[key]
    return None


async def _link(conn: AsyncConnection[Any], keys: list[str], contact_id: int) -> None:
    for key in keys:
        await conn.execute(
            """
            INSERT INTO contact_links (key, chatwoot_contact_id) VALUES (%s, %s)
            ON CONFLICT (key) DO UPDATE SET chatwoot_contact_id = EXCLUDED.chatwoot_contact_id, updated_at = now()
            """,
            (key, contact_id),
        )


async def _search(chatwoot: ChatwootClient, mail: str | None, e164: str | None) -> dict[str, Any] | None:
    """The oldest contact whose email or phone equals ours exactly (search itself is a substring match)."""
    if mail:
        found = await _search_one(chatwoot, mail, f"email:{mail}")
        if found is not None:
            return found
    if e164:
        return await _search_one(chatwoot, e164, f"phone:{e164}")
    return None


async def _search_one(chatwoot: ChatwootClient, q: str, key: str) -> dict[str, Any] | None:
    matches = [c for c in await chatwoot.search_contacts(q) if _holds(c, key) and c.get("id") is not None]
    return min(matches, key=lambda c: int(c["id"])) if matches else None


async def _create(
    chatwoot: ChatwootClient, *, name: str | None, email: str | None, phone: str | None, inbox_id: int | None
) -> tuple[dict[str, Any], bool]:
    """The new contact and True; or, when Chatwoot says the email/phone is taken, that contact and False."""
    try:
        contact = await chatwoot.create_contact(name=name, email=email, phone_number=phone, inbox_id=inbox_id)
        log.info("created Chatwoot contact", extra={"contact_id": contact.get("id")})
        return contact, True
    except ChatwootBadRequest:
        # "has already been taken": a contact our search did not surface (more than 75 substring hits).
        for attribute, value in (("email", email), ("phone_number", phone)):
            if value:
                key = f"email:{value}" if attribute == "email" else f"phone:{value}"
                matches = [c for c in await chatwoot.filter_contacts(attribute, value) if _holds(c, key)]
                if matches:
                    return min(matches, key=lambda c: int(c["id"])), False
        raise


async def _complete(
    chatwoot: ChatwootClient, contact: dict[str, Any], mail: str | None, e164: str | None
) -> dict[str, Any]:
    """Give a found contact the email or phone it lacks, unless another contact already holds it."""
    fields: dict[str, str] = {}
    if mail and not contact.get("email"):
        fields["email"] = mail  # _search looked email up first and found no one holding it
    if e164 and not contact.get("phone_number"):
        other = await _search_one(chatwoot, e164, f"phone:{e164}")
        if other is None:
            fields["phone_number"] = e164
    if not fields:
        return contact
    try:
        await chatwoot.update_contact(int(contact["id"]), **fields)
    except ChatwootBadRequest as exc:  # taken meanwhile, or refused: keep the contact as it is
        log.info("could not complete contact %s: %s", contact.get("id"), exc)
        return contact
    return {**contact, **fields}


def _holds(contact: dict[str, Any], key: str) -> bool:
    kind, _, value = key.partition(":")
    if kind == "email":
        return normalize_email(_str(contact.get("email"))) == value
    return normalize_phone(_str(contact.get("phone_number"))) == value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
