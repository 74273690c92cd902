"""bench/workloads/parmeta.py: the parallel metadata workload.

Usage: parmeta.py NPROC NCREATE FILES_TXT (run in the mount's root).  Each of
NPROC processes lstat()s every NPROC-th path of FILES_TXT, then creates NCREATE
small files in par/pN, stats them and removes every fourth one; all start
together.  Prints how many files are left, for the check.
"""
import os
import sys
from multiprocessing import Barrier, Process


def worker(idx, nproc, ncreate, paths, barrier):
    barrier.wait()
    for p in paths[idx::nproc]:
        os.lstat(p)
    d = os.path.join("par", "p%d" % idx)
    os.mkdir(d)
    names = [os.path.join(d, "f%05d" % i) for i in range(ncreate)]
    for n in names:
        fd = os.open(n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * 100)
        os.close(fd)
    for n in names:
        os.stat(n)
    for n in names[::4]:
        os.unlink(n)


def main():
    nproc, ncreate = int(sys.argv[1]), int(sys.argv[2])
    with open(sys.argv[3]) as f:
        paths = [line.rstrip("\n") for line in f]
    os.mkdir("par")
    barrier = Barrier(nproc)
    procs = [Process(target=worker, args=(i, nproc, ncreate, paths, barrier)) for i in range(nproc)]
    for p in procs:
        p.start()
    failed = 0
    for p in procs:
        p.join()
        failed += p.exitcode != 0
    if failed:
        sys.exit("parmeta: %d of %d workers failed" % (failed, nproc))
    print(nproc * (ncreate - len(range(0, ncreate, 4))))


if __name__ == "__main__":
    main()
