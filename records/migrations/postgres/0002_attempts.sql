-- Why a call ended, when the outcome alone does not say (shutdown_fatal: the error).
ALTER TABLE call_records ADD COLUMN end_reason TEXT NOT NULL DEFAULT '';

-- Call attempts counted rather than kept a row each: INVITEs to a line that were refused
-- (outcome refused, reason capacity, draining, source_rate, ...), and, in a flood, calls that
-- ended before they were answered. One row per minute, node, line,
-- outcome and reason.
CREATE TABLE call_attempts (
    minute  TIMESTAMPTZ NOT NULL,
    node    TEXT NOT NULL,
    line    TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason  TEXT NOT NULL DEFAULT '',
    count   BIGINT NOT NULL,
    PRIMARY KEY (minute, node, line, outcome, reason)
);
