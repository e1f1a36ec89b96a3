-- Caller safety (issue 12): what a call is marked with (quick-exit, silent) and the
-- caller's keypad answers, both JSON lists like `path`.
ALTER TABLE calls ADD COLUMN marks JSONB NOT NULL DEFAULT '[]';
ALTER TABLE calls ADD COLUMN answers JSONB NOT NULL DEFAULT '[]';
