package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxJSON is the largest JSON message body ReadJSON and WriteJSON accept.
const MaxJSON = 64 << 20

// maxJSON is MaxJSON, lowered by tests.
var maxJSON = MaxJSON

// ErrJSON means a length-prefixed JSON message was malformed: empty,
// longer than MaxJSON, or not valid JSON for the target.
var ErrJSON = errors.New("malformed JSON message")

// WriteJSON writes v as one message: le32 length, then that many bytes of
// JSON. The message goes out in a single Write. It fails with an error
// wrapping ErrJSON, writing nothing, if v does not marshal or its JSON is
// longer than MaxJSON.
func WriteJSON(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write json %T: %w: %w", v, ErrJSON, err)
	}
	return writeMessage(w, body, "json", v)
}

// writeMessage writes body, the encoding of v, as one message: le32
// length, then body, in a single Write; kind and v's type name it in
// errors. A body longer than MaxJSON is refused (ErrJSON), writing
// nothing.
func writeMessage(w io.Writer, body []byte, kind string, v any) error {
	if len(body) > maxJSON {
		return fmt.Errorf("write %s %T: %d bytes, more than %d: %w", kind, v, len(body), maxJSON, ErrJSON)
	}
	msg := make([]byte, 4+len(body))
	binary.LittleEndian.PutUint32(msg, uint32(len(body)))
	copy(msg[4:], body)
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("write %s %T: %w", kind, v, err)
	}
	return nil
}

// ReadJSON reads one message written by WriteJSON and unmarshals it into
// v. It returns io.EOF if r ends before the first byte, an error wrapping
// io.ErrUnexpectedEOF if r ends inside the message, and one wrapping
// ErrJSON if the length is zero or above MaxJSON or the body does not
// unmarshal into v. Unknown fields are ignored, so fields can be added.
func ReadJSON(r io.Reader, v any) error {
	body, err := readMessage(r, "json", v)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("read json %T: %w: %w", v, ErrJSON, err)
	}
	return nil
}

// readMessage reads one message written by writeMessage and returns its
// body, with ReadJSON's errors for the framing; kind and v's type name the
// message in errors.
func readMessage(r io.Reader, kind string, v any) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read %s %T length: %w", kind, v, err)
	}
	n := binary.LittleEndian.Uint32(h[:])
	switch {
	case n == 0:
		return nil, fmt.Errorf("read %s %T: zero length: %w", kind, v, ErrJSON)
	case n > uint32(maxJSON):
		return nil, fmt.Errorf("read %s %T: length %d exceeds %d: %w", kind, v, n, maxJSON, ErrJSON)
	}
	// Grow with the data actually received, not the declared length.
	var body bytes.Buffer
	body.Grow(int(min(n, 64<<10)))
	if _, err := io.CopyN(&body, r, int64(n)); err != nil {
		return nil, fmt.Errorf("read %s %T body of %d bytes: %w", kind, v, n, noEOF(err))
	}
	return body.Bytes(), nil
}
