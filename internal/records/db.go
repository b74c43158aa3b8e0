package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// DefaultMaxLogBytes is a build log's cap when Open is not given one.
const DefaultMaxLogBytes = 4 << 20

// ErrInvalid: a Build, Filter or option that cannot be stored or run.
// The errors of a missing build and a refused move are buildrecord's
// (ErrNotFound, ErrTransition, ErrFinal).
var ErrInvalid = errors.New("invalid input")

// DB is the build records database. Its methods are safe for concurrent
// use. All writes go through one connection, so they are serialized;
// reads use a pool of their own and do not wait for writes (WAL).
type DB struct {
	w, r        *sql.DB
	maxLogBytes int64
	now         func() time.Time

	mu     sync.Mutex // guards lastID
	lastID int64      // the time part of the newest ID handed out
}

// Option configures Open.
type Option func(*DB) error

// WithMaxLogBytes caps each build's log at n bytes (the default is
// DefaultMaxLogBytes); past it a log ends with one "log truncated" line.
func WithMaxLogBytes(n int64) Option {
	return func(db *DB) error {
		if n <= 0 {
			return fmt.Errorf("%w: the log cap must be positive, got %d", ErrInvalid, n)
		}
		db.maxLogBytes = n
		return nil
	}
}

// WithClock sets the clock Create reads; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(db *DB) error {
		if now == nil {
			return fmt.Errorf("%w: the clock is nil", ErrInvalid)
		}
		db.now = now
		return nil
	}
}

// Open opens (creating if needed) the SQLite database at path and brings
// its schema up to date. path is a file name: ":memory:" and names with
// '?' are refused, since the writer and the readers must share the file.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	return open1(ctx, path, migrations, opts...)
}

// open1 is Open with the migrations to apply, for tests of old schemas.
func open1(ctx context.Context, path string, ms []migration, opts ...Option) (*DB, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("%w: records database path %q: give a plain file name", ErrInvalid, path)
	}
	db := &DB{maxLogBytes: DefaultMaxLogBytes, now: time.Now}
	for _, o := range opts {
		if err := o(db); err != nil {
			return nil, fmt.Errorf("opening records database: %w", err)
		}
	}
	// The pragmas run on every new connection. busy_timeout first: a
	// second process (or a reader checkpointing) must make us wait, not fail.
	const common = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	w, err := sql.Open("sqlite", path+"?_txlock=immediate&_pragma=journal_mode(WAL)&"+common)
	if err != nil {
		return nil, fmt.Errorf("opening records database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	db.w = w
	if err := db.migrate(ctx, ms); err != nil {
		w.Close()
		return nil, fmt.Errorf("opening records database %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?_pragma=query_only(1)&"+common)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening records database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	db.r = r
	if err := db.seedIDs(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening records database %s: %w", path, err)
	}
	return db, nil
}

// Ping reports whether the database answers a read of its schema
// version, for a readiness probe. It uses the read pool, so it does not
// wait behind a write in progress.
func (db *DB) Ping(ctx context.Context) error {
	if _, err := schemaVersion(ctx, db.r); err != nil {
		return fmt.Errorf("records database: %w", err)
	}
	return nil
}

// Close closes the database. The records stay on disk.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// inTx runs f in one write transaction (BEGIN IMMEDIATE on SQLite: the
// write lock is taken at the start, so a read-then-write in f cannot be
// overtaken) and commits it if f returns nil.
func (db *DB) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

// inTxRetry is inTx, run again (twice at most) when f reports errMoved.
func (db *DB) inTxRetry(ctx context.Context, f func(*sql.Tx) error) error {
	var err error
	for range 3 {
		if err = db.inTx(ctx, f); !errors.Is(err, errMoved) {
			return err
		}
	}
	return err
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// Placeholders. Every query in this package is written with '?'
// placeholders and passes through q, the one place that converts them:
// SQLite takes '?' as it is; PostgreSQL's drivers want $1, $2, …, which
// is what q gives once placeholderStyle is dollar. The queries hold no
// '?' other than placeholders (no string literals, no JSON operators).
type style int

const (
	question style = iota // ?, ?, … (SQLite)
	dollar                // $1, $2, … (PostgreSQL)
)

const placeholderStyle = question

func q(query string) string { return rebind(query, placeholderStyle) }

// rebind rewrites the '?' placeholders of query in style s.
func rebind(query string, s style) string {
	if s == question {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
