-- Why a call ended, when the outcome alone does not say (shutdown_fatal: the error).
ALTER TABLE call_records ADD COLUMN end_reason TEXT NOT NULL DEFAULT '';

-- Call attempts counted rather than kept a row each: INVITEs to a line that were refused
-- (outcome refused, reason capacity, draining, source_rate, ...), and, in a flood, calls that
-- ended before they were answered. One row per minute (Unix milliseconds, UTC), node, line,
-- outcome and reason.
CREATE TABLE call_attempts (
    minute  INTEGER NOT NULL,
    node    TEXT NOT NULL,
    line    TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason  TEXT NOT NULL DEFAULT '',
    count   INTEGER NOT NULL,
    PRIMARY KEY (minute, node, line, outcome, reason)
);
