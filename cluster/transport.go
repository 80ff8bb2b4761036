package cluster

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is Raft's TCP stream layer with an advertised address kept as
// written: a host name stays a name (node2:7421), resolved afresh at every
// dial, so a peer whose IP changes (a container restarted on a compose
// network) is still reached. raft.NewTCPTransport would resolve it once.
type streamLayer struct {
	net.Listener
	advertise string
}

// hostAddr is a net.Addr for a "host:port" that may name a host.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// Addr returns the advertised address (raft.StreamLayer).
func (s *streamLayer) Addr() net.Addr { return hostAddr(s.advertise) }

// Dial connects to a peer's Raft transport (raft.StreamLayer).
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// newRaftTransport listens on listen for Raft and advertises advertise
// (default: the address it listens on, so that a port 0 becomes the real
// port). An advertised address must be host:port with a port.
func newRaftTransport(listen, advertise string, cfg *raft.Config) (*raft.NetworkTransport, error) {
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
	return raft.NewNetworkTransportWithLogger(&streamLayer{Listener: ln, advertise: advertise}, 8, 10*time.Second, cfg.Logger), nil
}
