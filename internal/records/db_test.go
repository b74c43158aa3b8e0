package records

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// open opens a fresh database in a test directory, closed at the end.
func open(t testing.TB, opts ...Option) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records.db")
	db, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		opts []Option
	}{
		{"empty path", "", nil},
		{"memory", ":memory:", nil},
		{"uri", "file:" + filepath.Join(dir, "a.db"), nil},
		{"query in name", filepath.Join(dir, "a.db?mode=ro"), nil},
		{"fragment in name", filepath.Join(dir, "a#b.db"), nil},
		{"zero log cap", filepath.Join(dir, "b.db"), []Option{WithMaxLogBytes(0)}},
		{"negative log cap", filepath.Join(dir, "c.db"), []Option{WithMaxLogBytes(-1)}},
		{"nil clock", filepath.Join(dir, "d.db"), []Option{WithClock(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(context.Background(), tc.path, tc.opts...)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("directory missing", func(t *testing.T) {
		db, err := Open(context.Background(), filepath.Join(dir, "no", "such", "dir", "x.db"))
		if err == nil {
			db.Close()
			t.Fatal("Open succeeded")
		}
	})
}

func TestPingClose(t *testing.T) {
	db, _ := open(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}

// Ping answers while a write holds the one writer connection.
func TestPingDuringWrite(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	conn, err := db.w.Conn(ctx) // the writer pool's only connection
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	// Not a timing check: a Ping that waited for the writer would
	// wait for ever, and this deadline turns that into a failure.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPragmas(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	} {
		var got string
		if err := db.w.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
	var one int
	if err := db.r.QueryRowContext(ctx, "PRAGMA query_only").Scan(&one); err != nil || one != 1 {
		t.Errorf("readers: query_only = %d, %v; want 1", one, err)
	}
}

func TestMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations, want at least 2", len(ms))
	}
	for i, m := range ms {
		if m.version != int64(i+1) || len(m.statements) == 0 {
			t.Errorf("migration %d: version %d, %d statements", i, m.version, len(m.statements))
		}
	}
}

// An old database (schema version 1, before logs) with a build in it is
// brought up to date by Open, and the build is kept and gets a log.
func TestMigrateOldDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	v1, err := open1(ctx, path, migrations[:1])
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := schemaVersion(ctx, v1.w); v != 1 {
		t.Fatalf("old database at version %d, want 1", v)
	}
	if _, err := v1.w.ExecContext(ctx, `INSERT INTO builds (id, state, source_kind, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?)`,
		"00000000000000010000", "queued", "module", 1, 1, `{"id":"00000000000000010000","state":"queued","packages":["./cmd/app"],"source":{"kind":"module","ref":"example.com/app@v1.0.0"}}`); err != nil {
		t.Fatal(err)
	}
	v1.Close()

	for range 2 { // the second Open finds nothing to do
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := schemaVersion(ctx, db.w); v != int64(len(migrations)) {
			t.Errorf("migrated to version %d, want %d", v, len(migrations))
		}
		var n int
		if err := db.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
			t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations))
		}
		b, err := db.Get(ctx, "00000000000000010000")
		if err != nil || b.Source.Ref != "example.com/app@v1.0.0" {
			t.Fatalf("old build after migration: %+v, %v", b, err)
		}
		if _, err := db.AppendLog(ctx, b.ID, "line\n"); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// A database written by a newer server is refused, not changed.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	db, path := open(t)
	if _, err := db.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, 99, "future", 0); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"comments only", "-- a\n  -- b\n", nil},
		{"one", "CREATE TABLE a (x TEXT);\n", []string{"CREATE TABLE a (x TEXT)"}},
		{"multi-line", "CREATE TABLE a (\n  x TEXT\n);\n-- c\nCREATE INDEX i ON a (x);", []string{"CREATE TABLE a (\n  x TEXT\n)", "CREATE INDEX i ON a (x)"}},
		{"no final semicolon", "SELECT 1;\nSELECT 2", []string{"SELECT 1", "SELECT 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := splitStatements(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		s    style
		want string
	}{
		{"SELECT doc FROM builds WHERE id = ? AND state = ?", question, "SELECT doc FROM builds WHERE id = ? AND state = ?"},
		{"SELECT doc FROM builds WHERE id = ? AND state = ?", dollar, "SELECT doc FROM builds WHERE id = $1 AND state = $2"},
		{"SELECT 1", dollar, "SELECT 1"},
	} {
		if got := rebind(tc.in, tc.s); got != tc.want {
			t.Errorf("rebind(%q, %d) = %q, want %q", tc.in, tc.s, got, tc.want)
		}
	}
}

// Two servers starting on one new file at once apply each migration once.
func TestOpenConcurrently(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "records.db")
	dbs := make([]*DB, 4)
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		defer dbs[i].Close()
	}
	var n int
	if err := dbs[0].r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations))
	}
}
