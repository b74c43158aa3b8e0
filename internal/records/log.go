package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// AppendLog adds text to the build's log, one LogLine per line ("\n"
// ends a line; a last line without one is a line too; invalid UTF-8 and
// NUL bytes are stored as U+FFFD). Lines count
// against the build's cap with their newline: the first line that would
// pass it is replaced by "log truncated at N bytes", which is the log's
// last line; later appends are dropped without error, so that a chatty
// compiler cannot fail its build. It returns the lines it stored, with
// their Seq and as stored, so that a live reader sees what a later read
// of Log returns.
func (db *DB) AppendLog(ctx context.Context, id string, text string) ([]buildrecord.LogLine, error) {
	if text == "" {
		return nil, nil
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var stored []buildrecord.LogLine
	err := db.inTxRetry(ctx, func(tx *sql.Tx) error {
		stored = nil
		var seq, size, truncated int64
		err := tx.QueryRowContext(ctx, q(`SELECT log_seq, log_bytes, log_truncated FROM builds WHERE id = ?`), id).Scan(&seq, &size, &truncated)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("build %q: %w", id, buildrecord.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading build %s's log: %w", id, err)
		}
		if truncated != 0 {
			return nil
		}
		first := seq
		var rows []buildrecord.LogLine
		for _, l := range lines {
			l = cleanLine(l)
			n := int64(len(l)) + 1
			if size+n > db.maxLogBytes {
				seq++
				rows = append(rows, buildrecord.LogLine{Seq: seq, Text: fmt.Sprintf("log truncated at %d bytes", db.maxLogBytes)})
				truncated = 1
				break
			}
			seq++
			size += n
			rows = append(rows, buildrecord.LogLine{Seq: seq, Text: l})
		}
		if err := insertLines(ctx, tx, id, rows); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, q(`UPDATE builds SET log_seq = ?, log_bytes = ?, log_truncated = ? WHERE id = ? AND log_seq = ?`),
			seq, size, truncated, id, first)
		if err != nil {
			return fmt.Errorf("appending to build %s's log: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("appending to build %s's log: %w", id, errors.Join(err, errMoved))
		}
		stored = rows
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// cleanLine makes l storable in a TEXT column of any database: invalid
// UTF-8 becomes U+FFFD, and so does NUL, which PostgreSQL's TEXT refuses.
func cleanLine(l string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(l, "\uFFFD"), "\x00", "\uFFFD")
}

// linesPerInsert bounds one INSERT's rows (3 arguments each), well under
// the limits on arguments per statement of SQLite (32766) and
// PostgreSQL (65535).
const linesPerInsert = 200

func insertLines(ctx context.Context, tx *sql.Tx, id string, lines []buildrecord.LogLine) error {
	for len(lines) > 0 {
		n := min(len(lines), linesPerInsert)
		var b strings.Builder
		b.WriteString("INSERT INTO build_logs (build_id, seq, line) VALUES ")
		args := make([]any, 0, 3*n)
		for i, l := range lines[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, id, l.Seq, l.Text)
		}
		if _, err := tx.ExecContext(ctx, q(b.String()), args...); err != nil {
			return fmt.Errorf("appending to build %s's log: %w", id, err)
		}
		lines = lines[n:]
	}
	return nil
}

// Log returns the build's log lines after seq after (0 for all), in
// order. A client that streams the log passes the last Seq it has.
func (db *DB) Log(ctx context.Context, id string, after int64) ([]buildrecord.LogLine, error) {
	if after < 0 {
		return nil, fmt.Errorf("%w: log position %d is negative", ErrInvalid, after)
	}
	rows, err := db.r.QueryContext(ctx, q(`SELECT seq, line FROM build_logs WHERE build_id = ? AND seq > ? ORDER BY seq`), id, after)
	if err != nil {
		return nil, fmt.Errorf("reading build %s's log: %w", id, err)
	}
	defer rows.Close()
	var out []buildrecord.LogLine
	for rows.Next() {
		var l buildrecord.LogLine
		if err := rows.Scan(&l.Seq, &l.Text); err != nil {
			return nil, fmt.Errorf("reading build %s's log: %w", id, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading build %s's log: %w", id, err)
	}
	if len(out) == 0 {
		var one int
		err := db.r.QueryRowContext(ctx, q(`SELECT 1 FROM builds WHERE id = ?`), id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("build %q: %w", id, buildrecord.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("reading build %s's log: %w", id, err)
		}
	}
	return out, nil
}
