// Package fstest is the POSIX conformance suite that every way of mounting
// shoal must pass.
//
// [Run] takes a directory — a FUSE mount point, or for validating the suite
// itself a plain local directory — and runs subtests against it in the spirit
// of go-fuse's posixtest: each subtest works in its own fresh subdirectory and
// asserts what a user of the file system would check: the bytes read back,
// the errno of a failing call (compared with errors.Is against syscall.Exxx),
// and the fields of stat(2).
//
// Run also runs go-fuse's posixtest tests (as subtests of "Posixtest"),
// except the few that do not hold on a local file system.
//
// [RunPrograms] runs real programs on the directory (cp -a, diff -r, git,
// go build, tar) and checks their results.
//
// # Requirements
//
// The suite must run as root: it changes owners, and it checks permissions
// as other users (uids 1000 and 1001) by re-executing the test binary, which
// drops its privileges before it makes the one system call under test. For a
// FUSE mount that means the mount needs allow_other, and for the kernel to
// enforce modes, default_permissions (or a server that checks them itself).
// The permission subtests add search (x) permission for group and others to
// the directories above the tested directory for the duration of the test, and
// restore the old modes afterwards.
//
// # Validation
//
// The package's own tests run the suite on a local temp dir, where every
// check passes, and on go-fuse's example loopback mount, where exactly its
// known gaps fail: it creates nodes with its own umask (022) applied on top
// of the caller's, and chowns new nodes to the caller, losing the group a
// setgid directory gives. Set FSTEST_DIR to run TestRun and TestRunPrograms
// against any directory.
//
// # Time stamps
//
// Time checks never assert a duration. To see that an operation changed a
// time stamp, a subtest either first sets atime and mtime to a fixed past value
// with utimensat, or records ctime and waits a few clock ticks (see [Tick])
// before the operation, then checks the stamp moved forwards.
//
// # Child processes
//
// The package has an init function that, when the environment variable
// named by childEnv is set, performs one operation and exits. It is never
// active in an ordinary process.
package fstest
