"""Summarise a py-spy raw profile: the share of samples each function appears in.

python bench/top_frames.py var/bench/profile-send-16.txt [--limit 40] [--match messaging/]
"""

import argparse
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--match", default="", help="only frames whose file contains this")
    args = parser.parse_args()
    totals: Counter[str] = Counter()
    samples = 0
    with open(args.path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            samples += int(count)
            seen = set()
            for frame in stack.split(";"):
                function, _, where = frame.partition(" (")
                filename = where.split(":")[0]
                if args.match not in filename:
                    continue
                name = f"{function} ({'/'.join(filename.split('/')[-2:])})"
                if name not in seen:
                    seen.add(name)
                    totals[name] += int(count)
    print(f"{samples} samples")
    for name, count in totals.most_common(args.limit):
        print(f"{count / samples:6.1%}  {name}")


if __name__ == "__main__":
    main()
