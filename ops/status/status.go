// Package status gathers what "shoal status" shows: the members of a
// cluster as one node knows them, and what each member says about itself
// when asked directly (so a node that does not answer shows as down, rather
// than as someone else's idea of it).
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"shoal/cluster"
)

// Node is one member's line in a Report. Status is nil when the node did
// not answer (Up false, Err says why). Via is the address it answered at
// when that is not Addr: one of the addresses Gather was given, for
// members whose advertised names only resolve among the nodes (containers
// on a compose network, asked from the host through published ports).
type Node struct {
	ID       string              `json:"id"`
	Addr     string              `json:"addr"`
	RaftAddr string              `json:"raft"`
	Voter    bool                `json:"voter"`
	Up       bool                `json:"up"`
	Via      string              `json:"via,omitempty"`
	Err      string              `json:"error,omitempty"`
	Status   *cluster.NodeStatus `json:"status,omitempty"`
}

// Report is the cluster's status: its members, the leader (by id, as the
// answering nodes agree: the leader that says it leads in the highest
// term), how many voters there are, and the health of the erasure-coded
// chunks as the leader counts them (Health is nil when no leader answered,
// or the leader has not counted yet: it knows once it serves and has
// probed the members, within seconds of its election).
type Report struct {
	AskedNode string               `json:"asked"`
	Leader    string               `json:"leader"`
	Term      uint64               `json:"term"`
	Voters    int                  `json:"voters"`
	Up        int                  `json:"up"`
	Health    *cluster.ChunkHealth `json:"health"`
	Nodes     []Node               `json:"nodes"`
}

// Gather asks the node at addr (or the first that answers of several,
// comma-separated) for the members, then each member for its own status,
// each within timeout. A member that does not answer at its recorded
// address is looked for among the given addresses (by the id each reports).
func Gather(ctx context.Context, addr string, timeout time.Duration, log *slog.Logger) (*Report, error) {
	cfg := cluster.ClientConfig{RetryFor: timeout, OpTimeout: timeout, Pin: true, Logger: log}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := cluster.Dial(dctx, addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer c.Close()
	members, _, err := c.Members(dctx)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	r := &Report{AskedNode: c.Addrs()[0], Nodes: make([]Node, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		r.Nodes[i] = Node{ID: m.ID, Addr: m.Addr, RaftAddr: m.RaftAddr, Voter: m.Voter}
		if m.Voter {
			r.Voters++
		}
		if m.Addr == "" {
			r.Nodes[i].Err = "no wire address recorded yet"
			continue
		}
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			st, err := cluster.StatusAt(ctx, n.Addr, timeout, log)
			n.Status = st
			if err != nil {
				n.Err = err.Error()
				return
			}
			n.Up = true
		}(&r.Nodes[i])
	}
	wg.Wait()
	viaGiven(ctx, r, addr, timeout, log)
	for _, n := range r.Nodes {
		if !n.Up {
			continue
		}
		r.Up++
		if n.Status.Role == "leader" && n.Status.Term >= r.Term {
			r.Leader, r.Term, r.Health = n.ID, n.Status.Term, n.Status.Health
		}
	}
	return r, nil
}

// viaGiven asks each of the given addresses (comma-separated) that is no
// member's recorded address for its status, and marks the member whose id
// it reports up, via that address, if it did not answer at its own.
func viaGiven(ctx context.Context, r *Report, given string, timeout time.Duration, log *slog.Logger) {
	down := map[string]*Node{}
	recorded := map[string]bool{}
	for i := range r.Nodes {
		recorded[r.Nodes[i].Addr] = true
		// A member with no wire address recorded yet is still joining:
		// it stays down, whatever answers.
		if !r.Nodes[i].Up && r.Nodes[i].Addr != "" {
			down[r.Nodes[i].ID] = &r.Nodes[i]
		}
	}
	if len(down) == 0 {
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range strings.Split(given, ",") {
		if a = strings.TrimSpace(a); a == "" || recorded[a] {
			continue
		}
		recorded[a] = true
		wg.Add(1)
		go func(a string) {
			defer wg.Done()
			st, err := cluster.StatusAt(ctx, a, timeout, log)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if n := down[st.ID]; n != nil && !n.Up {
				n.Up, n.Status, n.Via, n.Err = true, st, a, ""
			}
		}(a)
	}
	wg.Wait()
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as a table for people.
func (r *Report) WriteTable(w io.Writer) error {
	leader := r.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "cluster: %d nodes, %d up, %d voters (quorum %d), leader %s, term %d\n\n",
		len(r.Nodes), r.Up, r.Voters, r.Voters/2+1, leader, r.Term)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWIRE\tRAFT\tSTATE\tROLE\tTERM\tAPPLIED\tCHUNKS\tUSED\tCAPACITY\tFREE")
	for _, n := range r.Nodes {
		state := "up"
		if !n.Up {
			state = "down"
		}
		if !n.Voter {
			state += " (non-voter)"
		}
		wireAddr := n.Addr
		if n.Via != "" {
			wireAddr += " (via " + n.Via + ")"
		}
		if s := n.Status; s != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", n.ID, wireAddr, n.RaftAddr, state,
				s.Role, s.Term, s.Applied, s.Chunks, bytesString(uint64(max(s.Bytes, 0))), bytesString(s.Capacity), bytesString(s.Available))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", n.ID, wireAddr, n.RaftAddr, state)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", r.healthLine())
	for _, n := range r.Nodes {
		if n.Err != "" {
			fmt.Fprintf(w, "%s: %s\n", n.ID, strings.TrimSpace(n.Err))
		}
	}
	return nil
}

// healthLine says how the chunks are doing, or why that is not known.
func (r *Report) healthLine() string {
	switch h := r.Health; {
	case h != nil && h.Recoding > 0:
		return fmt.Sprintf("chunks: %d protected, %d degraded, %d lost (%d awaiting re-encoding to their scheme)", h.Protected, h.Degraded, h.Lost, h.Recoding)
	case h != nil:
		return fmt.Sprintf("chunks: %d protected, %d degraded, %d lost", h.Protected, h.Degraded, h.Lost)
	case r.Leader == "":
		return "chunks: unknown (no leader)"
	default:
		return fmt.Sprintf("chunks: unknown (leader %s has not probed the members yet)", r.Leader)
	}
}

// bytesString renders n bytes in binary units.
func bytesString(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
