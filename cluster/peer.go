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

// maxHandshakeBytes is the most a responder reads of the opener's hello
// and proof together.
const maxHandshakeBytes = 4 << 10

// handshakeConn is what the handshake runs on: a wire stream or a TCP
// connection.
type handshakeConn interface {
	io.ReadWriter
	SetDeadline(t time.Time) error
}

// peerHello runs the opener's side of the peer stream handshake on st.
func peerHello(ctx context.Context, st *wire.Stream, secret []byte) error {
	return handshakeOpen(ctx, st, secret, wire.PeerStreamRoles, "peer")
}

// handshakeOpen runs the opener's side of the handshake on c: it proves to
// the node that it knows secret and checks that the node knows it too.
// what names the service in errors.
func handshakeOpen(ctx context.Context, c handshakeConn, secret []byte, roles wire.PeerRoles, what string) error {
	dl := time.Now().Add(peerHandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.SetDeadline(dl)
	defer c.SetDeadline(time.Time{})
	mine := make([]byte, wire.PeerNonceLen)
	rand.Read(mine)
	if err := wire.WriteJSON(c, &wire.PeerHello{Nonce: mine}); err != nil {
		return fmt.Errorf("%s hello: %w: %w", what, err, ErrUnavailable)
	}
	var ch wire.PeerChallenge
	if err := wire.ReadJSON(c, &ch); err != nil {
		return fmt.Errorf("%s challenge: %w: %w", what, err, ErrUnavailable)
	}
	if len(ch.Nonce) != wire.PeerNonceLen || !hmac.Equal(ch.MAC, wire.PeerMAC(secret, roles.Server, mine, ch.Nonce)) {
		return fmt.Errorf("%s challenge: the node does not know the cluster secret: %w", what, ErrBadSecret)
	}
	if err := wire.WriteJSON(c, &wire.PeerProof{MAC: wire.PeerMAC(secret, roles.Client, ch.Nonce, mine)}); err != nil {
		return fmt.Errorf("%s proof: %w: %w", what, err, ErrUnavailable)
	}
	var res wire.PeerResult
	if err := wire.ReadJSON(c, &res); err != nil {
		return fmt.Errorf("%s result: %w: %w", what, err, ErrUnavailable)
	}
	if res.Errno != 0 {
		return fmt.Errorf("%s result: %s: %w", what, res.Reason, ErrBadSecret)
	}
	return nil
}

// peerAccept runs the responder's side of the peer stream handshake on st
// and reports whether the opener proved that it knows the node's secret.
func (n *Node) peerAccept(st *wire.Stream) error {
	return handshakeAccept(st, n.cfg.Secret, wire.PeerStreamRoles, "peer")
}

// handshakeAccept runs the responder's side of the handshake on c and
// reports whether the opener proved that it knows secret. With no secret
// nobody can.
func handshakeAccept(c handshakeConn, secret []byte, roles wire.PeerRoles, what string) error {
	c.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	defer c.SetDeadline(time.Time{})
	// The opener's two messages are a few hundred bytes: one that claims
	// more is not read (or buffered) past this.
	in := &io.LimitedReader{R: c, N: maxHandshakeBytes}
	var hello wire.PeerHello
	if err := wire.ReadJSON(in, &hello); err != nil {
		return fmt.Errorf("%s hello: %w", what, err)
	}
	if len(hello.Nonce) != wire.PeerNonceLen {
		return fmt.Errorf("%s hello: nonce of %d bytes, want %d: %w", what, len(hello.Nonce), wire.PeerNonceLen, ErrBadSecret)
	}
	mine := make([]byte, wire.PeerNonceLen)
	rand.Read(mine)
	key := secret
	if len(key) == 0 {
		// With no secret nobody is a peer; still answer with a MAC under
		// a random key, so that the opener learns nothing.
		key = make([]byte, 32)
		rand.Read(key)
	}
	ch := wire.PeerChallenge{Nonce: mine, MAC: wire.PeerMAC(key, roles.Server, hello.Nonce, mine)}
	if err := wire.WriteJSON(c, &ch); err != nil {
		return fmt.Errorf("%s challenge: %w", what, err)
	}
	var proof wire.PeerProof
	if err := wire.ReadJSON(in, &proof); err != nil {
		return fmt.Errorf("%s proof: %w", what, err)
	}
	if len(secret) == 0 || !hmac.Equal(proof.MAC, wire.PeerMAC(key, roles.Client, mine, hello.Nonce)) {
		wire.WriteJSON(c, &wire.PeerResult{Errno: uint32(syscall.EACCES), Reason: "bad cluster secret"})
		return fmt.Errorf("%s proof: %w", what, ErrBadSecret)
	}
	if err := wire.WriteJSON(c, &wire.PeerResult{}); err != nil {
		return fmt.Errorf("%s result: %w", what, err)
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
		if err := wire.ReadMetaRequest(st, &req); err != nil {
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
