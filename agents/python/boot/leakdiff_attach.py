"""leakdiff bootstrap for `leakdiff record --pid`, run inside the target.

The recorder has a thread of the target start a new thread that runs this
file, by its absolute path (see cli/attach.c), so it runs like any Python
code: between bytecodes, with the GIL, never inside malloc or a
collection. It is executed in a namespace of its own, which holds SETTINGS
(the attach settings string) and __file__, so nothing is bound in the
program's __main__.

The directory holding the ``leakdiff`` package goes on sys.path only for
the import, so the agent loads whatever virtualenv or sys.path the program
has, and the program's sys.path is left as it was. Whatever goes wrong,
nothing escapes into the program.
"""


def _leakdiff_attach(settings, boot_file):
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(boot_file)))
    sys.path.insert(0, root)
    try:
        from leakdiff import _attach
    finally:
        try:
            sys.path.remove(root)
        except ValueError:
            pass
    _attach.start(settings, boot_file)


try:
    _leakdiff_attach(SETTINGS, __file__)  # noqa: F821 - given by the recorder's exec
except BaseException:
    pass
