package main

import (
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/ops/status"
)

// composeProject runs docker-compose on a copy of the repository's
// docker-compose.yml in its own build context, under its own project name,
// image tag and host ports, so that it runs beside anything else.
type composeProject struct {
	t    *testing.T
	dir  string
	name string
	env  []string
	// wire maps each service to the loopback address its wire port is
	// published on.
	wire map[string]string
}

// run runs docker-compose with args and fails the test if it fails.
func (p *composeProject) run(args ...string) string {
	p.t.Helper()
	out, err := p.try(args...)
	if err != nil {
		p.t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p *composeProject) try(args ...string) (string, error) {
	cmd := exec.Command("docker-compose", append([]string{"-p", p.name}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addrs returns the published wire addresses of node1, node2 and node3,
// comma-separated, in that order.
func (p *composeProject) addrs() string {
	return p.wire["node1"] + "," + p.wire["node2"] + "," + p.wire["node3"]
}

// newComposeProject builds the static binary and the image's build context
// (the binary and busybox-static, as the README says) in a temporary
// directory next to a copy of docker-compose.yml, and registers a cleanup
// that removes the project's containers, network, volumes and image.
func newComposeProject(t *testing.T) *composeProject {
	t.Helper()
	for _, tool := range []string{"docker", "docker-compose"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (.ci/run installs it): %v", tool, err)
		}
	}
	const busybox = "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("this test needs busybox-static's %s (.ci/run installs it): %v", busybox, err)
	}
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ops", "docker")
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{
		"../../docker-compose.yml":    filepath.Join(dir, "docker-compose.yml"),
		"../../ops/docker/Dockerfile": filepath.Join(ctx, "Dockerfile"),
		busybox:                       filepath.Join(ctx, "busybox"),
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(ctx, "shoal"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static go build: %v\n%s", err, out)
	}

	name := fmt.Sprintf("shoaltest%d", os.Getpid())
	p := &composeProject{t: t, dir: dir, name: name, wire: map[string]string{}, env: []string{"SHOAL_TAG=" + name}}
	for _, svc := range []string{"node1", "node2", "node3"} {
		wire, metrics := freeAddr(t), freeAddr(t)
		_, wport, _ := net.SplitHostPort(wire)
		_, mport, _ := net.SplitHostPort(metrics)
		up := strings.ToUpper(svc)
		p.env = append(p.env, "SHOAL_"+up+"_PORT="+wport, "SHOAL_"+up+"_METRICS="+mport)
		p.wire[svc] = wire
	}
	t.Cleanup(func() {
		if out, err := p.try("down", "-v", "--rmi", "all"); err != nil {
			t.Errorf("docker-compose down -v: %v\n%s", err, out)
		}
	})
	return p
}

// nodeByID returns the line of node id in r, or nil.
func nodeByID(r *status.Report, id string) *status.Node {
	for i := range r.Nodes {
		if r.Nodes[i].ID == id {
			return &r.Nodes[i]
		}
	}
	return nil
}

// TestComposeCluster brings up docker-compose.yml's three nodes, mounts
// them from the host through the published loopback ports (the nodes
// advertise service names the host cannot resolve), writes and reads,
// stops the container of the node the mount talks to, checks that reads
// and writes go on with two of three (chunks are erasure-coded over the
// three nodes), starts it again and checks that it catches up and that
// the leader's repair completes the chunks written meanwhile: status
// counts none degraded and none lost.
func TestComposeCluster(t *testing.T) {
	p := newComposeProject(t)
	p.run("up", "--build", "-d")
	addrs := p.addrs()
	r := waitStatus(t, addrs, "3 nodes up with a leader, seen from the host", func(r *status.Report) bool {
		return len(r.Nodes) == 3 && r.Up == 3 && leaders(r) == 1
	})
	for _, svc := range []string{"node1", "node2", "node3"} {
		nd := nodeByID(r, svc)
		if nd == nil || nd.Addr != svc+":7420" || nd.RaftAddr != svc+":7421" {
			t.Fatalf("status: node %s: got %+v, want it advertising %s:7420 and %s:7421", svc, nd, svc, svc)
		}
	}

	// The mount names node1 first, so it talks to node1.
	mnt := filepath.Join(t.TempDir(), "mnt")
	startMount(t, addrs, mnt)
	want := map[string][32]byte{}
	for name, data := range map[string][]byte{
		"small": []byte("hello from the host\n"),
		"big":   randomBytes(7, 5<<20+123),
	} {
		writeFile(t, filepath.Join(mnt, name), data)
		want[name] = sha256.Sum256(data)
	}
	checkSums(t, mnt, want)
	r = waitStatus(t, addrs, "every chunk protected after the writes", healed)
	t.Logf("before the stop: %+v", *r.Health)

	// Stop node1, the node the mount talks to: the mount moves to another,
	// and the big file's chunks are rebuilt from their other shards.
	p.run("stop", "node1")
	stopped := time.Now()
	others := p.wire["node2"] + "," + p.wire["node3"]
	r = waitStatus(t, others, "node1 down, 2 up with a leader", func(r *status.Report) bool {
		n1 := nodeByID(r, "node1")
		return r.Up == 2 && leaders(r) == 1 && n1 != nil && !n1.Up
	})

	// Reads and writes go on with two of three.
	checkSums(t, mnt, want)
	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o755); err != nil {
		t.Fatalf("mkdir with node1 stopped: got %v, want success", err)
	}
	after := randomBytes(8, 3<<20)
	writeFile(t, filepath.Join(mnt, "dir", "after"), after)
	want["dir/after"] = sha256.Sum256(after)
	checkSums(t, mnt, want)
	readBack(t, others, "with node1 stopped", want)
	// The file written meanwhile has a shard missing.
	r = waitStatus(t, others, "degraded chunks with node1 stopped", func(r *status.Report) bool {
		return leaders(r) == 1 && r.Health != nil && r.Health.Degraded > 0
	})
	if r.Health.Lost != 0 {
		t.Errorf("status with one node of three stopped: %d chunks lost, want 0", r.Health.Lost)
	}
	leaderApplied := nodeByID(r, r.Leader).Status.Applied
	t.Logf("with node1 stopped: %+v, leader %s at applied index %d", *r.Health, r.Leader, leaderApplied)

	// node1 comes back, catches up with what it missed, and the leader's
	// repair (every 10 s) gives it the shards written meanwhile.
	p.run("start", "node1")
	started := time.Now()
	t.Logf("node1 started again %v after it was stopped", started.Sub(stopped).Round(time.Second))
	r = waitStatusWithin(t, 3*time.Minute, addrs, "node1 caught up and every chunk protected", func(r *status.Report) bool {
		return converged(r) && nodeByID(r, "node1").Status.Applied >= leaderApplied && healed(r)
	})
	t.Logf("all 3 up, applied index %d, %+v, %v after node1 started", r.Nodes[0].Status.Applied, *r.Health, time.Since(started).Round(time.Second))
	checkSums(t, mnt, want)
	// The mount reads data shards from their nodes at the published ports
	// it was given, which it matched to the names the nodes advertise.
	if direct, fallback := readBack(t, addrs, "after node1 came back", want); direct == 0 || fallback != 0 {
		t.Errorf("reading back from the host with every node up: %v chunks read from shard holders, %v through the node; want some and none", direct, fallback)
	}
}
