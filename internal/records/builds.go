package records

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// A build ID is 20 lowercase hex digits: 16 of the creation time in Unix
// nanoseconds, then 4 random ones. IDs sort as strings in creation order,
// so "ORDER BY id DESC" is newest first and an ID is a stable cursor.
// One DB hands out strictly increasing times (a clock that repeats or
// steps back is bumped by 1ns), starting above the newest ID stored; the
// random digits keep two writers of one database (later, replicas on
// PostgreSQL) from colliding.
const idLen = 20

// seedIDs makes new IDs sort after every ID already stored.
func (db *DB) seedIDs(ctx context.Context) error {
	var max sql.NullString
	if err := db.r.QueryRowContext(ctx, q(`SELECT MAX(id) FROM builds`)).Scan(&max); err != nil {
		return fmt.Errorf("reading the newest build: %w", err)
	}
	if max.Valid && validID(max.String) {
		t, _ := strconv.ParseUint(max.String[:16], 16, 64)
		db.lastID = int64(t)
	}
	return nil
}

// newID returns the next ID. Create calls it inside its write
// transaction, so IDs are committed in the order they are handed out and
// a reader never sees a build appear below one it has already paged past.
func (db *DB) newID() string {
	db.mu.Lock()
	t := max(db.now().UnixNano(), db.lastID+1)
	db.lastID = t
	db.mu.Unlock()
	var r [2]byte
	rand.Read(r[:])
	return fmt.Sprintf("%016x%04x", uint64(t), binary.BigEndian.Uint16(r[:]))
}

func validID(id string) bool {
	if len(id) != idLen || strings.ToLower(id) != id {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// Create stores b as a new build: it sets b.ID, b.State (queued) and
// b.Times (queued: now) and keeps the rest of b as it is; on an error b
// is left unchanged. b.Source.Kind
// must be set; b.Request, when set, must be JSON.
func (db *DB) Create(ctx context.Context, b *buildrecord.Build) error {
	if err := checkNew(b); err != nil {
		return err
	}
	nb := *b
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		now := db.now().UTC()
		nb.ID = db.newID()
		nb.State = buildrecord.Queued
		nb.Times = map[buildrecord.State]time.Time{buildrecord.Queued: now}
		doc, err := json.Marshal(&nb)
		if err != nil {
			return fmt.Errorf("encoding build: %w", err)
		}
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO builds (id, state, source_kind, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?)`),
			nb.ID, string(nb.State), nb.Source.Kind, now.UnixNano(), now.UnixNano(), string(doc)); err != nil {
			return fmt.Errorf("storing build: %w", err)
		}
		pkgs := slices.Clone(nb.Packages)
		slices.Sort(pkgs)
		for _, p := range slices.Compact(pkgs) {
			if _, err := tx.ExecContext(ctx, q(`INSERT INTO build_packages (build_id, package) VALUES (?, ?)`), nb.ID, p); err != nil {
				return fmt.Errorf("storing build package: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*b = nb
	return nil
}

func checkNew(b *buildrecord.Build) error {
	switch {
	case b == nil:
		return fmt.Errorf("%w: no build to create", ErrInvalid)
	case b.Source.Kind == "":
		return fmt.Errorf("%w: the build has no source kind", ErrInvalid)
	case len(b.Request) > 0 && !json.Valid(b.Request):
		return fmt.Errorf("%w: the build's request is not JSON", ErrInvalid)
	case slices.Contains(b.Packages, ""):
		return fmt.Errorf("%w: the build lists an empty package", ErrInvalid)
	}
	return nil
}

// Get returns the build with that ID, or ErrNotFound.
func (db *DB) Get(ctx context.Context, id string) (*buildrecord.Build, error) {
	var doc string
	err := db.r.QueryRowContext(ctx, q(`SELECT doc FROM builds WHERE id = ?`), id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("build %q: %w", id, buildrecord.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading build %s: %w", id, err)
	}
	return decode(doc)
}

func decode(doc string) (*buildrecord.Build, error) {
	var b buildrecord.Build
	if err := json.Unmarshal([]byte(doc), &b); err != nil {
		return nil, fmt.Errorf("decoding build record: %w", err)
	}
	return &b, nil
}

// Limits of a List page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// List returns the builds that match f, newest first, a page at a time:
// pass the page's Next as the next Filter's Cursor. Builds created while
// a caller pages are newer than its cursor, so paging never repeats or
// skips a build. A Limit over MaxLimit is lowered to it.
func (db *DB) List(ctx context.Context, f buildrecord.Filter) (buildrecord.Page, error) {
	if err := checkFilter(f); err != nil {
		return buildrecord.Page{}, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)

	// With a package, the walk is down its index (package, build_id), so
	// a rare package does not scan every build; else down the IDs.
	query, order := "SELECT b.doc FROM builds b", "b.id"
	var where []string
	var args []any
	if f.Package != "" {
		query, order = "SELECT b.doc FROM build_packages p JOIN builds b ON b.id = p.build_id", "p.build_id"
		where, args = append(where, "p.package = ?"), append(args, f.Package)
	}
	if f.State != "" {
		where, args = append(where, "b.state = ?"), append(args, string(f.State))
	}
	if f.SourceKind != "" {
		where, args = append(where, "b.source_kind = ?"), append(args, f.SourceKind)
	}
	if f.Cursor != "" {
		where, args = append(where, order+" < ?"), append(args, f.Cursor)
	}
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + order + " DESC LIMIT ?"
	args = append(args, limit+1) // one more tells whether a next page exists

	rows, err := db.r.QueryContext(ctx, q(query), args...)
	if err != nil {
		return buildrecord.Page{}, fmt.Errorf("listing builds: %w", err)
	}
	defer rows.Close()
	var p buildrecord.Page
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return buildrecord.Page{}, fmt.Errorf("listing builds: %w", err)
		}
		if len(p.Builds) == limit {
			p.Next = p.Builds[limit-1].ID
			break
		}
		b, err := decode(doc)
		if err != nil {
			return buildrecord.Page{}, err
		}
		p.Builds = append(p.Builds, b)
	}
	if err := rows.Err(); err != nil {
		return buildrecord.Page{}, fmt.Errorf("listing builds: %w", err)
	}
	return p, nil
}

// checkFilter refuses a filter List cannot run.
func checkFilter(f buildrecord.Filter) error {
	switch {
	case f.State != "" && !f.State.Valid():
		return fmt.Errorf("%w: unknown state %q", ErrInvalid, f.State)
	case f.Cursor != "" && !validID(f.Cursor):
		return fmt.Errorf("%w: the cursor %q is not one a page returned", ErrInvalid, f.Cursor)
	case f.Limit < 0:
		return fmt.Errorf("%w: the limit %d is negative", ErrInvalid, f.Limit)
	}
	return nil
}
