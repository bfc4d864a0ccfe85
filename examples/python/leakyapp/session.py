"""Sessions kept in a class-level registry that nothing ever empties."""


class Session:
    registry = []

    def __init__(self, user):
        self.user = user
        self.token = "t-%d" % user


def login(user):
    session = Session(user)  # leak: registry
    Session.registry.append(session)
    return session
