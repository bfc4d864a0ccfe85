"""A module-level page cache with no eviction."""

CACHE = {}


class CachedPage:
    __slots__ = ("path", "body")

    def __init__(self, path, body):
        self.path = path
        self.body = body


def render(path):
    page = CACHE.get(path)
    if page is None:
        page = CachedPage(path, "<html>%s</html>" % path)  # leak: cache
        CACHE[path] = page
    return page
