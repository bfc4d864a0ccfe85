"""Serve N fake requests, leaking the ways chosen with --leak."""
import argparse
import gc

from . import cache, cycles, logs, pricing, session

LEAKS = ("registry", "cache", "lru", "logger", "cycles")


def serve(requests, leaks):
    for i in range(requests):
        if "registry" in leaks:
            session.login(i)
        if "cache" in leaks:
            cache.render("/page/%d" % i)
        if "lru" in leaks:
            pricing.quote(i)
        if "logger" in leaks:
            logs.handle(i)
        if "cycles" in leaks:
            cycles.churn()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="leakyapp", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--leak", action="append", choices=LEAKS + ("all",),
                        help="which leak to exercise (repeatable; default: all)")
    parser.add_argument("--snapshot", metavar="LABEL",
                        help="also call leakdiff.snapshot(LABEL) half way through")
    args = parser.parse_args(argv)
    leaks = set(LEAKS) if not args.leak or "all" in args.leak else set(args.leak)
    if args.snapshot:
        import leakdiff
        serve(args.requests // 2, leaks)
        leakdiff.snapshot(args.snapshot)
        serve(args.requests - args.requests // 2, leaks)
    else:
        serve(args.requests, leaks)
    gc.collect()
    print("served %d requests, %d nodes finalized" % (args.requests, cycles.finalized))


if __name__ == "__main__":
    main()
