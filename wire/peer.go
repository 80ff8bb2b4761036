package wire

import (
	"crypto/hmac"
	"crypto/sha256"
)

// This file holds the peer service's handshake: before a stream carries
// privileged metadata requests (joins, removals, requests a node forwards
// to the leader), each side proves it knows the cluster secret without
// sending it (PROTOCOL.md §5).

// PeerNonceLen is the length in bytes of a handshake nonce.
const PeerNonceLen = 32

// PeerHello opens the handshake: the opener's fresh random nonce.
type PeerHello struct {
	Nonce []byte `json:"nonce"`
}

// PeerChallenge answers PeerHello: the responder's fresh nonce and its
// proof, PeerMAC(secret, PeerRoleServer, hello nonce, this nonce).
type PeerChallenge struct {
	Nonce []byte `json:"nonce"`
	MAC   []byte `json:"mac"`
}

// PeerProof is the opener's proof: PeerMAC(secret, PeerRoleClient,
// challenge nonce, hello nonce).
type PeerProof struct {
	MAC []byte `json:"mac"`
}

// PeerResult ends the handshake: Errno 0 means the proof was good and the
// stream now carries MetaRequest/MetaResponse pairs; 13 (EACCES) means it
// was not, and the responder closes the stream.
type PeerResult struct {
	Errno  uint32 `json:"errno,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Roles mixed into PeerMAC so that one side's proof is never valid as the
// other's.
const (
	PeerRoleServer = "shoal peer responder v1"
	PeerRoleClient = "shoal peer opener v1"
)

// Roles of the same handshake at the start of a connection to a node's
// Raft port (PROTOCOL.md §5.4), so that a proof made for one service is
// never valid for the other.
const (
	RaftRoleServer = "shoal raft responder v1"
	RaftRoleClient = "shoal raft opener v1"
)

// PeerRoles names the two roles of one use of the handshake.
type PeerRoles struct {
	Server, Client string
}

// The handshakes: peer streams, and connections to the Raft port.
var (
	PeerStreamRoles = PeerRoles{Server: PeerRoleServer, Client: PeerRoleClient}
	RaftConnRoles   = PeerRoles{Server: RaftRoleServer, Client: RaftRoleClient}
)

// PeerMAC returns HMAC-SHA256 keyed by secret over role, a NUL byte, then
// the nonces a and b.
func PeerMAC(secret []byte, role string, a, b []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(role))
	m.Write([]byte{0})
	m.Write(a)
	m.Write(b)
	return m.Sum(nil)
}
