package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// A MetaRequest whose blocks carry inline chunks (Block.Data) is encoded as
// a meta envelope rather than as plain JSON, both on the metadata stream and
// in the Raft log: encoding/json checks and unquotes a base64 string byte by
// byte, and a node decodes each commit twice on its way (the request, then
// the log entry), which cost about 0.2 ms of a 13 KiB file's commit. The
// envelope is
//
//	0x01                      (a JSON text never starts with it)
//	uvarint H, then H bytes   the request as JSON, without any Block.Data
//	uvarint N                 the number of blocks with inline bytes
//	N times:
//	  uvarint P               the block's position in Blocks, increasing
//	  uvarint L, then L bytes its Data (L at least 1)
//
// and nothing after. A request without inline bytes is plain JSON, as
// before, and decoders take plain JSON in any case. The envelope carries
// the bytes; whether a Commit's inline chunks are within MaxInlineChunk
// and MaxInlineCommit is for its receiver to check, as with JSON.

// metaEnvelope is the first byte of a meta envelope.
const metaEnvelope = 0x01

// EncodeMetaRequest encodes req: as a meta envelope if a block carries
// inline bytes, else as plain JSON.
func EncodeMetaRequest(req *MetaRequest) ([]byte, error) {
	inline := 0
	for _, b := range req.Blocks {
		if len(b.Data) > 0 {
			inline++
		}
	}
	if inline == 0 {
		data, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("encode meta request op %d: %w", req.Op, err)
		}
		return data, nil
	}
	head := *req
	head.Blocks = make([]Block, len(req.Blocks))
	size := 0
	for i, b := range req.Blocks {
		head.Blocks[i] = b
		head.Blocks[i].Data = nil
		size += len(b.Data) + 2*binary.MaxVarintLen32
	}
	js, err := json.Marshal(&head)
	if err != nil {
		return nil, fmt.Errorf("encode meta request op %d: %w", req.Op, err)
	}
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(js)+binary.MaxVarintLen32+size)
	out = append(out, metaEnvelope)
	out = binary.AppendUvarint(out, uint64(len(js)))
	out = append(out, js...)
	out = binary.AppendUvarint(out, uint64(inline))
	for i, b := range req.Blocks {
		if len(b.Data) == 0 {
			continue
		}
		out = binary.AppendUvarint(out, uint64(i))
		out = binary.AppendUvarint(out, uint64(len(b.Data)))
		out = append(out, b.Data...)
	}
	return out, nil
}

// DecodeMetaRequest decodes data, a meta envelope or plain JSON, into req.
// The inline bytes are copied out of data. A malformed envelope gives an
// error wrapping ErrJSON.
func DecodeMetaRequest(data []byte, req *MetaRequest) error {
	if len(data) == 0 || data[0] != metaEnvelope {
		if err := json.Unmarshal(data, req); err != nil {
			return fmt.Errorf("decode meta request: %w: %w", ErrJSON, err)
		}
		return nil
	}
	rest := data[1:]
	next := func(what string) (uint64, error) {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return 0, fmt.Errorf("decode meta envelope: bad %s: %w", what, ErrJSON)
		}
		rest = rest[n:]
		return v, nil
	}
	h, err := next("header length")
	if err != nil {
		return err
	}
	if h > uint64(len(rest)) {
		return fmt.Errorf("decode meta envelope: header of %d bytes, %d left: %w", h, len(rest), ErrJSON)
	}
	if err := json.Unmarshal(rest[:h], req); err != nil {
		return fmt.Errorf("decode meta envelope header: %w: %w", ErrJSON, err)
	}
	rest = rest[h:]
	for _, b := range req.Blocks {
		if b.Data != nil {
			return fmt.Errorf("decode meta envelope: inline bytes in the header: %w", ErrJSON)
		}
	}
	count, err := next("block count")
	if err != nil {
		return err
	}
	if count == 0 || count > uint64(len(req.Blocks)) {
		return fmt.Errorf("decode meta envelope: %d inline blocks of %d: %w", count, len(req.Blocks), ErrJSON)
	}
	first := true
	var last uint64
	for range count {
		pos, err := next("block position")
		if err != nil {
			return err
		}
		if pos >= uint64(len(req.Blocks)) || !first && pos <= last {
			return fmt.Errorf("decode meta envelope: block position %d out of order or range: %w", pos, ErrJSON)
		}
		first, last = false, pos
		n, err := next("inline length")
		if err != nil {
			return err
		}
		if n == 0 || n > uint64(len(rest)) {
			return fmt.Errorf("decode meta envelope: inline block of %d bytes (%d left): %w", n, len(rest), ErrJSON)
		}
		req.Blocks[pos].Data = bytes.Clone(rest[:n])
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("decode meta envelope: %d bytes after the last block: %w", len(rest), ErrJSON)
	}
	return nil
}

// WriteMetaRequest writes req as one message framed as WriteJSON frames
// one (le32 length, then the body), its body encoded by EncodeMetaRequest.
func WriteMetaRequest(w io.Writer, req *MetaRequest) error {
	body, err := EncodeMetaRequest(req)
	if err != nil {
		return fmt.Errorf("write meta request: %w: %w", ErrJSON, err)
	}
	return writeMessage(w, body, "meta request", req)
}

// ReadMetaRequest reads one message written by WriteMetaRequest (or by
// WriteJSON of a MetaRequest) into req, with ReadJSON's errors.
func ReadMetaRequest(r io.Reader, req *MetaRequest) error {
	body, err := readMessage(r, "meta request", req)
	if err != nil {
		return err
	}
	if err := DecodeMetaRequest(body, req); err != nil {
		return fmt.Errorf("read meta request: %w", err)
	}
	return nil
}
