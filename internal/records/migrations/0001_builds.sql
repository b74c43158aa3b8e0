-- The builds: one row per build. doc is the whole record as JSON; the
-- other columns are copies of its fields that List filters and sorts on.
CREATE TABLE builds (
    id          TEXT   NOT NULL PRIMARY KEY,
    state       TEXT   NOT NULL,
    source_kind TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    doc         TEXT   NOT NULL
);
CREATE INDEX builds_state_id ON builds (state, id);
CREATE INDEX builds_source_kind_id ON builds (source_kind, id);

-- A build's packages, one row each, to filter builds by package.
CREATE TABLE build_packages (
    build_id TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    package  TEXT NOT NULL,
    PRIMARY KEY (build_id, package)
);
CREATE INDEX build_packages_package ON build_packages (package, build_id);
