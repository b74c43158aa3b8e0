package config

import "testing"

func TestCapabilityNumber(t *testing.T) {
	for _, tc := range []struct {
		name    string
		want    int
		wantErr bool
	}{
		{"CAP_CHOWN", 0, false},
		{"chown", 0, false},
		{"CAP_NET_BIND_SERVICE", 10, false},
		{"net_bind_service", 10, false},
		{"Cap_Net_Bind_Service", 10, false},
		{"SETFCAP", 31, false},
		{"mac_override", 32, false},
		{"bpf", 39, false},
		{"CAP_CHECKPOINT_RESTORE", 40, false},
		{"41", 41, false},
		{"63", 63, false},
		{"64", 0, true},
		{"", 0, true},
		{"all", 0, true},
		{"CAP_", 0, true},
		{"net-bind-service", 0, true},
	} {
		got, err := CapabilityNumber(tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("CapabilityNumber(%q) = %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseCapabilities(t *testing.T) {
	const (
		chown = 1 << 0
		net   = 1 << 10
		bpf   = 1 << 39
		all   = 1<<41 - 1
	)
	for _, tc := range []struct {
		terms   []string
		want    Capabilities
		wantErr bool
	}{
		{nil, Capabilities{}, false},
		{[]string{"net_bind_service"}, Capabilities{Permitted: net}, false},
		{[]string{"CAP_NET_BIND_SERVICE", "chown"}, Capabilities{Permitted: net | chown}, false},
		{[]string{"net_bind_service=ep"}, Capabilities{Permitted: net, Effective: true}, false},
		{[]string{"bpf,chown+p"}, Capabilities{Permitted: bpf | chown}, false},
		{[]string{"chown=pie"}, Capabilities{Permitted: chown, Inheritable: chown, Effective: true}, false},
		{[]string{"=p"}, Capabilities{Permitted: all}, false},
		{[]string{"all=p", "chown-p"}, Capabilities{Permitted: all &^ chown}, false},
		{[]string{"chown", "chown="}, Capabilities{}, false},
		{[]string{"chown-p"}, Capabilities{}, false},
		{[]string{"nope"}, Capabilities{}, true},
		{[]string{"chown,nope=p"}, Capabilities{}, true},
		{[]string{"chown=x"}, Capabilities{}, true},
	} {
		got, err := ParseCapabilities(tc.terms)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseCapabilities(%q) = %+v, %v; want %+v, error %v", tc.terms, got, err, tc.want, tc.wantErr)
		}
	}
}
