package imageref

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"lay", "a:b/c", "my:dir", "C:/img/dir", "x"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"img.tar", "odd:name.tar"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in := func(p string) string { return filepath.Join(dir, p) }
	for _, tc := range []struct {
		ref  string
		want Ref
		err  string
	}{
		{ref: "oci:lay", want: Ref{OCI, in("lay"), ""}},
		{ref: "oci:lay:v1", want: Ref{OCI, in("lay"), "v1"}},
		{ref: "oci:lay:kiln.local/app:v1", want: Ref{OCI, in("lay"), "kiln.local/app:v1"}},
		{ref: "oci:lay:example.test/a/b@sha256:abc", want: Ref{OCI, in("lay"), "example.test/a/b@sha256:abc"}},
		{ref: "oci:my:dir", want: Ref{OCI, in("my:dir"), ""}},
		{ref: "oci:my:dir:v1", want: Ref{OCI, in("my:dir"), "v1"}},
		{ref: "oci:a:b/c", want: Ref{OCI, in("a:b/c"), ""}},
		{ref: "oci:a:b/c:feature/x", want: Ref{OCI, in("a:b/c"), "feature/x"}},
		{ref: "oci:C:/img/dir", want: Ref{OCI, in("C:/img/dir"), ""}},
		{ref: "oci:" + in("lay") + ":v1", want: Ref{OCI, in("lay"), "v1"}},
		{ref: "oci-archive:img.tar", want: Ref{OCIArchive, in("img.tar"), ""}},
		{ref: "oci-archive:img.tar:app/x:v2", want: Ref{OCIArchive, in("img.tar"), "app/x:v2"}},
		{ref: "oci-archive:odd:name.tar:v2", want: Ref{OCIArchive, in("odd:name.tar"), "v2"}},
		{ref: "docker-archive:img.tar:repo/app:v1", want: Ref{DockerArchive, in("img.tar"), "repo/app:v1"}},
		{ref: "kiln.local/app:v1", want: Ref{Store, "", "kiln.local/app:v1"}},
		{ref: "kiln.local/app@sha256:abc", want: Ref{Store, "", "kiln.local/app@sha256:abc"}},
		{ref: "localhost:5000/app:v1", want: Ref{Registry, "", "localhost:5000/app:v1"}},
		{ref: "kiln.localx/app", want: Ref{Registry, "", "kiln.localx/app"}},

		{ref: "oci:", err: "no path given"},
		{ref: "oci:lay:", err: "lay: empty name after ':'"},
		{ref: "oci:nowhere", err: "nowhere: no such directory"},
		{ref: "oci:nowhere:v1", err: "nowhere: no such directory"},
		{ref: "oci:img.tar", err: "img.tar is not a directory"},
		{ref: "oci-archive:lay", err: "lay is a directory, not a file"},
		{ref: "oci-archive:missing.tar:v1", err: "missing.tar: no such file"},
		{ref: "docker-archive:", err: "no path given"},
	} {
		got, err := Parse(tc.ref, dir)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %+v, %v; want error %q", tc.ref, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.ref, got, err, tc.want)
		}
	}
}

func TestParseRelativeToProcess(t *testing.T) {
	got, err := Parse("oci:.", "")
	if err != nil || got != (Ref{OCI, ".", ""}) {
		t.Errorf("Parse(oci:.) = %+v, %v", got, err)
	}
}
