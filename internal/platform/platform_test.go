package platform

import (
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      []string
		want    Spec
		wantErr string
	}{
		{in: []string{"linux/amd64,linux/arm64"}, want: Spec{Platforms: []v1.Platform{
			{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}}},
		{in: []string{"linux/arm"}, want: Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}}}},
		{in: []string{"linux/arm/v6", "linux/arm/v6"}, want: Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "arm", Variant: "v6"}}}},
		{in: []string{"linux/amd64/v3"}, want: Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64", Variant: "v3"}}}},
		{in: []string{"all"}, want: Spec{All: true}},
		{in: []string{"local"}, want: Spec{Platforms: []v1.Platform{Host()}}},
		{in: nil, want: Spec{}},
		{in: []string{"linux/sparc"}, wantErr: `unknown platform "linux/sparc"`},
		{in: []string{"windows/amd64"}, wantErr: "linux images only"},
		{in: []string{"amd64"}, wantErr: "use os/arch"},
		{in: []string{"linux/amd64/v9"}, wantErr: "amd64 variants"},
		{in: []string{"all,linux/amd64"}, wantErr: "cannot be combined"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestGoEnv(t *testing.T) {
	got := GoEnv(v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"})
	want := []string{"GOOS=linux", "GOARCH=arm", "GOARM=6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GoEnv = %v, want %v", got, want)
	}
	got = GoEnv(v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"})
	want = []string{"GOOS=linux", "GOARCH=amd64", "GOAMD64=v3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GoEnv = %v, want %v", got, want)
	}
}

func TestBuildable(t *testing.T) {
	in := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "unknown", Architecture: "unknown"},
		{OS: "windows", Architecture: "amd64"}, {OS: "linux", Architecture: "mips"}}
	got := Buildable(in)
	if len(got) != 1 || got[0].Architecture != "amd64" {
		t.Errorf("Buildable = %v", got)
	}
}

func TestMatches(t *testing.T) {
	p := func(s string) v1.Platform {
		parts := strings.Split(s, "/")
		out := v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			out.Variant = parts[2]
		}
		return out
	}
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/arm64", false},
		{"windows/amd64", "linux/amd64", false},
		{"linux/arm/v7", "linux/arm", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm", "linux/arm/v7", false},
		{"linux/arm64", "linux/arm64/v8", true}, // an arm64 image names no variant; v8 is asked for
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/arm64/v9", false},
		{"linux/amd64", "linux/amd64/v3", false},
	} {
		if got := Matches(p(tc.have), p(tc.want)); got != tc.ok {
			t.Errorf("Matches(%s, %s) = %v, want %v", tc.have, tc.want, got, tc.ok)
		}
	}
}
