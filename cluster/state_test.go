package cluster

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"shoal/chunkstore"
	"shoal/wire"
)

// stH drives a State in tests, stamping each request with a rising Now.
type stH struct {
	t   *testing.T
	s   *State
	now int64
}

func newStH(t *testing.T) *stH {
	t.Helper()
	return &stH{t: t, s: NewState(StateConfig{BlockSize: 100}), now: 1000}
}

// apply applies req with Now stamped if zero and checks the invariants.
func (h *stH) apply(req MetaRequest) *MetaResponse {
	h.t.Helper()
	if req.Now == 0 {
		h.now++
		req.Now = h.now
	}
	resp := h.s.Apply(&req)
	if err := h.s.check(); err != nil {
		h.t.Fatalf("op %d %q: invariant broken: %v", req.Op, req.Name, err)
	}
	return resp
}

// ok applies req and fails the test unless it succeeds.
func (h *stH) ok(req MetaRequest) *MetaResponse {
	h.t.Helper()
	resp := h.apply(req)
	if resp.Errno != 0 {
		h.t.Fatalf("op %d ino %d %q: got errno %v (%s), want success", req.Op, req.Ino, req.Name, syscall.Errno(resp.Errno), resp.Reason)
	}
	return resp
}

// fails applies req and fails the test unless it gets errno want.
func (h *stH) fails(req MetaRequest, want syscall.Errno) {
	h.t.Helper()
	if resp := h.apply(req); syscall.Errno(resp.Errno) != want {
		h.t.Fatalf("op %d ino %d %q: got errno %v, want %v", req.Op, req.Ino, req.Name, syscall.Errno(resp.Errno), want)
	}
}

func (h *stH) create(parent uint64, name string) uint64 {
	h.t.Helper()
	return h.ok(MetaRequest{Op: wire.OpCreate, Ino: parent, Name: Name(name), Mode: 0o644}).Attr.Ino
}

func (h *stH) mkdir(parent uint64, name string) uint64 {
	h.t.Helper()
	return h.ok(MetaRequest{Op: wire.OpMkdir, Ino: parent, Name: Name(name), Mode: 0o755}).Attr.Ino
}

func (h *stH) attr(ino uint64) Attr {
	h.t.Helper()
	return h.ok(MetaRequest{Op: wire.OpGetAttr, Ino: ino}).Attr
}

func (h *stH) nlink(ino uint64) uint32 {
	h.t.Helper()
	return h.attr(ino).Nlink
}

func (h *stH) lookup(parent uint64, name string) (uint64, syscall.Errno) {
	h.t.Helper()
	resp := h.apply(MetaRequest{Op: wire.OpLookup, Ino: parent, Name: Name(name)})
	return resp.Attr.Ino, syscall.Errno(resp.Errno)
}

func (h *stH) wantNlink(ino uint64, want uint32) {
	h.t.Helper()
	if got := h.nlink(ino); got != want {
		h.t.Fatalf("nlink of %d: got %d, want %d", ino, got, want)
	}
}

// stFixture is a small tree: /d/f2, /e (empty), /f, /l → "f", /p (fifo).
type stFixture struct {
	d, e, f, l, p, f2 uint64
}

func newStFixture(h *stH) stFixture {
	var x stFixture
	x.d = h.mkdir(1, "d")
	x.e = h.mkdir(1, "e")
	x.f = h.create(1, "f")
	x.l = h.ok(MetaRequest{Op: wire.OpSymlink, Ino: 1, Name: "l", Target: "f"}).Attr.Ino
	x.p = h.ok(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "p", Mode: stIFIFO | 0o600}).Attr.Ino
	x.f2 = h.create(x.d, "f2")
	return x
}

func TestStateRoot(t *testing.T) {
	s := NewState(StateConfig{})
	resp := s.Read(&MetaRequest{Op: wire.OpGetAttr, Ino: wire.RootIno})
	want := Attr{Ino: 1, Mode: stIFDIR | 0o755, Nlink: 2}
	if resp.Errno != 0 || resp.Attr != want {
		t.Fatalf("root: got %+v errno %d, want %+v", resp.Attr, resp.Errno, want)
	}
	if s.BlockSize() != DefaultBlockSize {
		t.Fatalf("block size: got %d, want %d", s.BlockSize(), DefaultBlockSize)
	}
	if in, b := s.Counts(); in != 1 || b != 0 {
		t.Fatalf("counts: got %d inodes %d bytes, want 1, 0", in, b)
	}
}

func TestStateErrno(t *testing.T) {
	long := strings.Repeat("x", 256)
	tests := []struct {
		name string
		req  func(x stFixture) MetaRequest
		want syscall.Errno
	}{
		{"op invalid", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpInvalid} }, syscall.EINVAL},
		{"op unknown", func(x stFixture) MetaRequest { return MetaRequest{Op: 200} }, syscall.ENOSYS},
		{"lookup empty", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLookup, Ino: 1} }, syscall.ENOENT},
		{"lookup dot", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLookup, Ino: 1, Name: "."} }, syscall.EINVAL},
		{"lookup slash", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLookup, Ino: 1, Name: "a/b"} }, syscall.EINVAL},
		{"lookup long", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLookup, Ino: 1, Name: Name(long)} }, syscall.ENAMETOOLONG},
		{"lookup missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLookup, Ino: 1, Name: "zz"} }, syscall.ENOENT},
		{"lookup in file", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLookup, Ino: x.f, Name: "a"} }, syscall.ENOTDIR},
		{"lookup no parent", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLookup, Ino: 99, Name: "a"} }, syscall.ENOENT},
		{"getattr missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpGetAttr, Ino: 99} }, syscall.ENOENT},
		{"getattr zero", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpGetAttr} }, syscall.ENOENT},
		{"create dotdot", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: ".."} }, syscall.EINVAL},
		{"create empty", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 1} }, syscall.EINVAL},
		{"create nul", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a\x00"} }, syscall.EINVAL},
		{"create long", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: Name(long)} }, syscall.ENAMETOOLONG},
		{"create dir type", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: stIFDIR | 0o755}
		}, syscall.EINVAL},
		{"create symlink type", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: stIFLNK | 0o777}
		}, syscall.EINVAL},
		{"create junk mode", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: 1 << 20} }, syscall.EINVAL},
		{"create no parent", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 99, Name: "a"} }, syscall.ENOENT},
		{"create parent file", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: x.f, Name: "a"} }, syscall.ENOTDIR},
		{"create excl", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "f", Flags: wire.CreateExcl}
		}, syscall.EEXIST},
		{"create over dir", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "d"} }, syscall.EEXIST},
		{"create over fifo", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "p"} }, syscall.EEXIST},
		{"mkdir exists", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "f"} }, syscall.EEXIST},
		{"mkdir in file", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpMkdir, Ino: x.f, Name: "a"} }, syscall.ENOTDIR},
		{"mkdir dot", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "."} }, syscall.EINVAL},
		{"symlink empty target", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpSymlink, Ino: 1, Name: "a"} }, syscall.ENOENT},
		{"symlink long target", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSymlink, Ino: 1, Name: "a", Target: Name(strings.Repeat("t", 4096))}
		}, syscall.ENAMETOOLONG},
		{"symlink exists", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSymlink, Ino: 1, Name: "d", Target: "x"}
		}, syscall.EEXIST},
		{"readlink file", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpReadlink, Ino: x.f} }, syscall.EINVAL},
		{"readlink missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpReadlink, Ino: 99} }, syscall.ENOENT},
		{"link dir", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpLink, Ino: x.d, NewParent: 1, NewName: "a"}
		}, syscall.EPERM},
		{"link exists", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpLink, Ino: x.f, NewParent: 1, NewName: "l"}
		}, syscall.EEXIST},
		{"link missing", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpLink, Ino: 99, NewParent: 1, NewName: "a"}
		}, syscall.ENOENT},
		{"link into file", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpLink, Ino: x.f, NewParent: x.f, NewName: "a"}
		}, syscall.ENOTDIR},
		{"link bad name", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpLink, Ino: x.f, NewParent: 1, NewName: "a/b"}
		}, syscall.EINVAL},
		{"unlink missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "zz"} }, syscall.ENOENT},
		{"unlink dir", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "e"} }, syscall.EISDIR},
		{"unlink in file", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpUnlink, Ino: x.f, Name: "a"} }, syscall.ENOTDIR},
		{"rmdir missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpRmdir, Ino: 1, Name: "zz"} }, syscall.ENOENT},
		{"rmdir file", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpRmdir, Ino: 1, Name: "f"} }, syscall.ENOTDIR},
		{"rmdir nonempty", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpRmdir, Ino: 1, Name: "d"} }, syscall.ENOTEMPTY},
		{"rmdir dot", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpRmdir, Ino: 1, Name: "."} }, syscall.EINVAL},
		{"rename missing", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "zz", NewParent: 1, NewName: "a"}
		}, syscall.ENOENT},
		{"rename no new parent", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: 99, NewName: "a"}
		}, syscall.ENOENT},
		{"rename new parent file", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: x.f, NewName: "a"}
		}, syscall.ENOTDIR},
		{"rename dir into itself", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "d", NewParent: x.d, NewName: "a"}
		}, syscall.EINVAL},
		{"rename dir over file", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "e", NewParent: 1, NewName: "f"}
		}, syscall.ENOTDIR},
		{"rename file over dir", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: 1, NewName: "e"}
		}, syscall.EISDIR},
		{"rename dir over nonempty", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "e", NewParent: 1, NewName: "d"}
		}, syscall.ENOTEMPTY},
		{"rename noreplace", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: 1, NewName: "l", Flags: wire.RenameNoReplace}
		}, syscall.EEXIST},
		{"rename exchange missing", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: 1, NewName: "zz", Flags: wire.RenameExchange}
		}, syscall.ENOENT},
		{"rename both flags", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: 1, NewName: "l", Flags: wire.RenameExchange | wire.RenameNoReplace}
		}, syscall.EINVAL},
		{"rename unknown flag", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: 1, NewName: "l", Flags: 8}
		}, syscall.EINVAL},
		{"rename exchange ancestor", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: x.d, Name: "f2", NewParent: 1, NewName: "d", Flags: wire.RenameExchange}
		}, syscall.EINVAL},
		{"rename bad new name", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRename, Ino: 1, Name: "f", NewParent: 1, NewName: Name(long)}
		}, syscall.ENAMETOOLONG},
		{"setattr missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpSetAttr, Ino: 99} }, syscall.ENOENT},
		{"setattr size dir", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetAttr, Ino: x.d, Valid: wire.SetSize}
		}, syscall.EISDIR},
		{"setattr size fifo", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetAttr, Ino: x.p, Valid: wire.SetSize}
		}, syscall.EINVAL},
		{"setattr size symlink", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetAttr, Ino: x.l, Valid: wire.SetSize}
		}, syscall.EINVAL},
		{"setattr unknown bits", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetAttr, Ino: x.f, Valid: 1 << 12}
		}, syscall.EINVAL},
		{"layout dir", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLayout, Ino: x.d} }, syscall.EISDIR},
		{"layout symlink", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLayout, Ino: x.l} }, syscall.EINVAL},
		{"layout missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpLayout, Ino: 99} }, syscall.ENOENT},
		{"commit dir", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCommit, Ino: x.d} }, syscall.EISDIR},
		{"commit fifo", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpCommit, Ino: x.p} }, syscall.EINVAL},
		{"drop missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpDrop, Ino: 99} }, syscall.ENOENT},
		{"readdir file", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpReadDir, Ino: x.f} }, syscall.ENOTDIR},
		{"readdir missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpReadDir, Ino: 99} }, syscall.ENOENT},
		{"setxattr empty name", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpSetXattr, Ino: x.f} }, syscall.EINVAL},
		{"setxattr long name", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetXattr, Ino: x.f, Name: Name(long)}
		}, syscall.ERANGE},
		{"setxattr big value", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetXattr, Ino: x.f, Name: "user.a", Value: make([]byte, 65537)}
		}, syscall.E2BIG},
		{"setxattr replace absent", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetXattr, Ino: x.f, Name: "user.a", Flags: wire.XattrReplace}
		}, syscall.ENODATA},
		{"setxattr both flags", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetXattr, Ino: x.f, Name: "user.a", Flags: wire.XattrReplace | wire.XattrCreate}
		}, syscall.EINVAL},
		{"setxattr missing ino", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpSetXattr, Ino: 99, Name: "user.a"}
		}, syscall.ENOENT},
		{"getxattr absent", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpGetXattr, Ino: x.f, Name: "user.a"}
		}, syscall.ENODATA},
		{"getxattr long", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpGetXattr, Ino: x.f, Name: Name(long)}
		}, syscall.ERANGE},
		{"removexattr absent", func(x stFixture) MetaRequest {
			return MetaRequest{Op: wire.OpRemoveXattr, Ino: x.f, Name: "user.a"}
		}, syscall.ENODATA},
		{"listxattr missing", func(x stFixture) MetaRequest { return MetaRequest{Op: wire.OpListXattr, Ino: 99} }, syscall.ENOENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStH(t)
			x := newStFixture(h)
			var before bytes.Buffer
			if err := h.s.Save(&before); err != nil {
				t.Fatal(err)
			}
			h.fails(tt.req(x), tt.want)
			var after bytes.Buffer
			if err := h.s.Save(&after); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before.Bytes(), after.Bytes()) {
				t.Fatalf("failed request changed the state")
			}
		})
	}
}

func TestStateRmdirRoot(t *testing.T) {
	// The root has no name in any directory, so rmdir can only reach it
	// through "..", which is refused; check the rename/rmdir guards too.
	h := newStH(t)
	h.fails(MetaRequest{Op: wire.OpRmdir, Ino: 1, Name: ".."}, syscall.EINVAL)
	h.fails(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "..", NewParent: 1, NewName: "x"}, syscall.EINVAL)
}

func TestStateReadRejectsWrites(t *testing.T) {
	h := newStH(t)
	for op := wire.OpInvalid; op <= wire.OpGCDone+1; op++ {
		resp := h.s.Read(&MetaRequest{Op: op, Ino: 1, Name: "a"})
		if IsReadOnly(op) {
			continue
		}
		if syscall.Errno(resp.Errno) != syscall.EINVAL {
			t.Errorf("Read(op %d): got errno %v, want EINVAL", op, syscall.Errno(resp.Errno))
		}
	}
	if _, e := h.lookup(1, "a"); e != syscall.ENOENT {
		t.Fatalf("Read created a file: lookup got %v, want ENOENT", e)
	}
	if h.s.Apply(nil).Errno == 0 || h.s.Read(nil).Errno == 0 {
		t.Fatal("nil request: got success, want an errno")
	}
}

func TestStateIsReadOnly(t *testing.T) {
	ro := map[MetaOp]bool{wire.OpLookup: true, wire.OpGetAttr: true, wire.OpReadDir: true, wire.OpReadlink: true,
		wire.OpGetXattr: true, wire.OpListXattr: true, wire.OpLayout: true, wire.OpStatfs: true}
	for op := wire.OpInvalid; op <= wire.OpGCDone+1; op++ {
		if got := IsReadOnly(op); got != ro[op] {
			t.Errorf("IsReadOnly(%d): got %v, want %v", op, got, ro[op])
		}
	}
}

func TestStateCreate(t *testing.T) {
	h := newStH(t)
	resp := h.ok(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: 0o640, Uid: 7, Gid: 8, Now: 5000})
	want := Attr{Ino: 2, Mode: stIFREG | 0o640, Nlink: 1, Uid: 7, Gid: 8, Atime: 5000, Mtime: 5000, Ctime: 5000}
	if resp.Attr != want {
		t.Fatalf("create: got %+v, want %+v", resp.Attr, want)
	}
	if r := h.attr(1); r.Mtime != 5000 || r.Ctime != 5000 {
		t.Fatalf("root times: got mtime %d ctime %d, want 5000", r.Mtime, r.Ctime)
	}
	// O_CREAT without O_EXCL on an existing regular file returns it.
	again := h.ok(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: 0o600, Now: 6000})
	if again.Attr != want {
		t.Fatalf("create existing: got %+v, want %+v", again.Attr, want)
	}
	dev := h.ok(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "c", Mode: stIFCHR | 0o600, Rdev: 0x0103}).Attr
	if dev.Mode != stIFCHR|0o600 || dev.Rdev != 0x0103 || dev.Ino != 3 {
		t.Fatalf("mknod: got %+v, want chr 0600 rdev 0x103 ino 3", dev)
	}
	sock := h.ok(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "s", Mode: stIFSOCK | 0o600, Rdev: 9}).Attr
	if sock.Rdev != 0 {
		t.Fatalf("socket rdev: got %d, want 0", sock.Rdev)
	}
	// Inode numbers are never reused.
	h.ok(MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "s"})
	h.ok(MetaRequest{Op: wire.OpDrop, Ino: sock.Ino})
	if ino := h.create(1, "t"); ino != sock.Ino+1 {
		t.Fatalf("next inode: got %d, want %d", ino, sock.Ino+1)
	}
}

func TestStateMkdirSymlinkReaddir(t *testing.T) {
	h := newStH(t)
	d := h.ok(MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "d", Mode: stIFREG | 0o1777, Uid: 3, Now: 77}).Attr
	if d.Mode != stIFDIR|0o1777 || d.Nlink != 2 || d.Uid != 3 || d.Mtime != 77 {
		t.Fatalf("mkdir: got %+v", d)
	}
	h.wantNlink(1, 3)
	l := h.ok(MetaRequest{Op: wire.OpSymlink, Ino: d.Ino, Name: "ln", Target: "../some/where"}).Attr
	if l.Mode != stIFLNK|0o777 || l.Size != 13 || l.Nlink != 1 {
		t.Fatalf("symlink: got %+v", l)
	}
	if got := h.ok(MetaRequest{Op: wire.OpReadlink, Ino: l.Ino}).Target; got != "../some/where" {
		t.Fatalf("readlink: got %q, want %q", got, "../some/where")
	}
	h.create(d.Ino, "b")
	h.mkdir(d.Ino, "a")
	ents := h.ok(MetaRequest{Op: wire.OpReadDir, Ino: d.Ino}).Entries
	var names []string
	for _, e := range ents {
		names = append(names, string(e.Name))
	}
	if got := strings.Join(names, ","); got != "a,b,ln" {
		t.Fatalf("readdir: got %s, want a,b,ln", got)
	}
	if ents[0].Mode&stIFMT != stIFDIR || ents[2].Mode != stIFLNK|0o777 || ents[2].Ino != l.Ino {
		t.Fatalf("readdir entries: got %+v", ents)
	}
	for _, e := range ents {
		if e.Attr != nil {
			t.Fatalf("readdir without ReadDirAttrs: entry %s carries attributes", e.Name)
		}
	}
	// With ReadDirAttrs each entry carries what GetAttr answers.
	for _, e := range h.ok(MetaRequest{Op: wire.OpReadDir, Ino: d.Ino, Flags: wire.ReadDirAttrs}).Entries {
		if want := h.attr(e.Ino); e.Attr == nil || *e.Attr != want {
			t.Fatalf("readdir with attributes: entry %s: got %+v, want %+v", e.Name, e.Attr, want)
		}
	}
	h.wantNlink(d.Ino, 3)
	st := h.ok(MetaRequest{Op: wire.OpStatfs}).Statfs
	if st.Files != 5 || st.Namelen != 255 {
		t.Fatalf("statfs: got files %d namelen %d, want 5, 255", st.Files, st.Namelen)
	}
	h.ok(MetaRequest{Op: wire.OpRmdir, Ino: d.Ino, Name: "a"})
	h.wantNlink(d.Ino, 2)
}

func TestStateLinkUnlinkOrphan(t *testing.T) {
	h := newStH(t)
	d := h.mkdir(1, "d")
	f := h.create(1, "f")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 150, Blocks: []Block{{Index: 0, ID: stID(1), Len: 100}, {Index: 1, ID: stID(2), Len: 50}}})
	a := h.ok(MetaRequest{Op: wire.OpLink, Ino: f, NewParent: d, NewName: "g", Now: 9000}).Attr
	if a.Nlink != 2 || a.Ctime != 9000 {
		t.Fatalf("link: got nlink %d ctime %d, want 2, 9000", a.Nlink, a.Ctime)
	}
	if ino, _ := h.lookup(d, "g"); ino != f {
		t.Fatalf("lookup link: got ino %d, want %d", ino, f)
	}
	rm := h.ok(MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "f", Now: 9100}).Removed
	if rm != (Removed{Ino: f}) {
		t.Fatalf("unlink one of two: got %+v, want {Ino:%d}", rm, f)
	}
	if a := h.attr(f); a.Nlink != 1 || a.Ctime != 9100 {
		t.Fatalf("after unlink: got nlink %d ctime %d, want 1, 9100", a.Nlink, a.Ctime)
	}
	// Drop of a linked inode changes nothing.
	h.ok(MetaRequest{Op: wire.OpDrop, Ino: f})
	h.wantNlink(f, 1)
	rm = h.ok(MetaRequest{Op: wire.OpUnlink, Ino: d, Name: "g"}).Removed
	if rm != (Removed{Ino: f, Orphaned: true}) {
		t.Fatalf("unlink last: got %+v, want orphaned %d", rm, f)
	}
	// The orphan lives on: attributes, layout, commits, xattrs.
	h.wantNlink(f, 0)
	if l := h.ok(MetaRequest{Op: wire.OpLayout, Ino: f}).Layout; len(l.Blocks) != 2 {
		t.Fatalf("orphan layout: got %+v, want 2 blocks", l)
	}
	h.fails(MetaRequest{Op: wire.OpLink, Ino: f, NewParent: 1, NewName: "back"}, syscall.ENOENT)
	if g := h.s.Garbage(0); len(g) != 0 {
		t.Fatalf("garbage while orphan holds blocks: got %d chunks, want 0", len(g))
	}
	if in, b := h.s.Counts(); in != 3 || b != 150 {
		t.Fatalf("counts with orphan: got %d, %d, want 3, 150", in, b)
	}
	h.ok(MetaRequest{Op: wire.OpDrop, Ino: f})
	h.fails(MetaRequest{Op: wire.OpGetAttr, Ino: f}, syscall.ENOENT)
	h.fails(MetaRequest{Op: wire.OpDrop, Ino: f}, syscall.ENOENT)
	if g := h.s.Garbage(0); len(g) != 2 || g[0] != stID(1) || g[1] != stID(2) {
		t.Fatalf("garbage after drop: got %d chunks, want chunks 1 and 2", len(g))
	}
	if in, b := h.s.Counts(); in != 2 || b != 0 {
		t.Fatalf("counts after drop: got %d, %d, want 2, 0", in, b)
	}
}

func TestStateRename(t *testing.T) {
	t.Run("file within dir", func(t *testing.T) {
		h := newStH(t)
		f := h.create(1, "a")
		h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "a", NewParent: 1, NewName: "b", Now: 500})
		if _, e := h.lookup(1, "a"); e != syscall.ENOENT {
			t.Fatalf("old name: got %v, want ENOENT", e)
		}
		if ino, _ := h.lookup(1, "b"); ino != f {
			t.Fatalf("new name: got ino %d, want %d", ino, f)
		}
		if a := h.attr(f); a.Ctime != 500 {
			t.Fatalf("ctime: got %d, want 500", a.Ctime)
		}
		if a := h.attr(1); a.Mtime != 500 || a.Ctime != 500 {
			t.Fatalf("parent times: got %d/%d, want 500", a.Mtime, a.Ctime)
		}
	})
	t.Run("dir across parents", func(t *testing.T) {
		h := newStH(t)
		a := h.mkdir(1, "a")
		b := h.mkdir(1, "b")
		c := h.mkdir(a, "c")
		h.mkdir(c, "deep")
		h.ok(MetaRequest{Op: wire.OpRename, Ino: a, Name: "c", NewParent: b, NewName: "c", Now: 600})
		h.wantNlink(a, 2)
		h.wantNlink(b, 3)
		h.wantNlink(c, 3)
		h.wantNlink(1, 4)
		for _, ino := range []uint64{a, b} {
			if at := h.attr(ino); at.Mtime != 600 || at.Ctime != 600 {
				t.Fatalf("parent %d times: got %d/%d, want 600", ino, at.Mtime, at.Ctime)
			}
		}
		// Now c lives under b: moving b into c is moving it into itself.
		h.fails(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "b", NewParent: c, NewName: "x"}, syscall.EINVAL)
		// Moving a into b/c is fine.
		h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "a", NewParent: c, NewName: "a"})
		h.wantNlink(1, 3)
		h.wantNlink(c, 4)
	})
	t.Run("file over file", func(t *testing.T) {
		h := newStH(t)
		src := h.create(1, "src")
		dst := h.create(1, "dst")
		h.ok(MetaRequest{Op: wire.OpCommit, Ino: dst, Size: 10, Blocks: []Block{{ID: stID(5), Len: 10}}})
		rm := h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "src", NewParent: 1, NewName: "dst"}).Removed
		if rm != (Removed{Ino: dst, Orphaned: true}) {
			t.Fatalf("removed: got %+v, want orphaned %d", rm, dst)
		}
		if ino, _ := h.lookup(1, "dst"); ino != src {
			t.Fatalf("dst: got ino %d, want %d", ino, src)
		}
		h.wantNlink(dst, 0)
		h.ok(MetaRequest{Op: wire.OpDrop, Ino: dst})
		if g := h.s.Garbage(0); len(g) != 1 || g[0] != stID(5) {
			t.Fatalf("garbage: got %d chunks, want chunk 5", len(g))
		}
	})
	t.Run("file over hard link of other", func(t *testing.T) {
		h := newStH(t)
		h.create(1, "src")
		dst := h.create(1, "dst")
		h.ok(MetaRequest{Op: wire.OpLink, Ino: dst, NewParent: 1, NewName: "dst2"})
		rm := h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "src", NewParent: 1, NewName: "dst"}).Removed
		if rm != (Removed{Ino: dst}) {
			t.Fatalf("removed: got %+v, want {Ino:%d}", rm, dst)
		}
		h.wantNlink(dst, 1)
	})
	t.Run("same inode", func(t *testing.T) {
		h := newStH(t)
		f := h.create(1, "a")
		h.ok(MetaRequest{Op: wire.OpLink, Ino: f, NewParent: 1, NewName: "b"})
		before := h.attr(f)
		resp := h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "a", NewParent: 1, NewName: "b"})
		if resp.Removed != (Removed{}) {
			t.Fatalf("removed: got %+v, want nothing", resp.Removed)
		}
		if after := h.attr(f); after != before {
			t.Fatalf("attr: got %+v, want unchanged %+v", after, before)
		}
		for _, n := range []string{"a", "b"} {
			if ino, _ := h.lookup(1, n); ino != f {
				t.Fatalf("%s: got ino %d, want %d", n, ino, f)
			}
		}
		h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "a", NewParent: 1, NewName: "a"})
	})
	t.Run("dir over empty dir", func(t *testing.T) {
		h := newStH(t)
		a := h.mkdir(1, "a")
		b := h.mkdir(1, "b")
		sub := h.mkdir(a, "sub")
		victim := h.mkdir(b, "victim")
		rm := h.ok(MetaRequest{Op: wire.OpRename, Ino: a, Name: "sub", NewParent: b, NewName: "victim"}).Removed
		if rm != (Removed{Ino: victim}) {
			t.Fatalf("removed: got %+v, want {Ino:%d} (freed, not orphaned)", rm, victim)
		}
		h.fails(MetaRequest{Op: wire.OpGetAttr, Ino: victim}, syscall.ENOENT)
		h.wantNlink(a, 2)
		h.wantNlink(b, 3)
		if ino, _ := h.lookup(b, "victim"); ino != sub {
			t.Fatalf("victim: got %d, want %d", ino, sub)
		}
		in, _ := h.s.Counts()
		if in != 4 {
			t.Fatalf("inodes: got %d, want 4 (victim freed)", in)
		}
		// Same parent: one subdir fewer.
		h.mkdir(1, "c")
		h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "a", NewParent: 1, NewName: "c"})
		h.wantNlink(1, 4)
	})
	t.Run("exchange dir and file across parents", func(t *testing.T) {
		h := newStH(t)
		a := h.mkdir(1, "a")
		b := h.mkdir(1, "b")
		d := h.mkdir(a, "d")
		f := h.create(b, "f")
		h.ok(MetaRequest{Op: wire.OpRename, Ino: a, Name: "d", NewParent: b, NewName: "f", Flags: wire.RenameExchange, Now: 700})
		if ino, _ := h.lookup(a, "d"); ino != f {
			t.Fatalf("a/d: got %d, want %d", ino, f)
		}
		if ino, _ := h.lookup(b, "f"); ino != d {
			t.Fatalf("b/f: got %d, want %d", ino, d)
		}
		h.wantNlink(a, 2)
		h.wantNlink(b, 3)
		if at := h.attr(f); at.Ctime != 700 || at.Nlink != 1 {
			t.Fatalf("exchanged file: got ctime %d nlink %d, want 700, 1", at.Ctime, at.Nlink)
		}
		// b now holds d; swapping b's entry with something inside d is a loop.
		h.create(d, "x")
		h.fails(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "b", NewParent: d, NewName: "x", Flags: wire.RenameExchange}, syscall.EINVAL)
	})
	t.Run("exchange two dirs", func(t *testing.T) {
		h := newStH(t)
		a := h.mkdir(1, "a")
		b := h.mkdir(a, "b")
		c := h.mkdir(1, "c")
		h.ok(MetaRequest{Op: wire.OpRename, Ino: a, Name: "b", NewParent: 1, NewName: "c", Flags: wire.RenameExchange})
		h.wantNlink(a, 3)
		h.wantNlink(1, 4)
		if ino, _ := h.lookup(a, "b"); ino != c {
			t.Fatalf("a/b: got %d, want %d", ino, c)
		}
		if ino, _ := h.lookup(1, "c"); ino != b {
			t.Fatalf("/c: got %d, want %d", ino, b)
		}
	})
	t.Run("noreplace free target", func(t *testing.T) {
		h := newStH(t)
		f := h.create(1, "a")
		h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "a", NewParent: 1, NewName: "b", Flags: wire.RenameNoReplace})
		if ino, _ := h.lookup(1, "b"); ino != f {
			t.Fatalf("b: got %d, want %d", ino, f)
		}
	})
}

func TestStateSetAttr(t *testing.T) {
	h := newStH(t)
	f := h.ok(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "f", Mode: stIFREG | 0o644, Now: 10}).Attr.Ino
	tests := []struct {
		name string
		req  MetaRequest
		want func(a *Attr)
	}{
		{"mode keeps type", MetaRequest{Valid: wire.SetMode, Mode: stIFDIR | 0o4711}, func(a *Attr) { a.Mode = stIFREG | 0o4711 }},
		{"uid", MetaRequest{Valid: wire.SetUid, Uid: 42, Gid: 9}, func(a *Attr) { a.Uid = 42 }},
		{"gid", MetaRequest{Valid: wire.SetGid, Uid: 9, Gid: 43}, func(a *Attr) { a.Gid = 43 }},
		{"times", MetaRequest{Valid: wire.SetAtime | wire.SetMtime, Atime: -5, Mtime: 12345}, func(a *Attr) { a.Atime, a.Mtime = -5, 12345 }},
		{"grow", MetaRequest{Valid: wire.SetSize, Size: 1 << 40}, func(a *Attr) { a.Size = 1 << 40; a.Mtime = -1 }},
		{"nothing", MetaRequest{}, func(a *Attr) {}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := h.attr(f)
			tt.want(&want)
			now := int64(100 + i)
			want.Ctime = now
			if want.Mtime == -1 {
				want.Mtime = now
			}
			req := tt.req
			req.Op, req.Ino, req.Now = wire.OpSetAttr, f, now
			if got := h.ok(req).Attr; got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if got := h.attr(f); got != want {
				t.Fatalf("getattr: got %+v, want %+v", got, want)
			}
		})
	}
}

// stID returns a distinct non-zero chunk id for n.
func stID(n byte) [32]byte {
	var id [32]byte
	id[0], id[31] = n, 0xee
	return id
}

func TestStateTruncate(t *testing.T) {
	h := newStH(t) // block size 100
	f := h.create(1, "f")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 350, Blocks: []Block{
		{Index: 0, ID: stID(1), Len: 100}, {Index: 1, ID: stID(2), Len: 100},
		{Index: 2, ID: stID(3), Len: 100}, {Index: 3, ID: stID(4), Len: 50}}})
	h.ok(MetaRequest{Op: wire.OpSetAttr, Ino: f, Valid: wire.SetSize, Size: 150})
	l := h.ok(MetaRequest{Op: wire.OpLayout, Ino: f}).Layout
	want := []Block{{Index: 0, ID: stID(1), Len: 100}, {Index: 1, ID: stID(2), Len: 50}}
	if l.Size != 150 || l.BlockSize != 100 || !stBlocksEqual(l.Blocks, want) {
		t.Fatalf("after truncate to 150: got %+v, want size 150 blocks %+v", l, want)
	}
	if g := h.s.Garbage(0); len(g) != 2 || g[0] != stID(3) || g[1] != stID(4) {
		t.Fatalf("garbage: got %d chunks, want chunks 3 and 4", len(g))
	}
	// Growing keeps the trimmed length: bytes 150..199 now read as zeros.
	h.ok(MetaRequest{Op: wire.OpSetAttr, Ino: f, Valid: wire.SetSize, Size: 1000})
	l = h.ok(MetaRequest{Op: wire.OpLayout, Ino: f}).Layout
	if l.Size != 1000 || !stBlocksEqual(l.Blocks, want) {
		t.Fatalf("after growing: got %+v, want size 1000 blocks %+v", l, want)
	}
	// Truncating on a block boundary drops the block starting there.
	h.ok(MetaRequest{Op: wire.OpSetAttr, Ino: f, Valid: wire.SetSize, Size: 100})
	l = h.ok(MetaRequest{Op: wire.OpLayout, Ino: f}).Layout
	if !stBlocksEqual(l.Blocks, want[:1]) {
		t.Fatalf("truncate to 100: got %+v, want %+v", l.Blocks, want[:1])
	}
	h.ok(MetaRequest{Op: wire.OpSetAttr, Ino: f, Valid: wire.SetSize, Size: 0})
	if l = h.ok(MetaRequest{Op: wire.OpLayout, Ino: f}).Layout; len(l.Blocks) != 0 || l.Size != 0 {
		t.Fatalf("truncate to 0: got %+v, want empty", l)
	}
	if _, b := h.s.Counts(); b != 0 {
		t.Fatalf("bytes: got %d, want 0", b)
	}
}

func stBlocksEqual(a, b []Block) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].ID != b[i].ID || a[i].Len != b[i].Len {
			return false
		}
	}
	return true
}

func TestStateCommit(t *testing.T) {
	tests := []struct {
		name   string
		size   uint64
		blocks []Block
		want   syscall.Errno
	}{
		{"ok", 250, []Block{{Index: 0, ID: stID(1), Len: 100}, {Index: 2, ID: stID(2), Len: 50}}, 0},
		{"len over block size", 500, []Block{{Index: 0, ID: stID(1), Len: 101}}, syscall.EINVAL},
		{"zero len", 500, []Block{{Index: 0, ID: stID(1), Len: 0}}, syscall.EINVAL},
		{"past size", 150, []Block{{Index: 1, ID: stID(1), Len: 51}}, syscall.EINVAL},
		{"index overflow", 1<<64 - 1, []Block{{Index: 1 << 62, ID: stID(1), Len: 100}}, syscall.EINVAL},
		{"one bad of two", 500, []Block{{Index: 0, ID: stID(1), Len: 100}, {Index: 9, ID: stID(2), Len: 100}}, syscall.EINVAL},
		{"hole punch anywhere", 10, []Block{{Index: 99, Len: 7}}, 0},
		{"empty commit sets size", 12345, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStH(t)
			f := h.create(1, "f")
			before := h.attr(f)
			resp := h.apply(MetaRequest{Op: wire.OpCommit, Ino: f, Size: tt.size, Blocks: tt.blocks, Now: 777})
			if got := syscall.Errno(resp.Errno); got != tt.want {
				t.Fatalf("got errno %v, want %v", got, tt.want)
			}
			a := h.attr(f)
			if tt.want != 0 {
				if a != before || len(h.s.refs) != 0 {
					t.Fatalf("failed commit changed the file: %+v", a)
				}
				return
			}
			if a.Size != tt.size || a.Mtime != 777 || a.Ctime != 777 {
				t.Fatalf("got size %d mtime %d ctime %d, want %d, 777, 777", a.Size, a.Mtime, a.Ctime, tt.size)
			}
		})
	}
}

func TestStateCommitReplaceAndTimes(t *testing.T) {
	h := newStH(t)
	f := h.create(1, "f")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 200, Blocks: []Block{{Index: 0, ID: stID(1), Len: 100}, {Index: 1, ID: stID(1), Len: 100}}})
	g := h.create(1, "g")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: g, Size: 100, Blocks: []Block{{Index: 0, ID: stID(1), Len: 100}}})
	if got := h.s.refs[stID(1)]; got != 3 {
		t.Fatalf("refcount: got %d, want 3", got)
	}
	// Replace block 1, punch block 0, explicit mtime.
	a := h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 200, Mtime: 4242, Now: 9999, Blocks: []Block{
		{Index: 1, ID: stID(2), Len: 100}, {Index: 0}}}).Attr
	if a.Mtime != 4242 || a.Ctime != 4242 {
		t.Fatalf("times: got mtime %d ctime %d, want 4242", a.Mtime, a.Ctime)
	}
	l := h.ok(MetaRequest{Op: wire.OpLayout, Ino: f}).Layout
	if want := []Block{{Index: 1, ID: stID(2), Len: 100}}; !stBlocksEqual(l.Blocks, want) {
		t.Fatalf("layout: got %+v, want %+v", l.Blocks, want)
	}
	if h.s.refs[stID(1)] != 1 || h.s.refs[stID(2)] != 1 || len(h.s.Garbage(0)) != 0 {
		t.Fatalf("refs: got %d/%d garbage %d, want 1/1 and none", h.s.refs[stID(1)], h.s.refs[stID(2)], len(h.s.Garbage(0)))
	}
	// Commit that shrinks drops and trims.
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 120})
	l = h.ok(MetaRequest{Op: wire.OpLayout, Ino: f}).Layout
	if want := []Block{{Index: 1, ID: stID(2), Len: 20}}; !stBlocksEqual(l.Blocks, want) {
		t.Fatalf("layout after shrink: got %+v, want %+v", l.Blocks, want)
	}
}

func TestStateGC(t *testing.T) {
	h := newStH(t)
	f := h.create(1, "f")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 100, Blocks: []Block{{ID: stID(1), Len: 100}}})
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 100, Blocks: []Block{{ID: stID(2), Len: 100}}})
	if g := h.s.Garbage(0); len(g) != 1 || g[0] != stID(1) {
		t.Fatalf("garbage: got %d, want chunk 1", len(g))
	}
	// Mark: referenced chunk 2 is spared; unknown chunk 3 (say an abandoned
	// upload) is doomed with chunk 1.
	resp := h.ok(MetaRequest{Op: wire.OpGCMark, Chunks: [][32]byte{stID(3), stID(2), stID(1), stID(1)}})
	if len(resp.Chunks) != 2 || resp.Chunks[0] != stID(1) || resp.Chunks[1] != stID(3) {
		t.Fatalf("doomed: got %d chunks, want 1 and 3", len(resp.Chunks))
	}
	if g := h.s.Garbage(0); len(g) != 0 {
		t.Fatalf("garbage after mark: got %d, want 0", len(g))
	}
	// A commit naming a doomed chunk fails as a whole.
	before := h.attr(f)
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 200, Blocks: []Block{{Index: 1, ID: stID(4), Len: 100}, {ID: stID(1), Len: 100}}}, syscall.EAGAIN)
	if a := h.attr(f); a != before || h.s.refs[stID(4)] != 0 {
		t.Fatalf("failed commit changed state: %+v", a)
	}
	h.ok(MetaRequest{Op: wire.OpGCDone, Chunks: [][32]byte{stID(1), stID(3)}})
	if g := h.s.Garbage(0); len(g) != 0 {
		t.Fatalf("garbage after done: got %d, want 0", len(g))
	}
	// Once deleted, the chunk may be uploaded and committed again.
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 100, Blocks: []Block{{ID: stID(1), Len: 100}}})
	if g := h.s.Garbage(0); len(g) != 1 || g[0] != stID(2) {
		t.Fatalf("garbage: got %d, want chunk 2", len(g))
	}
	// Referenced again before being doomed: leaves the garbage list.
	g2 := h.create(1, "g")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: g2, Size: 100, Blocks: []Block{{ID: stID(2), Len: 100}}})
	if g := h.s.Garbage(0); len(g) != 0 {
		t.Fatalf("garbage: got %d, want 0", len(g))
	}
	if resp := h.ok(MetaRequest{Op: wire.OpGCMark, Chunks: [][32]byte{stID(2)}}); len(resp.Chunks) != 0 {
		t.Fatalf("mark referenced: got %d doomed, want 0", len(resp.Chunks))
	}
}

func TestStateXattr(t *testing.T) {
	h := newStH(t)
	f := h.create(1, "f")
	val := []byte("v1")
	h.ok(MetaRequest{Op: wire.OpSetXattr, Ino: f, Name: "user.b", Value: val, Flags: wire.XattrCreate, Now: 50})
	val[0] = 'X' // the state must have copied it
	if a := h.attr(f); a.Ctime != 50 {
		t.Fatalf("ctime: got %d, want 50", a.Ctime)
	}
	h.fails(MetaRequest{Op: wire.OpSetXattr, Ino: f, Name: "user.b", Flags: wire.XattrCreate}, syscall.EEXIST)
	h.ok(MetaRequest{Op: wire.OpSetXattr, Ino: f, Name: "user.a", Value: nil})
	h.ok(MetaRequest{Op: wire.OpSetXattr, Ino: 1, Name: "user.root", Value: make([]byte, 65536)})
	got := h.ok(MetaRequest{Op: wire.OpGetXattr, Ino: f, Name: "user.b"}).Value
	if string(got) != "v1" {
		t.Fatalf("get: got %q, want v1", got)
	}
	got[0] = 'Y' // nor may the response share memory
	h.ok(MetaRequest{Op: wire.OpSetXattr, Ino: f, Name: "user.b", Value: []byte("v2"), Flags: wire.XattrReplace})
	if got := h.ok(MetaRequest{Op: wire.OpGetXattr, Ino: f, Name: "user.b"}).Value; string(got) != "v2" {
		t.Fatalf("get after replace: got %q, want v2", got)
	}
	names := h.ok(MetaRequest{Op: wire.OpListXattr, Ino: f}).Names
	if len(names) != 2 || names[0] != "user.a" || names[1] != "user.b" {
		t.Fatalf("list: got %v, want [user.a user.b]", names)
	}
	h.ok(MetaRequest{Op: wire.OpRemoveXattr, Ino: f, Name: "user.a", Now: 60})
	if a := h.attr(f); a.Ctime != 60 {
		t.Fatalf("ctime after remove: got %d, want 60", a.Ctime)
	}
	h.fails(MetaRequest{Op: wire.OpGetXattr, Ino: f, Name: "user.a"}, syscall.ENODATA)
	if names := h.ok(MetaRequest{Op: wire.OpListXattr, Ino: f}).Names; len(names) != 1 {
		t.Fatalf("list after remove: got %v, want [user.b]", names)
	}
}

func TestStateReadDirLarge(t *testing.T) {
	h := newStH(t)
	const n = 10000
	for i := range n {
		h.s.Apply(&MetaRequest{Op: wire.OpCreate, Ino: 1, Name: stName(i)})
	}
	ents := h.ok(MetaRequest{Op: wire.OpReadDir, Ino: 1}).Entries
	if len(ents) != n {
		t.Fatalf("entries: got %d, want %d", len(ents), n)
	}
	for i := 1; i < len(ents); i++ {
		if ents[i-1].Name >= ents[i].Name {
			t.Fatalf("entries out of order at %d: %q, %q", i, ents[i-1].Name, ents[i].Name)
		}
	}
}

func stName(i int) Name {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := []byte("file-")
	for {
		b = append(b, digits[i%36])
		i /= 36
		if i == 0 {
			return Name(b)
		}
	}
}

func BenchmarkStateApplyCreate(b *testing.B) {
	s := NewState(StateConfig{})
	names := make([]string, b.N)
	for i := range names {
		names[i] = string(stName(i))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := s.Apply(&MetaRequest{Op: wire.OpCreate, Ino: 1, Name: Name(names[i]), Mode: 0o644, Now: int64(i)}); r.Errno != 0 {
			b.Fatalf("create: errno %d", r.Errno)
		}
	}
}

func BenchmarkStateReadLookup(b *testing.B) {
	s := NewState(StateConfig{})
	const n = 100000
	names := make([]string, n)
	for i := range n {
		names[i] = string(stName(i))
		s.Apply(&MetaRequest{Op: wire.OpCreate, Ino: 1, Name: Name(names[i])})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := s.Read(&MetaRequest{Op: wire.OpLookup, Ino: 1, Name: Name(names[i%n])}); r.Errno != 0 {
			b.Fatalf("lookup: errno %d", r.Errno)
		}
	}
}

// TestStateCommitFoldedAttrs checks a commit carrying the attribute changes
// made while the file was written: they apply, ctime is the commit's time,
// and bits a commit cannot carry are refused.
func TestStateCommitFoldedAttrs(t *testing.T) {
	h := newStH(t)
	f := h.create(1, "f")
	a := h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Mtime: 1000, Now: 5000,
		Valid: wire.SetMode | wire.SetUid | wire.SetGid | wire.SetAtime | wire.SetMtime,
		Mode:  0o4751, Uid: 7, Gid: 8, Atime: 900}).Attr
	want := Attr{Ino: f, Mode: stIFREG | 0o4751, Nlink: 1, Uid: 7, Gid: 8, Size: 10, Atime: 900, Mtime: 1000, Ctime: 5000}
	if a != want {
		t.Fatalf("attr: got %+v, want %+v", a, want)
	}
	if got := h.attr(f); got != want {
		t.Fatalf("stored attr: got %+v, want %+v", got, want)
	}
	// Without folded changes, ctime follows the write's mtime as before.
	a = h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Mtime: 6000, Now: 7000}).Attr
	if a.Mtime != 6000 || a.Ctime != 6000 || a.Mode != stIFREG|0o4751 {
		t.Fatalf("plain commit: got mtime %d ctime %d mode %o, want 6000 6000 %o", a.Mtime, a.Ctime, a.Mode, stIFREG|0o4751)
	}
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Valid: wire.SetSize}, syscall.EINVAL)
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Valid: wire.SetCtime}, syscall.EINVAL)
}

// TestStateClientNumberedCreate checks OpAllocInodes, creates with NewIno,
// and commits carrying their file's create: both or neither happen.
func TestStateClientNumberedCreate(t *testing.T) {
	h := newStH(t)
	first := h.ok(MetaRequest{Op: wire.OpAllocInodes, Size: 4}).FirstIno
	if again := h.ok(MetaRequest{Op: wire.OpAllocInodes, Size: 4}).FirstIno; again != first+4 {
		t.Fatalf("second reservation: got %d, want %d", again, first+4)
	}
	h.fails(MetaRequest{Op: wire.OpAllocInodes}, syscall.EINVAL)
	h.fails(MetaRequest{Op: wire.OpAllocInodes, Size: wire.MaxAllocInodes + 1}, syscall.EINVAL)
	// A number not reserved, or a directory, cannot be given.
	h.fails(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "x", Mode: stIFREG | 0o644, NewIno: first + 100}, syscall.EINVAL)
	h.fails(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "x", Mode: stIFIFO | 0o644, NewIno: first}, syscall.EINVAL)
	a := h.ok(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: stIFREG | 0o600, NewIno: first, Now: 10}).Attr
	if a.Ino != first {
		t.Fatalf("create: got inode %d, want %d", a.Ino, first)
	}
	// In use now; and a NewIno create never opens an existing name.
	h.fails(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "b", Mode: stIFREG | 0o600, NewIno: first}, syscall.EINVAL)
	h.fails(MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: stIFREG | 0o600, NewIno: first + 1}, syscall.EEXIST)

	// A commit carrying its create, with the client's create time.
	c := &MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "c", Mode: stIFREG | 0o644, Uid: 5, NewIno: first + 1, Now: 20}
	got := h.ok(MetaRequest{Op: wire.OpCommit, Ino: first + 1, Size: 3, Mtime: 25, Now: 30, Create: c,
		Blocks: []Block{{ID: stID(9), Len: 3}}}).Attr
	want := Attr{Ino: first + 1, Mode: stIFREG | 0o644, Nlink: 1, Uid: 5, Size: 3, Atime: 20, Mtime: 25, Ctime: 25}
	if got != want {
		t.Fatalf("create and commit: got %+v, want %+v", got, want)
	}
	if ino, e := h.lookup(1, "c"); e != 0 || ino != first+1 {
		t.Fatalf("lookup c: got %d, %v; want %d", ino, e, first+1)
	}
	// A failing commit keeps the create from happening, and the reverse.
	inodes, _ := h.s.Counts()
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: first + 2, Size: 3, Create: &MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "d", Mode: stIFREG | 0o644, NewIno: first + 2},
		Blocks: []Block{{ID: stID(9), Len: 4}}}, syscall.EINVAL) // block past the size
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: first + 2, Size: 3, Create: &MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "a", Mode: stIFREG | 0o644, NewIno: first + 2},
		Blocks: []Block{{ID: stID(9), Len: 3}}}, syscall.EEXIST)
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: first + 3, Size: 3, Create: &MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "e", Mode: stIFREG | 0o644, NewIno: first + 2}}, syscall.EINVAL) // inode numbers differ
	if after, _ := h.s.Counts(); after != inodes {
		t.Errorf("inodes after failed commits: got %d, want %d", after, inodes)
	}
	if _, e := h.lookup(1, "d"); e != syscall.ENOENT {
		t.Errorf("lookup d after its failed commit: got %v, want ENOENT", e)
	}
	if h.s.refs[stID(9)] != 1 {
		t.Errorf("refs of the committed chunk: got %d, want 1", h.s.refs[stID(9)])
	}
}

// TestStateInlineCommitRevivesDoomedChunk checks that a commit carrying a
// doomed chunk inline succeeds (every replica stores it again as it
// applies the commit), takes the chunk back from the collector, and that
// the collector's OpGCDone then leaves it referenced.
func TestStateInlineCommitRevivesDoomedChunk(t *testing.T) {
	h := newStH(t)
	f := h.create(1, "f")
	data := []byte("small file contents")
	id := [32]byte(chunkstore.Sum(data))
	inline := []Block{{ID: id, Len: uint32(len(data)), Data: data}}
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: uint64(len(data)), Blocks: inline})
	h.ok(MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "f"})
	h.ok(MetaRequest{Op: wire.OpDrop, Ino: f})
	if resp := h.ok(MetaRequest{Op: wire.OpGCMark, Chunks: [][32]byte{id}}); len(resp.Chunks) != 1 {
		t.Fatalf("mark: got %d doomed, want 1", len(resp.Chunks))
	}
	g := h.create(1, "g")
	// By reference the chunk is being collected; inline it is welcome.
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: g, Size: uint64(len(data)), Blocks: []Block{{ID: id, Len: uint32(len(data))}}}, syscall.EAGAIN)
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: g, Size: uint64(len(data)), Blocks: inline})
	h.ok(MetaRequest{Op: wire.OpGCDone, Chunks: [][32]byte{id}})
	if h.s.refs[id] != 1 {
		t.Fatalf("refs after done: %d, want 1", h.s.refs[id])
	}
	if g := h.s.Garbage(0); len(g) != 0 {
		t.Fatalf("garbage after done: %d chunks, want none", len(g))
	}
	l := h.ok(MetaRequest{Op: wire.OpLayout, Ino: g}).Layout
	if len(l.Blocks) != 1 || l.Blocks[0].ID != id {
		t.Fatalf("layout: %+v, want the revived chunk", l.Blocks)
	}
}

// TestStateDropUnopened checks that an unlink or rename flagged
// DropUnopened frees the inode that lost its last name at once, only if it
// is the inode the client named, and that a linked inode survives.
func TestStateDropUnopened(t *testing.T) {
	h := newStH(t)
	f := h.create(1, "f")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Blocks: []Block{{ID: stID(1), Len: 10}}})
	// A stale expectation (another inode) keeps the old two-step way.
	g := h.create(1, "g")
	rm := h.ok(MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "g", Flags: wire.DropUnopened, NewIno: f}).Removed
	if rm != (Removed{Ino: g, Orphaned: true}) {
		t.Fatalf("unlink with another inode named: got %+v, want orphaned %d", rm, g)
	}
	h.wantNlink(g, 0)
	// A second name keeps the inode.
	h.ok(MetaRequest{Op: wire.OpLink, Ino: f, NewParent: 1, NewName: "f2"})
	rm = h.ok(MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "f2", Flags: wire.DropUnopened, NewIno: f}).Removed
	if rm != (Removed{Ino: f}) {
		t.Fatalf("unlink of one of two names: got %+v", rm)
	}
	h.wantNlink(f, 1)
	// The last name: freed at once, its chunk becomes garbage.
	rm = h.ok(MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "f", Flags: wire.DropUnopened, NewIno: f}).Removed
	if rm != (Removed{Ino: f}) {
		t.Fatalf("unlink of the last name: got %+v, want freed (not orphaned)", rm)
	}
	if _, ok := h.s.inodes[f]; ok {
		t.Fatal("inode still there after a DropUnopened unlink of its last name")
	}
	if gb := h.s.Garbage(0); len(gb) != 1 || gb[0] != stID(1) {
		t.Fatalf("garbage: %d chunks, want chunk 1", len(gb))
	}
	// Rename over a file.
	a, b := h.create(1, "a"), h.create(1, "b")
	rm = h.ok(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "a", NewParent: 1, NewName: "b", Flags: wire.DropUnopened, NewIno: b}).Removed
	if rm != (Removed{Ino: b}) {
		t.Fatalf("rename over: got %+v, want %d freed", rm, b)
	}
	if _, ok := h.s.inodes[b]; ok {
		t.Fatal("renamed-over inode still there")
	}
	h.wantNlink(a, 1)
	h.fails(MetaRequest{Op: wire.OpRename, Ino: 1, Name: "b", NewParent: 1, NewName: "c", Flags: wire.RenameNoReplace | wire.RenameExchange | wire.DropUnopened}, syscall.EINVAL)
}

// TestStateSaysHowDirectoryChanged checks that each op that changes a
// directory's entries answers with the directory's ctime before it
// (DirBefore) and its attributes after it (Dir), so that a client can
// follow a directory's changes from a listing (whose answer carries the
// directory's attributes too) and tell whether anyone else changed it.
func TestStateSaysHowDirectoryChanged(t *testing.T) {
	h := newStH(t)
	d := h.ok(MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "d", Mode: 0o755}).Attr
	list := h.ok(MetaRequest{Op: wire.OpReadDir, Ino: d.Ino})
	if list.Dir == nil || list.Dir.Ino != d.Ino || list.Dir.Ctime != d.Ctime || list.DirBefore != d.Ctime {
		t.Fatalf("readdir: Dir %+v, DirBefore %d; want the directory's attributes %+v, its ctime unchanged", list.Dir, list.DirBefore, d)
	}
	ctime := d.Ctime
	step := func(what string, req MetaRequest) *MetaResponse {
		t.Helper()
		resp := h.ok(req)
		switch {
		case resp.Dir == nil:
			t.Fatalf("%s: no Dir in the answer", what)
		case resp.Dir.Ino != d.Ino:
			t.Fatalf("%s: Dir is inode %d, want %d", what, resp.Dir.Ino, d.Ino)
		case resp.DirBefore != ctime:
			t.Fatalf("%s: DirBefore %d, want the ctime %d the last op left", what, resp.DirBefore, ctime)
		}
		ctime = resp.Dir.Ctime
		return resp
	}
	f := step("create", MetaRequest{Op: wire.OpCreate, Ino: d.Ino, Name: "f", Mode: 0o644}).Attr.Ino
	if ctime == d.Ctime {
		t.Fatal("create left the directory's ctime as it was")
	}
	step("create of an existing name", MetaRequest{Op: wire.OpCreate, Ino: d.Ino, Name: "f", Mode: 0o644})
	step("mkdir", MetaRequest{Op: wire.OpMkdir, Ino: d.Ino, Name: "sub", Mode: 0o755})
	step("symlink", MetaRequest{Op: wire.OpSymlink, Ino: d.Ino, Name: "l", Target: "f"})
	step("link", MetaRequest{Op: wire.OpLink, Ino: f, NewParent: d.Ino, NewName: "f2"})
	step("unlink", MetaRequest{Op: wire.OpUnlink, Ino: d.Ino, Name: "f2"})
	step("rmdir", MetaRequest{Op: wire.OpRmdir, Ino: d.Ino, Name: "sub"})
	step("rename within the directory", MetaRequest{Op: wire.OpRename, Ino: d.Ino, Name: "f", NewParent: d.Ino, NewName: "g"})
	if r := step("rename within the directory", MetaRequest{Op: wire.OpRename, Ino: d.Ino, Name: "g", NewParent: d.Ino, NewName: "f"}); r.NewDir != nil {
		t.Errorf("rename within one directory: NewDir %+v, want none", r.NewDir)
	}

	// Between two directories, both steps are in the answer.
	e := h.ok(MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "e", Mode: 0o755}).Attr
	r := step("rename out of the directory", MetaRequest{Op: wire.OpRename, Ino: d.Ino, Name: "f", NewParent: e.Ino, NewName: "f"})
	if r.NewDir == nil || r.NewDir.Ino != e.Ino || r.NewDirBefore != e.Ctime || r.NewDir.Ctime == e.Ctime {
		t.Fatalf("rename between directories: NewDir %+v, NewDirBefore %d; want directory %d taken from ctime %d to a new one", r.NewDir, r.NewDirBefore, e.Ino, e.Ctime)
	}
	eCtime := r.NewDir.Ctime
	r = h.ok(MetaRequest{Op: wire.OpRename, Ino: e.Ino, Name: "f", NewParent: d.Ino, NewName: "f"})
	if r.Dir == nil || r.Dir.Ino != e.Ino || r.DirBefore != eCtime || r.NewDir == nil || r.NewDir.Ino != d.Ino || r.NewDirBefore != ctime {
		t.Fatalf("rename back: Dir %+v (before %d), NewDir %+v (before %d); want %d from %d and %d from %d", r.Dir, r.DirBefore, r.NewDir, r.NewDirBefore, e.Ino, eCtime, d.Ino, ctime)
	}
}
