"""Bring the history along: import old systems' exports (MongoDB, Firestore) into our tables, check the
result (`sidecar validate`), and keep listing knowledge in step with the rows it is made of (`feed`).

sources.py reads files into plain records, mapping.py says which collection is which of our kinds,
records.py (pure) turns a record into a row or a rejection, targets.py writes rows by the mirrors' own
rules, ledger.py remembers what was imported, importer.py runs it all in resumable batches.
"""
