"""bench/report.py: turns the raw CSV of bench/run.sh into the report.

Writes BASE.md (medians, ratios, failures, daemon peak RSS and CPU),
BASE-medians.csv (machine-readable medians) and BASE.dat (times relative to
kernel overlayfs, the input of bench/plot.gp).
"""
import argparse
import csv
import os
import platform
import statistics
from collections import defaultdict

FS = ["native", "kovl", "strata", "fuse-ovl", "unionfs"]
LABEL = {
    "native": "native dir",
    "kovl": "kernel overlayfs",
    "strata": "strata-fs",
    "fuse-ovl": "fuse-overlayfs",
    "unionfs": "unionfs-fuse",
}
FUSE = ["strata", "fuse-ovl", "unionfs"]
WHAT = {
    "walk": "find + lstat of the whole tree",
    "readall": "tar cf - usr | wc -c (read every file)",
    "seqread": "dd of the large lower file, 1 MiB reads",
    "randread": "fio 4 KiB random reads of the large lower file",
    "copyup": "append 1 byte to the large lower file",
    "trunc": "O_TRUNC of the large lower file",
    "chmod": "chmod -R g+w usr/share",
    "chown": "chown -R -h usr/share",
    "rm": "rm -rf usr/share",
    "untar": "tar x of many small files into the mount",
    "seqwrite": "fio sequential write of a new file, fsync at end",
    "parmeta": "4 processes: lstat lower files, create/stat/unlink",
    "checksum": "md5sum -c of every file of usr/",
}


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=3):
    return "-" if x is None else ("%.*f" % (digits, x))


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    ap = argparse.ArgumentParser()
    for opt in ["raw", "base", "scale", "rounds", "image", "elapsed", "command", "strata", "uring"]:
        ap.add_argument("--" + opt, required=True)
    a = ap.parse_args()

    times = defaultdict(list)  # (workload, fs) -> seconds of good runs
    bad = defaultdict(list)  # (workload, fs) -> statuses of bad runs
    rss = defaultdict(list)  # (workload, fs) -> KiB
    cpu = defaultdict(list)  # (workload, fs) -> seconds
    workloads, fss = [], []
    with open(a.raw) as f:
        for row in csv.DictReader(f):
            key = (row["workload"], row["fs"])
            if row["workload"] not in workloads:
                workloads.append(row["workload"])
            if row["fs"] not in fss:
                fss.append(row["fs"])
            if row["status"] == "ok":
                times[key].append(float(row["seconds"]))
            else:
                bad[key].append("r%s %s" % (row["round"], row["status"]))
            if row["daemon_peak_rss_kib"]:
                rss[key].append(int(row["daemon_peak_rss_kib"]))
            if row["daemon_cpu_s"]:
                cpu[key].append(float(row["daemon_cpu_s"]))
    fss = [f for f in FS if f in fss]
    med = {k: median(v) for k, v in times.items()}

    out = []
    out.append("# strata-fs benchmark, %s (%s scale)\n" % (os.path.basename(a.base)[:15], a.scale))
    out.append("- command: `%s`; strata %s; total time %s s" % (a.command, a.strata, a.elapsed))
    out.append(
        "- machine: %s, kernel %s, %d cores; image and uppers on one filesystem"
        % (platform.node(), platform.release(), os.cpu_count())
    )
    out.append("- image: %s" % a.image)
    out.append("- FUSE over io_uring: %s" % a.uring)
    out.append(
        "- %s round(s), filesystems interleaved within each round; every run on a fresh mount"
        " with a fresh upper; **cold caches** (sync + drop_caches before every timed run)" % a.rounds
    )
    out.append("- figures are medians of wall-clock seconds (monotonic clock); lower is better\n")

    head = ["workload"] + [LABEL[f] for f in fss]
    has_ratio = "strata" in fss
    if has_ratio:
        head += ["strata/kovl", "strata/fuse-ovl"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for w in workloads:
        cells = [w]
        for f in fss:
            m = med.get((w, f))
            cells.append(fmt(m) + (" (%d bad)" % len(bad[(w, f)]) if bad[(w, f)] else ""))
        if has_ratio:
            s = med.get((w, "strata"))
            cells.append(fmt(ratio(s, med.get((w, "kovl"))), 2))
            cells.append(fmt(ratio(s, med.get((w, "fuse-ovl"))), 2))
        out.append("| " + " | ".join(cells) + " |")

    failures = [(k, v) for k, v in bad.items() if v]
    if failures:
        out.append("\n## Runs that failed (not in the medians)\n")
        for (w, f), v in sorted(failures):
            out.append("- %s on %s: %s" % (w, LABEL.get(f, f), ", ".join(v)))

    fuse = [f for f in FUSE if f in fss]
    if fuse:
        out.append("\n## FUSE daemons: peak RSS (VmHWM, MiB, max over rounds) / CPU (s, median)\n")
        out.append("| workload | " + " | ".join(LABEL[f] for f in fuse) + " |")
        out.append("|---|" + "---|" * len(fuse))
        for w in workloads:
            cells = [w]
            for f in fuse:
                r, c = rss.get((w, f)), cpu.get((w, f))
                cells.append(
                    "%s / %s" % (fmt(max(r) / 1024, 1) if r else "-", fmt(median(c), 2) if c else "-")
                )
            out.append("| " + " | ".join(cells) + " |")
        cells = ["**max**"]
        for f in fuse:
            r = [x for w in workloads for x in rss.get((w, f), [])]
            cells.append(fmt(max(r) / 1024, 1) if r else "-")
        out.append("| " + " | ".join(cells) + " |")

    out.append("\n## Workloads\n")
    for w in workloads:
        out.append("- %s: %s" % (w, WHAT.get(w, "")))
    out.append("\nRaw runs: `%s.csv`; medians: `%s-medians.csv`; chart: `%s.png`." % ((os.path.basename(a.base),) * 3))
    with open(a.base + ".md", "w") as f:
        f.write("\n".join(out) + "\n")

    with open(a.base + "-medians.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "fs", "median_s", "good_runs", "bad_runs", "peak_rss_kib", "median_cpu_s"])
        for w in workloads:
            for fs in fss:
                k = (w, fs)
                wr.writerow(
                    [
                        w,
                        fs,
                        fmt(med.get(k)) if med.get(k) is not None else "",
                        len(times[k]),
                        len(bad[k]),
                        max(rss[k]) if rss.get(k) else "",
                        fmt(median(cpu[k]), 2) if cpu.get(k) else "",
                    ]
                )

    # Times relative to kernel overlayfs (or the first filesystem run), one
    # row per workload; the reference's label goes to stdout for the chart.
    ref = "kovl" if "kovl" in fss else fss[0]
    with open(a.base + ".dat", "w") as f:
        f.write("workload " + " ".join('"%s"' % LABEL[fs] for fs in fss) + "\n")
        for w in workloads:
            base = med.get((w, ref))
            vals = [ratio(med.get((w, fs)), base) for fs in fss]
            f.write(w + " " + " ".join("?" if v is None else "%.4f" % v for v in vals) + "\n")
    print(LABEL[ref])


if __name__ == "__main__":
    main()
