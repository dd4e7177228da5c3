"""How many students one classroom VM holds: the real hub of classroom/, N student
Linux users, all N running the same notebook at the same moment (the worst case:
"everyone, Run All now"), measured for several N side by side.

Run as root from the repository (it makes and removes the student users, like
tests/test_classroom.py, and runs the hub in a private network + mount namespace):

    sudo .venv/bin/python -m benchmarks.classroom [--students 1,3,6] [--notebook 03_configuration.ipynb]

Per N it prints: seconds until every server was ready, the notebook's wall time per
student (slowest), each student's memory (PSS of all their processes: server, kernel,
lab helper and the lab's own processes; shared pages counted once) idle and at its
peak during the notebook, the machine's MemAvailable drop per student while the
notebook ran (labs' kernel objects included; noisy on a shared machine), and CPU
seconds per student. Then what that means for a 2-core / 24 GB VM.
"""

from __future__ import annotations

import argparse
import os
import sys

GIB = 1024 ** 3
MB = 1024 ** 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", default="1,3,6", help="class sizes to measure, e.g. 1,3,6")
    ap.add_argument("--notebook", default="03_configuration.ipynb")
    ap.add_argument("--vm-gib", type=float, default=24.0, help="the VM's memory")
    ap.add_argument("--vm-cores", type=int, default=2)
    ap.add_argument("--reserve-gib", type=float, default=1.5, help="left to the OS, the hub and the proxy")
    ap.add_argument("--patience", type=float, default=120.0,
                    help="longest acceptable wall time for the whole notebook when everyone runs it at once (s)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: it creates the student users and starts the hub", file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.student_env import run_classroom

    rows = []
    for n in [int(x) for x in args.students.split(",")]:
        r = run_classroom({"notebook": args.notebook, "run_notebook": True}, students=n)
        per = r["per_student"]
        if not all(p.get("rootless") for p in per.values()):
            print("this netteach has no rootless mode: students cannot build labs", file=sys.stderr)
            return 1
        errors = [c["error"] for p in per.values() for c in p["cells"] if c["status"] != "ok"]
        if errors:
            print(f"{n} students: the notebook failed: {errors[:3]}", file=sys.stderr)
            return 1
        rows.append({
            "n": n,
            "start": max(r["start_seconds"].values()),
            "nb_max": max(p["notebook_seconds"] for p in per.values()),
            "nb_min": min(p["notebook_seconds"] for p in per.values()),
            "idle": max(r["idle_server_pss"].values()) / MB,
            "peak": max(r["peak_pss"].values()) / MB,
            "drop": r["available_drop_notebook"] / n / MB,
            "cpu": sum(r["notebook_cpu_seconds"].values()) / n,
        })
        print(f"measured {n} student(s)", file=sys.stderr)

    print(f"notebook: {args.notebook}, everyone runs it at the same moment (Run All)")
    print(f"{'students':>8} {'servers ready':>13} {'notebook wall':>17} {'PSS idle':>9} {'PSS peak':>9} "
          f"{'MemAvail drop':>13} {'CPU':>7}")
    print(f"{'':>8} {'(s, slowest)':>13} {'(s, fastest-slowest)':>17} {'(MB/st.)':>9} {'(MB/st.)':>9} "
          f"{'(MB/student)':>13} {'(s/st.)':>7}")
    for w in rows:
        print(f"{w['n']:>8} {w['start']:>13.1f} {w['nb_min']:>8.1f} - {w['nb_max']:<6.1f} {w['idle']:>9.0f} "
              f"{w['peak']:>9.0f} {w['drop']:>13.0f} {w['cpu']:>7.1f}")

    # what it means for the VM
    # a student's processes at their peak, or their idle server plus what the machine lost
    # while the notebook ran (labs' kernel objects are in no process's PSS), whichever is larger
    # (MemAvailable's drop per student taken between the smallest and the largest class, so
    # that what every run pays once - page cache, the hub's own growth - is not charged per student)
    lo, hi = rows[0], rows[-1]
    drop = ((hi["drop"] * hi["n"] - lo["drop"] * lo["n"]) / (hi["n"] - lo["n"])) if hi["n"] > lo["n"] else lo["drop"]
    mem_per = max(max(w["peak"] for w in rows), max(w["idle"] for w in rows) + drop) * MB
    by_memory = int((args.vm_gib - args.reserve_gib) * GIB // mem_per)
    cpu_per = max(w["cpu"] for w in rows)
    # all at once: the notebook's CPU work of N students shares the cores
    by_burst = int(args.patience * args.vm_cores // cpu_per)
    print()
    print(f"memory: {mem_per / MB:.0f} MB per student (the larger of peak PSS and idle PSS + MemAvailable drop, {drop:.0f} MB/student) -> "
          f"{by_memory} students in {args.vm_gib:g} GB (keeping {args.reserve_gib:g} GB for the system)")
    print(f"CPU: {cpu_per:.1f} CPU-seconds per student for the notebook (its kernel's start included) -> "
          f"{by_burst} students on {args.vm_cores} cores finish a simultaneous Run All within "
          f"{args.patience:.0f} s")
    print(f"holds: {min(by_memory, by_burst)} students running {args.notebook} at once "
          f"(the tighter of the two)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
