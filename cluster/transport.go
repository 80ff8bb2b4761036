package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"shoal/wire"
)

// streamLayer is Raft's TCP stream layer. Every connection starts with the
// peer handshake (peer.go) under the Raft roles: both ends prove that they
// know the cluster secret before a single Raft message crosses, so a
// stranger who reaches the port can neither vote, nor send entries or a
// snapshot, nor read the log. Accept hands Raft only connections that
// passed; each handshake runs in a goroutine of its own, so a slow stranger
// delays nobody.
//
// The advertised address is kept as written: a host name stays a name
// (node2:7421), resolved afresh at every dial, so a peer whose IP changes
// (a container restarted on a compose network) is still reached.
// raft.NewTCPTransport would resolve it once.
type streamLayer struct {
	ln        net.Listener
	advertise string
	secret    []byte
	log       *slog.Logger

	conns     chan net.Conn // connections that passed the handshake
	pending   chan struct{} // a slot per handshake running
	closed    chan struct{}
	closeOnce sync.Once
}

// newStreamLayer serves ln: it accepts connections and authenticates them
// in the background until Close.
func newStreamLayer(ln net.Listener, advertise string, secret []byte, log *slog.Logger) *streamLayer {
	s := &streamLayer{ln: ln, advertise: advertise, secret: secret, log: log, conns: make(chan net.Conn), pending: make(chan struct{}, maxRaftHandshakes), closed: make(chan struct{})}
	go s.acceptLoop()
	return s
}

// acceptLoop accepts connections until the layer is closed and
// authenticates each in its own goroutine. Other accept errors (a full
// file table) are retried after a pause that grows to a second, as Raft's
// own transport does.
func (s *streamLayer) acceptLoop() {
	var pause time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.Close()
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.log.Warn("raft accept", "err", err, "retry_in", pause)
			select {
			case <-s.closed:
				return
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		select {
		case s.pending <- struct{}{}:
			go s.authenticate(c)
		default:
			s.log.Warn("raft connection refused: too many handshakes at once", "peer", c.RemoteAddr().String(), "limit", maxRaftHandshakes)
			c.Close()
		}
	}
}

// maxRaftHandshakes bounds the handshakes a Raft port runs at once (each
// may take peerHandshakeTimeout), so that a flood of idle connections
// cannot use up the node's file descriptors. Members open a few each.
const maxRaftHandshakes = 64

// authenticate runs the responder's handshake on c and passes c on to
// Accept if the opener knows the secret, else closes it.
func (s *streamLayer) authenticate(c net.Conn) {
	defer func() { <-s.pending }()
	if err := handshakeAccept(c, s.secret, wire.RaftConnRoles, "raft"); err != nil {
		s.log.Warn("raft connection refused", "peer", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	select {
	case s.conns <- c:
	case <-s.closed:
		c.Close()
	}
}

// Accept returns the next authenticated connection (net.Listener).
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting (net.Listener).
func (s *streamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

// hostAddr is a net.Addr for a "host:port" that may name a host.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// Addr returns the advertised address (raft.StreamLayer).
func (s *streamLayer) Addr() net.Addr { return hostAddr(s.advertise) }

// Dial connects to a peer's Raft transport and proves that it knows the
// cluster secret (raft.StreamLayer).
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := handshakeOpen(ctx, c, s.secret, wire.RaftConnRoles, "raft"); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft connection to %s: %w", address, err)
	}
	return c, nil
}

// newRaftTransport listens on listen for Raft and advertises advertise
// (default: the address it listens on, so that a port 0 becomes the real
// port). An advertised address must be host:port with a port.
//
// Connections are authenticated with secret (streamLayer); with no secret,
// none are accepted or made.
func newRaftTransport(listen, advertise string, secret []byte, cfg *raft.Config, log *slog.Logger) (*raft.NetworkTransport, error) {
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil || host == "" || port == "" || port == "0" {
			return nil, fmt.Errorf("raft advertise address %q: want host:port with a port", advertise)
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("raft transport on %s: %w", listen, err)
	}
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	return raft.NewNetworkTransportWithLogger(newStreamLayer(ln, advertise, secret, log), 8, 10*time.Second, cfg.Logger), nil
}
