package wire

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// Name is a file name, a symbolic link's target or an extended attribute's
// name as Linux gives it: any bytes but NUL, not necessarily UTF-8 (a
// name in Latin-1 from an old archive is as good a name as any). JSON
// strings hold only Unicode, and encoding/json would replace each byte
// that is not part of valid UTF-8 with U+FFFD, so that "a\xff" and "a\xfe"
// became one name. A Name therefore marshals as its own text when that is
// valid UTF-8, and otherwise as a NUL character followed by the standard
// base64 encoding (with padding) of its bytes; no Linux name holds a NUL,
// so the two forms cannot be confused.
type Name string

// MarshalText implements encoding.TextMarshaler.
func (n Name) MarshalText() ([]byte, error) {
	if utf8.ValidString(string(n)) {
		return []byte(n), nil
	}
	b := make([]byte, 1+base64.StdEncoding.EncodedLen(len(n)))
	base64.StdEncoding.Encode(b[1:], []byte(n))
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler: it takes either form
// MarshalText gives.
func (n *Name) UnmarshalText(b []byte) error {
	if len(b) == 0 || b[0] != 0 {
		*n = Name(b)
		return nil
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(b)-1))
	k, err := base64.StdEncoding.Decode(raw, b[1:])
	if err != nil {
		return fmt.Errorf("name %q: a NUL must begin base64: %w", b, err)
	}
	*n = Name(raw[:k])
	return nil
}
