// Package records stores the build service's records (the types of
// internal/buildrecord): one row per build with its inputs, outcome,
// digests and timings, and its log, in a SQL
// database (SQLite embedded, through modernc.org/sqlite, no cgo; the
// queries are written so that PostgreSQL can serve them too: BIGINT and
// TEXT columns, no SQLite-only functions, '?' placeholders converted in
// one function). Migrations are versioned and applied on Open.
//
// The schema (migrations/*.sql):
//
//	schema_migrations  version, name, applied_at: the migrations applied
//	builds             id, state, source_kind, created_at, updated_at,
//	                   doc (the whole Build as JSON), log_seq, log_bytes,
//	                   log_truncated
//	build_packages     (build_id, package): List's package filter
//	build_logs         (build_id, seq, line): one row per log line
//
// A build moves queued → running → succeeded | failed | cancelled |
// timed_out | interrupted (see buildrecord.Allowed), each move in one transaction
// with its results. All writes go through one connection; reads have
// their own pool and, in WAL mode, do not wait for writes.
//
// It owns storage alone: it does not schedule, fetch or build.
package records
