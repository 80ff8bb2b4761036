package wire

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func TestChunkIDJSON(t *testing.T) {
	want := Block{Index: 1, ID: ChunkID(id(7)), Len: 3, Data: []byte("abc")}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	raw := id(7)
	hexID := hex.EncodeToString(raw[:])
	if !strings.Contains(string(b), `"id":"`+hexID+`"`) {
		t.Errorf("marshaled %s, want the id as a hex string", b)
	}
	var got Block
	if err := json.Unmarshal(b, &got); err != nil || got.ID != want.ID {
		t.Fatalf("round trip: got %x, %v; want %x", got.ID, err, want.ID)
	}

	// Logs written before ids were hex hold them as arrays of numbers.
	old, _ := json.Marshal(struct {
		ID [32]byte `json:"id"`
	}{id(7)})
	got = Block{}
	if err := json.Unmarshal(old, &got); err != nil || got.ID != want.ID {
		t.Fatalf("array form %s: got %x, %v; want %x", old, got.ID, err, want.ID)
	}

	got = Block{ID: want.ID}
	if err := json.Unmarshal([]byte(`{"id":null}`), &got); err != nil || got.ID != want.ID {
		t.Errorf("null: got %x, %v; want it left as it was", got.ID, err)
	}

	for _, bad := range []string{
		`"` + hexID[:62] + `"`,   // short
		`"` + hexID + `00"`,      // long
		`"` + hexID[:62] + `zz"`, // not hex
		`"` + strings.ToUpper(hexID[:62]) + `0G"`,
		`7`,       // a number
		`[1,2,3]`, // an array too short
		`[` + strings.Repeat("256,", 31) + `256]`, // numbers past a byte
		`{}`,
	} {
		var id ChunkID
		if err := json.Unmarshal([]byte(bad), &id); err == nil {
			t.Errorf("%s: decoded to %x, want an error", bad, id)
		}
	}
}
