package records

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// The schema's migrations are the files migrations/NNNN_name.sql, applied
// in order of NNNN, each once. A file is plain SQL that both SQLite and
// PostgreSQL run: statements end with ';' at the end of a line, and "--"
// starts a comment line. Never edit a file once it is merged: add one.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// A migration is one numbered step of the schema.
type migration struct {
	version    int64
	name       string
	statements []string
}

// migrations are the embedded files, in order; Open applies them.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	ms, err := loadMigrations()
	if err != nil {
		panic(err) // the files are compiled in: a test catches this
	}
	return ms
}

func loadMigrations() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for i, e := range entries { // ReadDir sorts by name
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v != int64(i+1) {
			return nil, fmt.Errorf("migration %s: want the name %04d_name.sql", e.Name(), i+1)
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, statements: splitStatements(string(b))})
	}
	return ms, nil
}

// splitStatements splits a migration into statements at lines that end
// with ';', dropping "--" comment lines. Drivers differ on running many
// statements in one Exec (PostgreSQL's refuse it with arguments), so each
// statement runs alone.
func splitStatements(sqlText string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(sqlText) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// migrate applies the migrations in ms that the database has not seen,
// each in its own transaction together with its schema_migrations row, so
// that a crash leaves the schema at one version or the next. Running it
// again, or in two processes at once, applies nothing twice: the
// transaction holds the write lock from its start and reads the version
// under it.
func (db *DB) migrate(ctx context.Context, ms []migration) error {
	if _, err := db.w.ExecContext(ctx, q(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)`)); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	latest := int64(0)
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	for _, m := range ms {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			v, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if v > latest {
				return fmt.Errorf("%w: the database schema is version %d, newer than this server's %d: run a newer kiln server", ErrInvalid, v, latest)
			}
			if v >= m.version {
				return nil
			}
			for _, s := range m.statements {
				if _, err := tx.ExecContext(ctx, q(s)); err != nil {
					return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
				}
			}
			_, err = tx.ExecContext(ctx, q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, db.now().UnixNano())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion is the highest migration applied, 0 for a new database.
func schemaVersion(ctx context.Context, tx queryer) (int64, error) {
	var v sql.NullInt64
	if err := tx.QueryRowContext(ctx, q(`SELECT MAX(version) FROM schema_migrations`)).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return v.Int64, nil
}
