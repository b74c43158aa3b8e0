-- Build logs: one row per line, seq counting from 1 within a build.
CREATE TABLE build_logs (
    build_id TEXT   NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    line     TEXT   NOT NULL,
    PRIMARY KEY (build_id, seq)
);

-- The log's running totals, kept on the build so that an append reads
-- one row: its last seq, its bytes, and 1 once it was cut at the cap.
ALTER TABLE builds ADD COLUMN log_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN log_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN log_truncated BIGINT NOT NULL DEFAULT 0;
