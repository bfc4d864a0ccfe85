"""Where this interpreter keeps Python.h, and the file name suffix of its
extension modules: what agents/python/ext/meson.build needs when meson's
own python module cannot read the interpreter. Prints nothing (and the
build skips the extensions) when the headers are not installed."""
import os
import sysconfig

inc = sysconfig.get_paths().get("include") or ""
suffix = sysconfig.get_config_var("EXT_SUFFIX") or ""
if os.path.isfile(os.path.join(inc, "Python.h")) and suffix.startswith("."):
    print(inc)
    print(suffix[1:])
