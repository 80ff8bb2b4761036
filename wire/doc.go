// Package wire owns every byte format that crosses a shoal connection. It
// imports nothing else of shoal's. PROTOCOL.md in this folder is the
// normative description; this comment is the map.
//
// # Streams
//
// A Session multiplexes many byte streams over one net.Conn in the manner
// of i2p ministreaming: each frame is a type byte, a 3-byte stream id and,
// as shoal's extension, a 4-byte payload length. Either side may Open a
// stream to a named service the other offers (ServiceMeta, ServiceChunks);
// the other side Accepts it. Per-stream credit (WINDOW frames) keeps one
// busy stream from starving the rest, and a single writer goroutine
// interleaves DATA frames of at most MaxDataFrame bytes from all streams in
// turn. A malformed frame ends the whole session with an error wrapping
// ErrProtocol that says what was wrong (Session.Err).
//
// # Messages on streams
//
// The chunk service speaks casync's protocol (caprotocol.h) exactly:
// WriteCasync and ReadCasync handle its messages, EncodeIndex and
// DecodeIndex its index payload (casync's .caibx layout with SHA-256 ids).
// The metadata service sends MetaRequest and MetaResponse as length-prefixed
// JSON (WriteJSON, ReadJSON). The peer service (ServicePeer) carries the
// same messages after a handshake (PeerHello, PeerChallenge, PeerProof,
// PeerResult; PeerMAC) in which both ends prove they know the cluster
// secret; node-to-node traffic (forwarding to the leader, joins) and
// operators' membership changes use it. NodeInfo and NodeStatus describe
// the cluster's members.
//
// # Errors
//
// Malformed input is reported with errors wrapping ErrProtocol, ErrCasync,
// ErrIndex or ErrJSON; ended sessions and streams with ErrSessionClosed and
// ErrStreamClosed; a refused Open with ErrServiceUnavailable. Test them with
// errors.Is.
package wire
