package cluster

import (
	"io"
	"net"
	"strings"
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
	trans, err := newRaftTransport("127.0.0.1:"+port, want, &raft.Config{Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	if got := string(trans.LocalAddr()); got != want {
		t.Errorf("advertised raft address: got %q, want %q", got, want)
	}
	// Dialling the name reaches the listener.
	sl := &streamLayer{advertise: want}
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
		if _, err := newRaftTransport("127.0.0.1:0", bad, &raft.Config{Logger: hclog.NewNullLogger()}); err == nil {
			t.Errorf("raft advertise %q: got no error, want one", bad)
		}
	}
}
