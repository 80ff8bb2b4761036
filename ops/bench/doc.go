// Package bench is the engine of `shoal bench`: it runs one fixed set of
// file-system workloads on each of several directories and reports the
// figures side by side, so a shoal mount can be compared with a local disk
// and with a plain FUSE pass-through (the go-fuse loopback example, see
// [BuildLoopback] and [MountLoopback]).
//
// # Workloads
//
//   - "seq": one file of [Config.SeqBytes] written in [Config.SeqBlock]
//     writes, then fsync and close (MiB/s); after the caches are dropped it
//     is read back sequentially (cold read, MiB/s).
//   - "random": a file of [Config.RandBytes] is laid down (untimed), caches
//     are dropped, then 4 KiB reads at random aligned offsets and 4 KiB
//     writes at random aligned offsets followed by one fsync (IOPS). Each
//     phase ends after [Config.RandOps] operations or [Config.RandDuration],
//     whichever comes first. Operations are issued one at a time (queue
//     depth 1); the offset sequence is seeded, so every target sees the same.
//   - "small": [Config.SmallFiles] files of [Config.SmallFileBytes] in one
//     directory, with [Config.Workers] parallel workers: create (open, write,
//     close), stat, read, rename and delete, each reported in ops/s. Caches
//     are dropped after the create phase. Two more create phases come
//     first, each of a quarter as many files in a directory of its own:
//     with more than one worker, a single worker ("create 1 worker"), so
//     the report shows how creates scale with parallelism; and the
//     workers fsyncing each file before closing it ("create+fsync"), the
//     figure to compare with a file system whose close makes a file
//     durable, as shoal's does.
//   - "tree": `cp -a` of [Config.TreeSource] into the target, read every
//     regular file (cold), remove it; seconds per phase.
//
// Each workload runs on every target in turn before the next workload
// starts, so a changing background load touches all targets alike. Every
// target gets its own scratch directory inside it, removed when the run
// ends, whether it succeeded or not. With [Config.Rounds] above 1 the
// whole sequence repeats, alternating the order of the targets, and each
// figure is the median round.
//
// # Cold reads
//
// Before every cold phase, Run calls sync(2) and writes 3 to
// /proc/sys/vm/drop_caches (which needs root; [Config.KeepCaches] skips it),
// then calls [Config.BeforeColdRead] if set, so a caller can drop a FUSE
// server's own cache too.
//
// # Data
//
// Written data is pseudo-random and every 4 KiB page of it is distinct,
// across phases, rounds and targets of a run, and from one run to the
// next, so a store that compresses or deduplicates gets no unfair
// advantage (a second round does not find the first round's file stored).
//
// # Bounds
//
// Every loop ends by count or by time budget, and all of them stop early
// when the context is cancelled. Speed is what the report states; nothing
// here asserts it.
package bench
