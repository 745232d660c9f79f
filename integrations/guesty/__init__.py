"""Guesty integration: reservations and listings mirrored into Postgres, Chatwoot and the knowledge base.

Modules: `verify` (Svix signatures, ledger keys), `models` (typed payloads), `transforms` (pure: rows,
notes, knowledge sections), `client` (Open API with a shared OAuth token), `handlers` (the I/O edge),
`stays` (stay stages and the guest context the answering pipeline reads).
"""
