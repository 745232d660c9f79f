-- Which gate a chunk sits behind: open, private (an exact address) or access (codes, passwords).
ALTER TABLE vector_references ADD COLUMN gate text NOT NULL DEFAULT 'open'
    CHECK (gate IN ('open', 'private', 'access'));
UPDATE vector_references SET gate = 'access' WHERE is_access;
