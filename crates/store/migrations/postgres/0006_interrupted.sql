-- Calls a crash left open are closed at the next start as `interrupted` (a new disposition),
-- and a cluster node closes only its own calls or a dead node's: calls get the node that took
-- them (`node`, NULL for the one-process hotline).
ALTER TABLE calls DROP CONSTRAINT calls_disposition_check;
ALTER TABLE calls ADD CONSTRAINT calls_disposition_check
    CHECK (disposition IN ('message', 'operator', 'abandoned', 'rejected', 'failed', 'interrupted'));
ALTER TABLE calls ADD COLUMN node TEXT;
-- The calls still open, for the close at start.
CREATE INDEX calls_open ON calls (started_at) WHERE ended_at IS NULL;
