-- Caller safety (issue 12): what a call is marked with (quick-exit, silent) and the
-- caller's keypad answers, both JSON lists like `path`.
ALTER TABLE calls ADD COLUMN marks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE calls ADD COLUMN answers TEXT NOT NULL DEFAULT '[]';
