package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// ChunkID is a chunk's id, the SHA-256 of its plain bytes, as metadata
// messages carry it. It marshals to JSON as a string of 64 lowercase hex
// digits. It unmarshals from that or from an array of 32 numbers, the form
// encoding/json gives a plain [32]byte, in which the Raft logs and
// messages of earlier versions hold ids.
type ChunkID [32]byte

// MarshalJSON implements json.Marshaler.
func (id ChunkID) MarshalJSON() ([]byte, error) {
	b := make([]byte, 2+hex.EncodedLen(len(id)))
	b[0], b[len(b)-1] = '"', '"'
	hex.Encode(b[1:len(b)-1], id[:])
	return b, nil
}

// UnmarshalJSON implements json.Unmarshaler. JSON null leaves id as it is.
func (id *ChunkID) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '[':
		var a []byte // an array of numbers, not base64, since it starts with '['
		if err := json.Unmarshal(b, &a); err != nil {
			return fmt.Errorf("chunk id: %w", err)
		}
		if len(a) != len(id) {
			return fmt.Errorf("chunk id: an array of %d numbers, want %d", len(a), len(id))
		}
		*id = ChunkID(a)
		return nil
	case len(b) != 2+hex.EncodedLen(len(id)) || b[0] != '"' || b[len(b)-1] != '"':
		return fmt.Errorf("chunk id %.80s: not a string of %d hex digits", b, hex.EncodedLen(len(id)))
	}
	if _, err := hex.Decode(id[:], b[1:len(b)-1]); err != nil {
		return fmt.Errorf("chunk id %s: %w", b, err)
	}
	return nil
}
