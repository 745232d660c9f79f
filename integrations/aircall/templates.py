"""Every word the Aircall mirror writes into Chatwoot: note templates and the wording of Aircall's codes.

Constants, so a note can be read (and tested) to the letter; transforms.py fills them in.
"""

from __future__ import annotations

MISSED_REASONS = {
    "out_of_opening_hours": "called outside opening hours",
    "short_abandoned": "the caller hung up within a few seconds",
    "abandoned_in_ivr": "the caller hung up in the phone menu",
    "abandoned_in_classic": "the caller hung up while it was ringing",
    "no_available_agent": "no agent was available",
    "agents_did_not_answer": "no agent answered",
}
ANSWERED = "📞 Inbound call from {caller}{line}, answered by {agent}. Talked {talk}."
OUTBOUND_ANSWERED = "📞 Outbound call to {caller}{line_from} by {agent}. Talked {talk}."
OUTBOUND_UNANSWERED = "📞 Outbound call to {caller}{line_from} by {agent}: not answered."
MISSED = "📵 Missed call from {caller}{line}: {reason}. Please call back."
MISSED_WITH_VOICEMAIL = "📵 Missed call from {caller}{line}: {reason}. A voicemail was left; please call back."
LINE = " on {line}"
LINE_FROM = " from {line}"
RECORDING_PART = "🎧 Recording (in Aircall): {url}"
VOICEMAIL_PART = "🎙 Voicemail (in Aircall): {url}"
TRANSCRIPT_PART = "Transcript: “{text}”"
RECORDING_NOTE = "🎧 Recording of the call with {caller} (in Aircall): {url}"
VOICEMAIL_NOTE = "🎙 {caller} left a voicemail (in Aircall): {url}"
COMMENT_NOTE = "💬 Aircall comment by {author}: {content}"
COMMENT_NOTE_ANONYMOUS = "💬 Aircall comment: {content}"
TAG_NOTE = "🏷 Aircall tag added: {tag}"
TRANSFERRED = "↪️ Call transferred{by}{to}."
EXTERNAL_TRANSFERRED = "↪️ Call transferred{by} to an external number{to}."
TRANSFER_FAILED = "↪️ Transfer{by}{to} did not go through."
AI_TRANSCRIPT_NOTE = "📝 Aircall AI transcript of the call with {caller}:\n{transcript}"
AI_SUMMARY_NOTE = "✨ Aircall AI summary of the call with {caller}:\n{summary}"
UNKNOWN_AGENT = "an agent"
GUEST_SPEAKER = "Guest"
AGENT_SPEAKER = "Agent"
AI_AGENT_SPEAKER = "Aircall AI agent"
MAX_TRANSCRIPT_CHARS = 20_000  # Chatwoot allows 150,000; a note this long is already unreadable
TRUNCATED = "\n… (truncated; the full transcript is in Aircall)"

MISSED_LABEL = "missed-call"
VOICEMAIL_LABEL = "voicemail"
VOICEMAIL_PRIORITY = "high"


def missed_reason(reason: str | None) -> str:
    """Aircall's missed_call_reason in plain words."""
    if not reason:
        return "not answered"
    return MISSED_REASONS.get(reason, reason.replace("_", " "))


def format_duration(seconds: int | None) -> str:
    """ "45 s", "6 min 54 s", "1 h 2 min"."""
    if seconds is None or seconds < 0:
        return "an unknown time"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, secs = divmod(seconds, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
