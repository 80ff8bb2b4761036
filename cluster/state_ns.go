package cluster

// This file holds the namespace operations of State: names, links,
// attributes and xattrs.

import (
	"slices"
	"sort"
	"syscall"

	"shoal/wire"
)

func (s *State) lookup(req *MetaRequest) *MetaResponse {
	if req.Name == "" {
		return stErr(syscall.ENOENT, "empty name")
	}
	p, e := s.parentAndName(req.Ino, string(req.Name))
	if e != 0 {
		return stErr(e, "lookup")
	}
	ino, ok := p.entries[string(req.Name)]
	if !ok {
		return stErr(syscall.ENOENT, "no such name")
	}
	return &MetaResponse{Attr: s.inodes[ino].attr}
}

func (s *State) readDir(req *MetaRequest) *MetaResponse {
	d, e := s.dir(req.Ino)
	if e != 0 {
		return stErr(e, "readdir")
	}
	ents := make([]DirEntry, 0, len(d.entries))
	withAttrs := req.Flags&wire.ReadDirAttrs != 0
	for name, ino := range d.entries {
		in := s.inodes[ino]
		e := DirEntry{Name: Name(name), Ino: ino, Mode: in.attr.Mode}
		if withAttrs {
			a := in.attr
			e.Attr, e.NoXattrs = &a, len(in.xattrs) == 0
		}
		ents = append(ents, e)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	return &MetaResponse{Entries: ents, Dir: stAttr(d), DirBefore: d.attr.Ctime}
}

const stSetAll = wire.SetMode | wire.SetUid | wire.SetGid | wire.SetSize | wire.SetAtime | wire.SetMtime | wire.SetCtime

// setModeOwner sets the permission bits, uid and gid that req.Valid
// names (OpSetAttr, and the attribute changes an OpCommit carries); the
// file type stays.
func (n *stInode) setModeOwner(req *MetaRequest) {
	if req.Valid&wire.SetMode != 0 {
		n.attr.Mode = n.attr.Mode&stIFMT | req.Mode&stPerm
	}
	if req.Valid&wire.SetUid != 0 {
		n.attr.Uid = req.Uid
	}
	if req.Valid&wire.SetGid != 0 {
		n.attr.Gid = req.Gid
	}
}

func (s *State) setAttr(req *MetaRequest) *MetaResponse {
	n, e := s.inode(req.Ino)
	if e != 0 {
		return stErr(e, "setattr")
	}
	v := req.Valid
	if v&^stSetAll != 0 {
		return stErr(syscall.EINVAL, "unknown setattr bits")
	}
	if v&wire.SetSize != 0 {
		switch {
		case n.isDir():
			return stErr(syscall.EISDIR, "truncate a directory")
		case !n.isReg():
			return stErr(syscall.EINVAL, "truncate a special file")
		}
	}
	n.setModeOwner(req)
	if v&wire.SetSize != 0 {
		if req.Size != n.attr.Size {
			n.attr.Mtime = req.Now
		}
		s.truncate(n, req.Size)
	}
	if v&wire.SetAtime != 0 {
		n.attr.Atime = req.Atime
	}
	if v&wire.SetMtime != 0 {
		n.attr.Mtime = req.Mtime
	}
	n.attr.Ctime = req.Now
	return &MetaResponse{Attr: n.attr}
}

func (s *State) create(req *MetaRequest) *MetaResponse {
	mode := req.Mode
	if mode&^(stIFMT|stPerm) != 0 {
		return stErr(syscall.EINVAL, "bad mode")
	}
	switch mode & stIFMT {
	case 0:
		mode |= stIFREG
	case stIFREG, stIFIFO, stIFSOCK, stIFCHR, stIFBLK:
	default:
		return stErr(syscall.EINVAL, "create: bad file type")
	}
	p, e := s.parentAndName(req.Ino, string(req.Name))
	if e != 0 {
		return stErr(e, "create")
	}
	if req.NewIno != 0 {
		if e := s.checkNewIno(req.NewIno, mode); e != 0 {
			return stErr(e, "create: bad client inode number")
		}
	}
	if ino, ok := p.entries[string(req.Name)]; ok {
		old := s.inodes[ino]
		if req.Flags&wire.CreateExcl != 0 || req.NewIno != 0 || !old.isReg() {
			return stErr(syscall.EEXIST, "name exists")
		}
		return &MetaResponse{Attr: old.attr, Dir: stAttr(p), DirBefore: p.attr.Ctime}
	}
	attr := Attr{Mode: mode, Nlink: 1, Uid: req.Uid, Gid: req.Gid, Atime: req.Now, Mtime: req.Now, Ctime: req.Now}
	if t := mode & stIFMT; t == stIFCHR || t == stIFBLK {
		attr.Rdev = req.Rdev
	}
	var n *stInode
	if req.NewIno != 0 {
		attr.Ino = req.NewIno
		n = s.newInodeAt(attr)
	} else {
		n = s.newInode(attr)
	}
	p.entries[string(req.Name)] = n.attr.Ino
	before, dir := stDirChanged(p, req.Now)
	return &MetaResponse{Attr: n.attr, Dir: dir, DirBefore: before}
}

// stAttr returns a copy of n's attributes, for MetaResponse.Dir.
func stAttr(n *stInode) *Attr {
	a := n.attr
	return &a
}

// checkNewIno returns 0 if a create may number its new inode of mode ino:
// a regular file, and ino handed out by OpAllocInodes (below next) and not
// in use.
func (s *State) checkNewIno(ino uint64, mode uint32) syscall.Errno {
	if mode&stIFMT != stIFREG || ino <= wire.RootIno || ino >= s.next || s.inodes[ino] != nil {
		return syscall.EINVAL
	}
	return 0
}

func (s *State) mkdir(req *MetaRequest) *MetaResponse {
	p, e := s.parentAndName(req.Ino, string(req.Name))
	if e != 0 {
		return stErr(e, "mkdir")
	}
	if _, ok := p.entries[string(req.Name)]; ok {
		return stErr(syscall.EEXIST, "name exists")
	}
	if p.attr.Nlink >= stMaxNlink {
		return stErr(syscall.EMLINK, "too many subdirectories")
	}
	n := s.newInode(Attr{Mode: stIFDIR | req.Mode&stPerm, Nlink: 2, Uid: req.Uid, Gid: req.Gid,
		Atime: req.Now, Mtime: req.Now, Ctime: req.Now})
	n.parent = p.attr.Ino
	n.entries = make(map[string]uint64)
	p.entries[string(req.Name)] = n.attr.Ino
	p.attr.Nlink++
	before, dir := stDirChanged(p, req.Now)
	return &MetaResponse{Attr: n.attr, Dir: dir, DirBefore: before}
}

func (s *State) symlink(req *MetaRequest) *MetaResponse {
	switch {
	case req.Target == "":
		return stErr(syscall.ENOENT, "empty symlink target")
	case len(req.Target) > stMaxSymlink:
		return stErr(syscall.ENAMETOOLONG, "symlink target too long")
	}
	p, e := s.parentAndName(req.Ino, string(req.Name))
	if e != 0 {
		return stErr(e, "symlink")
	}
	if _, ok := p.entries[string(req.Name)]; ok {
		return stErr(syscall.EEXIST, "name exists")
	}
	n := s.newInode(Attr{Mode: stIFLNK | 0o777, Nlink: 1, Uid: req.Uid, Gid: req.Gid,
		Size: uint64(len(req.Target)), Atime: req.Now, Mtime: req.Now, Ctime: req.Now})
	n.target = string(req.Target)
	p.entries[string(req.Name)] = n.attr.Ino
	before, dir := stDirChanged(p, req.Now)
	return &MetaResponse{Attr: n.attr, Dir: dir, DirBefore: before}
}

func (s *State) link(req *MetaRequest) *MetaResponse {
	n, e := s.inode(req.Ino)
	if e != 0 {
		return stErr(e, "link source")
	}
	if n.isDir() {
		return stErr(syscall.EPERM, "link a directory")
	}
	p, e := s.parentAndName(req.NewParent, string(req.NewName))
	if e != 0 {
		return stErr(e, "link")
	}
	if n.attr.Nlink == 0 {
		return stErr(syscall.ENOENT, "link an unlinked inode")
	}
	if _, ok := p.entries[string(req.NewName)]; ok {
		return stErr(syscall.EEXIST, "name exists")
	}
	if n.attr.Nlink >= stMaxNlink {
		return stErr(syscall.EMLINK, "too many links")
	}
	p.entries[string(req.NewName)] = n.attr.Ino
	n.attr.Nlink++
	n.attr.Ctime = req.Now
	before, dir := stDirChanged(p, req.Now)
	return &MetaResponse{Attr: n.attr, Dir: dir, DirBefore: before}
}

func (s *State) unlink(req *MetaRequest) *MetaResponse {
	p, e := s.parentAndName(req.Ino, string(req.Name))
	if e != 0 {
		return stErr(e, "unlink")
	}
	ino, ok := p.entries[string(req.Name)]
	if !ok {
		return stErr(syscall.ENOENT, "no such name")
	}
	n := s.inodes[ino]
	if n.isDir() {
		return stErr(syscall.EISDIR, "unlink a directory")
	}
	delete(p.entries, string(req.Name))
	before, dir := stDirChanged(p, req.Now)
	rm := s.dropName(n, req.Now)
	s.freeUnopened(req, n, &rm)
	return &MetaResponse{Removed: rm, Dir: dir, DirBefore: before}
}

// freeUnopened frees n, which lost a name to req as rm says, if that was
// its last name and req says (DropUnopened, NewIno) that its client does
// not hold n open: the OpDrop the client would send next is done at once.
func (s *State) freeUnopened(req *MetaRequest, n *stInode, rm *Removed) {
	if rm.Orphaned && req.Flags&wire.DropUnopened != 0 && req.NewIno == rm.Ino {
		s.free(n)
		rm.Orphaned = false
	}
}

// dropName takes one name away from non-directory n.
func (s *State) dropName(n *stInode, now int64) Removed {
	n.attr.Nlink--
	n.attr.Ctime = now
	return Removed{Ino: n.attr.Ino, Orphaned: n.attr.Nlink == 0}
}

func (s *State) rmdir(req *MetaRequest) *MetaResponse {
	p, e := s.parentAndName(req.Ino, string(req.Name))
	if e != 0 {
		return stErr(e, "rmdir")
	}
	ino, ok := p.entries[string(req.Name)]
	if !ok {
		return stErr(syscall.ENOENT, "no such name")
	}
	n := s.inodes[ino]
	switch {
	case !n.isDir():
		return stErr(syscall.ENOTDIR, "rmdir a non-directory")
	case len(n.entries) > 0:
		return stErr(syscall.ENOTEMPTY, "directory not empty")
	}
	delete(p.entries, string(req.Name))
	p.attr.Nlink--
	before, dir := stDirChanged(p, req.Now)
	s.free(n)
	return &MetaResponse{Dir: dir, DirBefore: before}
}

func (s *State) rename(req *MetaRequest) *MetaResponse {
	const known = wire.RenameNoReplace | wire.RenameExchange | wire.DropUnopened
	const both = wire.RenameNoReplace | wire.RenameExchange
	switch {
	case req.Flags&^known != 0:
		return stErr(syscall.EINVAL, "unknown rename flags")
	case req.Flags&both == both:
		return stErr(syscall.EINVAL, "rename: both noreplace and exchange")
	}
	exchange := req.Flags&wire.RenameExchange != 0
	op, e := s.parentAndName(req.Ino, string(req.Name))
	if e != 0 {
		return stErr(e, "rename source")
	}
	np, e := s.parentAndName(req.NewParent, string(req.NewName))
	if e != 0 {
		return stErr(e, "rename target")
	}
	srcIno, ok := op.entries[string(req.Name)]
	if !ok {
		return stErr(syscall.ENOENT, "no such name")
	}
	src := s.inodes[srcIno]
	dstIno, exists := np.entries[string(req.NewName)]
	if exists && req.Flags&wire.RenameNoReplace != 0 {
		return stErr(syscall.EEXIST, "target exists")
	}
	if exchange && !exists {
		return stErr(syscall.ENOENT, "exchange with a missing name")
	}
	if src.isDir() && s.within(np.attr.Ino, srcIno) {
		return stErr(syscall.EINVAL, "move a directory into itself")
	}
	if exists && dstIno == srcIno {
		return &MetaResponse{}
	}
	var dst *stInode
	if exists {
		dst = s.inodes[dstIno]
		if exchange {
			if dst.isDir() && s.within(op.attr.Ino, dstIno) {
				return stErr(syscall.EINVAL, "move a directory into itself")
			}
		} else {
			switch {
			case src.isDir() && !dst.isDir():
				return stErr(syscall.ENOTDIR, "directory over non-directory")
			case !src.isDir() && dst.isDir():
				return stErr(syscall.EISDIR, "non-directory over directory")
			case dst.isDir() && len(dst.entries) > 0:
				return stErr(syscall.ENOTEMPTY, "target directory not empty")
			}
		}
	}
	if src.isDir() && op != np && np.attr.Nlink >= stMaxNlink && !(exists && dst.isDir()) {
		return stErr(syscall.EMLINK, "too many subdirectories")
	}
	if exchange && dst.isDir() && op != np && op.attr.Nlink >= stMaxNlink && !src.isDir() {
		return stErr(syscall.EMLINK, "too many subdirectories")
	}

	resp := &MetaResponse{}
	now := req.Now
	if exchange {
		op.entries[string(req.Name)] = dstIno
		np.entries[string(req.NewName)] = srcIno
		if op != np {
			s.moveDir(src, op, np)
			s.moveDir(dst, np, op)
		}
		dst.attr.Ctime = now
	} else {
		if exists {
			if dst.isDir() {
				np.attr.Nlink--
				resp.Removed = Removed{Ino: dstIno}
				s.free(dst)
			} else {
				resp.Removed = s.dropName(dst, now)
				s.freeUnopened(req, dst, &resp.Removed)
			}
		}
		delete(op.entries, string(req.Name))
		np.entries[string(req.NewName)] = srcIno
		if op != np {
			s.moveDir(src, op, np)
		}
	}
	src.attr.Ctime = now
	resp.DirBefore, resp.Dir = stDirChanged(op, now)
	if np != op {
		resp.NewDirBefore, resp.NewDir = stDirChanged(np, now)
	}
	return resp
}

// moveDir records that n, if a directory, moved from directory from to
// directory to.
func (s *State) moveDir(n, from, to *stInode) {
	if !n.isDir() {
		return
	}
	n.parent = to.attr.Ino
	from.attr.Nlink--
	to.attr.Nlink++
}

// within reports whether directory ino is dir or lies below it.
func (s *State) within(ino, dir uint64) bool {
	for {
		if ino == dir {
			return true
		}
		if ino == wire.RootIno {
			return false
		}
		n := s.inodes[ino]
		if n == nil || n.parent == ino {
			return false
		}
		ino = n.parent
	}
}

// stCheckXattrName returns the errno Linux gives for a bad xattr name.
func stCheckXattrName(name string) syscall.Errno {
	switch {
	case name == "":
		return syscall.EINVAL
	case len(name) > stMaxXattrName:
		return syscall.ERANGE
	}
	return 0
}

func (s *State) setXattr(req *MetaRequest) *MetaResponse {
	n, e := s.inode(req.Ino)
	if e != 0 {
		return stErr(e, "setxattr")
	}
	const known = wire.XattrCreate | wire.XattrReplace
	if req.Flags&^known != 0 || req.Flags == known {
		return stErr(syscall.EINVAL, "bad setxattr flags")
	}
	if e := stCheckXattrName(string(req.Name)); e != 0 {
		return stErr(e, "bad xattr name")
	}
	if len(req.Value) > stMaxXattrValue {
		return stErr(syscall.E2BIG, "xattr value too large")
	}
	if req.Name == SchemeXattr {
		if !n.isDir() {
			return stErr(syscall.EINVAL, SchemeXattr+" is set on directories only")
		}
		if _, err := parseScheme(req.Value); err != nil {
			return stErr(syscall.EINVAL, err.Error())
		}
	}
	_, ok := n.xattrs[string(req.Name)]
	switch {
	case ok && req.Flags&wire.XattrCreate != 0:
		return stErr(syscall.EEXIST, "xattr exists")
	case !ok && req.Flags&wire.XattrReplace != 0:
		return stErr(syscall.ENODATA, "no such xattr")
	}
	if n.xattrs == nil {
		n.xattrs = make(map[string][]byte)
	}
	n.xattrs[string(req.Name)] = append([]byte{}, req.Value...)
	n.attr.Ctime = req.Now
	return &MetaResponse{}
}

// xattrOf returns the inode req.Ino and its extended attribute req.Name,
// for operation op; an error response if either is missing or the name
// is malformed.
func (s *State) xattrOf(req *MetaRequest, op string) (*stInode, []byte, *MetaResponse) {
	n, e := s.inode(req.Ino)
	if e != 0 {
		return nil, nil, stErr(e, op)
	}
	if e := stCheckXattrName(string(req.Name)); e != 0 {
		return nil, nil, stErr(e, "bad xattr name")
	}
	v, ok := n.xattrs[string(req.Name)]
	if !ok {
		return nil, nil, stErr(syscall.ENODATA, "no such xattr")
	}
	return n, v, nil
}

func (s *State) removeXattr(req *MetaRequest) *MetaResponse {
	n, _, errResp := s.xattrOf(req, "removexattr")
	if errResp != nil {
		return errResp
	}
	delete(n.xattrs, string(req.Name))
	if len(n.xattrs) == 0 {
		n.xattrs = nil
	}
	n.attr.Ctime = req.Now
	return &MetaResponse{}
}

func (s *State) getXattr(req *MetaRequest) *MetaResponse {
	_, v, errResp := s.xattrOf(req, "getxattr")
	if errResp != nil {
		return errResp
	}
	return &MetaResponse{Value: append([]byte{}, v...)}
}

func (s *State) listXattr(req *MetaRequest) *MetaResponse {
	n, e := s.inode(req.Ino)
	if e != 0 {
		return stErr(e, "listxattr")
	}
	names := make([]Name, 0, len(n.xattrs))
	for name := range n.xattrs {
		names = append(names, Name(name))
	}
	slices.Sort(names)
	return &MetaResponse{Names: names}
}
