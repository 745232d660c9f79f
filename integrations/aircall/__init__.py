"""Aircall mirror: every call lands on the caller's Chatwoot contact; missed calls become follow-ups.

Modules: `verify` (webhook token, ledger keys, subjects; pure), `models` (typed payloads), `transforms`
(pure: merging a call's events into one record, note texts, follow-ups), `store` (call_records and the
bot_replies ledger), `client` (Aircall Public API: fresh media URLs, AI transcripts and summaries),
`handlers` (the I/O edge; `HANDLERS` maps each event to its handler).
"""
