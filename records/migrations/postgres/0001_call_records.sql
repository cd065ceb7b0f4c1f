-- One row per call. Times are NULL when the call never got there.
CREATE TABLE call_records (
    call_id      TEXT PRIMARY KEY,
    node         TEXT NOT NULL,
    line         TEXT NOT NULL DEFAULT '',
    caller_hash  TEXT NOT NULL DEFAULT '',
    start_time   TIMESTAMPTZ NOT NULL,
    answer_time  TIMESTAMPTZ,
    queue_time   TIMESTAMPTZ,
    connect_time TIMESTAMPTZ,
    end_time     TIMESTAMPTZ,
    language     TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    route        TEXT NOT NULL DEFAULT '',
    steps        TEXT NOT NULL DEFAULT '',
    queue        TEXT NOT NULL DEFAULT '',
    advocate     TEXT NOT NULL DEFAULT '',
    wait_ms      BIGINT NOT NULL DEFAULT 0,
    talk_ms      BIGINT NOT NULL DEFAULT 0,
    wrapup_ms    BIGINT NOT NULL DEFAULT 0,
    outcome      TEXT NOT NULL
);
CREATE INDEX call_records_start ON call_records (start_time);
CREATE INDEX call_records_in_progress ON call_records (node) WHERE outcome = 'in_progress';

-- The last time each node said it was alive: the estimated end of calls it left in progress.
CREATE TABLE nodes (
    node      TEXT PRIMARY KEY,
    heartbeat TIMESTAMPTZ NOT NULL
);
