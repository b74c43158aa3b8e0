package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

func TestLog(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	b := mustCreate(t, db, newBuild("git", "./cmd/app"))
	other := mustCreate(t, db, newBuild("git", "./cmd/app"))
	for _, chunk := range []string{"", "one\ntwo\n", "three", "\n", "four\r\n  five  \n", "bad \xff\xfe utf-8\n", "nul \x00 byte\n"} {
		if _, err := db.AppendLog(ctx, b.ID, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AppendLog(ctx, other.ID, "elsewhere\n"); err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "two", "three", "", "four\r", "  five  ", "bad \uFFFD utf-8", "nul \uFFFD byte"}
	for _, after := range []int64{0, 2, 8, 100} {
		got, err := db.Log(ctx, b.ID, after)
		if err != nil {
			t.Fatal(err)
		}
		w := want[min(int(after), len(want)):]
		if len(got) != len(w) {
			t.Fatalf("after %d: %d lines %v, want %q", after, len(got), got, w)
		}
		for i, l := range got {
			if l.Seq != after+int64(i)+1 || l.Text != w[i] {
				t.Errorf("after %d: line %d = %+v, want %d %q", after, i, l, after+int64(i)+1, w[i])
			}
		}
	}
}

func TestLogRefuses(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	b := mustCreate(t, db, newBuild("git", "./cmd/app"))
	for _, tc := range []struct {
		name string
		err  error
		call func() error
	}{
		{"append to a missing build", buildrecord.ErrNotFound, func() error { _, err := db.AppendLog(ctx, "ffffffffffffffffffff", "x\n"); return err }},
		{"read a missing build", buildrecord.ErrNotFound, func() error { _, err := db.Log(ctx, "ffffffffffffffffffff", 0); return err }},
		{"read from a negative position", ErrInvalid, func() error { _, err := db.Log(ctx, b.ID, -1); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	// A build without a log has an empty one.
	if l, err := db.Log(ctx, b.ID, 0); err != nil || len(l) != 0 {
		t.Fatalf("empty log: %v, %v", l, err)
	}
}

// Lines up to the cap are kept whole; the first that passes it becomes
// "log truncated at N bytes", and nothing is added after it.
func TestLogCap(t *testing.T) {
	const limit = 100
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"under", []string{strings.Repeat("a", 98) + "\n"}, []string{strings.Repeat("a", 98)}},
		{"exactly", []string{strings.Repeat("a", 99) + "\n"}, []string{strings.Repeat("a", 99)}},
		{"one over", []string{strings.Repeat("a", 100) + "\n", "more\n"}, []string{"log truncated at 100 bytes"}},
		{"across chunks", []string{strings.Repeat("a", 49) + "\n", strings.Repeat("b", 49) + "\n", "c\n", "d\n"},
			[]string{strings.Repeat("a", 49), strings.Repeat("b", 49), "log truncated at 100 bytes"}},
		{"inside a chunk", []string{strings.Repeat("x\n", 60)}, append(strings.Split(strings.Repeat("x\n", 50), "\n")[:50], "log truncated at 100 bytes")},
		{"one huge line", []string{strings.Repeat("z", 1<<20)}, []string{"log truncated at 100 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := open(t, WithMaxLogBytes(limit))
			ctx := context.Background()
			b := mustCreate(t, db, newBuild("git", "./cmd/app"))
			for _, c := range tc.chunks {
				if _, err := db.AppendLog(ctx, b.ID, c); err != nil {
					t.Fatal(err)
				}
			}
			got, err := db.Log(ctx, b.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for i, l := range got {
				if l.Seq != int64(i+1) {
					t.Fatalf("line %d has seq %d", i, l.Seq)
				}
				texts = append(texts, l.Text)
			}
			if fmt.Sprint(texts) != fmt.Sprint(tc.want) {
				t.Fatalf("log %q, want %q", texts, tc.want)
			}
		})
	}
}

// The default cap is 4 MiB.
func TestLogDefaultCap(t *testing.T) {
	db, _ := open(t)
	if db.maxLogBytes != 4<<20 {
		t.Fatalf("default cap %d", db.maxLogBytes)
	}
}

// A log longer than one INSERT's rows is stored whole and in order.
func TestLogManyLines(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	b := mustCreate(t, db, newBuild("git", "./cmd/app"))
	var sb strings.Builder
	for i := range 3*linesPerInsert + 7 {
		fmt.Fprintf(&sb, "line %d\n", i)
	}
	if _, err := db.AppendLog(ctx, b.ID, sb.String()); err != nil {
		t.Fatal(err)
	}
	got, err := db.Log(ctx, b.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*linesPerInsert+7 || got[len(got)-1].Text != fmt.Sprintf("line %d", 3*linesPerInsert+6) {
		t.Fatalf("%d lines, last %+v", len(got), got[len(got)-1])
	}
}

// AppendLog returns what it stored: cleaned text, numbers, the cap's line,
// and nothing once the log is cut.
func TestAppendLogReturnsStored(t *testing.T) {
	db, _ := open(t, WithMaxLogBytes(12))
	ctx := context.Background()
	b := mustCreate(t, db, newBuild("git", "./cmd/app"))
	for _, c := range []struct{ text, want string }{
		{"a\xff\n", "[{1 a\uFFFD}]"},
		{"bb\ncc\ndddd\n", "[{2 bb} {3 cc} {4 log truncated at 12 bytes}]"},
		{"more\n", "[]"},
	} {
		got, err := db.AppendLog(ctx, b.ID, c.text)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := db.Log(ctx, b.ID, 0)
		if s := fmt.Sprint(got); s != c.want && !(c.want == "[]" && len(got) == 0) {
			t.Errorf("AppendLog(%q) = %s, want %s (stored: %v)", c.text, s, c.want, stored)
		}
	}
}
