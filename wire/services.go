package wire

// Service names a SYN may ask for. New services get new names; a name is
// never reused for a different protocol.
const (
	// ServiceMeta carries metadata requests: MetaRequest and MetaResponse
	// messages in WriteJSON framing, one response per request, in order.
	ServiceMeta = "meta"

	// ServiceChunks carries the casync chunk protocol (WriteCasync):
	// pushes and pulls of chunks and shards.
	ServiceChunks = "chunks"
)
