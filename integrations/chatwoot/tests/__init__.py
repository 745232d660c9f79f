"""Tests of the Chatwoot client, the webhook payload models and the spec validator."""
