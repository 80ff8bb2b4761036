package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestNameJSON checks that names that are not UTF-8 cross JSON byte for
// byte, and that UTF-8 names keep the plain form earlier versions wrote.
func TestNameJSON(t *testing.T) {
	for _, name := range []Name{"", "plain", "caf\u00e9", "caf\xe9", "a\xffb", "a\xfeb", "caf\ufffd", "cut\xc3", Name(strings.Repeat("\xff", 255))} {
		req := MetaRequest{Op: OpRename, Name: name, NewName: name + "2", Target: name}
		b, err := json.Marshal(&req)
		if err != nil {
			t.Fatalf("marshal %q: %v", name, err)
		}
		var got MetaRequest
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if got.Name != name || got.NewName != name+"2" || got.Target != name {
			t.Errorf("%q: got back %q, %q, %q from %s", name, got.Name, got.NewName, got.Target, b)
		}
	}
	b, err := json.Marshal(DirEntry{Name: "caf\u00e9"})
	if err != nil || string(b) != `{"name":"café","ino":0,"mode":0}` {
		t.Errorf("a UTF-8 name: got %s, %v, want the plain string", b, err)
	}
	var old MetaRequest
	if err := json.Unmarshal([]byte(`{"op":2,"name":"old"}`), &old); err != nil || old.Name != "old" {
		t.Errorf("an earlier version's name: got %q, %v", old.Name, err)
	}
	if err := json.Unmarshal([]byte(`{"name":"\u0000***"}`), &old); err == nil {
		t.Errorf("a NUL and bad base64: got %q, want an error", old.Name)
	}
	resp := MetaResponse{Names: []Name{"user.\xff", "user.a"}}
	b, _ = json.Marshal(&resp)
	var gotResp MetaResponse
	if err := json.Unmarshal(b, &gotResp); err != nil || len(gotResp.Names) != 2 || gotResp.Names[0] != "user.\xff" {
		t.Errorf("xattr names: got %q, %v from %s", gotResp.Names, err, b)
	}
}

// FuzzNameText checks that any name without NUL survives MarshalText and
// UnmarshalText, and that UnmarshalText of any text never panics.
func FuzzNameText(f *testing.F) {
	for _, s := range []string{"", "a", "caf\xe9", "\x00", "\x00YQ==", "\x00!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var n Name
		_ = n.UnmarshalText([]byte(s))
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		text, err := Name(s).MarshalText()
		if err != nil {
			t.Fatalf("marshal %q: %v", s, err)
		}
		if err := n.UnmarshalText(text); err != nil || n != Name(s) {
			t.Fatalf("%q: got back %q, %v", s, n, err)
		}
	})
}
