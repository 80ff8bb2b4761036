package cluster

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestRaftTransportKeepsAdvertisedName checks that an advertised host name
// is what Raft records and dials, not the IP it resolved to at start (a
// container restarted on a compose network may come back on another IP).
func TestRaftTransportKeepsAdvertisedName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	want := "localhost:" + port
	secret := []byte("the cluster secret of this test")
	trans, err := newRaftTransport("127.0.0.1:"+port, want, secret, &raft.Config{Logger: hclog.NewNullLogger()}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	if got := string(trans.LocalAddr()); got != want {
		t.Errorf("advertised raft address: got %q, want %q", got, want)
	}
	// Dialling the name reaches the listener.
	sl := &streamLayer{advertise: want, secret: secret}
	c, err := sl.Dial(raft.ServerAddress(want), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", want, err)
	}
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil && err != io.EOF && !strings.Contains(err.Error(), "timeout") {
		t.Errorf("connection to %s: %v", want, err)
	}
	c.Close()

	for _, bad := range []string{"node1", "node1:0", ":7421"} {
		if _, err := newRaftTransport("127.0.0.1:0", bad, nil, &raft.Config{Logger: hclog.NewNullLogger()}, slog.Default()); err == nil {
			t.Errorf("raft advertise %q: got no error, want one", bad)
		}
	}
}

// plainLayer is a Raft stream layer with no handshake: what a stranger who
// reaches a node's Raft port could run.
type plainLayer struct{ net.Listener }

func (p plainLayer) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(a), timeout)
}

func (p plainLayer) Addr() net.Addr { return p.Listener.Addr() }

// TestRaftTransportRefusesStrangers checks that only a peer that knows the
// cluster secret gets a Raft RPC through to a node: a vote request with a
// huge term from a stranger (plain Raft, or the handshake with a wrong
// secret) never reaches Raft, while the same request from a peer does.
func TestRaftTransportRefusesStrangers(t *testing.T) {
	secret := []byte("the cluster secret of this test")
	node, err := newRaftTransport("127.0.0.1:0", "", secret, &raft.Config{Logger: hclog.NewNullLogger()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	addr := node.LocalAddr()
	vote := &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("stranger"), Addr: []byte("127.0.0.1:1")}, Term: 1 << 40, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40}

	// A node answers each vote request it gets; a refused one must never
	// show up at Raft's consumer.
	got := make(chan *raft.RequestVoteRequest, 4)
	go func() {
		for rpc := range node.Consumer() {
			if req, ok := rpc.Command.(*raft.RequestVoteRequest); ok {
				got <- req
			}
			rpc.Respond(&raft.RequestVoteResponse{Term: 1}, nil)
		}
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stranger := raft.NewNetworkTransportWithLogger(plainLayer{ln}, 1, 2*time.Second, hclog.NewNullLogger())
	defer stranger.Close()
	var resp raft.RequestVoteResponse
	if err := stranger.RequestVote("node", addr, vote, &resp); err == nil {
		t.Errorf("plain Raft vote request from a stranger: got an answer (term %d), want an error", resp.Term)
	}

	wrong := &streamLayer{secret: []byte("a secret that is not the cluster's")}
	if _, err := wrong.Dial(addr, 5*time.Second); !errors.Is(err, ErrBadSecret) {
		t.Errorf("dial with the wrong secret: got %v, want ErrBadSecret", err)
	}
	select {
	case req := <-got:
		t.Fatalf("a stranger's vote request (term %d) reached Raft", req.Term)
	case <-time.After(500 * time.Millisecond):
	}

	// A hello that claims 16 MiB is dropped after maxHandshakeBytes, not
	// read (and buffered) to the end.
	c, err := net.Dial("tcp", string(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	huge := binary.LittleEndian.AppendUint32(nil, 16<<20)
	if _, err := c.Write(append(huge, make([]byte, 2*maxHandshakeBytes)...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := c.Read(make([]byte, 64)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after an oversized hello: read %d bytes, %v; want the connection closed", n, err)
	}

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer := raft.NewNetworkTransportWithLogger(newStreamLayer(ln2, "", secret, slog.Default()), 1, 5*time.Second, hclog.NewNullLogger())
	defer peer.Close()
	if err := peer.RequestVote("node", addr, vote, &resp); err != nil {
		t.Fatalf("vote request from a peer: %v", err)
	}
	select {
	case req := <-got:
		if req.Term != vote.Term {
			t.Errorf("peer's vote request: term %d, want %d", req.Term, vote.Term)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a peer's vote request did not reach Raft")
	}
}
