"""An allocation-heavy Python program with a leak, for the overhead benchmark.

    python3 workload.py [--requests N]

It serves N fake "requests" through a few layers of calls, as a web
service would: each request builds a dict of headers, a list of small class
instances (one with __slots__, one with a __dict__), strings made by
formatting and joining, and a response dict.  Nearly everything is garbage
when the request ends; one response in 50 is kept in a module-level list
and every 7th customer's profile in a cache that is never trimmed (the
leaks).  The default N takes about 2 s uninstrumented on the reference
machine (2 cores, Xeon, Python 3.11).

Prints one line (a checksum) on stdout; it imports nothing but the standard
library and does not know whether it is being traced.
"""

import sys

KEPT = []          # the leak: responses kept forever
PROFILES = {}      # the other leak: a cache that is never trimmed


class Item:
    __slots__ = ("sku", "qty", "price")

    def __init__(self, sku, qty, price):
        self.sku = sku
        self.qty = qty
        self.price = price


class Order:
    def __init__(self, order_id, customer, items):
        self.order_id = order_id
        self.customer = customer
        self.items = items
        self.tags = set()

    def total(self):
        return sum(it.qty * it.price for it in self.items)


class Profile:
    def __init__(self, name):
        self.name = name
        self.history = []


def parse_request(i):
    headers = {
        "host": "shop.example",
        "x-request-id": "req-%08d" % i,
        "accept": "application/json",
        "cookie": "session=%x; theme=dark" % (i * 2654435761 & 0xFFFFFFFF),
    }
    query = dict(("p%d" % k, str(i + k)) for k in range(4))
    return {"path": "/orders/%d" % (i % 5000), "headers": headers, "query": query}


def load_items(i, n):
    return [Item("sku-%d-%d" % (i % 977, k), 1 + k % 3, 1.25 * (k + 1)) for k in range(n)]


def profile_for(customer):
    prof = PROFILES.get(customer)
    if prof is None:
        prof = Profile(customer)
        if len(customer) % 7 == 0 or customer.endswith("7"):   # not hash(): stable across runs
            PROFILES[customer] = prof
    return prof


def build_order(i, request):
    customer = "customer-%d" % (i % 20000)
    items = load_items(i, 4 + i % 6)
    order = Order(i, customer, items)
    order.tags.update(request["query"].values())
    prof = profile_for(customer)
    prof.history.append(i)
    return order


def render(order):
    lines = ["%s x%d @ %.2f" % (it.sku, it.qty, it.price) for it in order.items]
    body = "\n".join(lines)
    return {"id": order.order_id, "body": body.upper(), "total": order.total(),
            "lines": lines, "order": order}


def handle(i):
    request = parse_request(i)
    order = build_order(i, request)
    response = render(order)
    if i % 50 == 0:
        KEPT.append(response)
    return len(response["body"]) + len(request["headers"])


def serve(n):
    check = 0
    for i in range(n):
        check += handle(i)
    return check


def main(argv):
    n = 160000
    if len(argv) >= 2 and argv[0] == "--requests":
        n = int(argv[1])
    elif argv:
        sys.stderr.write("usage: workload.py [--requests N]\n")
        return 2
    check = serve(n)
    print("served %d requests, kept %d responses, %d profiles, checksum %d"
          % (n, len(KEPT), len(PROFILES), check))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
