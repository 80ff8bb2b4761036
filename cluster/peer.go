package cluster

// This file holds the peer service: metadata requests between the members
// of a cluster (and from operators' commands) on streams whose two ends have
// proved that they know the cluster secret. Only there does a node accept
// OpJoin, OpLeave and requests another node forwards to the leader.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"shoal/wire"
)

// ErrBadSecret means the other end of a peer stream does not know the
// cluster secret (or this node has none configured). It is not transient.
var ErrBadSecret = errors.New("cluster secret not accepted")

// peerHandshakeTimeout bounds the handshake at the start of a peer stream.
const peerHandshakeTimeout = 10 * time.Second

// peerHello runs the opener's side of the handshake on st: it proves to the
// node that it knows secret and checks that the node knows it too.
func peerHello(ctx context.Context, st *wire.Stream, secret []byte) error {
	dl := time.Now().Add(peerHandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	st.SetDeadline(dl)
	defer st.SetDeadline(time.Time{})
	mine := make([]byte, wire.PeerNonceLen)
	rand.Read(mine)
	if err := wire.WriteJSON(st, &wire.PeerHello{Nonce: mine}); err != nil {
		return fmt.Errorf("peer hello: %w: %w", err, ErrUnavailable)
	}
	var ch wire.PeerChallenge
	if err := wire.ReadJSON(st, &ch); err != nil {
		return fmt.Errorf("peer challenge: %w: %w", err, ErrUnavailable)
	}
	if len(ch.Nonce) != wire.PeerNonceLen || !hmac.Equal(ch.MAC, wire.PeerMAC(secret, wire.PeerRoleServer, mine, ch.Nonce)) {
		return fmt.Errorf("peer challenge: the node does not know the cluster secret: %w", ErrBadSecret)
	}
	if err := wire.WriteJSON(st, &wire.PeerProof{MAC: wire.PeerMAC(secret, wire.PeerRoleClient, ch.Nonce, mine)}); err != nil {
		return fmt.Errorf("peer proof: %w: %w", err, ErrUnavailable)
	}
	var res wire.PeerResult
	if err := wire.ReadJSON(st, &res); err != nil {
		return fmt.Errorf("peer result: %w: %w", err, ErrUnavailable)
	}
	if res.Errno != 0 {
		return fmt.Errorf("peer result: %s: %w", res.Reason, ErrBadSecret)
	}
	return nil
}

// peerAccept runs the responder's side of the handshake on st and reports
// whether the opener proved that it knows the node's secret.
func (n *Node) peerAccept(st *wire.Stream) error {
	st.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	defer st.SetDeadline(time.Time{})
	var hello wire.PeerHello
	if err := wire.ReadJSON(st, &hello); err != nil {
		return fmt.Errorf("peer hello: %w", err)
	}
	if len(hello.Nonce) != wire.PeerNonceLen {
		return fmt.Errorf("peer hello: nonce of %d bytes, want %d: %w", len(hello.Nonce), wire.PeerNonceLen, ErrBadSecret)
	}
	mine := make([]byte, wire.PeerNonceLen)
	rand.Read(mine)
	secret := n.cfg.Secret
	if len(secret) == 0 {
		// With no secret nobody is a peer; still answer with a MAC under
		// a random key, so that the opener learns nothing.
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	ch := wire.PeerChallenge{Nonce: mine, MAC: wire.PeerMAC(secret, wire.PeerRoleServer, hello.Nonce, mine)}
	if err := wire.WriteJSON(st, &ch); err != nil {
		return fmt.Errorf("peer challenge: %w", err)
	}
	var proof wire.PeerProof
	if err := wire.ReadJSON(st, &proof); err != nil {
		return fmt.Errorf("peer proof: %w", err)
	}
	if len(n.cfg.Secret) == 0 || !hmac.Equal(proof.MAC, wire.PeerMAC(secret, wire.PeerRoleClient, mine, hello.Nonce)) {
		wire.WriteJSON(st, &wire.PeerResult{Errno: uint32(syscall.EACCES), Reason: "bad cluster secret"})
		return fmt.Errorf("peer proof: %w", ErrBadSecret)
	}
	if err := wire.WriteJSON(st, &wire.PeerResult{}); err != nil {
		return fmt.Errorf("peer result: %w", err)
	}
	return nil
}

// servePeer authenticates a peer stream, then answers its metadata requests
// one at a time with doPeer until the opener closes it.
func (n *Node) servePeer(st *wire.Stream, remote string) {
	if err := n.peerAccept(st); err != nil {
		n.log.Warn("peer refused", "peer", remote, "err", err)
		return
	}
	for {
		var req MetaRequest
		if err := wire.ReadJSON(st, &req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, wire.ErrSessionClosed) {
				n.log.Warn("peer stream", "peer", remote, "err", err)
			}
			return
		}
		resp, err := n.doPeer(context.Background(), &req)
		if err != nil && (resp == nil || resp.Errno == 0) {
			resp = &MetaResponse{Errno: uint32(errnoOf(err)), Reason: err.Error(), Unavailable: errors.Is(err, ErrNotLeader)}
		}
		if err := wire.WriteJSON(st, resp); err != nil {
			n.log.Warn("peer stream write", "peer", remote, "err", err)
			return
		}
	}
}
