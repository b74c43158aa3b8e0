package records

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// Transition moves the build to state to at time at, records Times[to],
// and applies update (which may be nil) to set its results, phases or
// error, all in one transaction: callers racing on one build see one
// winner, and the others get a *TransitionError. update must not change
// the ID, State or Times; changes to them are undone. update runs while
// the database's write lock is held: it should only set fields. It
// returns the stored build.
func (db *DB) Transition(ctx context.Context, id string, to buildrecord.State, at time.Time, update func(*buildrecord.Build)) (*buildrecord.Build, error) {
	if at.IsZero() {
		return nil, fmt.Errorf("%w: moving build %s to %s at no time", ErrInvalid, id, to)
	}
	var out *buildrecord.Build
	err := db.inTxRetry(ctx, func(tx *sql.Tx) error {
		b, err := getTx(ctx, tx, id)
		if err != nil {
			return err
		}
		from := b.State
		if err := move(b, to, at, update); err != nil {
			return err
		}
		out = b
		return save(ctx, tx, b, from)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// errMoved: the build's state changed between reading and writing it.
// With SQLite it cannot happen (a write transaction holds the lock from
// its start); with PostgreSQL's read committed it can, and the guarded
// UPDATE in save turns it into this error instead of a lost write.
var errMoved = errors.New("build changed concurrently")

// move applies one transition to b in memory.
func move(b *buildrecord.Build, to buildrecord.State, at time.Time, update func(*buildrecord.Build)) error {
	if !buildrecord.Allowed(b.State, to) {
		return &buildrecord.TransitionError{ID: b.ID, From: b.State, To: to}
	}
	id, times := b.ID, maps.Clone(b.Times)
	if times == nil {
		times = map[buildrecord.State]time.Time{}
	}
	times[to] = at.UTC()
	b.Times = maps.Clone(times) // update's to change; times stays ours
	if update != nil {
		update(b)
	}
	b.ID, b.State, b.Times = id, to, times
	return nil
}

// Recover is for start-up, before any build runs: every build that was
// running when the server stopped becomes interrupted at time at, with an
// Error that says to retry it; it returns the builds still queued (to run
// again) and the ones it interrupted, each oldest first.
func (db *DB) Recover(ctx context.Context, at time.Time) (queued, interrupted []*buildrecord.Build, err error) {
	if at.IsZero() {
		return nil, nil, fmt.Errorf("%w: recovering builds at no time", ErrInvalid)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		interrupted, err = listTx(ctx, tx, buildrecord.Running)
		if err != nil {
			return err
		}
		for _, b := range interrupted {
			err := move(b, buildrecord.Interrupted, at, func(b *buildrecord.Build) {
				if b.Error == nil {
					b.Error = &buildrecord.Error{Message: "the server stopped while the build ran: retry it"}
				}
			})
			if err != nil {
				return err
			}
			if err := save(ctx, tx, b, buildrecord.Running); err != nil {
				return err
			}
		}
		queued, err = listTx(ctx, tx, buildrecord.Queued)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("recovering builds: %w", err)
	}
	return queued, interrupted, nil
}

func getTx(ctx context.Context, tx *sql.Tx, id string) (*buildrecord.Build, error) {
	var doc string
	err := tx.QueryRowContext(ctx, q(`SELECT doc FROM builds WHERE id = ?`), id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("build %q: %w", id, buildrecord.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading build %s: %w", id, err)
	}
	return decode(doc)
}

// listTx returns every build in state s, oldest first.
func listTx(ctx context.Context, tx *sql.Tx, s buildrecord.State) ([]*buildrecord.Build, error) {
	rows, err := tx.QueryContext(ctx, q(`SELECT doc FROM builds WHERE state = ? ORDER BY id`), string(s))
	if err != nil {
		return nil, fmt.Errorf("listing %s builds: %w", s, err)
	}
	defer rows.Close()
	var out []*buildrecord.Build
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		b, err := decode(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// save writes b's document and state back, if the stored build is still
// in state from.
func save(ctx context.Context, tx *sql.Tx, b *buildrecord.Build, from buildrecord.State) error {
	doc, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encoding build %s: %w", b.ID, err)
	}
	res, err := tx.ExecContext(ctx, q(`UPDATE builds SET state = ?, updated_at = ?, doc = ? WHERE id = ? AND state = ?`),
		string(b.State), b.Times[b.State].UnixNano(), string(doc), b.ID, string(from))
	if err != nil {
		return fmt.Errorf("storing build %s: %w", b.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storing build %s: %w", b.ID, err)
	}
	if n != 1 {
		return fmt.Errorf("storing build %s: %w", b.ID, errMoved)
	}
	return nil
}
