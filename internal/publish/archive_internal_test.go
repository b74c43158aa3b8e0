package publish

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAtomic(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		existing string // "" means no file yet
		write    func(io.Writer) error
		want     string // the file's content afterwards; "" means absent
		err      error
	}{
		{"new file", "", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, "new", nil},
		{"replaces", "old", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, "new", nil},
		{"failure leaves no file", "", func(w io.Writer) error { io.WriteString(w, "half"); return boom }, "", boom},
		{"failure keeps the old file", "old", func(w io.Writer) error { io.WriteString(w, "half"); return boom }, "old", boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "out.tar")
			if tc.existing != "" {
				if err := os.WriteFile(file, []byte(tc.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := writeAtomic(file, tc.write)
			if !errors.Is(err, tc.err) {
				t.Fatalf("writeAtomic = %v, want %v", err, tc.err)
			}
			es, _ := os.ReadDir(dir)
			if tc.want == "" {
				if len(es) != 0 {
					t.Errorf("left %v", es)
				}
				return
			}
			if len(es) != 1 {
				t.Errorf("directory holds %v, want only out.tar", es)
			}
			b, err := os.ReadFile(file)
			if err != nil || string(b) != tc.want {
				t.Errorf("out.tar = %q (%v), want %q", b, err, tc.want)
			}
			if st, _ := os.Stat(file); tc.err == nil && st.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want -rw-r--r--", st.Mode())
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		err := writeAtomic(filepath.Join(t.TempDir(), "no", "out.tar"), func(io.Writer) error { return nil })
		if !errors.Is(err, ErrNotWritable) {
			t.Errorf("writeAtomic = %v, want ErrNotWritable", err)
		}
	})
}
